//! upload-abort: aborts a multipart upload in S3, then marks it `aborted`
//! and gives its reserved bytes back, in one conditional transaction.
//! Aborting twice answers the same; aborting a completed upload is a 409
//! (the file is deleted with `DELETE /v1/files/{id}`).
//!
//! S3 first, then the record: if the record write fails the client retries
//! and S3's abort is idempotent; the other order could leave parts behind
//! that only the bucket's lifecycle rule would remove.

use assetbox_shared::caller::Caller;
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::files_store::Refusal;
use assetbox_shared::http::{ApiQuery, companion_error_message};
use assetbox_shared::upload_env::{CompanionQuery, UploadEnv};
use assetbox_shared::uploads::{FileRecord, FileView, UploadStatus};
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
    components(schemas(FileView, ErrorBody))
)]
pub struct UploadAbortDoc;

/// Aborts in S3 and records it; the record as it ends up.
async fn abort_upload(env: &UploadEnv, file: FileRecord) -> Result<FileRecord, ApiError> {
    match file.upload_status {
        UploadStatus::Aborted => return Ok(file),
        UploadStatus::Pending | UploadStatus::Uploading => {}
        other => {
            return Err(ApiError::conflict(format!(
                "upload is {}; only open uploads can be aborted",
                other.as_str()
            )));
        }
    }
    match &file.upload_id {
        Some(upload_id) => env.bucket.abort(&file.s3_key, upload_id).await?,
        // A single PUT may already have landed: the object goes too.
        None => env.bucket.delete(&file.s3_key).await?,
    }
    let now = clock::rfc3339(clock::now());
    match env
        .table
        .close_upload(&file, UploadStatus::Aborted, &now)
        .await?
    {
        Ok(()) => {
            let mut after = file;
            after.upload_status = UploadStatus::Aborted;
            after.reserved_bytes = 0;
            after.updated = now;
            Ok(after)
        }
        Err(Refusal::StateChanged) => {
            // A concurrent abort (fine) or complete (conflict) got there first.
            let now = env
                .table
                .get_file(&file.owner, &file.id)
                .await?
                .ok_or_else(|| ApiError::not_found("file"))?;
            match now.upload_status {
                UploadStatus::Aborted => Ok(now),
                other => Err(ApiError::conflict(format!(
                    "upload is {}; only open uploads can be aborted",
                    other.as_str()
                ))),
            }
        }
        Err(other) => Err(ApiError::internal(format!("unexpected refusal {other:?}"))),
    }
}

/// Abort a multipart upload (`/v1/files` contract).
#[utoipa::path(
    delete, path = "/v1/files/uploads/{id}", tag = "uploads",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the aborted file (also when already aborted)", body = FileView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "completed, expired or failed", body = ErrorBody),
    )
)]
async fn abort(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let file = env.owned_file(&caller, &id).await?;
    let file = abort_upload(&env, file).await?;
    Ok(Json(FileView::new(file, None)))
}

/// Companion: abort a multipart upload; answers `{}`.
#[utoipa::path(
    delete, path = "/s3/multipart/{upload_id}", tag = "companion",
    params(("upload_id" = String, Path), CompanionQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "`{}`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
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
    abort_upload(&env, file).await?;
    Ok(Json(serde_json::json!({})))
}
