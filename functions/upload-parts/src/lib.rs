//! upload-parts: signs part URLs on demand (lazy signing, so a 10,000-part
//! upload never needs one huge reply) and lists the parts S3 already holds
//! (resume after a reload), for both contracts.
//!
//! AWS calls: none to sign with the grant of initiate's `next_parts_url`
//! (an HMAC-sealed copy of what signing needs); without one, signing reads
//! the upload record (one consistent GetItem). Listing is GetItem plus
//! ListParts per 1000 parts.

use std::collections::BTreeMap;

use assetbox_shared::caller::Caller;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::http::{ApiQuery, companion_error_message};
use assetbox_shared::objects::StoredPart;
use assetbox_shared::upload_env::{CompanionQuery, UploadEnv, UploadTarget};
use assetbox_shared::uploads::{FileRecord, MAX_PARTS, UploadStatus, parse_part_numbers};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// At most this many URLs per reply (~0.6 KB each): replies stay a few
/// hundred KB whatever the upload's size.
pub const MAX_URLS_PER_REQUEST: usize = 500;

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    let companion = Router::new()
        // `batch` is a literal segment, so it wins over `{part_number}`.
        .route("/s3/multipart/{upload_id}/batch", get(companion_batch))
        .route(
            "/s3/multipart/{upload_id}/{part_number}",
            get(companion_sign),
        )
        .route("/s3/multipart/{upload_id}", get(companion_list))
        .layer(middleware::map_response(companion_error_message));
    Router::new()
        .route("/v1/files/uploads/{id}/parts", get(sign_parts))
        .route("/v1/files/uploads/{id}/uploaded-parts", get(uploaded_parts))
        .merge(companion)
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        sign_parts,
        uploaded_parts,
        companion_batch,
        companion_sign,
        companion_list
    ),
    components(schemas(
        SignedParts,
        SignedPart,
        UploadedParts,
        UploadedPart,
        CompanionPart,
        CompanionSigned,
        CompanionBatch,
        ErrorBody
    ))
)]
pub struct UploadPartsDoc;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SignQuery {
    /// Part numbers and ranges: `1,2,5-9` (at most 500 parts).
    pub part_numbers: Option<String>,
    /// For uploads with checksums: the parts' base64 checksums, comma-separated,
    /// in ascending part order.
    pub checksums: Option<String>,
    /// The grant from initiate's `next_parts_url` (optional).
    pub grant: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedPart {
    pub part_number: u32,
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedParts {
    pub presigned_urls: Vec<SignedPart>,
    pub expires_in: u64,
}

/// The highest part number a request may name: the declared count, or S3's
/// limit for Companion uploads, which do not declare one.
fn part_limit(file: &UploadTarget) -> u32 {
    if file.num_parts > 0 {
        file.num_parts
    } else {
        MAX_PARTS
    }
}

/// Signs the named parts of an upload known to be open.
async fn sign(
    env: &UploadEnv,
    file: &UploadTarget,
    numbers: &[u32],
    checksums: &[String],
) -> Result<Vec<(u32, String)>, ApiError> {
    if let Some(algorithm) = file.checksum_algorithm {
        if checksums.len() != numbers.len() {
            return Err(ApiError::field(
                "checksums",
                format!(
                    "this upload signs {} checksums: send one per requested part, in ascending part order",
                    algorithm.header()
                ),
            ));
        }
        if let Some((i, reason)) = checksums
            .iter()
            .enumerate()
            .find_map(|(i, c)| algorithm.check(c).err().map(|r| (i, r)))
        {
            return Err(ApiError::field(&format!("checksums[{i}]"), reason));
        }
    } else if !checksums.is_empty() {
        return Err(ApiError::field(
            "checksums",
            "this upload was started without checksum_algorithm",
        ));
    }
    let signer = env.presigner().await?;
    Ok(numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                *n,
                env.part_url(&signer, file, *n, checksums.get(i).map(String::as_str)),
            )
        })
        .collect())
}

/// What signing needs of a record that is still accepting parts.
fn open_target(file: &FileRecord) -> Result<UploadTarget, ApiError> {
    UploadEnv::ensure_accepting_parts(file)?;
    Ok(UploadTarget::from(file))
}

