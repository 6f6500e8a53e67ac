//! upload-initiate: starts direct uploads. Bytes never pass through here; we
//! check the request, reserve quota, open the S3 multipart upload and sign
//! the first batch of part URLs.
//!
//! AWS calls per initiate: CreateMultipartUpload + one TransactWriteItems
//! (record + quota reservation + parent check). A box parent adds one GetItem
//! (its project is copied onto the record so completing needs no read). If the
//! transaction refuses (quota, parent gone) the S3 upload is aborted, so no
//! upload is left behind.

use std::collections::BTreeMap;

use assetbox_shared::caller::Caller;
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::files_store::Refusal;
use assetbox_shared::http::{ApiJson, ApiQuery, companion_error_message, created};
use assetbox_shared::presign::{ObjectRequest, attachment_disposition};
use assetbox_shared::upload_env::{UploadEnv, UploadTarget};
use assetbox_shared::uploads::{
    self, FileRecord, InitiateUpload, PARENT_BOX, UploadPlan, UploadStatus, file_name,
    quota_exceeded, too_large,
};
use assetbox_shared::validation;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    let companion = Router::new()
        .route("/s3/params", get(companion_params))
        .route("/s3/multipart", post(companion_create))
        .layer(middleware::map_response(companion_error_message));
    Router::new()
        .route("/v1/files/uploads", post(initiate))
        .merge(companion)
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(initiate, companion_create, companion_params),
    components(schemas(
        InitiateUpload,
        Initiated,
        PartUrl,
        CompanionCreate,
        CompanionCreated,
        CompanionParams,
        ErrorBody
    ))
)]
pub struct UploadInitiateDoc;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartUrl {
    pub part_number: u32,
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Initiated {
    /// The file id.
    pub id: String,
    /// S3's multipart upload id.
    pub upload_id: String,
    /// URLs for the first parts (at most the configured batch, default 100).
    pub presigned_urls: Vec<PartUrl>,
    /// Seconds the URLs stay valid.
    pub expires_in: u64,
    pub upload_status: UploadStatus,
    pub num_parts: u32,
    pub part_size: u64,
    /// Where to get the next URLs (`null` when all are here). Any part numbers
    /// or ranges work: `.../parts?part_numbers=101-200`. Keep its `grant`:
    /// with it, signing needs no lookup at all.
    pub next_parts_url: Option<String>,
    /// When the upload expires if not completed (RFC 3339).
    pub upload_expires_at: String,
}

fn now_and_expiry(env: &UploadEnv) -> (String, String) {
    let now = clock::now();
    (
        clock::rfc3339(now),
        clock::rfc3339(now + env.policy.upload_expiry),
    )
}

/// The project of the caller's box, or 422 when it is not the caller's box.
async fn parent_project(
    env: &UploadEnv,
    caller: &Caller,
    parent: &Option<(String, String)>,
) -> Result<Option<String>, ApiError> {
    let Some((kind, id)) = parent else {
        return Ok(None);
    };
    debug_assert_eq!(kind, PARENT_BOX);
    let missing = || {
        let mut err = ApiError::field("parent_object_id", "no such box");
        err.status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        err
    };
    if !validation::is_ulid(id) {
        return Err(missing());
    }
    match env.table.get_box(&caller.user_id, id).await? {
        Some(found) => Ok(Some(found.project)),
        None => Err(missing()),
    }
}

/// Writes the record and reserves quota; aborts the S3 upload when refused.
async fn record_upload(env: &UploadEnv, record: &FileRecord) -> Result<(), ApiError> {
    let refusal = match env
        .table
        .create_upload(record, env.policy.quota_bytes)
        .await
    {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(refusal)) => Ok(refusal),
        Err(err) => Err(err),
    };
    if let Some(upload_id) = &record.upload_id
        && let Err(err) = env.bucket.abort(&record.s3_key, upload_id).await
    {
        // The bucket's lifecycle rule removes it later; say so in the logs.
        tracing::warn!(error = %err, key = %record.s3_key, "could not abort a refused upload");
    }
    match refusal? {
        Refusal::QuotaExceeded => Err(quota_exceeded(
            record.reserved_bytes,
            env.policy.quota_bytes,
        )),
        Refusal::ParentGone => {
            let mut err = ApiError::field("parent_object_id", "no such box");
            err.status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Err(err)
        }
        Refusal::StateChanged => Err(ApiError::conflict("upload id collision, retry")),
    }
}

/// Opens the S3 multipart upload, then records it (aborting it if refused).
async fn start_multipart(env: &UploadEnv, record: &mut FileRecord) -> Result<String, ApiError> {
    let upload_id = env
        .bucket
        .create_multipart(
            &record.s3_key,
            &record.file_content_type,
            &attachment_disposition(&record.file_name),
            record.checksum_algorithm.zip(record.checksum_type),
        )
        .await?;
    record.upload_id = Some(upload_id.clone());
    record_upload(env, record).await?;
    Ok(upload_id)
}

