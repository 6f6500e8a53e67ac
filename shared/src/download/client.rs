//! The guard in the HTTP client: names resolve only to public addresses
//! (and the connection uses exactly the addresses checked: no DNS
//! rebinding), redirects are checked like the first URL.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Blocked, check_url, is_public};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves with the system resolver and keeps only public addresses.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked(
                    "the URL points to a private network address".into(),
                )) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A client with the guard as its resolver and redirects re-checked;
/// `user_agent` names the function (`assetbox-import/1`).
pub fn guarded_client(
    allow_private: bool,
    user_agent: &'static str,
) -> reqwest::Result<reqwest::Client> {
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error(Blocked("the URL redirects too often".into()));
        }
        match check_url(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(blocked) => attempt.error(blocked),
        }
    });
    reqwest::Client::builder()
        // A proxy would resolve names itself, around the guard.
        .no_proxy()
        .dns_resolver(Arc::new(PublicOnly { allow_private }))
        .redirect(redirects)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(240))
        .user_agent(user_agent)
        .build()
}

/// The guard's refusal inside a request error, if that is what stopped it.
pub fn blocked_cause(err: &reqwest::Error) -> Option<Blocked> {
    let mut source: Option<&(dyn Error + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return Some(blocked.clone());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_client_refuses_names_that_resolve_to_private_addresses() {
        let client = guarded_client(false, "test").unwrap();
        let err = client
            .get("https://localhost:9/never")
            .send()
            .await
            .expect_err("refused before connecting");
        assert_eq!(
            blocked_cause(&err),
            Some(Blocked(
                "the URL points to a private network address".into()
            ))
        );
    }
}
