//! API Gateway HTTP API (payload format 2.0), locally.
//!
//! For each request: pick the template route by API Gateway's precedence
//! (exact route and method, then the longest greedy `{proxy+}` prefix), run the
//! route's JWT authorizer (401 `{"message":"Unauthorized"}` before any handler
//! runs), build the payload-2.0 event with the verified claims, and hand it to
//! the function through lambda_http's own adapter, the code path the Lambda
//! runtime uses. The function's v2 response is turned back into HTTP as API
//! Gateway does.
//!
//! Assumption to confirm on AWS: a trailing slash (`/api/projects/`) matches
//! the greedy route `/api/projects/{proxy+}` with an empty `proxy`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::cors::CorsPolicy;
use crate::functions::LocalFunction;
use crate::jwt::{JwtVerifier, flatten_claims};
use crate::template::HttpRoute;

/// API Gateway's own request limit; Lambda's 6 MB invocation limit applies
/// to the event as a whole, checked after encoding.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

pub struct Gateway {
    routes: Vec<BoundRoute>,
    authorizers: HashMap<String, JwtVerifier>,
    /// The API's `CorsConfiguration`; `None` answers no preflight and
    /// grants nothing, as API Gateway without one does.
    cors: Option<CorsPolicy>,
    api_id: String,
}

struct BoundRoute {
    route: HttpRoute,
    function: Arc<BoundFunction>,
}

pub struct BoundFunction {
    pub name: String,
    pub function: LocalFunction,
    pub timeout: Duration,
}

/// How well a route matches a path; larger is better.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy, Debug)]
struct Specificity {
    exact: bool,
    literal_segments: usize,
    method_exact: bool,
}

/// Matches `path` against a route template; returns its path parameters.
fn match_path(template: &str, path: &str) -> Option<(HashMap<String, String>, bool, usize)> {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut params = HashMap::new();
    let mut literals = 0;
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            if p.len() <= i {
                return None;
            }
            params.insert(name.to_owned(), p[i..].join("/"));
            return Some((params, false, literals));
        }
        let actual = p.get(i)?;
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if actual.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), (*actual).to_owned());
        } else if seg != actual {
            return None;
        } else {
            literals += 1;
        }
    }
    (t.len() == p.len()).then_some((params, true, literals))
}

fn gateway_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Whether API Gateway hands the function this body as a string rather than
/// base64: only these media types (as measured against AWS by other
/// emulators; a missing type and form bodies are base64), and only when the
/// bytes are UTF-8 — the function then sees exactly what was sent, never a
/// lossily repaired copy, and refuses what is not UTF-8 itself.
fn is_text(content_type: Option<&str>, body: &[u8]) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let textual = mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        );
    textual && std::str::from_utf8(body).is_ok()
}

impl Gateway {
    pub fn new(
        routes: Vec<HttpRoute>,
        functions: &HashMap<String, Arc<BoundFunction>>,
        authorizers: HashMap<String, JwtVerifier>,
        cors: Option<CorsPolicy>,
    ) -> anyhow::Result<Self> {
        let routes = routes
            .into_iter()
            .map(|route| {
                let function = functions.get(&route.function).cloned().ok_or_else(|| {
                    anyhow::anyhow!(
                        "route {} {} names unknown function {}",
                        route.method,
                        route.path,
                        route.function
                    )
                })?;
                if !matches!(function.function, LocalFunction::Http(_)) {
                    anyhow::bail!(
                        "route {} {} names {}, which is not an HTTP function",
                        route.method,
                        route.path,
                        route.function
                    );
                }
                if let Some(name) = &route.authorizer
                    && !authorizers.contains_key(name)
                {
                    anyhow::bail!(
                        "route {} {} uses unknown authorizer {name}",
                        route.method,
                        route.path
                    );
                }
                Ok(BoundRoute { route, function })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            routes,
            authorizers,
            cors,
            api_id: "local".into(),
        })
    }

    fn select(&self, method: &str, path: &str) -> Option<(&BoundRoute, HashMap<String, String>)> {
        self.routes
            .iter()
            .filter(|r| r.route.method == "ANY" || r.route.method == method)
            .filter_map(|r| {
                let (params, exact, literal_segments) = match_path(&r.route.path, path)?;
                let score = Specificity {
                    exact,
                    literal_segments,
                    method_exact: r.route.method == method,
                };
                Some((score, r, params))
            })
            .max_by_key(|(score, _, _)| *score)
            .map(|(_, r, params)| (r, params))
    }

