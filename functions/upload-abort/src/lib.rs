//! upload-abort: aborts a multipart upload in S3, then marks it `aborted`
//! and gives its reserved bytes back, in one conditional transaction
//! ([`UploadEnv::abort_upload`]). Aborting twice answers the same; aborting a
//! completed upload is a 409 (the file is deleted with `DELETE /v1/files/{id}`).

use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, CompanionErrorBody, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiQuery, companion_error_message};
use assetbox_shared::uploads::FileView;
use assetbox_shared::uploads::flow::{CompanionQuery, UploadEnv};
use axum::extract::{Path, State};
use axum::routing::delete;
use axum::{Json, Router, middleware};
use utoipa::OpenApi;

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    let companion = Router::new()
        .route("/s3/multipart/{upload_id}", delete(companion_abort))
        .layer(middleware::map_response(companion_error_message));
    Router::new()
        .route("/v1/files/uploads/{id}", delete(abort))
        .merge(companion)
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(abort, companion_abort),
    components(schemas(FileView, ErrorBody, CompanionErrorBody, CompanionAborted))
)]
pub struct UploadAbortDoc;

/// Abort a direct upload
///
/// The parts uploaded so far are discarded and the reserved size is given
/// back to your quota. Aborting again answers the same.
#[utoipa::path(
    delete, path = "/v1/files/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "The file's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The aborted file (also when it was aborted already).", body = FileView),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The upload is completed, expired or failed: only open uploads can be aborted.", body = ErrorBody),
    )
)]
async fn abort(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let file = env.owned_file(&caller, &id).await?;
    let file = env.abort_upload(file).await?;
    Ok(Json(FileView::new(file, None)))
}

/// The empty object Uppy Companion answers to an abort.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CompanionAborted {}

/// Abort a multipart upload (Uppy Companion)
///
/// What `@uppy/aws-s3` calls when an upload is cancelled. Aborting again
/// answers the same.
#[utoipa::path(
    delete, path = "/s3/multipart/{upload_id}", tag = "companion",
    params(
        ("upload_id" = String, Path, description = "The `uploadId` that `POST /s3/multipart` answered."),
        ("key" = String, Query, min_length = 1, description = "The `key` that `POST /s3/multipart` answered."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Aborted: `{}`.", body = CompanionAborted),
        (status = 400, description = "`key` is missing.", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key and id.", body = CompanionErrorBody),
        (status = 409, description = "The upload is completed, expired or failed: only open uploads can be aborted.", body = CompanionErrorBody),
    )
)]
async fn companion_abort(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(upload_id): Path<String>,
    ApiQuery(query): ApiQuery<CompanionQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let file = env
        .companion_file(&caller, query.key()?, &upload_id)
        .await?;
    env.abort_upload(file).await?;
    Ok(Json(serde_json::json!({})))
}
