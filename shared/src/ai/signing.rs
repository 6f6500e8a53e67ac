//! Who may wake a generation up. Every callback URL carries a token bound
//! to its generation (an HMAC of the generation id under our own secret), so
//! a callback for one generation cannot touch another; where the provider
//! signs its callbacks, the signature and its timestamp are checked too.
//! Even then a callback only makes us ask the provider (SPEC §3.5).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// How far a signed callback's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// How a provider signs its callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallbackSigning {
    /// Unsigned: the token in the URL is all there is.
    #[default]
    None,
    /// The reference protocol: `X-Webhook-Timestamp` and
    /// `X-Webhook-Signature = base64(HMAC-SHA256(key, taskId + "." + timestamp))`.
    ReferenceHmac,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`.
    StandardWebhooks,
}

/// Why a callback is refused (all answered 401, and nothing changes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the callback token is not this generation's")]
    Token,
    #[error("the callback is not signed")]
    Unsigned,
    #[error("the callback's signature does not match")]
    Signature,
    #[error("the callback's timestamp is too far from now")]
    Stale,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The HMAC a generation's callback token is the first 16 bytes of.
fn token_tag(secret: &[u8], owner: &str, generation: &str) -> [u8; 32] {
    mac(
        secret,
        &[
            b"assetbox-callback:",
            owner.as_bytes(),
            b"/",
            generation.as_bytes(),
        ],
    )
    .finalize()
    .into_bytes()
    .into()
}

/// The token of a generation's callback URL, bound to its owner and id.
pub fn callback_token(secret: &[u8], owner: &str, generation: &str) -> String {
    hex::encode(&token_tag(secret, owner, generation)[..16])
}

/// Whether `token` is the generation's (constant time).
pub fn check_token(
    secret: &[u8],
    owner: &str,
    generation: &str,
    token: &str,
) -> Result<(), Refused> {
    let Ok(given) = hex::decode(token) else {
        return Err(Refused::Token);
    };
    // `given` must be exactly the 16-byte prefix; compare in constant time.
    if given.len() != 16 {
        return Err(Refused::Token);
    }
    let full = token_tag(secret, owner, generation);
    let diff = given
        .iter()
        .zip(&full[..16])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(Refused::Token)
    }
}

fn within_tolerance(timestamp: &str, now: i64) -> Result<i64, Refused> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refused::Stale)?;
    // Some senders use milliseconds.
    let secs = if ts > 100_000_000_000 { ts / 1000 } else { ts };
    if (now - secs).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    Ok(secs)
}

/// The reference protocol's signature of a callback for `task_id`.
pub fn reference_signature(key: &[u8], task_id: &str, timestamp: &str) -> String {
    let tag = mac(key, &[task_id.as_bytes(), b".", timestamp.as_bytes()])
        .finalize()
        .into_bytes();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// Checks a reference-protocol callback (the timestamp within
/// [`TOLERANCE_SECS`] of `now`: the provider has no replay window itself).
pub fn verify_reference(
    key: &[u8],
    task_id: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), Refused> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refused::Unsigned);
    };
    within_tolerance(timestamp, now)?;
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return Err(Refused::Signature);
    };
    mac(key, &[task_id.as_bytes(), b".", timestamp.as_bytes()])
        .verify_slice(&given)
        .map_err(|_| Refused::Signature)
}

/// Checks a Standard Webhooks callback with the `whsec_…` secret.
pub fn verify_standard(
    secret: &str,
    body: &[u8],
    headers: &http::HeaderMap,
) -> Result<(), Refused> {
    use standardwebhooks::{Webhook, WebhookError};
    let hook = Webhook::new(secret).map_err(|_| Refused::Signature)?;
    hook.verify(body, headers).map_err(|e| match e {
        WebhookError::MissingHeader(_) => Refused::Unsigned,
        WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError => Refused::Stale,
        _ => Refused::Signature,
    })
}

/// A Standard Webhooks signature (the stand-in provider signs with it).
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    standardwebhooks::Webhook::new(secret)
        .ok()?
        .sign(id, timestamp, body)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_generation() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = callback_token(secret, "u1", "01GEN-A");
        let check = |owner, generation, token: &str| check_token(secret, owner, generation, token);
        assert_eq!(check("u1", "01GEN-A", &token), Ok(()));
        assert_eq!(check("u1", "01GEN-B", &token), Err(Refused::Token));
        assert_eq!(check("u2", "01GEN-A", &token), Err(Refused::Token));
        assert_eq!(check("u1", "01GEN-A", &token[..30]), Err(Refused::Token));
        assert_eq!(check("u1", "01GEN-A", "zz"), Err(Refused::Token));
        assert_eq!(
            check_token(b"another secret of 32 bytes......", "u1", "01GEN-A", &token),
            Err(Refused::Token)
        );
    }

    #[test]
    fn reference_hmac_signs_task_and_timestamp() {
        let key = b"webhook-hmac-key";
        let now = 1_767_225_600;
        let ts = now.to_string();
        let sig = reference_signature(key, "task-1", &ts);
        // Independently: base64(HMAC-SHA256(key, "task-1.<ts>")).
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(format!("task-1.{ts}").as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, expected);
        assert_eq!(
            verify_reference(key, "task-1", Some(&ts), Some(&sig), now),
            Ok(())
        );
        assert_eq!(
            verify_reference(key, "task-2", Some(&ts), Some(&sig), now),
            Err(Refused::Signature)
        );
        assert_eq!(
            verify_reference(key, "task-1", Some(&ts), Some(&sig), now + 301),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify_reference(key, "task-1", None, Some(&sig), now),
            Err(Refused::Unsigned)
        );
        let ms = (now * 1000).to_string();
        let sig_ms = reference_signature(key, "task-1", &ms);
        assert_eq!(
            verify_reference(key, "task-1", Some(&ms), Some(&sig_ms), now),
            Ok(())
        );
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_test_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let fresh = standard_signature(secret, "msg_1", now, body).unwrap();
        let headers = |ts: i64, sig: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("webhook-id", "msg_1".parse().unwrap());
            h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
            h.insert("webhook-signature", sig.parse().unwrap());
            h
        };
        assert_eq!(verify_standard(secret, body, &headers(now, &fresh)), Ok(()));
        assert_eq!(
            verify_standard(secret, b"{\"test\": 1}", &headers(now, &fresh)),
            Err(Refused::Signature)
        );
        let old = standard_signature(secret, "msg_1", now - 600, body).unwrap();
        assert_eq!(
            verify_standard(secret, body, &headers(now - 600, &old)),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify_standard(secret, body, &http::HeaderMap::new()),
            Err(Refused::Unsigned)
        );
    }
}
