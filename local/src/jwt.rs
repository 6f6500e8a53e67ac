//! The JWT authorizer of API Gateway HTTP APIs, locally: signature against
//! the pool's keys, algorithm, issuer, audience (`aud` of id tokens or
//! `client_id` of access tokens), expiry and not-before, with no leeway.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

pub struct JwtVerifier {
    keys: JwkSet,
    issuer: String,
    audiences: Vec<String>,
}

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

impl JwtVerifier {
    pub fn new(jwks_json: &str, issuer: String, audiences: Vec<String>) -> anyhow::Result<Self> {
        Ok(Self {
            keys: serde_json::from_str(jwks_json).context("reading the pool's JWKS")?,
            issuer,
            audiences,
        })
    }

    /// The verified claims, or why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let kid = header.kid.ok_or("token has no kid")?;
        let jwk = self.keys.find(&kid).ok_or("unknown signing key")?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key: {e}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false; // checked below: `aud` or `client_id`
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| format!("token refused: {e}"))?
            .claims;
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audiences.iter().any(|x| x == a)),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|c| self.audiences.iter().any(|x| x == c)),
        };
        if !audience_ok {
            return Err("audience not accepted".into());
        }
        Ok(claims)
    }
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
