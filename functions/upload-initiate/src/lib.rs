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

use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, BoxNamed, CompanionErrorBody, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery, companion_error_message, created};
use assetbox_shared::s3::presign::attachment_disposition;
use assetbox_shared::uploads::flow::{UploadEnv, UploadTarget};
use assetbox_shared::uploads::{
    self, FileRecord, InitiateUpload, PARENT_BOX, UploadContract, UploadPlan, UploadStatus,
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
        ErrorBody,
        CompanionErrorBody
    ))
)]
pub struct UploadInitiateDoc;

/// Where to `PUT` one part's bytes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartUrl {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    /// A presigned URL: `PUT` exactly the part's bytes (its length is
    /// signed) and keep the `ETag` the reply carries.
    #[schema(format = "uri")]
    pub url: String,
}

/// A started upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Initiated {
    /// The file's id.
    pub id: String,
    /// The storage's multipart upload id.
    pub upload_id: String,
    /// URLs for the first parts (up to 100, fewer when part checksums were
    /// given only for those).
    pub presigned_urls: Vec<PartUrl>,
    /// Seconds the URLs stay valid.
    pub expires_in: u64,
    pub upload_status: UploadStatus,
    pub num_parts: u32,
    pub part_size: u64,
    /// Where to get the next URLs (a path relative to the API), or `null`
    /// when all are here. Other part numbers work too: edit `part_numbers`
    /// and keep the rest of the query.
    #[schema(required = true, format = "uri-reference")]
    pub next_parts_url: Option<String>,
    /// When the upload expires if it is not completed.
    #[schema(format = DateTime)]
    pub upload_expires_at: String,
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
    let missing = || ApiError::box_gone(BoxNamed::InField("parent_object_id"));
    if !validation::is_ulid(id) {
        return Err(missing());
    }
    match env.table.get_box(&caller.user_id, id).await? {
        Some(found) => Ok(Some(found.project)),
        None => Err(missing()),
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
    env.record_upload(record).await?;
    Ok(upload_id)
}

/// Start a direct upload
///
/// The file goes straight to storage in parts: `PUT` each part to its URL,
/// then `POST /v1/files/uploads/{id}/complete` with the parts' ETags. Its
/// size is reserved against your quota until then. With
/// `parent_content_type: "box"` the completed file becomes an asset of that
/// box.
#[utoipa::path(
    post, path = "/v1/files/uploads", tag = "uploads",
    request_body = InitiateUpload,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The upload with the first part URLs.", body = Initiated),
        (status = 400, description = "A rule of the request is broken (`fields` names each), or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 409, description = "A rare id collision; retry.", body = ErrorBody),
        (status = 413, description = "The file is above the size limit, or would exceed your storage quota.", body = ErrorBody),
        (status = 422, description = "`parent_object_id` is not one of your boxes.", body = ErrorBody),
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
    let mut record = env.new_record(
        &caller,
        &plan,
        project,
        UploadContract::Files,
        UploadStatus::Uploading,
    );
    let upload_id = start_multipart(&env, &mut record).await?;

    let signer = env.presigner().await?;
    // With checksums, a part URL can only be signed once its checksum is known.
    let signable = match record.checksum_algorithm {
        Some(_) => plan.part_checksums.len() as u32,
        None => record.num_parts,
    };
    let first = signable.min(env.policy.first_url_batch);
    let target = UploadTarget::of(&record)?;
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

/// What Uppy's `createMultipartUpload` sends.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompanionCreate {
    /// The file's name: 1–255 characters once trimmed, no control
    /// characters, `/` or `\`.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub filename: String,
    /// The file's media type, one of the allowed image and video types.
    #[serde(rename = "type")]
    #[schema(examples("video/mp4"))]
    pub content_type: String,
    /// Free-form; `size` (bytes, a number or a numeric string), when
    /// present, is checked against the limits and reserved against the
    /// quota at once.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A started Companion upload: pass `key` and `uploadId` to the other
/// `/s3/multipart` routes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanionCreated {
    /// The object's key (ours, not derived from the file name).
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

/// Start a multipart upload (Uppy Companion)
///
/// What `@uppy/aws-s3` calls to start a multipart upload. A declared
/// `metadata.size` is checked and reserved now; otherwise the size is
/// measured and settled at completion.
#[utoipa::path(
    post, path = "/s3/multipart", tag = "companion",
    request_body = CompanionCreate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upload's key and id.", body = CompanionCreated),
        (status = 400, description = "The name, type or size breaks a rule, or the body is not valid JSON of this shape.", body = CompanionErrorBody),
        (status = 409, description = "A rare id collision; retry.", body = CompanionErrorBody),
        (status = 413, description = "The declared size is above the limit or would exceed your storage quota.", body = CompanionErrorBody),
    )
)]
async fn companion_create(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiJson(body): ApiJson<CompanionCreate>,
) -> Result<Json<CompanionCreated>, ApiError> {
    let size = declared_size(body.metadata.get("size"))?;
    let plan = UploadPlan::named(
        &env.policy,
        ("filename", &body.filename),
        ("type", &body.content_type),
        size,
    )?;
    let mut record = env.new_record(
        &caller,
        &plan,
        None,
        UploadContract::Companion,
        UploadStatus::Uploading,
    );
    let upload_id = start_multipart(&env, &mut record).await?;
    Ok(Json(CompanionCreated {
        key: record.s3_key,
        upload_id,
        bucket: env.bucket.name().to_owned(),
    }))
}

