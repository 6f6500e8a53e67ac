//! The public HTTP API, as a browser uses it: JSON, a Bearer token that is
//! refreshed when it expires or is refused (once), retries where repeating a
//! request is harmless, and pages followed to the end.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::{Credentials, DEFAULT_API, Paths, normalise_api, now_secs};
use crate::error::{CliError, Exit, Result, api_error};

/// API calls are small; export is the slowest (it renders the document).
const API_TIMEOUT: Duration = Duration::from_secs(120);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const ATTEMPTS: u32 = 4;
/// The largest page the API serves.
const PAGE: &str = "200";

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating it changes nothing (reads, complete, abort): retried after
    /// network errors, 5xx and 429.
    Safe,
    /// Repeating it could do it twice (initiate): retried only when it
    /// surely was not received (connection refused, 429).
    Unsent,
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    session: Option<Session>,
}

struct Session {
    paths: Paths,
    credentials: tokio::sync::Mutex<Credentials>,
}

/// The API's base URL: `--api`, else `$ASSETBOX_API`, else the one the
/// saved login is for, else the local stack.
pub fn resolve_api(flag: Option<&str>, saved: Option<&str>) -> Result<String> {
    let env = std::env::var("ASSETBOX_API")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let raw = flag
        .map(str::to_owned)
        .or(env)
        .or(saved.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_API.to_owned());
    normalise_api(&raw)
}

/// An id as one path segment: ids are ULIDs, but a typo must not reach
/// another route.
pub fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("assetbox-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        // Part PUTs have no overall timeout (a rate-limited part may take
        // long): keepalive probes find a connection that died instead.
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A pause before attempt `attempt + 1`: 0.5 s, 1 s, 2 s, …
pub async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(
        500 << attempt.min(5).saturating_sub(1),
    ))
    .await;
}

impl Api {
    /// Without a login (login itself).
    pub fn public(base: String) -> Self {
        Self {
            http: http_client(),
            base,
            session: None,
        }
    }

    /// With the saved login; its API unless `--api`/`$ASSETBOX_API` names
    /// another, which its tokens would mean nothing to.
    pub fn logged_in(paths: &Paths, flag: Option<&str>) -> Result<Self> {
        let credentials = Credentials::load(paths)?.ok_or_else(CliError::not_logged_in)?;
        let base = resolve_api(flag, Some(&credentials.api))?;
        if base != credentials.api {
            return Err(CliError::new(
                Exit::Auth,
                format!(
                    "you are logged in to {}, not {base}: run `assetbox login --api {base}`",
                    credentials.api
                ),
            ));
        }
        Ok(Self {
            http: http_client(),
            base,
            session: Some(Session {
                paths: paths.clone(),
                credentials: tokio::sync::Mutex::new(credentials),
            }),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A path of the API (`/api/...`), or a URL as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.send(Method::GET, path, query, None, Retry::Safe).await
    }

    pub async fn post(&self, path: &str, body: &Value, retry: Retry) -> Result<Value> {
        self.send(Method::POST, path, &[], Some(body), retry).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(Method::DELETE, path, &[], None, Retry::Safe)
            .await
    }

    /// Every item of a paginated list (`results`, `next_cursor`).
    pub async fn all_pages(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", PAGE.to_owned()));
            if let Some(c) = cursor.take() {
                q.push(("cursor", c));
            }
            let mut page = self.get(path, &q).await?;
            if let Some(Value::Array(results)) = page.get_mut("results").map(Value::take) {
                items.extend(results);
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Value> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = match self.session {
                Some(_) => Some(self.access_token().await?),
                None => None,
            };
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .query(query)
                .timeout(API_TIMEOUT);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let unreachable =
                |e| CliError::network(&format!("cannot reach the API at {}", self.base), e);
            let (status, retry_after, bytes) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    match response.bytes().await {
                        Ok(bytes) => (status, retry_after, bytes),
                        Err(e) if retry == Retry::Safe && attempt < ATTEMPTS => {
                            drop(e);
                            backoff(attempt).await;
                            continue;
                        }
                        Err(e) => return Err(unreachable(e)),
                    }
                }
                Err(e) => {
                    let again = retry == Retry::Safe || e.is_connect();
                    if again && attempt < ATTEMPTS {
                        backoff(attempt).await;
                        continue;
                    }
                    return Err(unreachable(e));
                }
            };
            if status.is_success() {
                return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
            }
            if status == StatusCode::UNAUTHORIZED
                && let Some(stale) = token
                && !refreshed
            {
                refreshed = true;
                self.refresh(&stale).await?;
                continue;
            }
            let transient = status == StatusCode::TOO_MANY_REQUESTS
                || (retry == Retry::Safe && status.is_server_error());
            if transient && attempt < ATTEMPTS {
                match retry_after {
                    Some(secs) if secs <= 30 => tokio::time::sleep(Duration::from_secs(secs)).await,
                    _ => backoff(attempt).await,
                }
                continue;
            }
            let mut err = api_error(status, &bytes);
            if err.exit == Exit::Auth && self.session.is_some() {
                err.message
                    .push_str(" — run `assetbox login` to log in again");
            }
            return Err(err);
        }
    }

    /// The saved access token, refreshed first when it has expired.
    async fn access_token(&self) -> Result<String> {
        let session = self.session.as_ref().expect("a logged-in API");
        let stale = {
            let credentials = session.credentials.lock().await;
            if !credentials.is_expired() {
                return Ok(credentials.access_token.clone());
            }
            credentials.access_token.clone()
        };
        self.refresh(&stale).await
    }

    /// New tokens for `stale` (once: concurrent callers wait and share them),
    /// saved for the next command.
    async fn refresh(&self, stale: &str) -> Result<String> {
        let session = self.session.as_ref().expect("a logged-in API");
        let mut credentials = session.credentials.lock().await;
        if credentials.access_token != stale && !credentials.is_expired() {
            return Ok(credentials.access_token.clone());
        }
        let refused = || {
            CliError::new(
                Exit::Auth,
                "your session has expired or was revoked: run `assetbox login` to log in again",
            )
        };
        // Sent here rather than through `send`, which calls this.
        let unreachable =
            |e| CliError::network(&format!("cannot reach the API at {}", self.base), e);
        let response = self
            .http
            .post(self.url("/api/auth/refresh"))
            .json(&json!({ "refresh_token": credentials.refresh_token }))
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let tokens: Value = match status {
            s if s.is_success() => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(refused());
            }
            s => return Err(api_error(s, &bytes)),
        };
        let access = tokens["access_token"].as_str().ok_or_else(refused)?;
        credentials.access_token = access.to_owned();
        credentials.expires_at = now_secs() + tokens["expires_in"].as_u64().unwrap_or(300);
        // Cognito keeps the refresh token on refresh; take a new one if given.
        if let Some(refresh) = tokens["refresh_token"].as_str() {
            credentials.refresh_token = refresh.to_owned();
        }
        credentials.save(&session.paths)?;
        Ok(credentials.access_token.clone())
    }

    /// The current access token (logout hands it to the API to revoke).
    pub async fn token(&self) -> Result<String> {
        self.access_token().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_saved_api() {
        // `$ASSETBOX_API` is not set in unit tests; the order below it is.
        if std::env::var_os("ASSETBOX_API").is_some() {
            return;
        }
        assert_eq!(
            resolve_api(Some("https://a.example/"), Some("http://b")).unwrap(),
            "https://a.example"
        );
        assert_eq!(resolve_api(None, Some("http://b:1")).unwrap(), "http://b:1");
        assert_eq!(resolve_api(None, None).unwrap(), DEFAULT_API);
    }
}