fn split_checksums(raw: Option<&str>) -> Vec<String> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Fresh URLs for any parts of an open upload.
#[utoipa::path(
    get, path = "/v1/files/uploads/{id}/parts", tag = "uploads",
    params(("id" = String, Path), SignQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SignedParts),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the upload is not open (completed, aborted, expired)", body = ErrorBody),
    )
)]
async fn sign_parts(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SignQuery>,
) -> Result<Json<SignedParts>, ApiError> {
    let granted = query
        .grant
        .as_deref()
        .and_then(|g| env.open_grant(&caller, &id, g));
    let file = match granted {
        Some(target) => target,
        None => open_target(&env.owned_file(&caller, &id).await?)?,
    };
    let numbers = parse_part_numbers(
        query.part_numbers.as_deref().unwrap_or_default(),
        part_limit(&file),
        MAX_URLS_PER_REQUEST,
    )
    .map_err(|r| ApiError::field("part_numbers", r))?;
    let checksums = split_checksums(query.checksums.as_deref());
    let signed = sign(&env, &file, &numbers, &checksums).await?;
    Ok(Json(SignedParts {
        presigned_urls: signed
            .into_iter()
            .map(|(part_number, url)| SignedPart { part_number, url })
            .collect(),
        expires_in: env.url_expiry().as_secs(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedParts {
    pub id: String,
    pub upload_id: String,
    pub upload_status: UploadStatus,
    pub num_parts: u32,
    /// Every part S3 holds, in part order, all pages joined.
    pub parts: Vec<UploadedPart>,
}

async fn stored_parts(env: &UploadEnv, file: &FileRecord) -> Result<Vec<StoredPart>, ApiError> {
    UploadEnv::ensure_accepting_parts(file)?;
    let upload_id = file.upload_id.as_deref().unwrap_or_default();
    env.bucket
        .list_parts(&file.s3_key, upload_id)
        .await?
        .ok_or_else(|| ApiError::conflict("the upload no longer exists in S3 (aborted or expired)"))
}

/// The parts S3 already holds, to resume after a reload.
#[utoipa::path(
    get, path = "/v1/files/uploads/{id}/uploaded-parts", tag = "uploads",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UploadedParts), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn uploaded_parts(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadedParts>, ApiError> {
    let file = env.owned_file(&caller, &id).await?;
    let parts = stored_parts(&env, &file).await?;
    Ok(Json(UploadedParts {
        upload_id: file.upload_id.clone().unwrap_or_default(),
        id: file.id,
        upload_status: file.upload_status,
        num_parts: file.num_parts,
        parts: parts
            .into_iter()
            .map(|p| UploadedPart {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
                last_modified: p.last_modified,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompanionSigned {
    pub url: String,
    /// Seconds the URL stays valid.
    pub expires: u64,
}

/// Companion: sign one part.
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}/{part_number}", tag = "companion",
    params(("upload_id" = String, Path), ("part_number" = u32, Path), CompanionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CompanionSigned), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn companion_sign(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path((upload_id, part_number)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<CompanionQuery>,
) -> Result<Json<CompanionSigned>, ApiError> {
    let file = open_target(
        &env.companion_file(&caller, query.key()?, &upload_id)
            .await?,
    )?;
    let numbers = parse_part_numbers(&part_number, part_limit(&file), 1)
        .map_err(|r| ApiError::field("partNumber", r))?;
    let mut signed = sign(&env, &file, &numbers, &[]).await?;
    let (_, url) = signed
        .pop()
        .ok_or_else(|| ApiError::internal("no URL signed"))?;
    Ok(Json(CompanionSigned {
        url,
        expires: env.url_expiry().as_secs(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanionBatch {
    pub presigned_urls: BTreeMap<String, String>,
}

/// Companion: sign several parts at once.
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}/batch", tag = "companion",
    params(("upload_id" = String, Path), CompanionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CompanionBatch), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn companion_batch(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(upload_id): Path<String>,
    ApiQuery(query): ApiQuery<CompanionQuery>,
) -> Result<Json<CompanionBatch>, ApiError> {
    let file = open_target(
        &env.companion_file(&caller, query.key()?, &upload_id)
            .await?,
    )?;
    let numbers = parse_part_numbers(
        query.part_numbers.as_deref().unwrap_or_default(),
        part_limit(&file),
        MAX_URLS_PER_REQUEST,
    )
    .map_err(|r| ApiError::field("partNumbers", r))?;
    let signed = sign(&env, &file, &numbers, &[]).await?;
    Ok(Json(CompanionBatch {
        presigned_urls: signed
            .into_iter()
            .map(|(n, url)| (n.to_string(), url))
            .collect(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CompanionPart {
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<String>,
}

/// Companion: the parts S3 holds (a bare array, all pages joined).
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}", tag = "companion",
    params(("upload_id" = String, Path), CompanionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [CompanionPart]), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn companion_list(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(upload_id): Path<String>,
    ApiQuery(query): ApiQuery<CompanionQuery>,
) -> Result<Json<Vec<CompanionPart>>, ApiError> {
    let file = env
        .companion_file(&caller, query.key()?, &upload_id)
        .await?;
    let parts = stored_parts(&env, &file).await?;
    Ok(Json(
        parts
            .into_iter()
            .map(|p| CompanionPart {
                part_number: p.part_number,
                etag: p.etag,
                size: p.size,
                last_modified: p.last_modified,
            })
            .collect(),
    ))
}
