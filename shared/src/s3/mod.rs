//! The S3 adapter: multipart uploads and the objects they make. Only the calls
//! our functions need, with S3's error codes turned into outcomes the upload
//! rules can act on.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::complete_multipart_upload::builders::CompleteMultipartUploadFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::types::{
    ChecksumAlgorithm as S3ChecksumAlgorithm, ChecksumMode, ChecksumType as S3ChecksumType,
    CompletedMultipartUpload, CompletedPart,
};

use crate::error::ApiError;
pub mod checksum;
pub mod presign;

use checksum::{ChecksumAlgorithm, ChecksumType, ClientPart, bare_etag};

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

/// A multipart upload S3 holds open (see [`Bucket::multipart_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenMultipart {
    pub key: String,
    pub upload_id: String,
    /// When it was created, seconds since the epoch (0 if S3 did not say,
    /// which makes it count as old).
    pub initiated_epoch: i64,
}

/// An object being read (see [`Bucket::open`]).
pub struct OpenedObject {
    pub size: u64,
    pub etag: String,
    /// S3's stored checksum as `ALGORITHM:value` (`-N` ends a composite
    /// one of N parts), when S3 has one.
    pub checksum: Option<String>,
    body: aws_sdk_s3::primitives::ByteStream,
    buffered: Vec<u8>,
}

impl OpenedObject {
    /// The first `len` bytes (fewer if the object is shorter).
    pub async fn head(&mut self, len: usize) -> Result<&[u8], ObjectError> {
        while self.buffered.len() < len {
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffered.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(ObjectError::Unavailable(e.to_string())),
                None => break,
            }
        }
        Ok(&self.buffered[..len.min(self.buffered.len())])
    }

    /// The whole object (the caller has checked `size` is affordable).
    pub async fn into_bytes(mut self) -> Result<Vec<u8>, ObjectError> {
        let rest = self
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
        self.buffered.extend_from_slice(&rest.into_bytes());
        Ok(self.buffered)
    }
}

/// The checksum a GET (with checksum mode on) reports, as `ALGORITHM:value`.
pub fn stored_checksum(out: &GetObjectOutput) -> Option<String> {
    [
        ("CRC64NVME", out.checksum_crc64_nvme()),
        ("CRC32", out.checksum_crc32()),
        ("CRC32C", out.checksum_crc32_c()),
        ("SHA256", out.checksum_sha256()),
        ("SHA1", out.checksum_sha1()),
    ]
    .into_iter()
    .find_map(|(algorithm, value)| value.map(|v| format!("{algorithm}:{v}")))
}

/// `bucket/key` for `x-amz-copy-source`, the key URL-encoded (slashes kept).
fn copy_source(bucket: &str, key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{bucket}/{}",
        percent_encoding::utf8_percent_encode(key, KEEP)
    )
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
    /// The whole-object checksum or the object size does not match what S3
    /// assembled (S3 `BadDigest` / `InvalidRequest`); nothing was completed.
    Mismatch { reason: String },
}

/// What completing sends S3 beyond the part list: the parts' checksums, and
/// what S3 checks the assembled object against.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompleteChecks<'a> {
    /// Algorithm, type and the parts' checksums in part-list order.
    pub checksums: Option<(ChecksumAlgorithm, ChecksumType, &'a [String])>,
    /// The whole object's checksum (FULL_OBJECT) or the composite one.
    pub object_checksum: Option<&'a str>,
    /// The declared size (`x-amz-mp-object-size`): S3 refuses a different one.
    pub object_size: Option<u64>,
}

fn to_s3_algorithm(a: ChecksumAlgorithm) -> S3ChecksumAlgorithm {
    match a {
        ChecksumAlgorithm::Sha256 => S3ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Crc32 => S3ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c => S3ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64nvme => S3ChecksumAlgorithm::Crc64Nvme,
    }
}

fn to_s3_type(t: ChecksumType) -> S3ChecksumType {
    match t {
        ChecksumType::Composite => S3ChecksumType::Composite,
        ChecksumType::FullObject => S3ChecksumType::FullObject,
    }
}

