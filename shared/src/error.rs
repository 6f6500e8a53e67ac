//! The one error type of every HTTP function. It renders the JSON error
//! contract of SPEC §3 once: `{"error": {"code", "message", "fields"}}`.
//! Internal causes are logged with the request's span and never sent.

use std::collections::BTreeMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

/// The body of every error reply of the API's own.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `bad_request`,
    /// `not_found`, `conflict`, `too_large`, `body_too_large`,
    /// `quota_exceeded`, `unsupported_media_type`, `throttled`. New codes may
    /// appear.
    pub code: String,
    /// What went wrong, in words for a person.
    pub message: String,
    /// Per-field reasons, keyed by the field's path (e.g. `name`,
    /// `parts[2].etag`); present only on errors about fields.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// The body of an error the API gateway answers itself, before any handler:
/// `{"message": "Unauthorized"}` for a missing, expired or invalid token.
#[derive(Serialize, ToSchema)]
pub struct GatewayMessage {
    #[schema(examples("Unauthorized"))]
    pub message: String,
}

/// The error body of the `/s3` (Uppy Companion) routes: the usual one, with
/// its message also at the top level, where Uppy's client reads it.
#[derive(Serialize, ToSchema)]
pub struct CompanionErrorBody {
    /// The same as `error.message`.
    pub message: String,
    pub error: ErrorDetail,
}

/// Where a request named a box that a write then found gone (deleted,
/// or never the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxNamed {
    /// `/api/boxes/{id}/…`: the resource itself is missing, 404.
    InPath,
    /// A body field (`parent_object_id`): the request is well formed but
    /// names nothing usable, 422 on that field.
    InField(&'static str),
}

impl ApiError {
    /// The one answer for a box that is gone, by where the request named it
    /// (every `Refusal::ParentGone` maps here).
    pub fn box_gone(named: BoxNamed) -> Self {
        match named {
            BoxNamed::InPath => Self::not_found("box"),
            BoxNamed::InField(field) => {
                let mut err = Self::field(field, "no such box");
                err.status = StatusCode::UNPROCESSABLE_ENTITY;
                err
            }
        }
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 with one reason per offending field.
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        let message = format!(
            "invalid fields: {}",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "validation_failed",
            message,
            fields,
        }
    }

    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        Self::validation(BTreeMap::from([(field.to_owned(), reason.into())]))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Unknown and not-yours look the same: the caller learns nothing about
    /// ids that belong to someone else.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message)
    }

    /// Logs the cause and answers a bare 500: causes may name tables, keys or
    /// endpoints, which callers must not see.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// A dependency (Cognito, DynamoDB) is throttling or unavailable.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service temporarily unavailable, retry later",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                fields: self.fields.clone(),
            },
        }
    }
}

/// The record `id` names, or a 404 naming `what`. Every read is under the
/// caller's partition, so another owner's id is the same 404 as an unknown
/// one; an id that is no ULID names nothing and is not even read. The one
/// ownership lookup of every handler.
pub async fn found_by_id<T, E, Fut>(
    what: &str,
    id: &str,
    read: impl FnOnce() -> Fut,
) -> Result<T, ApiError>
where
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
    E: Into<ApiError>,
{
    if !crate::validation::is_ulid(id) {
        return Err(ApiError::not_found(what));
    }
    read()
        .await
        .map_err(Into::into)?
        .ok_or_else(|| ApiError::not_found(what))
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_lists_fields_in_message_and_body() {
        let err = ApiError::validation(BTreeMap::from([
            ("name".to_owned(), "must not be empty".to_owned()),
            ("age".to_owned(), "must be a number".to_owned()),
        ]));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "invalid fields: age, name");
        let json = serde_json::to_value(err.body()).unwrap();
        assert_eq!(json["error"]["fields"]["name"], "must not be empty");
        assert_eq!(json["error"]["code"], "validation_failed");
    }

    #[tokio::test]
    async fn lookups_are_404_for_odd_unknown_and_foreign_ids_alike() {
        let id = crate::validation::new_id();
        let read = std::cell::Cell::new(0);
        let odd = found_by_id("box", "not-an-id", || async {
            read.set(read.get() + 1);
            Ok::<_, ApiError>(Some(1))
        })
        .await;
        assert_eq!(odd.unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(read.get(), 0, "an odd id is not even read");
        let unknown = found_by_id("box", &id, || async { Ok::<Option<u8>, ApiError>(None) }).await;
        assert_eq!(unknown.unwrap_err().message, "box not found");
        let known = found_by_id("box", &id, || async { Ok::<_, ApiError>(Some(7)) }).await;
        assert_eq!(known.unwrap(), 7);
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let err = ApiError::internal("table assetbox-prod is throttled");
        let json = serde_json::to_value(err.body()).unwrap();
        assert_eq!(json["error"]["message"], "internal error");
        assert!(json["error"].get("fields").is_none());
    }
}
