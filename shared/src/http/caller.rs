//! Who is calling. API Gateway's JWT authorizer has already verified the token
//! (signature, issuer, audience, expiry); the handler only reads the claims it
//! put into the payload-2.0 request context. No claims means the route was
//! reached without the authorizer, so the extractor fails closed with 401.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use http::request::Parts;
use lambda_http::request::RequestContext;

use crate::error::ApiError;

/// The Cognito group whose members manage providers and models.
pub const ADMIN_GROUP: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: the only identity handlers trust.
    pub user_id: String,
    pub groups: Vec<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    /// Reads the claims map API Gateway builds from a verified JWT.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, ApiError> {
        let user_id = claims
            .get("sub")
            .map(|s| s.trim())
            .filter(|s| is_plausible_subject(s))
            .ok_or_else(|| ApiError::unauthorized("token has no usable subject"))?;
        let groups = claims
            .get("cognito:groups")
            .map(|raw| parse_group_claim(raw))
            .unwrap_or_default();
        Ok(Self {
            user_id: user_id.to_owned(),
            groups,
        })
    }
}

/// Subjects end up inside table keys (`USER#<sub>`): refuse anything that
/// could smuggle a key separator or is absurdly long.
pub fn is_plausible_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.len() <= 128
        && sub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// API Gateway flattens array claims to strings: HTTP APIs render
/// `cognito:groups` as `[admin editors]`; other producers send a JSON array.
/// Cognito group names may contain commas and brackets but no whitespace, so
/// only whitespace separates names, and only one outer pair of brackets is
/// the list's (a group named `x,admin` or `[admin]` is not `admin`).
pub fn parse_group_claim(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list;
    }
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    inner.split_whitespace().map(str::to_owned).collect()
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        match claims {
            Some(claims) if !claims.is_empty() => Self::from_claims(claims),
            _ => Err(ApiError::unauthorized("missing or invalid bearer token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_subject_and_groups_in_every_encoding() {
        for raw in ["[admin editors]", r#"["admin","editors"]"#, "admin editors"] {
            let caller =
                Caller::from_claims(&claims(&[("sub", "5f1c-42aa"), ("cognito:groups", raw)]))
                    .unwrap();
            assert_eq!(caller.user_id, "5f1c-42aa");
            assert_eq!(caller.groups, vec!["admin", "editors"], "encoding {raw}");
            assert!(caller.is_admin());
        }
    }

    #[test]
    fn no_groups_is_not_admin() {
        let caller = Caller::from_claims(&claims(&[("sub", "u1")])).unwrap();
        assert!(!caller.is_admin());
        let caller = Caller::from_claims(&claims(&[
            ("sub", "u1"),
            ("cognito:groups", "[administrators]"),
        ]))
        .unwrap();
        assert!(!caller.is_admin());
    }

    #[test]
    fn a_group_named_like_a_list_is_one_group() {
        for (raw, want) in [
            ("[x,admin]", vec!["x,admin"]),
            ("[[admin]]", vec!["[admin]"]),
            ("[[admin x]]", vec!["[admin", "x]"]),
            (r#"["x,admin"]"#, vec!["x,admin"]),
        ] {
            let caller =
                Caller::from_claims(&claims(&[("sub", "u1"), ("cognito:groups", raw)])).unwrap();
            assert_eq!(caller.groups, want, "{raw}");
            assert!(!caller.is_admin(), "{raw}");
        }
    }

    #[test]
    fn missing_or_odd_subject_fails_closed() {
        for bad in [
            claims(&[]),
            claims(&[("sub", "")]),
            claims(&[("sub", "a#b")]),
            claims(&[("email", "x@y.z")]),
        ] {
            let err = Caller::from_claims(&bad).unwrap_err();
            assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
        }
    }

    #[tokio::test]
    async fn extractor_rejects_requests_without_authorizer_context() {
        let (mut parts, _) = http::Request::new(()).into_parts();
        let err = Caller::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn extractor_reads_claims_from_a_payload_v2_event() {
        let event = include_str!("../../../events/catalog-api/list-projects.json");
        let request = lambda_http::request::from_str(event).unwrap();
        let (mut parts, _) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(caller.user_id, "11111111-2222-3333-4444-555555555555");
    }
}
