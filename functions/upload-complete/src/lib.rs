//! upload-complete: finishes a multipart upload and records the file, for
//! both contracts.
//!
//! AWS calls, happy path: GetItem (the record) + CompleteMultipartUpload +
//! TransactWriteItems (status, quota settlement, asset for a box parent) = 3.
//! A Companion upload that declared no size adds a HeadObject to measure it.
//! Only when S3 rejects the part list do we ListParts, to name the part.
//!
//! Idempotent and race-safe: the status moves `uploading → completed` only by
//! a conditional write on status + upload id. A second or concurrent complete
//! finds S3's upload gone (NoSuchUpload) or loses the condition, reads the
//! record again and answers with the same completed file; if the winner has
//! completed in S3 but not yet written, the object's presence (HeadObject)
//! lets any caller finish the write.

use assetbox_shared::assets;
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, CompanionErrorBody, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery, companion_error_message};
use assetbox_shared::s3::checksum::{ChecksumType, ClientPart, bare_etag};
use assetbox_shared::s3::{CompleteChecks, Completion};
use assetbox_shared::uploads::flow::{CompanionQuery, UploadEnv, is_past};
use assetbox_shared::uploads::{
    FileRecord, FileView, UploadStatus, check_part_list, quota_exceeded, too_large,
};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// A 10,000-part list is ~1 MB of JSON; Lambda takes up to 6 MB.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    let companion = Router::new()
        .route(
            "/s3/multipart/{upload_id}/complete",
            post(companion_complete),
        )
        .layer(middleware::map_response(companion_error_message));
    Router::new()
        .route("/v1/files/uploads/{id}/complete", post(complete))
        .merge(companion)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(complete, companion_complete),
    components(schemas(
        CompleteUpload,
        PartEtag,
        FileView,
        CompanionComplete,
        CompanionPartEtag,
        CompanionCompleted,
        ErrorBody,
        CompanionErrorBody
    ))
)]
pub struct UploadCompleteDoc;

/// A part as its upload's `PUT` answered it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartEtag {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    /// The `ETag` header of the part's `PUT` reply (quotes or not).
    #[schema(min_length = 1)]
    pub etag: String,
    /// The part's checksum, for uploads started with `checksum_algorithm`.
    pub checksum: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUpload {
    /// Every part of the upload, in ascending part order, each once.
    #[schema(min_items = 1, max_items = 10000)]
    pub parts: Vec<PartEtag>,
    /// For uploads started with `checksum_type: FULL_OBJECT`: the whole
    /// file's checksum (base64, the upload's CRC algorithm). Storage
    /// verifies it and refuses to complete on a mismatch (400).
    pub checksum: Option<String>,
}

/// The shared completion path of both contracts.
async fn finish(
    env: &UploadEnv,
    file: FileRecord,
    parts: Vec<ClientPart>,
    checksums: Vec<String>,
    object_checksum: Option<String>,
) -> Result<FileRecord, ApiError> {
    if file.upload_status == UploadStatus::Completed {
        return Ok(file);
    }
    ensure_completable(&file)?;
    check_part_list(&parts, file.num_parts)?;
    let checksum_type = check_checksums(&file, &parts, &checksums, object_checksum.as_deref())?;
    let upload_id = file.multipart_upload_id()?.to_owned();
    // Without declared sizes (Companion) the parts were signed without a
    // length: measure them before anything is completed, so an object above
    // the size limit is never assembled (and S3 checks the sum we measured).
    let measured = match file.part_size {
        0 => Some(measure_parts(env, &file, &parts).await?),
        _ => None,
    };
    let checks = CompleteChecks {
        checksums: file
            .checksum_algorithm
            .zip(checksum_type)
            .map(|(a, t)| (a, t, checksums.as_slice())),
        object_checksum: object_checksum.as_deref(),
        // Declared or measured, S3 checks the assembled object's size too.
        object_size: measured.or((file.part_size > 0).then_some(file.file_size)),
    };
    let completion = env
        .bucket
        .complete(&file.s3_key, &upload_id, &parts, checks)
        .await?;
    let etag = match completion {
        Completion::Completed { etag } => etag,
        Completion::PartsRejected { reason } => {
            return Err(name_rejected_part(env, &file, &parts, reason).await);
        }
        Completion::Mismatch { reason } => {
            return Err(ApiError::field("checksum", reason));
        }
        Completion::NoSuchUpload => {
            // Completed by a concurrent call, or aborted/expired meanwhile.
            let now = reread(env, &file).await?;
            if now.upload_status != UploadStatus::Uploading {
                return settled(now);
            }
            match env.bucket.head(&file.s3_key).await? {
                Some((_, etag)) => etag,
                None => {
                    return Err(ApiError::conflict(
                        "the upload no longer exists in S3 (aborted or expired)",
                    ));
                }
            }
        }
    };
    // Sizes signed into the part URLs make S3 hold exactly the declared size;
    // without them the parts were measured (or, if a concurrent call
    // completed it, the object is).
    let size = match measured {
        Some(size) => size,
        None if file.part_size > 0 && file.file_size > 0 => file.file_size,
        None => match env.bucket.head(&file.s3_key).await? {
            Some((size, _)) => size,
            None => return Err(ApiError::unavailable("completed object not visible yet")),
        },
    };
    record_completion(env, file, etag, size).await
}

