//! HTTP glue shared by the HTTP functions: body and query extractors that
//! answer with our error contract, the service wrapper that makes routes
//! accept a trailing slash, and the Lambda entry point.

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::request::Parts;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::error::ApiError;

pub mod caller;

/// A JSON body. Syntax errors, type errors, unknown and missing fields all
/// become a 400 that names the field, instead of axum's plain-text rejections.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(not_json());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
                status => ApiError::new(status, "bad_request", e.body_text()),
            })?;
        parse_json(&body).map(ApiJson)
    }
}

/// An optional JSON body: none (empty) is `None`; anything else must be JSON
/// of `T` like an [`ApiJson`] body, so a body is never silently ignored.
pub fn optional_json<T: DeserializeOwned>(
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !has_json_content_type(headers) {
        return Err(not_json());
    }
    parse_json(body).map(Some)
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

fn has_json_content_type(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The largest JSON body a route takes unless it says otherwise: ten times
/// the largest body of any JSON route but Companion's complete (a reorder of
/// a full project, a 4000-character prompt), which sets its own.
pub const JSON_BODY_MAX_BYTES: usize = 64 * 1024;

fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the body is larger than this route accepts",
    )
}

/// Parses a JSON document into `T`, naming the offending field on failure.
/// JSON is UTF-8 (RFC 8259): any other byte sequence is refused whole, never
/// repaired, so nothing is stored altered.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if let Err(err) = std::str::from_utf8(body) {
        return Err(ApiError::bad_request(format!(
            "the body is not valid UTF-8 (at byte {})",
            err.valid_up_to()
        )));
    }
    // Every body of this API is an object; serde would also accept a struct
    // written as an array (`["x"]`), which no client means.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(format!("malformed JSON: {inner}"));
        }
        json_field_error(&path, &inner.to_string())
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Turns a serde data error into a field error. serde reports missing and
/// unknown fields against the parent path, with the field name in backticks.
fn json_field_error(path: &str, message: &str) -> ApiError {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let join = |field: String| {
        if path == "." || path.is_empty() {
            field
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = named("missing field `") {
        return ApiError::field(&join(field), "is required");
    }
    if let Some(field) = named("unknown field `") {
        // serde_path_to_error already puts an unknown key at the end of the path.
        let at = if path.rsplit('.').next() == Some(field.as_str()) {
            path.to_owned()
        } else {
            join(field)
        };
        return ApiError::field(&at, "is not an accepted field");
    }
    if path == "." || path.is_empty() {
        return ApiError::bad_request(format!("invalid body: {message}"));
    }
    ApiError::field(path, message)
}

/// Query parameters with the same error contract as [`ApiJson`].
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                json_field_error(&path, &err.into_inner().to_string())
            })
    }
}

async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// The service an HTTP function runs: its router with JSON fallbacks, and
/// trailing slashes trimmed before routing so `/x/` and `/x` are one route.
/// The local stack mounts this very service, so local and Lambda agree.
pub type HttpService = NormalizePath<Router>;

pub fn service(router: Router) -> HttpService {
    let router = router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Outermost, so a route's own limit (set inside) wins.
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_MAX_BYTES))
        .layer(axum::middleware::from_fn(json_errors_only));
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Every error is our JSON error. A path that does not decode to UTF-8 names
/// nothing (ids are ULIDs, tokens base64url): 404 before any extractor, which
/// would answer axum's plain-text 400. Any other plain-text rejection of
/// axum's that a handler did not map is wrapped, its status kept.
async fn json_errors_only(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    if percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .is_err()
    {
        return route_not_found().await.into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&bytes).trim().to_owned();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(message),
        _ if message.is_empty() => ApiError::new(status, "bad_request", "the request is invalid"),
        _ => ApiError::new(status, "bad_request", message),
    }
    .into_response()
}

/// Entry point of an HTTP Lambda: JSON logs (with the invocation's request id
/// from the runtime's span) and the runtime loop.
pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(service(router)).await
}

