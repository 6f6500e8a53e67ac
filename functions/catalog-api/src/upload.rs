//! Small upload through the API (SPEC §3.4): `POST /api/boxes/{id}/upload/`
//! with a multipart/form-data body of `file` and optional `prompt_text`,
//! `is_favorite`, `ai_model`.
//!
//! - The type comes from the bytes (`infer`'s magic numbers), never from the
//!   name or the part's declared type, and must be an image or video on the
//!   upload allowlist: a renamed `.exe` is a 422.
//! - The file is capped (`SMALL_UPLOAD_MAX_BYTES`, 4 MiB by default) below
//!   the Lambda payload limit; a larger one is a 413 that names the
//!   direct-upload routes. A body beyond ~4.5 MB never reaches the function
//!   (Lambda refuses the event first), so the named 413 is ours only between
//!   the cap and that limit.
//! - The object is stored first, then the asset, the box's `assets_count`
//!   and the bytes against the quota in one transaction; when that is
//!   refused (quota, box deleted meanwhile) the object is deleted again. A
//!   crash between the two leaves an object without a record, which the
//!   cleanup job sweeps (orphans under `uploads/`), never a record without
//!   its object.
//! - The key is `uploads/<owner>/<asset id>/original.<ext>`, the layout of
//!   direct uploads with the asset id in the file id's place, so ingestion
//!   describes both alike (`PROCESSING` until it has).

use assetbox_shared::assets::{AssetRecord, AssetView};
use assetbox_shared::clock;
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::media::{AssetType, NotMedia};
use assetbox_shared::s3::presign::attachment_disposition;
use assetbox_shared::uploads::{self, UploadPolicy};
use assetbox_shared::validation;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use utoipa::ToSchema;

use crate::state::{FilesState, owned_box};
use assetbox_shared::assets::prompt_field;

/// Room for the form's boundaries, headers and text fields around the file.
const FORM_OVERHEAD_BYTES: u64 = 64 * 1024;
/// Longest text field (the prompt is bounded by characters below).
const TEXT_FIELD_MAX_BYTES: u64 = 16 * 1024;
pub const AI_MODEL_MAX_CHARS: usize = 100;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/boxes/{id}/upload", post(upload_to_box))
        // The Lambda event bounds the body; our own cap is checked below
        // with an answer that says where larger files go.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The form as documented for OpenAPI.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SmallUploadForm {
    /// The image or video (PNG, JPEG, WebP, GIF, AVIF, HEIC, TIFF, MP4, MOV,
    /// WebM), at most 4 MiB; its type is read from its bytes. The part's
    /// file name, when given, becomes the asset's name.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Up to 4000 characters once trimmed.
    #[schema(max_length = 4000)]
    prompt_text: Option<String>,
    /// `true` (or `1`) makes it a favourite; default `false`.
    #[schema(value_type = Option<bool>)]
    is_favorite: Option<String>,
    /// The model that made it, up to 100 characters.
    #[schema(max_length = 100)]
    ai_model: Option<String>,
}

fn too_large(policy: &UploadPolicy) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "files above {} bytes cannot go through this route; upload them directly to storage with \
             POST /v1/files/uploads (then complete with parent_content_type \"box\") or the \
             Uppy Companion routes under /s3/multipart",
            policy.small_upload_max_bytes
        ),
    )
}

#[derive(Default)]
struct Form {
    file: Option<(Option<String>, Bytes)>,
    prompt_text: Option<String>,
    is_favorite: Option<bool>,
    ai_model: Option<String>,
}

fn form_error(err: multer::Error, policy: &UploadPolicy) -> ApiError {
    match err {
        multer::Error::FieldSizeExceeded { field_name, .. }
            if field_name.as_deref() == Some("file") =>
        {
            too_large(policy)
        }
        multer::Error::FieldSizeExceeded { field_name, .. } => ApiError::field(
            field_name.as_deref().unwrap_or("form"),
            format!("must be at most {TEXT_FIELD_MAX_BYTES} bytes"),
        ),
        other => ApiError::bad_request(format!("malformed multipart/form-data body: {other}")),
    }
}

async fn read_form(
    headers: &HeaderMap,
    body: Bytes,
    policy: &UploadPolicy,
) -> Result<Form, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as multipart/form-data (a boundary is required)",
        )
    })?;
    let limits = multer::SizeLimit::new()
        .whole_stream(policy.small_upload_max_bytes + FORM_OVERHEAD_BYTES)
        .for_field("file", policy.small_upload_max_bytes)
        .per_field(TEXT_FIELD_MAX_BYTES);
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut form = Form::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| form_error(e, policy))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let duplicate = || ApiError::field(&name, "is given more than once");
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| form_error(e, policy))?;
                if form.file.replace((file_name, bytes)).is_some() {
                    return Err(duplicate());
                }
            }
            "prompt_text" | "is_favorite" | "ai_model" => {
                let text = field.text().await.map_err(|e| form_error(e, policy))?;
                let slot = match name.as_str() {
                    "prompt_text" => &mut form.prompt_text,
                    "ai_model" => &mut form.ai_model,
                    _ => {
                        let flag = match text.trim() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(ApiError::field(
                                    "is_favorite",
                                    "must be true or false",
                                ));
                            }
                        };
                        if form.is_favorite.replace(flag).is_some() {
                            return Err(duplicate());
                        }
                        continue;
                    }
                };
                if slot.replace(text).is_some() {
                    return Err(duplicate());
                }
            }
            "" => return Err(ApiError::bad_request("every form field needs a name")),
            other => {
                return Err(ApiError::field(
                    other,
                    "unknown field; expected file, prompt_text, is_favorite, ai_model",
                ));
            }
        }
    }
    Ok(form)
}

