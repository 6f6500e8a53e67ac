//! upload-sign: our side of Uppy 6's `signRequest` hook (`POST /s3/sign`,
//! SPEC §3.3). From 6.0 `@uppy/aws-s3` talks to S3 itself and asks the app
//! to presign each request; the app's hook POSTs Uppy's `PresignableRequest`
//! here with the user's token and hands Uppy back our `PresignedResponse`.
//!
//! One function for every step, because API Gateway routes by method and
//! path and the step is in the body; its role holds exactly what the
//! browser's S3 requests need (they are signed with it).
//!
//! - **PutObject** and **CreateMultipartUpload** get our key
//!   (`uploads/<owner>/<file id>/original.<ext>`, which Uppy honours there),
//!   never the one the client proposed; the file record is written first.
//!   The name is the proposed key's last segment without Uppy's `<uuid>-`
//!   prefix; the type is the request's `contentType`, or for a multipart
//!   upload (Uppy sends none) the name's extension. Both are checked like
//!   `/v1/files`, and the type is signed, so S3 stores what we recorded.
//! - Every later request names a key of the caller's and, for a multipart
//!   upload, the upload id the browser got from S3: S3 chooses it, so the
//!   first request that names one binds it to the record, once S3 confirms
//!   (ListParts) that this key has that upload. Anything else is a 404.
//! - **Completion** happens between browser and S3; ingestion finishes the
//!   file from the S3 event, as it does for single PUTs.
//! - **Size and quota**: Uppy's requests carry no size, so nothing can be
//!   reserved or signed as a length here; signing refuses once the quota
//!   is used up, S3 caps a PUT or a part at 5 GiB and 10,000 parts, and
//!   ingestion measures the object and refuses it above `MAX_UPLOAD_BYTES` or
//!   the quota (object deleted, file `failed`).
//! - **Abort** (and DeleteObject of a single PUT) closes the record and gives
//!   its quota back before the URL is answered; the browser then aborts in S3
//!   itself. Should it never do so, the bucket's lifecycle rule removes the
//!   parts, and an object that still lands for a closed upload is deleted by
//!   ingestion.

use std::collections::BTreeMap;
use std::time::Duration;

use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, CompanionErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, companion_error_message};
use assetbox_shared::s3::presign::{ObjectRequest, attachment_disposition};
use assetbox_shared::uploads::flow::UploadEnv;
use assetbox_shared::uploads::{FileRecord, MAX_PARTS, UploadContract, UploadPlan, UploadStatus};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    Router::new()
        .route("/s3/sign", post(sign))
        .layer(middleware::map_response(companion_error_message))
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(sign),
    components(schemas(PresignableRequest, PresignedResponse, SignMethod, CompanionErrorBody))
)]
pub struct UploadSignDoc;

/// The HTTP method of the S3 request to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignMethod {
    Get,
    Put,
    Post,
    Delete,
}

/// One S3 request Uppy wants signed (its `PresignableRequest`): PutObject
/// `{PUT, key, contentType?}`, CreateMultipartUpload `{POST, key}`,
/// UploadPart `{PUT, key, uploadId, partNumber}`, ListParts
/// `{GET, key, uploadId}`, CompleteMultipartUpload `{POST, key, uploadId}`,
/// AbortMultipartUpload `{DELETE, key, uploadId}`, DeleteObject `{DELETE, key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresignableRequest {
    pub method: SignMethod,
    /// On PutObject and CreateMultipartUpload the key Uppy proposes (its
    /// last segment names the file); on every later request the key we
    /// answered.
    #[schema(min_length = 1)]
    pub key: String,
    /// The S3 multipart upload id (UploadPart, ListParts, Complete, Abort).
    #[schema(min_length = 1)]
    pub upload_id: Option<String>,
    /// UploadPart only.
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: Option<u32>,
    /// PutObject only: the file's type.
    pub content_type: Option<String>,
    /// Seconds the URL should live; at most the server's URL lifetime.
    #[schema(minimum = 1)]
    pub expires_in: Option<u64>,
}