/// Runs one API Gateway v2 event through lambda_http's adapter — the code
/// path a Lambda invocation takes. Used by the local gateway, handler tests
/// and benchmarks alike; each converts the event and the (serialisable,
/// not nameable) v2 response as it needs.
pub async fn invoke(
    service: &HttpService,
    request: lambda_http::request::LambdaRequest,
    request_id: &str,
) -> Result<impl serde::Serialize + use<>, String> {
    use lambda_http::lambda_runtime::{Context, LambdaEvent};
    use lambda_http::{Adapter, Service};

    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    // The adapter itself is not Send (it holds a PhantomData of the response
    // type); only its future crosses the await.
    let pending = Adapter::from(service.clone()).call(LambdaEvent::new(request, context));
    pending.await.map_err(|e| format!("{e:?}"))
}

pub fn init_logging() {
    lambda_http::tracing::init_default_subscriber();
}

/// Uppy's Companion client shows the top-level `message` of an error reply
/// (SPEC §3.3); ours nests it in `error`. This copies it up for the `/s3`
/// routes, keeping the rest of the contract.
pub async fn companion_error_message(
    response: axum::response::Response,
) -> axum::response::Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let body = match value.pointer("/error/message").cloned() {
        Some(message) => {
            value["message"] = message;
            parts.headers.remove(header::CONTENT_LENGTH);
            serde_json::to_vec(&value).unwrap_or_default().into()
        }
        None => bytes,
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// A request path as logs may show it: the share token of
/// `/api/shared/<token>/…` is a live credential (the table keeps only its
/// hash), so it is replaced.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    const SHARED: &str = "/api/shared/";
    match path.strip_prefix(SHARED) {
        Some(rest) if !rest.is_empty() => {
            let after = rest.find('/').map(|i| &rest[i..]).unwrap_or_default();
            format!("{SHARED}<token>{after}").into()
        }
        _ => path.into(),
    }
}

/// A 201 with a JSON body.
pub fn created<T: serde::Serialize>(body: T) -> impl IntoResponse {
    (StatusCode::CREATED, axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(err.fields.get("name").unwrap(), "is required");
        let err = parse_json::<Body>(br#"{"name":"a","colour":1}"#).unwrap_err();
        assert_eq!(
            err.fields.get("colour").unwrap(),
            "is not an accepted field"
        );
        let err = parse_json::<Body>(br#"{"name":5}"#).unwrap_err();
        assert!(err.fields.get("name").unwrap().contains("invalid type"));
        let err = parse_json::<Body>(br#"{"name":"a","inner":{"size":-1}}"#).unwrap_err();
        assert!(err.fields.contains_key("inner.size"), "{err:?}");
        let err = parse_json::<Body>(br#"{"name":"#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"));
        assert!(err.fields.is_empty());
        let err = parse_json::<Body>(br#"["a"]"#).unwrap_err();
        assert_eq!(err.message, "the body must be a JSON object");
        let err = parse_json::<Body>(br#"{"name":"a"} trailing"#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"));
    }

    #[test]
    fn share_tokens_never_reach_a_log_line() {
        let token = "q2b1Wc6m1v4rS0yXk8dZ3fEoPpLhJtNaUuGi9Ce7TBs";
        for (path, shown) in [
            (
                format!("/api/shared/{token}/"),
                "/api/shared/<token>/".to_owned(),
            ),
            (
                format!("/api/shared/{token}"),
                "/api/shared/<token>".to_owned(),
            ),
            (
                format!("/api/shared/{token}/boxes/01J/comments/"),
                "/api/shared/<token>/boxes/01J/comments/".to_owned(),
            ),
        ] {
            assert_eq!(loggable_path(&path), shown);
            assert!(!loggable_path(&path).contains(token));
        }
        assert_eq!(loggable_path("/api/projects/01J/"), "/api/projects/01J/");
        assert_eq!(loggable_path("/api/shared/"), "/api/shared/");
    }

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            has_json_content_type(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!has_json_content_type(&http::HeaderMap::new()));
    }
}