    pub async fn handle(self: Arc<Self>, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = ulid::Ulid::new().to_string();
        let method = request.method().as_str().to_owned();
        // Share tokens in paths are credentials: never logged.
        let path = assetbox_shared::http::loggable_path(request.uri().path()).into_owned();
        let origin = request.headers().get(axum::http::header::ORIGIN).cloned();
        // A preflight never reaches routing or the authorizer.
        let preflight = self
            .cors
            .as_ref()
            .and_then(|cors| cors.preflight(request.method(), request.headers()));
        let response = match (preflight, &self.cors) {
            (Some(answer), _) => answer,
            (None, Some(cors)) => {
                let mut response = self.dispatch(request, &request_id).await;
                cors.decorate(origin.as_ref(), &mut response);
                response
            }
            (None, None) => self.dispatch(request, &request_id).await,
        };
        tracing::info!(
            request_id,
            method,
            path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "api request"
        );
        response
    }

    async fn dispatch(&self, request: Request, request_id: &str) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let method = parts.method.as_str().to_owned();
        let raw_path = parts.uri.path().to_owned();
        let Some((bound, path_params)) = self.select(&method, &raw_path) else {
            return gateway_error(StatusCode::NOT_FOUND, "Not Found");
        };
        let claims = match &bound.route.authorizer {
            None => None,
            Some(name) => {
                let token = parts
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
                let verified = token
                    .ok_or_else(|| "no token".to_owned())
                    .and_then(|t| self.authorizers[name].verify(t));
                match verified {
                    Ok(claims) => Some(flatten_claims(&claims)),
                    Err(reason) => {
                        tracing::info!(request_id, reason, "authorizer refused the request");
                        let mut response = gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized");
                        response
                            .headers_mut()
                            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
                        return response;
                    }
                }
            }
        };
        let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
            Ok(body) => body,
            Err(_) => {
                return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
            }
        };
        let event = self.event(&parts, &bound.route, path_params, claims, &body, request_id);
        let encoded_len = event.to_string().len();
        if encoded_len > MAX_EVENT_BYTES {
            return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        let function = bound.function.clone();
        match tokio::time::timeout(function.timeout, invoke(&function, event, request_id)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                tracing::error!(request_id, function = function.name, error = %e, "function failed");
                gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(_) => {
                tracing::error!(request_id, function = function.name, "function timed out");
                gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
        }
    }

    fn event(
        &self,
        parts: &axum::http::request::Parts,
        route: &HttpRoute,
        path_params: HashMap<String, String>,
        claims: Option<serde_json::Map<String, Value>>,
        body: &[u8],
        request_id: &str,
    ) -> Value {
        let mut headers: HashMap<String, String> = HashMap::new();
        let mut cookies = Vec::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if name == "cookie" {
                cookies.extend(
                    value
                        .split(';')
                        .map(|c| c.trim().to_owned())
                        .filter(|c| !c.is_empty()),
                );
                continue;
            }
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let raw_query = parts.uri.query().unwrap_or_default().to_owned();
        let mut query: HashMap<String, String> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
            query
                .entry(k.into_owned())
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(&v);
                })
                .or_insert_with(|| v.into_owned());
        }
        let text = is_text(headers.get("content-type").map(String::as_str), body);
        let route_key = format!("{} {}", route.method, route.path);
        let now = time::OffsetDateTime::now_utc();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": parts.uri.path(),
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": crate::provision::ACCOUNT_ID,
                "apiId": self.api_id,
                "domainName": headers.get("host").cloned().unwrap_or_else(|| "localhost".into()),
                "domainPrefix": self.api_id,
                "http": {
                    "method": parts.method.as_str(),
                    "path": parts.uri.path(),
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": "$default",
                "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
                "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            },
            "isBase64Encoded": !text && !body.is_empty(),
        });
        if !cookies.is_empty() {
            event["cookies"] = json!(cookies);
        }
        if !query.is_empty() {
            event["queryStringParameters"] = json!(query);
        }
        if !path_params.is_empty() {
            event["pathParameters"] = json!(path_params);
        }
        if let Some(claims) = claims {
            event["requestContext"]["authorizer"] =
                json!({ "jwt": { "claims": claims, "scopes": null } });
        }
        if !body.is_empty() {
            event["body"] = if let (true, Ok(text)) = (text, std::str::from_utf8(body)) {
                Value::String(text.to_owned())
            } else {
                Value::String(BASE64.encode(body))
            };
        }
        event
    }
}