fn new_record(
    caller: &Caller,
    plan: &UploadPlan,
    project: Option<String>,
    contract: &str,
    status: UploadStatus,
    (now, expires): (String, String),
) -> FileRecord {
    let id = validation::new_id();
    FileRecord {
        s3_key: uploads::object_key(&caller.user_id, &id, &plan.content_type),
        id,
        owner: caller.user_id.clone(),
        file_name: plan.file_name.clone(),
        file_size: plan.file_size,
        file_content_type: plan.content_type.clone(),
        num_parts: plan.num_parts,
        part_size: plan.part_size,
        upload_id: None,
        upload_status: status,
        name: plan.file_name.clone(),
        description: String::new(),
        parent_content_type: plan.parent.as_ref().map(|(k, _)| k.clone()),
        parent_object_id: plan.parent.as_ref().map(|(_, id)| id.clone()),
        parent_project: project,
        checksum_algorithm: plan.checksum_algorithm,
        checksum_type: plan.checksum_type,
        reserved_bytes: plan.file_size,
        etag: None,
        asset_id: None,
        media: None,
        contract: contract.to_owned(),
        created: now.clone(),
        updated: now,
        expires_at: expires,
    }
}

/// Start a multipart upload (`/v1/files` contract).
#[utoipa::path(
    post, path = "/v1/files/uploads", tag = "uploads",
    request_body = InitiateUpload,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Initiated),
        (status = 400, description = "a rule of the request is broken (fields name which)", body = ErrorBody),
        (status = 413, description = "above the size limit or the caller's quota", body = ErrorBody),
        (status = 422, description = "the parent is not one of the caller's boxes", body = ErrorBody),
    )
)]
async fn initiate(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiJson(body): ApiJson<InitiateUpload>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let plan = body.validate(&env.policy)?;
    if plan.file_size > env.policy.quota_bytes {
        return Err(quota_exceeded(plan.file_size, env.policy.quota_bytes));
    }
    let project = parent_project(&env, &caller, &plan.parent).await?;
    let mut record = new_record(
        &caller,
        &plan,
        project,
        "files",
        UploadStatus::Uploading,
        now_and_expiry(&env),
    );
    let upload_id = start_multipart(&env, &mut record).await?;

    let signer = env.presigner().await?;
    // With checksums, a part URL can only be signed once its checksum is known.
    let signable = match record.checksum_algorithm {
        Some(_) => plan.part_checksums.len() as u32,
        None => record.num_parts,
    };
    let first = signable.min(env.policy.first_url_batch);
    let target = UploadTarget::from(&record);
    let presigned_urls = (1..=first)
        .map(|n| PartUrl {
            part_number: n,
            url: env.part_url(
                &signer,
                &target,
                n,
                plan.part_checksums.get(n as usize - 1).map(String::as_str),
            ),
        })
        .collect();
    let next_parts_url = (first < record.num_parts).then(|| {
        let last = (first + env.policy.first_url_batch).min(record.num_parts);
        let grant = env
            .seal_grant(&record)
            .map(|g| format!("&grant={g}"))
            .unwrap_or_default();
        format!(
            "/v1/files/uploads/{}/parts?part_numbers={}-{last}{grant}",
            record.id,
            first + 1
        )
    });
    Ok(created(Initiated {
        id: record.id,
        upload_id,
        presigned_urls,
        expires_in: env.url_expiry().as_secs(),
        upload_status: record.upload_status,
        num_parts: record.num_parts,
        part_size: record.part_size,
        next_parts_url,
        upload_expires_at: record.expires_at,
    }))
}

/// Companion's `createMultipartUpload` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompanionCreate {
    pub filename: String,
    #[serde(rename = "type")]
    pub content_type: String,
    /// Free-form; `size` (bytes), when present, is checked against the
    /// limits and reserved against the quota at once.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanionCreated {
    pub key: String,
    pub upload_id: String,
    pub bucket: String,
}

/// A declared size from Companion metadata: a number or a numeric string.
fn declared_size(value: Option<&serde_json::Value>) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::field("metadata.size", "must be a whole number of bytes")),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::field("metadata.size", "must be a whole number of bytes")),
        Some(_) => Err(ApiError::field(
            "metadata.size",
            "must be a whole number of bytes",
        )),
    }
}