/// Uppy's `PresignedResponse`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresignedResponse {
    pub url: String,
    /// The object's key (PutObject and CreateMultipartUpload): use it, not
    /// the proposed one, in every later request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Headers the URL is signed with: send exactly these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Which S3 request a [`PresignableRequest`] is.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    PutObject,
    CreateMultipart,
    UploadPart(&'a str, u32),
    ListParts(&'a str),
    Complete(&'a str),
    Abort(&'a str),
    DeleteObject,
}

fn step(request: &PresignableRequest) -> Result<Step<'_>, ApiError> {
    let upload = request.upload_id.as_deref();
    if upload == Some("") {
        return Err(ApiError::field("uploadId", "must not be empty"));
    }
    let step = match (request.method, upload, request.part_number) {
        (SignMethod::Put, None, None) => Step::PutObject,
        (SignMethod::Put, Some(upload), Some(part)) => Step::UploadPart(upload, part),
        (SignMethod::Put, Some(_), None) => {
            return Err(ApiError::field("partNumber", "is required with uploadId"));
        }
        (SignMethod::Post, None, None) => Step::CreateMultipart,
        (SignMethod::Post, Some(upload), None) => Step::Complete(upload),
        (SignMethod::Get, Some(upload), None) => Step::ListParts(upload),
        (SignMethod::Get, None, None) => {
            return Err(ApiError::field(
                "uploadId",
                "is required: only ListParts is signed with GET (files are read through their `url`)",
            ));
        }
        (SignMethod::Delete, Some(upload), None) => Step::Abort(upload),
        (SignMethod::Delete, None, None) => Step::DeleteObject,
        (_, _, Some(_)) => {
            return Err(ApiError::field(
                "partNumber",
                "is only sent with an UploadPart request (PUT with uploadId)",
            ));
        }
    };
    if request.content_type.is_some() && step != Step::PutObject {
        return Err(ApiError::field(
            "contentType",
            "is only sent with a PutObject request",
        ));
    }
    if let Step::UploadPart(_, part) = step
        && !(1..=MAX_PARTS).contains(&part)
    {
        return Err(ApiError::field(
            "partNumber",
            format!("must be 1..={MAX_PARTS}"),
        ));
    }
    Ok(step)
}

/// The name in a key Uppy proposes: the last segment, without the
/// `<uuid>-` Uppy puts before the file name by default.
fn proposed_name(key: &str) -> &str {
    let leaf = key.rsplit('/').next().unwrap_or(key);
    let is_uuid_dash = |prefix: &str| {
        prefix.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 | 36 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
    };
    match leaf.split_at_checked(37) {
        Some((prefix, name)) if !name.is_empty() && is_uuid_dash(prefix) => name,
        _ => leaf,
    }
}

/// The type a file name's extension names, if any.
fn type_of_name(name: &str) -> Option<&'static str> {
    mime_guess::from_path(name).first_raw()
}

/// A type the client gave that says something (browsers send
/// `application/octet-stream` for what they do not know).
fn specific_type(content_type: Option<&str>) -> Option<&str> {
    content_type
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("application/octet-stream"))
}