/// A multipart upload this call completes: open, ours to complete (not the
/// browser's) and not expired.
fn ensure_completable(file: &FileRecord) -> Result<(), ApiError> {
    match file.upload_status {
        UploadStatus::Uploading if file.completes_on_arrival() => {
            return Err(ApiError::conflict(
                "this upload is completed with S3 by the browser (POST /s3/sign); it finishes when its object arrives",
            ));
        }
        UploadStatus::Uploading => {}
        UploadStatus::Pending => {
            return Err(ApiError::conflict(
                "this is a single-PUT upload; it completes when its object arrives",
            ));
        }
        other => {
            return Err(ApiError::conflict(format!(
                "upload is {}; it cannot be completed",
                other.as_str()
            )));
        }
    }
    if is_past(&file.expires_at) {
        return Err(ApiError::conflict("upload expired; start a new one"));
    }
    Ok(())
}

/// The part checksums (one per part when the upload uses them) and the
/// whole-file one (only for `FULL_OBJECT`), each well formed; the upload's
/// checksum type.
fn check_checksums(
    file: &FileRecord,
    parts: &[ClientPart],
    checksums: &[String],
    object_checksum: Option<&str>,
) -> Result<Option<ChecksumType>, ApiError> {
    if let Some(algorithm) = file.checksum_algorithm {
        if checksums.len() != parts.len() {
            return Err(ApiError::field(
                "parts",
                "this upload uses checksums: give each part its `checksum`",
            ));
        }
        if let Some((i, reason)) = checksums
            .iter()
            .enumerate()
            .find_map(|(i, c)| algorithm.check(c).err().map(|r| (i, r)))
        {
            return Err(ApiError::field(&format!("parts[{i}].checksum"), reason));
        }
    }
    let checksum_type = file
        .checksum_algorithm
        .map(|a| file.checksum_type.unwrap_or(a.default_type()));
    if let Some(value) = object_checksum {
        match file.checksum_algorithm.zip(checksum_type) {
            Some((algorithm, ChecksumType::FullObject)) => algorithm
                .check(value)
                .map_err(|reason| ApiError::field("checksum", reason))?,
            _ => {
                return Err(ApiError::field(
                    "checksum",
                    "only uploads started with checksum_type FULL_OBJECT take a whole-file checksum",
                ));
            }
        }
    }
    Ok(checksum_type)
}

/// The bytes of the listed parts as S3 holds them (one ListParts per 1000
/// parts); 413 above the size limit. A part S3 does not hold counts nothing
/// here: completing names it.
async fn measure_parts(
    env: &UploadEnv,
    file: &FileRecord,
    parts: &[ClientPart],
) -> Result<u64, ApiError> {
    let upload_id = file.multipart_upload_id()?;
    let Some(stored) = env.bucket.list_parts(&file.s3_key, upload_id).await? else {
        // Completed by a concurrent call, or aborted/expired: complete says which.
        return Ok(0);
    };
    listed_size(&stored, parts, env.policy.max_file_bytes)
}

/// The bytes of the parts the client listed, as S3 holds them; 413 above
/// `max`.
fn listed_size(
    stored: &[assetbox_shared::s3::StoredPart],
    parts: &[ClientPart],
    max: u64,
) -> Result<u64, ApiError> {
    let size: u64 = stored
        .iter()
        .filter(|s| parts.iter().any(|p| p.part_number == s.part_number))
        .map(|s| s.size)
        .sum();
    if size > max {
        return Err(too_large(size, max));
    }
    Ok(size)
}

#[cfg(test)]
mod measure_tests {
    use super::*;
    use assetbox_shared::s3::StoredPart;