/// The allowed media type the bytes are, by their signature.
pub fn sniff_media_type(bytes: &[u8], policy: &UploadPolicy) -> Result<&'static str, ApiError> {
    policy.media_type_of(bytes).map_err(|not| {
        unprocessable(match not {
            NotMedia::NotAllowed(_) => {
                format!("{not} ({})", policy.allowed_content_types.join(", "))
            }
            NotMedia::Unrecognised => {
                format!("{not} (its type is read from the bytes, not the name)")
            }
        })
    })
}

fn unprocessable(reason: String) -> ApiError {
    let mut err = ApiError::field("file", reason);
    err.status = StatusCode::UNPROCESSABLE_ENTITY;
    err
}

/// Upload a small file into a box
///
/// One request with the bytes (multipart/form-data, at most 4 MiB): the
/// asset is `PROCESSING` until it is checked and described. Larger files go
/// straight to storage with `POST /v1/files/uploads` (or the `/s3`
/// routes).
#[utoipa::path(
    post, path = "/api/boxes/{id}/upload/", tag = "assets",
    params(("id" = String, Path, description = "The box's id.")),
    request_body(content = inline(SmallUploadForm), content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new asset.", body = AssetView),
        (status = 400, description = "The form is malformed, has no `file` or an unknown field, or a field breaks its rule.", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
        (status = 409, description = "The box changed meanwhile; retry.", body = ErrorBody),
        (status = 413, description = "The file is above 4 MiB (the message names the direct-upload routes), or it would exceed your storage quota.", body = ErrorBody),
        (status = 415, description = "The body is not multipart/form-data with a boundary.", body = ErrorBody),
        (status = 422, description = "The bytes are not an allowed image or video.", body = ErrorBody),
    )
)]
// Long on purpose: one linear route (limits, box, form, type from the
// bytes, PUT, one transaction, taking the object back when refused) whose
// order is the point: nothing is stored before it is checked.
pub async fn upload_to_box(
    State(state): State<FilesState>,
    caller: Caller,
    Path(box_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let policy = &state.env.policy;
    if body.len() as u64 > policy.small_upload_max_bytes + FORM_OVERHEAD_BYTES {
        return Err(too_large(policy));
    }
    let table = &state.env.table;
    let target = owned_box(table, &caller, &box_id).await?;

    let form = read_form(&headers, body, policy).await?;
    let Some((file_name, bytes)) = form.file else {
        return Err(ApiError::field("file", "is required"));
    };
    if bytes.is_empty() {
        return Err(ApiError::field("file", "is empty"));
    }
    let prompt_text = prompt_field(form.prompt_text.as_deref())?;
    let ai_model = form
        .ai_model
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map(|m| validation::display_name(m, AI_MODEL_MAX_CHARS))
        .transpose()
        .map_err(|r| ApiError::field("ai_model", r))?;
    let content_type = sniff_media_type(&bytes, policy)?;
    let asset_type = AssetType::of_content_type(content_type).unwrap_or(AssetType::Image);

    let id = validation::new_id();
    let s3_key = uploads::object_key(&caller.user_id, &id, content_type);
    let extension = s3_key.rsplit('.').next().unwrap_or("bin");
    let name = match file_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(raw) => uploads::file_name(raw)
            .map_err(|r| ApiError::field("file", format!("its file name {r}")))?,
        None => format!("upload.{extension}"),
    };
    let now = clock::rfc3339(clock::now());
    let asset = AssetRecord {
        asset_type,
        s3_key: Some(s3_key.clone()),
        name,
        content_type: content_type.to_owned(),
        size: bytes.len() as u64,
        is_favorite: form.is_favorite.unwrap_or(false),
        prompt_text,
        ai_model,
        quota_bytes: bytes.len() as u64,
        ..AssetRecord::in_box(id, &caller.user_id, &target.id, &target.project, &now)
    };
    state
        .env
        .bucket
        .put(
            &s3_key,
            bytes.to_vec(),
            content_type,
            Some(attachment_disposition(&asset.name)),
        )
        .await?;
    // A store error may have committed (a timeout after the write): the
    // object stays, for the record or for the cleanup job's orphan sweep.
    let refusal = table.create_small_asset(&asset, policy.quota_bytes).await?;
    if let Err(refusal) = refusal {
        // Refused for sure: nothing references the object, take it back.
        if let Err(err) = state.env.bucket.delete(&s3_key).await {
            tracing::warn!(key = %s3_key, error = %err, "orphan small upload left for cleanup");
        }
        return Err(match refusal {
            Refusal::QuotaExceeded => uploads::quota_exceeded(asset.size, policy.quota_bytes),
            Refusal::ParentGone => ApiError::box_gone(BoxNamed::InPath),
            Refusal::StateChanged => ApiError::conflict("the box changed meanwhile; retry"),
        });
    }
    let signer = state.env.presigner().await?;
    let view: AssetView = state.env.asset_view(&signer, asset, &target.name);
    Ok((StatusCode::CREATED, Json(view)))
}
