//! CORS as API Gateway HTTP API does it, from the template's
//! `CorsConfiguration` (so the local stack cannot grant what the deployed API
//! would not):
//!
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//!   is answered by the gateway itself, before any route lookup or
//!   authorizer: 204, with the grants only when the origin is allowed;
//! - every other response — the function's and the gateway's own 401, 404,
//!   413, 5xx — carries `Access-Control-Allow-Origin` (and the exposed
//!   headers) for an allowed origin and nothing for another;
//! - CORS headers a function sets are dropped ("API Gateway ignores CORS
//!   headers returned from your backend integration").
//!
//! Hand-written rather than tower-http's `CorsLayer`: that layer answers
//! every `OPTIONS` as a preflight (200) and grants methods and headers to
//! any origin, where the deployed gateway grants nothing to a disallowed one.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    /// Lower-cased origins; `*` allows any, `https://*.example.com` any
    /// subdomain of it.
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
}

fn strings(config: &Value, key: &str) -> Vec<String> {
    match config.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(one)) => one
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

impl CorsPolicy {
    /// From a resolved `CorsConfiguration` (SAM's property names).
    pub fn from_config(config: &Value) -> anyhow::Result<Self> {
        if !config.is_object() {
            anyhow::bail!("CorsConfiguration: only the object form is supported locally");
        }
        let policy = Self {
            allow_origins: strings(config, "AllowOrigins"),
            allow_headers: strings(config, "AllowHeaders"),
            allow_methods: strings(config, "AllowMethods")
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            expose_headers: strings(config, "ExposeHeaders"),
            max_age: config.get("MaxAge").and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
            allow_credentials: config
                .get("AllowCredentials")
                .is_some_and(|v| v == &Value::Bool(true) || v == "true"),
        };
        if policy.allow_credentials && policy.allow_origins.iter().any(|o| o == "*") {
            // API Gateway refuses this configuration at deploy time.
            anyhow::bail!("CorsConfiguration: AllowCredentials cannot be used with origin *");
        }
        Ok(policy)
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
    fn allowed(&self, origin: &str) -> Option<HeaderValue> {
        let wanted = origin.to_ascii_lowercase();
        let matches = |allowed: &str| {
            if allowed == wanted {
                return true;
            }
            match allowed.split_once("://*.") {
                Some((scheme, domain)) => wanted
                    .strip_prefix(scheme)
                    .and_then(|rest| rest.strip_prefix("://"))
                    .and_then(|host| host.strip_suffix(domain))
                    .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => false,
            }
        };
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.allow_origins
            .iter()
            .any(|o| matches(o))
            .then(|| HeaderValue::from_str(origin).ok())
            .flatten()
    }

    /// A preflight's answer, when `method` and `headers` are one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response<Body>> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or_default();
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let Some(allow_origin) = self.allowed(origin) else {
            return Some(response);
        };
        let out = response.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        let list = |items: &[String]| HeaderValue::from_str(&items.join(",")).ok();
        if let Some(methods) = list(&self.allow_methods).filter(|_| !self.allow_methods.is_empty())
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(allowed) = list(&self.allow_headers).filter(|_| !self.allow_headers.is_empty())
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if let Some(age) = self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        self.credentials_and_vary(out);
        Some(response)
    }

    /// Drops the function's CORS headers and adds the gateway's for an
    /// allowed `origin`.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response<Body>) {
        let out = response.headers_mut();
        let theirs: Vec<_> = out
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            out.remove(name);
        }
        let Some(allow_origin) = origin
            .and_then(|o| o.to_str().ok())
            .and_then(|o| self.allowed(o))
        else {
            return;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if !self.expose_headers.is_empty()
            && let Ok(exposed) = HeaderValue::from_str(&self.expose_headers.join(","))
        {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
        }
        self.credentials_and_vary(out);
    }

    fn credentials_and_vary(&self, out: &mut HeaderMap) {
        if self.allow_credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        // A grant naming one origin must not be served to another from a cache.
        if !self.allow_origins.iter().any(|o| o == "*") {
            out.append(header::VARY, HeaderValue::from_static("origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(origins: Value) -> CorsPolicy {
        CorsPolicy::from_config(&json!({
            "AllowOrigins": origins,
            "AllowHeaders": ["authorization", "Content-Type"],
            "AllowMethods": ["GET", "post"],
            "ExposeHeaders": ["Retry-After"],
            "MaxAge": 600,
        }))
        .unwrap()
    }

    fn preflight_headers(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            "POST".parse().unwrap(),
        );
        h
    }

    #[test]
    fn preflights_grant_allowed_origins_only() {
        let p = policy(json!(["https://app.example.com", "https://*.studio.test"]));
        let ok = p
            .preflight(
                &Method::OPTIONS,
                &preflight_headers("https://app.example.com"),
            )
            .unwrap();
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-methods"], "GET,POST");
        assert_eq!(
            h["access-control-allow-headers"],
            "authorization,content-type"
        );
        assert_eq!(h["access-control-max-age"], "600");
        assert_eq!(h["vary"], "origin");
        let sub = p
            .preflight(
                &Method::OPTIONS,
                &preflight_headers("https://a.studio.test"),
            )
            .unwrap();
        assert!(sub.headers().contains_key("access-control-allow-origin"));
        for other in [
            "https://evil.example.com",
            "http://app.example.com",
            "https://studio.test",
            "https://a.studio.test.evil",
        ] {
            let refused = p
                .preflight(&Method::OPTIONS, &preflight_headers(other))
                .unwrap();
            assert_eq!(refused.status(), StatusCode::NO_CONTENT);
            assert!(
                refused
                    .headers()
                    .keys()
                    .all(|k| !k.as_str().starts_with("access-control-")),
                "{other}"
            );
        }
        // Not a preflight: a plain OPTIONS, or another method.
        let mut plain = HeaderMap::new();
        plain.insert(header::ORIGIN, "https://app.example.com".parse().unwrap());
        assert!(p.preflight(&Method::OPTIONS, &plain).is_none());
        assert!(
            p.preflight(&Method::GET, &preflight_headers("https://app.example.com"))
                .is_none()
        );
    }

    #[test]
    fn responses_carry_the_gateways_headers_not_the_functions() {
        let p = policy(json!(["*"]));
        let mut response = Response::new(Body::empty());
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://function.example"),
        );
        let origin = HeaderValue::from_static("https://anywhere.example");
        p.decorate(Some(&origin), &mut response);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            response.headers()["access-control-expose-headers"],
            "retry-after"
        );
        assert!(!response.headers().contains_key("vary"));
        let mut no_origin = Response::new(Body::empty());
        no_origin.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        p.decorate(None, &mut no_origin);
        assert!(no_origin.headers().is_empty());
    }

    #[test]
    fn credentials_with_any_origin_is_refused() {
        let config = json!({"AllowOrigins": ["*"], "AllowCredentials": true});
        assert!(CorsPolicy::from_config(&config).is_err());
    }
}