    fn stored(sizes: &[u64]) -> Vec<StoredPart> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| StoredPart {
                part_number: i as u32 + 1,
                etag: format!("e{i}"),
                size,
                last_modified: None,
            })
            .collect()
    }

    fn listed(numbers: &[u32]) -> Vec<ClientPart> {
        numbers
            .iter()
            .map(|&n| ClientPart {
                part_number: n,
                etag: format!("e{}", n - 1),
            })
            .collect()
    }

    #[test]
    fn only_listed_parts_count_and_more_than_the_limit_is_413() {
        let held = stored(&[5, 5, 3]);
        assert_eq!(listed_size(&held, &listed(&[1, 2, 3]), 13).unwrap(), 13);
        // A part uploaded but not listed is not assembled: it counts nothing.
        assert_eq!(listed_size(&held, &listed(&[1, 3]), 8).unwrap(), 8);
        let err = listed_size(&held, &listed(&[1, 2, 3]), 12).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}

/// The state of a file after another call changed it: completed is the
/// same answer; anything else is a conflict.
fn settled(file: FileRecord) -> Result<FileRecord, ApiError> {
    match file.upload_status {
        UploadStatus::Completed => Ok(file),
        other => Err(ApiError::conflict(format!(
            "upload is {}; it cannot be completed",
            other.as_str()
        ))),
    }
}

async fn reread(env: &UploadEnv, file: &FileRecord) -> Result<FileRecord, ApiError> {
    env.table
        .get_file(&file.owner, &file.id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))
}

/// Records the completion S3 made. A file changed meanwhile but still open
/// with this upload (a set-parent landed) is completed as it is now.
async fn record_completion(
    env: &UploadEnv,
    mut file: FileRecord,
    etag: String,
    size: u64,
) -> Result<FileRecord, ApiError> {
    for _ in 0..3 {
        if let Some(done) = record_once(env, &file, &etag, size).await? {
            return Ok(done);
        }
        let fresh = reread(env, &file).await?;
        if fresh.upload_status != UploadStatus::Uploading || fresh.upload_id != file.upload_id {
            return settled(fresh);
        }
        file = fresh;
    }
    Err(ApiError::conflict("the upload kept changing; retry"))
}

/// One conditional write of the completion; `None` when the file changed.
async fn record_once(
    env: &UploadEnv,
    file: &FileRecord,
    etag: &str,
    size: u64,
) -> Result<Option<FileRecord>, ApiError> {
    let now = clock::rfc3339(clock::now());
    let mut after = file.clone();
    after.upload_status = UploadStatus::Completed;
    after.etag = Some(bare_etag(etag).to_owned());
    after.file_size = size;
    after.reserved_bytes = size;
    after.updated = now.clone();
    let asset = assets::attach(&mut after, &now);
    let quota = env.policy.quota_bytes;
    let mut result = env
        .table
        .complete_upload(file, &after, asset.as_ref(), quota)
        .await?;
    if result == Err(Refusal::ParentGone) {
        // The box was deleted while the upload ran: keep the file, unattached.
        assets::detach(&mut after);
        result = env.table.complete_upload(file, &after, None, quota).await?;
    }
    match result {
        Ok(()) => Ok(Some(after)),
        Err(Refusal::StateChanged) => Ok(None),
        Err(Refusal::QuotaExceeded) => {
            // Measured at complete (no size declared up front) and over quota:
            // the object goes, the upload is failed and holds nothing.
            env.bucket.delete(&file.s3_key).await?;
            let refused = quota_exceeded(size, quota);
            env.table
                .close_upload(file, UploadStatus::Failed, Some(&refused.message), &now)
                .await?
                .ok();
            Err(refused)
        }
        // Not reached: a gone box was retried above without it.
        Err(Refusal::ParentGone) => Err(ApiError::box_gone(BoxNamed::InField("parent_object_id"))),
    }
}

