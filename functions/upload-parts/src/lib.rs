//! upload-parts: signs part URLs on demand (lazy signing, so a 10,000-part
//! upload never needs one huge reply) and lists the parts S3 already holds
//! (resume after a reload), for both contracts.
//!
//! AWS calls: none to sign with the grant of initiate's `next_parts_url`
//! (an encrypted, authenticated copy of what signing needs); without one, signing reads
//! the upload record (one consistent GetItem). Listing is GetItem plus
//! ListParts per 1000 parts.

use std::collections::BTreeMap;

use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, CompanionErrorBody, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiQuery, companion_error_message};
use assetbox_shared::s3::StoredPart;
use assetbox_shared::uploads::flow::{CompanionQuery, UploadEnv, UploadTarget};
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
        ErrorBody,
        CompanionErrorBody
    ))
)]
pub struct UploadPartsDoc;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SignQuery {
    /// The parts to sign: numbers and inclusive ranges, comma-separated
    /// (`1,2,5-9`), each within the upload's parts, at most 500 parts.
    #[param(required = true, min_length = 1, example = "101-200")]
    pub part_numbers: Option<String>,
    /// For uploads started with `checksum_algorithm`: the parts' base64
    /// checksums, comma-separated, one per requested part in ascending part
    /// order.
    pub checksums: Option<String>,
    /// The `grant` of `next_parts_url`, passed on as it was; it makes
    /// signing faster and is optional.
    pub grant: Option<String>,
}

/// Where to `PUT` one part's bytes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedPart {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    /// A presigned URL: `PUT` exactly the part's bytes.
    #[schema(format = "uri")]
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedParts {
    /// In ascending part order.
    pub presigned_urls: Vec<SignedPart>,
    /// Seconds the URLs stay valid.
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
    UploadTarget::of(file)
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

/// Sign part URLs
///
/// Fresh URLs for any parts of an open upload: those beyond the first
/// batch (see `next_parts_url`), or again after the first ones expired.
#[utoipa::path(
    get, path = "/v1/files/uploads/{id}/parts", tag = "uploads",
    params(("id" = String, Path, description = "The file's id."), SignQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The URLs.", body = SignedParts),
        (status = 400, description = "`part_numbers` or `checksums` is invalid (`fields` names which).", body = ErrorBody),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The upload takes no more parts (completed, aborted or expired).", body = ErrorBody),
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

/// A part the storage holds.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedPart {
    pub part_number: u32,
    /// Its ETag, as `complete` wants it.
    pub etag: String,
    /// Bytes.
    pub size: u64,
    #[schema(required = true, format = DateTime)]
    pub last_modified: Option<String>,
}

/// What an open upload holds so far.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadedParts {
    /// The file's id.
    pub id: String,
    pub upload_id: String,
    pub upload_status: UploadStatus,
    pub num_parts: u32,
    /// Every part the storage holds, in part order.
    pub parts: Vec<UploadedPart>,
}

async fn stored_parts(env: &UploadEnv, file: &FileRecord) -> Result<Vec<StoredPart>, ApiError> {
    UploadEnv::ensure_accepting_parts(file)?;
    let upload_id = file.multipart_upload_id()?;
    env.bucket
        .list_parts(&file.s3_key, upload_id)
        .await?
        .ok_or_else(|| ApiError::conflict("the upload no longer exists in S3 (aborted or expired)"))
}

/// List the uploaded parts
///
/// The parts storage already holds, to resume an upload (e.g. after a
/// page reload) without sending them again.
#[utoipa::path(
    get, path = "/v1/files/uploads/{id}/uploaded-parts", tag = "uploads",
    params(("id" = String, Path, description = "The file's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The parts so far.", body = UploadedParts),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The upload is not open (completed, aborted or expired).", body = ErrorBody),
    )
)]
async fn uploaded_parts(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadedParts>, ApiError> {
    let file = env.owned_file(&caller, &id).await?;
    let parts = stored_parts(&env, &file).await?;
    Ok(Json(UploadedParts {
        upload_id: file.multipart_upload_id()?.to_owned(),
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

/// One part's URL, as Uppy Companion answers it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompanionSigned {
    #[schema(format = "uri")]
    pub url: String,
    /// Seconds the URL stays valid.
    pub expires: u64,
}

/// Sign one part (Uppy Companion)
///
/// What `@uppy/aws-s3` calls for each part's URL.
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}/{part_number}", tag = "companion",
    params(
        ("upload_id" = String, Path, description = "The `uploadId` that `POST /s3/multipart` answered."),
        ("part_number" = u32, Path, minimum = 1, maximum = 10000, description = "The part to sign, within the upload's parts."),
        ("key" = String, Query, min_length = 1, description = "The `key` that `POST /s3/multipart` answered."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The part's URL.", body = CompanionSigned),
        (status = 400, description = "`key` is missing, or the part number is outside the upload's parts.", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key and id.", body = CompanionErrorBody),
        (status = 409, description = "The upload takes no more parts (completed, aborted or expired).", body = CompanionErrorBody),
    )
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

/// Several parts' URLs, as Uppy Companion answers them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanionBatch {
    /// URL by part number (`{"1": "https://…"}`).
    pub presigned_urls: BTreeMap<String, String>,
}

/// Sign several parts (Uppy Companion)
///
/// What `@uppy/aws-s3` calls for a batch of part URLs.
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}/batch", tag = "companion",
    params(
        ("upload_id" = String, Path, description = "The `uploadId` that `POST /s3/multipart` answered."),
        CompanionQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The parts' URLs.", body = CompanionBatch),
        (status = 400, description = "`key` is missing, or `partNumbers` is invalid.", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key and id.", body = CompanionErrorBody),
        (status = 409, description = "The upload takes no more parts (completed, aborted or expired).", body = CompanionErrorBody),
    )
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

/// A part the storage holds, as Uppy Companion lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CompanionPart {
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Bytes.
    pub size: u64,
    #[schema(required = true, format = DateTime)]
    pub last_modified: Option<String>,
}

/// List the uploaded parts (Uppy Companion)
///
/// All the parts storage holds so far, as one array.
#[utoipa::path(
    get, path = "/s3/multipart/{upload_id}", tag = "companion",
    params(
        ("upload_id" = String, Path, description = "The `uploadId` that `POST /s3/multipart` answered."),
        ("key" = String, Query, min_length = 1, description = "The `key` that `POST /s3/multipart` answered."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The parts so far.", body = [CompanionPart]),
        (status = 400, description = "`key` is missing.", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key and id.", body = CompanionErrorBody),
        (status = 409, description = "The upload is not open (completed, aborted or expired).", body = CompanionErrorBody),
    )
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