/// Sets the object-level checksum field of the algorithm.
fn with_object_checksum(
    request: CompleteMultipartUploadFluentBuilder,
    algorithm: ChecksumAlgorithm,
    value: &str,
) -> CompleteMultipartUploadFluentBuilder {
    match algorithm {
        ChecksumAlgorithm::Sha256 => request.checksum_sha256(value),
        ChecksumAlgorithm::Crc32 => request.checksum_crc32(value),
        ChecksumAlgorithm::Crc32c => request.checksum_crc32_c(value),
        ChecksumAlgorithm::Crc64nvme => request.checksum_crc64_nvme(value),
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
        checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    ) -> Result<String, ObjectError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .content_disposition(content_disposition)
            .set_checksum_algorithm(checksum.map(|(a, _)| to_s3_algorithm(a)))
            .set_checksum_type(checksum.map(|(_, t)| to_s3_type(t)))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.upload_id.ok_or_else(|| {
            ObjectError::Failed("CreateMultipartUpload returned no upload id".into())
        })
    }

    /// Uploads one part from the function itself (server-side imports); its ETag.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
    ) -> Result<String, ObjectError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .body(body.into())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.e_tag
            .ok_or_else(|| ObjectError::Failed("UploadPart returned no ETag".into()))
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
        checks: CompleteChecks<'_>,
    ) -> Result<Completion, ObjectError> {
        let completed: Vec<CompletedPart> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut part = CompletedPart::builder()
                    .part_number(p.part_number as i32)
                    .e_tag(format!("\"{}\"", bare_etag(&p.etag)));
                if let Some((algorithm, _, values)) = checks.checksums
                    && let Some(value) = values.get(i)
                {
                    part = match algorithm {
                        ChecksumAlgorithm::Sha256 => part.checksum_sha256(value),
                        ChecksumAlgorithm::Crc32 => part.checksum_crc32(value),
                        ChecksumAlgorithm::Crc32c => part.checksum_crc32_c(value),
                        ChecksumAlgorithm::Crc64nvme => part.checksum_crc64_nvme(value),
                    };
                }
                part.build()
            })
            .collect();
        let mut request = self
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
            .set_mpu_object_size(checks.object_size.map(|n| n as i64));
        if let Some((algorithm, kind, _)) = checks.checksums {
            request = request.checksum_type(to_s3_type(kind));
            if let Some(value) = checks.object_checksum {
                request = with_object_checksum(request, algorithm, value);
            }
        }
        let result = request.send().await;
        match result {
            Ok(out) => Ok(Completion::Completed {
                etag: out.e_tag.unwrap_or_default(),
            }),
            Err(err) => match code(&err) {
                Some("NoSuchUpload") => Ok(Completion::NoSuchUpload),
                Some("BadDigest" | "InvalidRequest") => Ok(Completion::Mismatch {
                    reason: aws_sdk_s3::error::ProvideErrorMetadata::message(&err)
                        .unwrap_or("the object does not match its declared checksum or size")
                        .to_owned(),
                }),
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

    /// One page (at most `max`) of the multipart uploads in progress under
    /// `prefix`, after the position `after` (key and upload id markers), and
    /// the position of the next page when S3 has more.
    pub async fn multipart_page(
        &self,
        prefix: &str,
        after: Option<(String, String)>,
        max: u32,
    ) -> Result<(Vec<OpenMultipart>, Option<(String, String)>), ObjectError> {
        let (key_marker, upload_marker) = after.unzip();
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.name)
            .prefix(prefix)
            .max_uploads(max as i32)
            .set_key_marker(key_marker)
            .set_upload_id_marker(upload_marker)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let uploads = out
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(OpenMultipart {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                    initiated_epoch: u.initiated().map(|t| t.secs()).unwrap_or(0),
                })
            })
            .collect();
        let next = match (
            out.is_truncated(),
            out.next_key_marker(),
            out.next_upload_id_marker(),
        ) {
            (Some(true), Some(key), Some(upload)) => Some((key.to_owned(), upload.to_owned())),
            _ => None,
        };
        Ok((uploads, next))
    }

    /// One page (at most `max`) of the objects under `prefix` whose keys
    /// sort after `after`, each with its last-modified time (epoch seconds),
    /// and the key to go on after when S3 has more.
    pub async fn object_page(
        &self,
        prefix: &str,
        after: Option<String>,
        max: u32,
    ) -> Result<(Vec<(String, i64)>, Option<String>), ObjectError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .max_keys(max as i32)
            .set_start_after(after)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let objects: Vec<(String, i64)> = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some((
                    o.key()?.to_owned(),
                    o.last_modified().map(|t| t.secs()).unwrap_or(0),
                ))
            })
            .collect();
        let next = match out.is_truncated() {
            Some(true) => objects.last().map(|(key, _)| key.clone()),
            _ => None,
        };
        Ok((objects, next))
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

    /// An object opened for reading in one GET: its size, ETag and S3's
    /// stored checksum at once, and its body as it streams. Reading only the
    /// first bytes and dropping the rest closes the connection, so the
    /// caller decides after the head whether the whole object is worth it.
    /// `None` when it is gone.
    pub async fn open(&self, key: &str) -> Result<Option<OpenedObject>, ObjectError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if matches!(code(&err), Some("NoSuchKey" | "NotFound")) => return Ok(None),
            Err(err) => return Err(classify(&err)),
        };
        Ok(Some(OpenedObject {
            size: out.content_length().unwrap_or_default().max(0) as u64,
            etag: out.e_tag().unwrap_or_default().to_owned(),
            checksum: stored_checksum(&out),
            buffered: Vec::new(),
            body: out.body,
        }))
    }

    /// A server-side copy (≤ 5 GiB, S3's single-copy limit); `false` when
    /// the source is gone.
    pub async fn copy(&self, from: &str, to: &str) -> Result<bool, ObjectError> {
        self.copy_with(from, to, None).await
    }

    /// Copies an object onto itself (≤ 5 GiB), keeping its content type:
    /// S3 announces it again (`ObjectCreated:Copy`) to whatever consumes
    /// its events. `false` when it is gone.
    pub async fn announce_again(&self, key: &str, content_type: &str) -> Result<bool, ObjectError> {
        self.copy_with(key, key, Some(content_type)).await
    }

    /// A copy; with `replace_type`, its metadata replaced (a copy onto
    /// itself must change something) and the content type set.
    async fn copy_with(
        &self,
        from: &str,
        to: &str,
        replace_type: Option<&str>,
    ) -> Result<bool, ObjectError> {
        let mut copy = self
            .client
            .copy_object()
            .bucket(&self.name)
            .key(to)
            .copy_source(copy_source(&self.name, from))
            // No tags carried over: reading them would need tagging rights.
            .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace);
        if let Some(content_type) = replace_type {
            copy = copy
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .content_type(content_type)
                .metadata("announced-again", "cleanup");
        }
        match copy.send().await {
            Ok(_) => Ok(true),
            Err(err) if matches!(code(&err), Some("NoSuchKey" | "NotFound")) => Ok(false),
            Err(err) => Err(classify(&err)),
        }
    }

    /// Bytes `first..=last` of an object (fewer when it is shorter); `None`
    /// when it is gone.
    pub async fn get_range(
        &self,
        key: &str,
        first: u64,
        last: u64,
    ) -> Result<Option<Vec<u8>>, ObjectError> {
        self.read(key, Some(format!("bytes={first}-{last}")), u64::MAX)
            .await
    }

    /// Stores a whole object (small uploads, exports).
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_disposition: Option<String>,
    ) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .set_content_disposition(content_disposition)
            .body(body.into())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }

    /// An object's bytes; `None` when it is missing or larger than
    /// `max_bytes` (the caller cannot afford to hold it).
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ObjectError> {
        self.read(key, None, max_bytes).await
    }

    async fn read(
        &self,
        key: &str,
        range: Option<String>,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, ObjectError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_range(range)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if matches!(code(&err), Some("NoSuchKey" | "NotFound")) => return Ok(None),
            Err(err) => return Err(classify(&err)),
        };
        if out
            .content_length()
            .is_some_and(|n| n < 0 || n as u64 > max_bytes)
        {
            return Ok(None);
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Unavailable(e.to_string()))?
            .into_bytes();
        Ok((bytes.len() as u64 <= max_bytes).then(|| bytes.to_vec()))
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