/// S3 refused the list: find the first part it does not hold with that ETag,
/// so the client knows which part to upload again. Nothing was changed.
async fn name_rejected_part(
    env: &UploadEnv,
    file: &FileRecord,
    parts: &[ClientPart],
    reason: String,
) -> ApiError {
    let upload_id = match file.multipart_upload_id() {
        Ok(id) => id,
        Err(err) => return err,
    };
    let stored = match env.bucket.list_parts(&file.s3_key, upload_id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return ApiError::conflict("the upload no longer exists in S3"),
        Err(err) => return err.into(),
    };
    for (i, part) in parts.iter().enumerate() {
        let held = stored.iter().find(|s| s.part_number == part.part_number);
        let problem = match held {
            None => Some(format!("part {} was never uploaded", part.part_number)),
            Some(s) if bare_etag(&s.etag) != bare_etag(&part.etag) => Some(format!(
                "part {}: ETag {} does not match the uploaded part",
                part.part_number, part.etag
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            return ApiError::field(&format!("parts[{i}]"), problem);
        }
    }
    ApiError::field("parts", reason)
}

async fn file_view(env: &UploadEnv, file: FileRecord) -> Result<FileView, ApiError> {
    let signer = env.presigner().await?;
    let url = env.download_url(&signer, &file);
    Ok(FileView::new(file, url))
}

/// Complete a direct upload
///
/// Storage assembles the parts into the file. Calling it again once
/// completed answers the same file. With a box parent, the file becomes an
/// asset of the box (`PROCESSING` until it is checked and described).
#[utoipa::path(
    post, path = "/v1/files/uploads/{id}/complete", tag = "uploads",
    params(("id" = String, Path, description = "The file's id.")),
    request_body = CompleteUpload,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The completed file (also on a repeated call).", body = FileView),
        (status = 400, description = "A part is missing, out of order, never uploaded or has a wrong ETag or checksum (`fields` names it), or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The upload is aborted, expired, failed or a single PUT, or it changed meanwhile.", body = ErrorBody),
        (status = 413, description = "The stored file would exceed your storage quota (the upload then fails).", body = ErrorBody),
    )
)]
async fn complete(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CompleteUpload>,
) -> Result<Json<FileView>, ApiError> {
    let file = env.owned_file(&caller, &id).await?;
    let checksums: Vec<String> = body
        .parts
        .iter()
        .filter_map(|p| p.checksum.clone())
        .collect();
    let parts = body.parts.into_iter().map(ClientPart::from).collect();
    let file = finish(&env, file, parts, checksums, body.checksum).await?;
    Ok(Json(file_view(&env, file).await?))
}

/// A part as Uppy reports it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompanionPartEtag {
    #[serde(rename = "PartNumber")]
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    #[schema(min_length = 1)]
    pub etag: String,
}

impl From<PartEtag> for ClientPart {
    fn from(p: PartEtag) -> Self {
        Self {
            part_number: p.part_number,
            etag: p.etag,
        }
    }
}

impl From<CompanionPartEtag> for ClientPart {
    fn from(p: CompanionPartEtag) -> Self {
        Self {
            part_number: p.part_number,
            etag: p.etag,
        }
    }
}

/// What Uppy's `completeMultipartUpload` sends.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompanionComplete {
    /// Every part, in ascending part order, each once.
    #[schema(min_items = 1, max_items = 10000)]
    pub parts: Vec<CompanionPartEtag>,
}

/// A completed Companion upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompanionCompleted {
    /// A short-lived download URL of the file (the storage is private).
    #[schema(format = "uri")]
    pub location: String,
    pub key: String,
    pub bucket: String,
}

/// Complete a multipart upload (Uppy Companion)
///
/// What `@uppy/aws-s3` calls once every part is uploaded. Calling it again
/// once completed answers the same.
#[utoipa::path(
    post, path = "/s3/multipart/{upload_id}/complete", tag = "companion",
    params(
        ("upload_id" = String, Path, description = "The `uploadId` that `POST /s3/multipart` answered."),
        ("key" = String, Query, min_length = 1, description = "The `key` that `POST /s3/multipart` answered."),
    ),
    request_body = CompanionComplete,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The completed upload.", body = CompanionCompleted),
        (status = 400, description = "`key` is missing; a part is missing, out of order, never uploaded or has a wrong ETag; or the body is not valid JSON of this shape.", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key and id.", body = CompanionErrorBody),
        (status = 409, description = "The upload is aborted, expired, failed or a single PUT, or it changed meanwhile.", body = CompanionErrorBody),
        (status = 413, description = "The stored file would exceed your storage quota (the upload then fails).", body = CompanionErrorBody),
    )
)]
async fn companion_complete(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(upload_id): Path<String>,
    ApiQuery(query): ApiQuery<CompanionQuery>,
    ApiJson(body): ApiJson<CompanionComplete>,
) -> Result<Json<CompanionCompleted>, ApiError> {
    let file = env
        .companion_file(&caller, query.key()?, &upload_id)
        .await?;
    let parts = body.parts.into_iter().map(ClientPart::from).collect();
    let file = finish(&env, file, parts, vec![], None).await?;
    let signer = env.presigner().await?;
    let location = env
        .download_url(&signer, &file)
        .unwrap_or_else(|| signer.object_url(&file.s3_key));
    Ok(Json(CompanionCompleted {
        location,
        key: file.s3_key,
        bucket: env.bucket.name().to_owned(),
    }))
}
