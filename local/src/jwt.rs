//! The JWT authorizer of API Gateway HTTP APIs, locally: signature against
//! the pool's keys, algorithm, issuer, audience (`aud` of id tokens or
//! `client_id` of access tokens), expiry and not-before, with no leeway —
//! the very verifier the live WebSocket API's authorizer function runs.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
pub use live_authorizer::JwtVerifier;
use serde_json::{Map, Value};

/// Reads a key set stored as JSON, or gzipped JSON as moto ships it.
pub fn read_key_set(dir: &Path, stem: &str) -> anyhow::Result<String> {
    let plain = dir.join(format!("{stem}.json"));
    if plain.exists() {
        return Ok(std::fs::read_to_string(plain)?);
    }
    let gz = dir.join(format!("{stem}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(&gz).with_context(|| format!("opening {}", gz.display()))?,
    )
    .read_to_string(&mut text)?;
    Ok(text)
}

/// API Gateway hands claims to the function as strings; arrays become
/// `[a b]`, numbers and booleans their text.
pub fn flatten_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_flatten_like_api_gateway() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"sub":"u1","cognito:groups":["admin","editors"],"exp":1700000000,"email_verified":true}"#,
        )
        .unwrap();
        let flat = flatten_claims(&claims);
        assert_eq!(flat["cognito:groups"], "[admin editors]");
        assert_eq!(flat["exp"], "1700000000");
        assert_eq!(flat["email_verified"], "true");
        assert_eq!(flat["sub"], "u1");
    }
}
