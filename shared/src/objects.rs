//! The S3 adapter: multipart uploads and the objects they make. Only the calls
//! our functions need, with S3's error codes turned into outcomes the upload
//! rules can act on.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    ChecksumAlgorithm as S3ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
};

use crate::error::ApiError;
use crate::uploads::{ChecksumAlgorithm, ClientPart};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("object store failure: {0}")]
    Failed(String),
}

impl From<ObjectError> for ApiError {
    fn from(err: ObjectError) -> Self {
        match err {
            ObjectError::Unavailable(cause) => ApiError::unavailable(cause),
            ObjectError::Failed(cause) => ApiError::internal(cause),
        }
    }
}

fn classify<E, R>(err: &SdkError<E, R>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(err).to_string();
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout")
        ),
        _ => false,
    };
    if transient {
        ObjectError::Unavailable(text)
    } else {
        ObjectError::Failed(text)
    }
}

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// A part S3 holds for an open multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<String>,
}

/// How completing went on the S3 side.
#[derive(Debug)]
pub enum Completion {
    /// The object exists now; its ETag.
    Completed { etag: String },
    /// S3 refused the part list: an ETag that does not match or a part it
    /// does not hold (S3 `InvalidPart`), or a part below 5 MiB.
    PartsRejected { reason: String },
    /// No such upload: completed by a concurrent call, aborted or expired.
    NoSuchUpload,
}

fn to_s3_algorithm(a: ChecksumAlgorithm) -> S3ChecksumAlgorithm {
    match a {
        ChecksumAlgorithm::Sha256 => S3ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Crc32 => S3ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c => S3ChecksumAlgorithm::Crc32C,
    }
}

#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
}

impl Bucket {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a multipart upload; returns its upload id. The content type
    /// and the download name are stored with the object.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: &str,
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<String, ObjectError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .content_disposition(content_disposition)
            .set_checksum_algorithm(checksum.map(to_s3_algorithm))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.upload_id.ok_or_else(|| {
            ObjectError::Failed("CreateMultipartUpload returned no upload id".into())
        })
    }

    /// Every part S3 holds, all pages joined (S3 returns at most 1000 a page).
    /// `None` when the upload no longer exists.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<StoredPart>>, ObjectError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let result = self
                .client
                .list_parts()
                .bucket(&self.name)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(err) if code(&err) == Some("NoSuchUpload") => return Ok(None),
                Err(err) => return Err(classify(&err)),
            };
            for part in out.parts.unwrap_or_default() {
                parts.push(StoredPart {
                    part_number: part.part_number.unwrap_or_default().max(0) as u32,
                    etag: part.e_tag.unwrap_or_default(),
                    size: part.size.unwrap_or_default().max(0) as u64,
                    last_modified: part
                        .last_modified
                        .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()),
                });
            }
            match (out.is_truncated, out.next_part_number_marker) {
                (Some(true), Some(next)) if !next.is_empty() => marker = Some(next),
                _ => break,
            }
        }
        Ok(Some(parts))
    }

    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ClientPart],
        checksums: Option<(ChecksumAlgorithm, &[String])>,
    ) -> Result<Completion, ObjectError> {
        let completed: Vec<CompletedPart> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut part = CompletedPart::builder()
                    .part_number(p.part_number as i32)
                    .e_tag(format!("\"{}\"", crate::uploads::bare_etag(&p.etag)));
                if let Some((algorithm, values)) = checksums
                    && let Some(value) = values.get(i)
                {
                    part = match algorithm {
                        ChecksumAlgorithm::Sha256 => part.checksum_sha256(value),
                        ChecksumAlgorithm::Crc32 => part.checksum_crc32(value),
                        ChecksumAlgorithm::Crc32c => part.checksum_crc32_c(value),
                    };
                }
                part.build()
            })
            .collect();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(out) => Ok(Completion::Completed {
                etag: out.e_tag.unwrap_or_default(),
            }),
            Err(err) => match code(&err) {
                Some("NoSuchUpload") => Ok(Completion::NoSuchUpload),
                Some(c @ ("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall")) => {
                    Ok(Completion::PartsRejected {
                        reason: match c {
                            "EntityTooSmall" => {
                                "a part other than the last is smaller than 5 MiB".to_owned()
                            }
                            _ => {
                                "S3 does not hold one of the listed parts with that ETag".to_owned()
                            }
                        },
                    })
                }
                _ => Err(classify(&err)),
            },
        }
    }

    /// Aborting an upload that is already gone is fine.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if code(&err) == Some("NoSuchUpload") => Ok(()),
            Err(err) => Err(classify(&err)),
        }
    }

    /// Size and ETag of an object, `None` if absent.
    pub async fn head(&self, key: &str) -> Result<Option<(u64, String)>, ObjectError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some((
                out.content_length.unwrap_or_default().max(0) as u64,
                out.e_tag.unwrap_or_default(),
            ))),
            Err(err) if matches!(code(&err), Some("NotFound" | "NoSuchKey")) => Ok(None),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => Ok(None),
            Err(err) => Err(classify(&err)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }
}