/// Runs one event through the function and renders its v2 response.
async fn invoke(
    function: &BoundFunction,
    event: Value,
    request_id: &str,
) -> anyhow::Result<Response<Body>> {
    let LocalFunction::Http(service) = &function.function else {
        anyhow::bail!("{} is not an HTTP function", function.name);
    };
    let request = serde_json::from_value(event)?;
    let response = assetbox_shared::http::invoke(service, request, request_id)
        .await
        .map_err(anyhow::Error::msg)?;
    render(&serde_json::to_value(response)?)
}

fn render(v2: &Value) -> anyhow::Result<Response<Body>> {
    let status = v2.get("statusCode").and_then(Value::as_u64).unwrap_or(200) as u16;
    let body = match v2.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(text) if v2.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            BASE64.decode(text)?
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    let mut headers = HeaderMap::new();
    for key in ["multiValueHeaders", "headers"] {
        if let Some(map) = v2.get(key).and_then(Value::as_object) {
            for (name, value) in map {
                let values: Vec<&str> = match value {
                    Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                    Value::String(s) => vec![s.as_str()],
                    _ => vec![],
                };
                for value in values {
                    headers.append(
                        HeaderName::from_bytes(name.as_bytes())?,
                        HeaderValue::from_str(value)?,
                    );
                }
            }
        }
    }
    for cookie in v2
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(cookie) = cookie.as_str() {
            headers.append("set-cookie", HeaderValue::from_str(cookie)?);
        }
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status)?;
    *response.headers_mut() = headers;
    Ok(response)
}

async fn entry(State(gateway): State<Arc<Gateway>>, request: Request) -> Response<Body> {
    gateway.handle(request).await
}

pub fn router(gateway: Arc<Gateway>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_matching_follows_api_gateway() {
        let (p, exact, _) = match_path("/api/projects", "/api/projects").unwrap();
        assert!(exact && p.is_empty());
        assert!(match_path("/api/projects", "/api/projects/x").is_none());
        let (p, exact, lits) =
            match_path("/api/projects/{proxy+}", "/api/projects/01/boxes").unwrap();
        assert!(!exact);
        assert_eq!(lits, 2);
        assert_eq!(p["proxy"], "01/boxes");
        let (p, _, _) = match_path("/api/projects/{proxy+}", "/api/projects/").unwrap();
        assert_eq!(p["proxy"], "");
        assert!(match_path("/api/projects/{proxy+}", "/api/projects").is_none());
        let (p, exact, _) = match_path("/api/boxes/{id}", "/api/boxes/7").unwrap();
        assert!(exact);
        assert_eq!(p["id"], "7");
        assert!(match_path("/api/boxes/{id}", "/api/boxes/").is_none());
    }

    #[test]
    fn exact_routes_beat_greedy_ones_and_longer_prefixes_win() {
        let exact = Specificity {
            exact: true,
            literal_segments: 1,
            method_exact: false,
        };
        let greedy = Specificity {
            exact: false,
            literal_segments: 5,
            method_exact: true,
        };
        assert!(exact > greedy);
        let longer = Specificity {
            exact: false,
            literal_segments: 3,
            method_exact: false,
        };
        let shorter = Specificity {
            exact: false,
            literal_segments: 2,
            method_exact: true,
        };
        assert!(longer > shorter);
    }

    #[test]
    fn renders_v2_responses() {
        let v2 = json!({"statusCode": 201, "headers": {"content-type": "application/json"}, "body": "{}", "isBase64Encoded": false, "cookies": ["a=b"]});
        let response = render(&v2).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["set-cookie"], "a=b");
        let v2 = json!({"statusCode": 200, "body": BASE64.encode([0u8, 159, 146, 150]), "isBase64Encoded": true});
        assert_eq!(render(&v2).unwrap().status(), StatusCode::OK);
    }
}