#[cfg(test)]
mod tests {
    //! The emulator neither stores nor checks checksums or object sizes, so
    //! these check what we send S3: the request as it leaves the SDK.
    use super::*;
    use aws_credential_types::Credentials;
    use aws_smithy_http_client::test_util::{CaptureRequestReceiver, capture_request};

    fn bucket() -> (Bucket, CaptureRequestReceiver) {
        bucket_answering(None)
    }

    fn bucket_answering(
        response: Option<http::Response<aws_sdk_s3::primitives::SdkBody>>,
    ) -> (Bucket, CaptureRequestReceiver) {
        let (http, captured) = capture_request(response);
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http)
            .build();
        (Bucket::new(Client::from_conf(config), "media"), captured)
    }

    fn header<'a>(
        request: &'a aws_sdk_s3::config::http::HttpRequest,
        name: &str,
    ) -> Option<&'a str> {
        request.headers().get(name)
    }

    #[tokio::test]
    async fn full_object_uploads_are_created_with_algorithm_and_type() {
        let (bucket, captured) = bucket();
        let _ = bucket
            .create_multipart(
                "uploads/u/01J/original.mp4",
                "video/mp4",
                "attachment",
                Some((ChecksumAlgorithm::Crc64nvme, ChecksumType::FullObject)),
            )
            .await;
        let request = captured.expect_request();
        assert_eq!(
            header(&request, "x-amz-checksum-algorithm"),
            Some("CRC64NVME")
        );
        assert_eq!(header(&request, "x-amz-checksum-type"), Some("FULL_OBJECT"));
    }

    #[tokio::test]
    async fn complete_sends_part_and_object_checksums_and_the_size() {
        let (bucket, captured) = bucket();
        let parts = [
            ClientPart {
                part_number: 1,
                etag: "\"e1\"".into(),
            },
            ClientPart {
                part_number: 2,
                etag: "e2".into(),
            },
        ];
        let sums = ["AAAAAAAAAAA=".to_owned(), "BBBBBBBBBBB=".to_owned()];
        let _ = bucket
            .complete(
                "uploads/u/01J/original.mp4",
                "upload-1",
                &parts,
                CompleteChecks {
                    checksums: Some((
                        ChecksumAlgorithm::Crc64nvme,
                        ChecksumType::FullObject,
                        &sums,
                    )),
                    object_checksum: Some("CCCCCCCCCCC="),
                    object_size: Some(12_582_912),
                },
            )
            .await;
        let request = captured.expect_request();
        assert_eq!(
            header(&request, "x-amz-checksum-crc64nvme"),
            Some("CCCCCCCCCCC=")
        );
        assert_eq!(header(&request, "x-amz-checksum-type"), Some("FULL_OBJECT"));
        assert_eq!(header(&request, "x-amz-mp-object-size"), Some("12582912"));
        let body = std::str::from_utf8(request.body().bytes().unwrap()).unwrap();
        assert!(
            body.contains("<ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME>"),
            "{body}"
        );
        assert!(
            body.contains("<ETag>&quot;e2&quot;</ETag>"),
            "ETags are sent quoted: {body}"
        );
    }

    #[tokio::test]
    async fn without_checksums_only_the_size_is_checked() {
        let (bucket, captured) = bucket();
        let parts = [ClientPart {
            part_number: 1,
            etag: "e1".into(),
        }];
        let _ = bucket
            .complete(
                "k",
                "u",
                &parts,
                CompleteChecks {
                    object_size: Some(10),
                    ..Default::default()
                },
            )
            .await;
        let request = captured.expect_request();
        assert_eq!(header(&request, "x-amz-mp-object-size"), Some("10"));
        assert_eq!(header(&request, "x-amz-checksum-type"), None);
    }

    #[tokio::test]
    async fn open_asks_for_the_stored_checksum_and_streams_only_what_is_read() {
        let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let response = http::Response::builder()
            .status(200)
            .header("content-length", body.len().to_string())
            .header("etag", "\"abc\"")
            .header("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=")
            .header("x-amz-checksum-type", "FULL_OBJECT")
            .body(aws_sdk_s3::primitives::SdkBody::from(body.clone()))
            .unwrap();
        let (bucket, captured) = bucket_answering(Some(response));
        let mut opened = bucket
            .open("uploads/o/k/original.png")
            .await
            .unwrap()
            .unwrap();
        let request = captured.expect_request();
        assert_eq!(header(&request, "x-amz-checksum-mode"), Some("ENABLED"));
        assert_eq!(header(&request, "range"), None);
        assert_eq!(opened.size, 100_000);
        assert_eq!(opened.etag, "\"abc\"");
        assert_eq!(opened.checksum.as_deref(), Some("CRC64NVME:AAAAAAAAAAA="));
        assert_eq!(opened.head(10).await.unwrap(), &body[..10]);
        // Read to the end, the body is checked against that checksum (which
        // this made-up one fails): a corrupted read is an error, not bytes.
        assert!(opened.into_bytes().await.is_err());
    }

    #[test]
    fn copy_sources_encode_the_key_but_keep_its_slashes() {
        assert_eq!(
            copy_source("media", "uploads/o/Szène 1+2.jpg"),
            "media/uploads/o/Sz%C3%A8ne%201%2B2.jpg"
        );
    }
}