/// Presign one S3 request for Uppy 6
///
/// The other side of `@uppy/aws-s3` 6.x's `signRequest` hook: the hook POSTs
/// Uppy's request here with your token and returns the answer to Uppy, which
/// then sends the request to S3 itself. PutObject and CreateMultipartUpload
/// are answered with the key the file is stored under (Uppy uses it from then
/// on) and record the file; every later request must name that key and the
/// upload id S3 gave the browser. A multipart upload the browser completes
/// with S3 becomes a `completed` file once its object has been verified.
#[utoipa::path(
    post, path = "/s3/sign", tag = "companion",
    request_body = PresignableRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The presigned URL, with the key and the headers to send where they apply.", body = PresignedResponse),
        (status = 400, description = "Not a request this route signs (another method, a part number outside 1–10000, an unknown field), or a file name or type the upload rules refuse (`fields` names which).", body = CompanionErrorBody),
        (status = 404, description = "No upload of yours has this key, or this upload id.", body = CompanionErrorBody),
        (status = 409, description = "The upload is closed (completed, aborted, expired), or was started through another route.", body = CompanionErrorBody),
        (status = 413, description = "Your storage quota is used up.", body = CompanionErrorBody),
    )
)]
async fn sign(
    State(env): State<UploadEnv>,
    caller: Caller,
    ApiJson(request): ApiJson<PresignableRequest>,
) -> Result<Json<PresignedResponse>, ApiError> {
    let expiry = match request.expires_in {
        Some(0) => return Err(ApiError::field("expiresIn", "must be at least 1 second")),
        Some(secs) => Duration::from_secs(secs).min(env.url_expiry()),
        None => env.url_expiry(),
    };
    let step = step(&request)?;
    if matches!(step, Step::PutObject | Step::CreateMultipart) {
        return start(&env, &caller, &request, step, expiry).await.map(Json);
    }
    let file = signed_file(&env, &caller, &request.key).await?;
    let (method, query): (&str, Vec<(&'static str, String)>) = match step {
        Step::UploadPart(upload, part) => {
            let file = bound(&env, file, upload).await?;
            UploadEnv::ensure_accepting_parts(&file)?;
            (
                "PUT",
                vec![
                    ("partNumber", part.to_string()),
                    ("uploadId", upload.into()),
                ],
            )
        }
        Step::ListParts(upload) | Step::Complete(upload) => {
            let file = bound(&env, file, upload).await?;
            UploadEnv::ensure_accepting_parts(&file)?;
            let method = if matches!(step, Step::ListParts(_)) {
                "GET"
            } else {
                "POST"
            };
            (method, vec![("uploadId", upload.into())])
        }
        Step::Abort(upload) => {
            let file = bound(&env, file, upload).await?;
            close(&env, file).await?;
            ("DELETE", vec![("uploadId", upload.into())])
        }
        Step::DeleteObject => {
            if file.upload_id.is_some() || file.upload_status == UploadStatus::Uploading {
                return Err(ApiError::conflict(
                    "a multipart upload is aborted with its uploadId",
                ));
            }
            close(&env, file).await?;
            ("DELETE", vec![])
        }
        Step::PutObject | Step::CreateMultipart => unreachable!("handled above"),
    };
    let signer = env.presigner().await?;
    let url = signer.presign(
        &ObjectRequest {
            method,
            key: &request.key,
            query,
            headers: vec![],
        },
        expiry,
    );
    Ok(Json(PresignedResponse {
        url,
        key: None,
        headers: BTreeMap::new(),
    }))
}

/// PutObject or CreateMultipartUpload: records a new file under our key and
/// signs the request for it.
async fn start(
    env: &UploadEnv,
    caller: &Caller,
    request: &PresignableRequest,
    step: Step<'_>,
    expiry: Duration,
) -> Result<PresignedResponse, ApiError> {
    let name = proposed_name(&request.key);
    let (type_field, content_type) = match specific_type(request.content_type.as_deref()) {
        Some(given) => ("contentType", given.to_owned()),
        None => (
            "key",
            type_of_name(name)
                .ok_or_else(|| {
                    ApiError::field(
                        "key",
                        "the file name has no extension that names its type; send contentType",
                    )
                })?
                .to_owned(),
        ),
    };
    let plan = UploadPlan::named(
        &env.policy,
        ("key", name),
        (type_field, &content_type),
        None,
    )?;
    let multipart = step == Step::CreateMultipart;
    let status = match multipart {
        true => UploadStatus::Uploading,
        false => UploadStatus::Pending,
    };
    let mut record = env.new_record(caller, &plan, None, UploadContract::Signed, status);
    env.record_upload(&mut record).await?;
    let signer = env.presigner().await?;
    let (url, headers) = if multipart {
        let headers = vec![
            ("content-type", record.file_content_type.clone()),
            (
                "content-disposition",
                attachment_disposition(&record.file_name),
            ),
        ];
        let url = signer.presign(
            &ObjectRequest {
                method: "POST",
                key: &record.s3_key,
                query: vec![("uploads", String::new())],
                headers: headers.clone(),
            },
            expiry,
        );
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        (url, headers)
    } else {
        env.single_put(&signer, &record, None, expiry)
    };
    Ok(PresignedResponse {
        url,
        key: Some(record.s3_key),
        headers,
    })
}

/// The caller's file behind a key of ours, started through this route.
async fn signed_file(env: &UploadEnv, caller: &Caller, key: &str) -> Result<FileRecord, ApiError> {
    let file = env.file_by_key(caller, key).await?;
    if file.contract != UploadContract::Signed {
        return Err(ApiError::conflict(
            "this upload was not started with POST /s3/sign; use the routes it was started with",
        ));
    }
    Ok(file)
}

/// The file, checked to be the one S3's `upload_id` belongs to. A file
/// that has no upload id yet (the browser created its S3 upload with our
/// presigned URL) takes the first one S3 confirms is this key's.
async fn bound(env: &UploadEnv, file: FileRecord, upload_id: &str) -> Result<FileRecord, ApiError> {
    let not_found = || ApiError::not_found("upload");
    match file.upload_id.as_deref() {
        Some(known) if known == upload_id => return Ok(file),
        Some(_) => return Err(not_found()),
        None if file.upload_status != UploadStatus::Uploading => return Err(not_found()),
        None => {}
    }
    if env
        .bucket
        .list_parts(&file.s3_key, upload_id)
        .await?
        .is_none()
    {
        return Err(not_found());
    }
    let now = clock::rfc3339(clock::now());
    if env.table.bind_upload_id(&file, upload_id, &now).await? {
        let mut file = file;
        file.upload_id = Some(upload_id.to_owned());
        return Ok(file);
    }
    // Another request bound one first (or the upload closed): read it again.
    let fresh = env
        .table
        .get_file(&file.owner, &file.id)
        .await?
        .ok_or_else(not_found)?;
    match fresh.upload_id.as_deref() {
        Some(known) if known == upload_id => Ok(fresh),
        _ => Err(not_found()),
    }
}

/// Closes an open upload (the browser aborts its S3 side with the URL it
/// gets); an aborted one stays so; anything else is a 409.
async fn close(env: &UploadEnv, file: FileRecord) -> Result<(), ApiError> {
    match file.upload_status {
        UploadStatus::Aborted => Ok(()),
        UploadStatus::Pending | UploadStatus::Uploading => {
            env.close_as_aborted(file).await.map(drop)
        }
        UploadStatus::Completed => Err(ApiError::conflict(
            "the upload is completed; delete the file with DELETE /v1/files/{id}",
        )),
        other => Err(ApiError::conflict(format!(
            "upload is {}; only open uploads can be aborted",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<PresignableRequest, ApiError> {
        assetbox_shared::http::parse_json(json.as_bytes())
    }

    #[test]
    fn every_uppy_request_is_one_step() {
        let cases = [
            (
                r#"{"method":"PUT","key":"k","contentType":"image/png"}"#,
                Step::PutObject,
            ),
            (r#"{"method":"POST","key":"k"}"#, Step::CreateMultipart),
            (
                r#"{"method":"PUT","key":"k","uploadId":"u","partNumber":3}"#,
                Step::UploadPart("u", 3),
            ),
            (
                r#"{"method":"GET","key":"k","uploadId":"u"}"#,
                Step::ListParts("u"),
            ),
            (
                r#"{"method":"POST","key":"k","uploadId":"u"}"#,
                Step::Complete("u"),
            ),
            (
                r#"{"method":"DELETE","key":"k","uploadId":"u"}"#,
                Step::Abort("u"),
            ),
            (r#"{"method":"DELETE","key":"k"}"#, Step::DeleteObject),
        ];
        for (json, expected) in cases {
            let request = request(json).unwrap();
            assert_eq!(step(&request).unwrap(), expected, "{json}");
        }
    }

    #[test]
    fn requests_we_do_not_sign_are_refused_naming_the_field() {
        for (json, field) in [
            (r#"{"method":"HEAD","key":"k"}"#, "method"),
            (r#"{"method":"GET","key":"k"}"#, "uploadId"),
            (r#"{"method":"PUT","key":"k","uploadId":"u"}"#, "partNumber"),
            (
                r#"{"method":"PUT","key":"k","uploadId":"u","partNumber":0}"#,
                "partNumber",
            ),
            (
                r#"{"method":"PUT","key":"k","uploadId":"u","partNumber":10001}"#,
                "partNumber",
            ),
            (
                r#"{"method":"POST","key":"k","partNumber":1}"#,
                "partNumber",
            ),
            (
                r#"{"method":"POST","key":"k","contentType":"image/png"}"#,
                "contentType",
            ),
            (r#"{"method":"DELETE","key":"k","uploadId":""}"#, "uploadId"),
            (
                r#"{"method":"PUT","key":"k","uploadId":"u","partNumber":-1}"#,
                "partNumber",
            ),
            (r#"{"method":"PUT","key":"k","bucket":"other"}"#, "bucket"),
        ] {
            let err = request(json).and_then(|r| step(&r).map(drop)).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{json}");
            assert!(err.fields.contains_key(field), "{json}: {err:?}");
        }
    }

    #[test]
    fn the_name_is_the_proposed_keys_last_segment_without_uppys_uuid() {
        assert_eq!(
            proposed_name("0b8e5d0a-3c1f-4e0b-9a51-2f3c4d5e6f70-Szène 1.mp4"),
            "Szène 1.mp4"
        );
        assert_eq!(proposed_name("photos/2026/frame.png"), "frame.png");
        assert_eq!(proposed_name("frame.png"), "frame.png");
        // Not a UUID: kept whole.
        assert_eq!(
            proposed_name("not-a-uuid-at-all-but-long-enough-xxxxx-frame.png"),
            "not-a-uuid-at-all-but-long-enough-xxxxx-frame.png"
        );
        // Only the UUID: no name after it.
        let bare = "0b8e5d0a-3c1f-4e0b-9a51-2f3c4d5e6f70-";
        assert_eq!(proposed_name(bare), bare);
    }

    #[test]
    fn types_come_from_the_extension_when_the_client_gives_none() {
        assert_eq!(type_of_name("a.JPG"), Some("image/jpeg"));
        assert_eq!(type_of_name("clip.mov"), Some("video/quicktime"));
        assert_eq!(type_of_name("clip.webm"), Some("video/webm"));
        assert_eq!(type_of_name("README"), None);
        assert_eq!(specific_type(Some("application/octet-stream")), None);
        assert_eq!(specific_type(Some(" image/png ")), Some("image/png"));
    }
}