/// A presigned single upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompanionParams {
    /// Always `PUT`.
    #[schema(examples("PUT"))]
    pub method: String,
    #[schema(format = "uri")]
    pub url: String,
    /// Send exactly these headers with the PUT (they are signed).
    pub headers: BTreeMap<String, String>,
    /// The object key, for the client's records.
    pub key: String,
    /// The file's id: `GET /v1/files/{id}` shows its status.
    pub id: String,
}

/// `?filename=&type=&metadata[k]=v` as Companion sends it, plus an optional
/// `size` (or `metadata[size]`) that binds the PUT's length.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ParamsQuery {
    /// The file's name: 1–255 characters once trimmed, no control
    /// characters, `/` or `\`.
    #[param(required = true, min_length = 1, max_length = 255, pattern = r"\S")]
    pub filename: Option<String>,
    /// The file's media type, one of the allowed image and video types.
    #[serde(rename = "type")]
    #[param(required = true, example = "image/png")]
    pub content_type: Option<String>,
    /// The file's size in bytes: the URL then takes exactly this many. Above
    /// 5 GiB (one `PUT`'s limit) or the size limit the reply is 413.
    #[param(value_type = u64, required = false, minimum = 1)]
    pub size: Option<String>,
    /// The same as `size`, as Uppy sends its metadata.
    #[serde(rename = "metadata[size]")]
    #[param(value_type = u64, required = false, minimum = 1)]
    pub metadata_size: Option<String>,
    /// Uppy passes every file meta field as `metadata[<name>]`; those are
    /// accepted (and ignored), any other parameter is refused.
    #[serde(flatten)]
    #[param(ignore)]
    pub other: std::collections::BTreeMap<String, String>,
}

impl ParamsQuery {
    fn refuse_unknown(&self) -> Result<(), ApiError> {
        match self.other.keys().find(|k| !k.starts_with("metadata[")) {
            Some(key) => Err(ApiError::field(key, "is not an accepted field")),
            None => Ok(()),
        }
    }
}

/// Presign a single upload (Uppy Companion)
///
/// What `@uppy/aws-s3` calls for a file it uploads in one `PUT`. The file
/// is `pending` until its object arrives, then checked like any upload.
#[utoipa::path(
    get, path = "/s3/params", tag = "companion",
    params(ParamsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where and how to `PUT` the file.", body = CompanionParams),
        (status = 400, description = "`filename` or `type` is missing or breaks a rule, or `size` is not a whole number.", body = CompanionErrorBody),
        (status = 409, description = "A rare id collision; retry.", body = CompanionErrorBody),
        (status = 413, description = "`size` is above 5 GiB, above the size limit, or would exceed your storage quota.", body = CompanionErrorBody),
    )
)]
async fn companion_params(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ParamsQuery>,
) -> Result<Json<CompanionParams>, ApiError> {
    query.refuse_unknown()?;
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
    let plan = UploadPlan::named(
        &env.policy,
        ("filename", &filename),
        ("type", &content_type),
        size,
    )?;
    let mut record = env.new_record(
        &caller,
        &plan,
        None,
        UploadContract::Companion,
        UploadStatus::Pending,
    );
    env.record_upload(&mut record).await?;
    let signer = env.presigner().await?;
    let (url, headers) = env.single_put(&signer, &record, size, env.url_expiry());
    Ok(Json(CompanionParams {
        method: "PUT".into(),
        url,
        headers,
        key: record.s3_key,
        id: record.id,
    }))
}