/// Name, type and optional size of a Companion request, checked like
/// `/v1/files`. Without a size, the quota is settled at complete.
fn companion_plan(
    env: &UploadEnv,
    filename: &str,
    content_type: &str,
    size: Option<u64>,
) -> Result<UploadPlan, ApiError> {
    let mut errors = BTreeMap::new();
    let name = file_name(filename)
        .map_err(|r| errors.insert("filename".to_owned(), r))
        .ok();
    let content_type = content_type.trim().to_ascii_lowercase();
    if !env.policy.allows_type(&content_type) {
        errors.insert(
            "type".into(),
            format!(
                "must be one of {}",
                env.policy.allowed_content_types.join(", ")
            ),
        );
    }
    if size == Some(0) {
        errors.insert("size".into(), "must be at least 1 byte".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Some(size) = size {
        if size > env.policy.max_file_bytes {
            return Err(too_large(size, env.policy.max_file_bytes));
        }
        if size > env.policy.quota_bytes {
            return Err(quota_exceeded(size, env.policy.quota_bytes));
        }
    }
    Ok(UploadPlan {
        file_name: name.unwrap_or_default(),
        file_size: size.unwrap_or(0),
        content_type,
        num_parts: 0,
        part_size: 0,
        parent: None,
        checksum_algorithm: None,
        checksum_type: None,
        part_checksums: vec![],
    })
}

/// Companion: start a multipart upload.
#[utoipa::path(
    post, path = "/s3/multipart", tag = "companion",
    request_body = CompanionCreate,
    security(("bearer" = [])),
    responses((status = 200, body = CompanionCreated), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody))
)]
async fn companion_create(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiJson(body): ApiJson<CompanionCreate>,
) -> Result<Json<CompanionCreated>, ApiError> {
    let size = declared_size(body.metadata.get("size"))?;
    let plan = companion_plan(&env, &body.filename, &body.content_type, size)?;
    let mut record = new_record(
        &caller,
        &plan,
        None,
        "companion",
        UploadStatus::Uploading,
        now_and_expiry(&env),
    );
    let upload_id = start_multipart(&env, &mut record).await?;
    Ok(Json(CompanionCreated {
        key: record.s3_key,
        upload_id,
        bucket: env.bucket.name().to_owned(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompanionParams {
    pub method: String,
    pub url: String,
    /// Send exactly these headers with the PUT (they are signed).
    pub headers: BTreeMap<String, String>,
    /// The object key, for the client's records.
    pub key: String,
    /// The file id: `GET /v1/files/{id}` shows its status.
    pub id: String,
}

/// `?filename=&type=&metadata[k]=v` as Companion sends it, plus an optional
/// `size` (or `metadata[size]`) that binds the PUT's length.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ParamsQuery {
    pub filename: Option<String>,
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    pub size: Option<String>,
    #[serde(rename = "metadata[size]")]
    pub metadata_size: Option<String>,
}

/// Companion: a presigned single PUT. Content type (and size, when given)
/// are signed headers; the record is `pending` until the object arrives
/// (ingestion finishes it).
#[utoipa::path(
    get, path = "/s3/params", tag = "companion",
    params(ParamsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CompanionParams), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody))
)]
async fn companion_params(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ParamsQuery>,
) -> Result<Json<CompanionParams>, ApiError> {
    let size_raw = query.size.or(query.metadata_size);
    let size = declared_size(size_raw.map(serde_json::Value::String).as_ref())?;
    let filename = query
        .filename
        .ok_or_else(|| ApiError::field("filename", "is required"))?;
    let content_type = query
        .content_type
        .ok_or_else(|| ApiError::field("type", "is required"))?;
    if size.is_some_and(|s| s > uploads::MAX_PART_BYTES) {
        return Err(too_large(size.unwrap_or_default(), uploads::MAX_PART_BYTES));
    }
    let plan = companion_plan(&env, &filename, &content_type, size)?;
    let record = new_record(
        &caller,
        &plan,
        None,
        "companion",
        UploadStatus::Pending,
        now_and_expiry(&env),
    );
    record_upload(&env, &record).await?;
    // `If-None-Match: *` makes the URL good for one object only: once the
    // object exists (and ingestion verified it), a second PUT is refused
    // (412) instead of replacing it unverified.
    let mut headers = BTreeMap::from([
        ("content-type", record.file_content_type.clone()),
        ("if-none-match", "*".to_owned()),
    ]);
    if let Some(size) = size {
        headers.insert("content-length", size.to_string());
    }
    let signed: Vec<(&'static str, String)> =
        headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    let signer = env.presigner().await?;
    let url = signer.presign(
        &ObjectRequest {
            method: "PUT",
            key: &record.s3_key,
            query: vec![],
            headers: signed,
        },
        env.url_expiry(),
    );
    // Browsers set Content-Length themselves; the client is told only what it
    // must set, the length is enforced by the signature.
    headers.remove("content-length");
    Ok(Json(CompanionParams {
        method: "PUT".into(),
        url,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        key: record.s3_key,
        id: record.id,
    }))
}
