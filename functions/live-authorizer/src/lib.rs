//! live-authorizer: the `$connect` authorizer of the live WebSocket API.
//! Browsers cannot set headers on a WebSocket, so the token comes in the
//! query string (`?token=`). It is checked exactly as the HTTP API's JWT
//! authorizer checks a bearer token: RS256 signature against the pool's
//! keys, issuer, audience (`aud`, or `client_id` of access tokens), expiry
//! and not-before, no leeway. The local gateway's JWT authorizer uses this
//! same [`JwtVerifier`].

use std::sync::RwLock;
use std::time::{Duration, Instant};

use assetbox_shared::config::{self, ConfigError, Settings, vars};
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::IamPolicyEffect;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value, json};

/// The query parameter that carries the token.
pub const TOKEN_PARAMETER: &str = "token";
/// Keys are fetched again for an unknown `kid` at most this often (a
/// rotated pool key is picked up; a stream of forged kids is not a stream
/// of fetches).
const REFETCH_EVERY: Duration = Duration::from_secs(60);

/// Verifies tokens of one pool against its key set.
pub struct JwtVerifier {
    keys: JwkSet,
    issuer: String,
    audiences: Vec<String>,
}

impl JwtVerifier {
    pub fn new(jwks_json: &str, issuer: String, audiences: Vec<String>) -> Result<Self, String> {
        Ok(Self {
            keys: serde_json::from_str(jwks_json)
                .map_err(|e| format!("reading the pool's JWKS: {e}"))?,
            issuer,
            audiences,
        })
    }

    /// Whether the key set has this key id.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.find(kid).is_some()
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
        // API Gateway refuses a token issued in the future; jsonwebtoken
        // does not look at `iat`.
        let now = assetbox_shared::clock::now().unix_timestamp();
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now)
        {
            return Err("token issued in the future".into());
        }
        Ok(claims)
    }
}

/// The key id a token names, if it parses at all.
fn kid_of(token: &str) -> Option<String> {
    decode_header(token).ok()?.kid
}

pub struct Authorizer {
    issuer: String,
    audiences: Vec<String>,
    jwks_url: String,
    http: reqwest::Client,
    /// The verifier of the keys fetched last, and when.
    verifier: RwLock<Option<(Instant, std::sync::Arc<JwtVerifier>)>>,
}

impl Authorizer {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        let issuer = config::required(settings, vars::COGNITO_ISSUER)?;
        let audiences: Vec<String> = config::required(settings, vars::COGNITO_AUDIENCES)?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let jwks_url = settings
            .get(vars::COGNITO_JWKS_URL)
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: vars::COGNITO_JWKS_URL,
                reason: e.to_string(),
            })?;
        Ok(Self {
            issuer,
            audiences,
            jwks_url,
            http,
            verifier: RwLock::new(None),
        })
    }

    /// The verifier, fetching the pool's keys first when none are held or
    /// when `kid` is unknown and the last fetch is old enough.
    async fn verifier_for(&self, kid: Option<&str>) -> Result<std::sync::Arc<JwtVerifier>, String> {
        if let Some((at, verifier)) = self.verifier.read().expect("verifier").as_ref() {
            let known = kid.is_none_or(|k| verifier.knows(k));
            if known || at.elapsed() < REFETCH_EVERY {
                return Ok(verifier.clone());
            }
        }
        let jwks = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching the pool's keys: {e}"))?
            .text()
            .await
            .map_err(|e| format!("reading the pool's keys: {e}"))?;
        let verifier = std::sync::Arc::new(JwtVerifier::new(
            &jwks,
            self.issuer.clone(),
            self.audiences.clone(),
        )?);
        *self.verifier.write().expect("verifier") = Some((Instant::now(), verifier.clone()));
        Ok(verifier)
    }

    /// Allows the connection for the token's subject, or denies it (API
    /// Gateway answers 403). A failure to fetch the keys is an error (500):
    /// the client may try again.
    pub async fn handle(
        &self,
        request: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, lambda_runtime::Error> {
        let method_arn = request.method_arn.clone().unwrap_or_default();
        let Some(token) = request
            .query_string_parameters
            .first(TOKEN_PARAMETER)
            .map(str::to_owned)
        else {
            return Ok(deny(&method_arn));
        };
        let verifier = self.verifier_for(kid_of(&token).as_deref()).await?;
        match verifier.verify(&token) {
            Ok(claims) => {
                let sub = claims.get("sub").and_then(Value::as_str);
                let expires = claims.get("exp").and_then(Value::as_i64);
                match (sub, expires) {
                    // The same subjects the HTTP API's callers may be.
                    (Some(sub), Some(expires))
                        if assetbox_shared::http::caller::is_plausible_subject(sub) =>
                    {
                        Ok(allow(&method_arn, sub, expires))
                    }
                    _ => Ok(deny(&method_arn)),
                }
            }
            Err(reason) => {
                tracing::info!(reason, "live connection refused");
                Ok(deny(&method_arn))
            }
        }
    }
}

fn policy(effect: &str, method_arn: &str) -> ApiGatewayCustomAuthorizerPolicy {
    serde_json::from_value(json!({
        "Version": "2012-10-17",
        "Statement": [{"Action": ["execute-api:Invoke"], "Effect": effect, "Resource": [method_arn]}]
    }))
    .expect("a fixed policy shape")
}

fn allow(method_arn: &str, owner: &str, expires: i64) -> ApiGatewayCustomAuthorizerResponse {
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(owner.to_owned());
    response.policy_document = policy("Allow", method_arn);
    // The live API reads these at `$connect`: whose connection it is, and
    // when the token it came with expires (its events stop then, as the
    // HTTP API's answers would).
    response.context = json!({ "owner": owner, "token_expires": expires });
    response
}

fn deny(method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some("anonymous".to_owned());
    response.policy_document = policy("Deny", method_arn);
    response
}

/// Whether a response lets the connection in (for the local gateway).
pub fn allows(response: &ApiGatewayCustomAuthorizerResponse) -> bool {
    let statements = &response.policy_document.statement;
    !statements.is_empty()
        && statements
            .iter()
            .all(|s| s.effect == IamPolicyEffect::Allow)
}
