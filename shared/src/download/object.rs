//! A guarded GET streamed into the bucket: one PutObject when the body ends
//! within its first part, else a multipart upload of [`PART_BYTES`] parts —
//! never the whole body in memory. The type comes from the first bytes.

use reqwest::Url;

use super::{blocked_cause, check_url};
use crate::s3::checksum::ClientPart;
use crate::s3::presign::attachment_disposition;
use crate::s3::{Bucket, CompleteChecks, Completion};

/// Part size of streamed downloads (and the most held in memory at once).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Why a fetch did not give an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Retrying will not help; the reason, in words a user can act on.
    Permanent(String),
    /// Might work later (network, 5xx, 429, S3 unavailable).
    Transient(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Permanent(r) | Self::Transient(r) => f.write_str(r),
        }
    }
}

/// How much one fetch may store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest file allowed.
    pub max_bytes: u64,
    /// What the owner's quota has room for now (finishing checks the quota
    /// again, atomically, for racing writes).
    pub room: u64,
    /// The owner's whole quota, to say so when it is exceeded.
    pub quota_bytes: u64,
}

/// The object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub content_type: &'static str,
    pub name: String,
    pub size: u64,
}

/// What the caller decides once the first bytes are known: the allowed
/// type they are (or why not), then the key and download name for it.
pub trait Placement: Sync {
    fn sniff(&self, head: &[u8]) -> Result<&'static str, String>;
    fn key_and_name(&self, content_type: &'static str) -> (String, String);
}

/// GETs `url` under the guard and streams the body into `bucket`.
pub async fn fetch_into_bucket(
    http: &reqwest::Client,
    allow_private: bool,
    bucket: &Bucket,
    url: &str,
    limits: Limits,
    placement: &dyn Placement,
) -> Result<Stored, FetchError> {
    let url = Url::parse(url).map_err(|_| FetchError::Permanent("the URL is not valid".into()))?;
    check_url(&url, allow_private).map_err(|b| FetchError::Permanent(b.to_string()))?;
    let mut response = http.get(url).send().await.map_err(classify_request_error)?;
    admit(&response, limits)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut total: u64 = 0;
    let mut writer: Option<ObjectWriter> = None;
    let result: Result<(), FetchError> = async {
        loop {
            let chunk = response.chunk().await.map_err(classify_request_error)?;
            let ended = chunk.is_none();
            if let Some(chunk) = chunk {
                total += chunk.len() as u64;
                if total > limits.max_bytes {
                    return Err(too_large(limits.max_bytes));
                }
                if total > limits.room {
                    return Err(beyond_quota(
                        &format!("more than {} bytes", limits.room),
                        limits,
                    ));
                }
                buffer.extend_from_slice(&chunk);
            }
            if writer.is_none() && (buffer.len() >= 512 || ended) {
                if buffer.is_empty() {
                    return Err(FetchError::Permanent(
                        "the URL answered an empty body".into(),
                    ));
                }
                let content_type = placement.sniff(&buffer).map_err(FetchError::Permanent)?;
                let (key, name) = placement.key_and_name(content_type);
                writer = Some(ObjectWriter::new(bucket, key, content_type, name));
            }
            let Some(writer) = writer.as_mut() else {
                continue;
            };
            // A whole first part waits for more: it may be the whole file.
            while buffer.len() >= PART_BYTES && (writer.is_multipart() || !ended) {
                writer
                    .upload_part(buffer.drain(..PART_BYTES).collect())
                    .await?;
            }
            if ended {
                return writer.finish(std::mem::take(&mut buffer)).await;
            }
        }
    }
    .await;
    if let Err(err) = result {
        if let Some(writer) = &writer {
            writer.abandon().await;
        }
        return Err(err);
    }
    let writer = writer.expect("a body that ends names its object first");
    Ok(Stored {
        key: writer.key,
        content_type: writer.content_type,
        name: writer.name,
        size: total,
    })
}

/// The answer's status and declared size, checked before its body is read.
fn admit(response: &reqwest::Response, limits: Limits) -> Result<(), FetchError> {
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(FetchError::Transient(format!("the URL answered {status}")));
    }
    if !status.is_success() {
        return Err(FetchError::Permanent(format!("the URL answered {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > limits.max_bytes)
    {
        return Err(too_large(limits.max_bytes));
    }
    if let Some(n) = response.content_length().filter(|n| *n > limits.room) {
        return Err(beyond_quota(&format!("{n} bytes"), limits));
    }
    Ok(())
}

fn beyond_quota(size: &str, limits: Limits) -> FetchError {
    FetchError::Permanent(format!(
        "the file ({size}) would exceed your storage quota of {} bytes",
        limits.quota_bytes
    ))
}

fn too_large(max: u64) -> FetchError {
    FetchError::Permanent(format!("the file is larger than the {max} bytes allowed"))
}

fn transient(err: impl std::fmt::Display) -> FetchError {
    FetchError::Transient(err.to_string())
}

fn classify_request_error(err: reqwest::Error) -> FetchError {
    if let Some(blocked) = blocked_cause(&err) {
        return FetchError::Permanent(blocked.to_string());
    }
    if err.is_redirect() {
        return FetchError::Permanent("the URL redirects too often".into());
    }
    if err.is_builder() {
        return FetchError::Permanent("the URL cannot be fetched".into());
    }
    // Timeouts, refused or reset connections, DNS failures: maybe later.
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "no connection"
    } else {
        "transfer failed"
    };
    FetchError::Transient(format!("the URL could not be fetched ({kind})"))
}

/// An object written as it streams in: one PUT when it ends within its
/// first part, else a multipart upload, created with the first part.
struct ObjectWriter<'a> {
    bucket: &'a Bucket,
    key: String,
    content_type: &'static str,
    name: String,
    /// The upload id and the parts so far, once multipart.
    multipart: Option<(String, Vec<ClientPart>)>,
}

impl<'a> ObjectWriter<'a> {
    fn new(bucket: &'a Bucket, key: String, content_type: &'static str, name: String) -> Self {
        Self {
            bucket,
            key,
            content_type,
            name,
            multipart: None,
        }
    }

    fn is_multipart(&self) -> bool {
        self.multipart.is_some()
    }

    async fn upload_part(&mut self, bytes: Vec<u8>) -> Result<(), FetchError> {
        if self.multipart.is_none() {
            let disposition = attachment_disposition(&self.name);
            let id = self
                .bucket
                .create_multipart(&self.key, self.content_type, &disposition, None)
                .await
                .map_err(transient)?;
            self.multipart = Some((id, Vec::new()));
        }
        let (upload_id, parts) = self.multipart.as_mut().expect("created above");
        let part_number = parts.len() as u32 + 1;
        let etag = self
            .bucket
            .upload_part(&self.key, upload_id, part_number, bytes)
            .await
            .map_err(transient)?;
        parts.push(ClientPart { part_number, etag });
        Ok(())
    }

    /// Stores what is left: the whole object, or the last part and the
    /// completion.
    async fn finish(&mut self, rest: Vec<u8>) -> Result<(), FetchError> {
        if self.multipart.is_none() {
            let disposition = Some(attachment_disposition(&self.name));
            return self
                .bucket
                .put(&self.key, rest, self.content_type, disposition)
                .await
                .map_err(transient);
        }
        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        let (upload_id, parts) = self.multipart.as_ref().expect("multipart");
        let done = self
            .bucket
            .complete(&self.key, upload_id, parts, CompleteChecks::default())
            .await
            .map_err(transient)?;
        match done {
            Completion::Completed { .. } => Ok(()),
            other => Err(FetchError::Transient(format!(
                "S3 did not assemble the file: {other:?}"
            ))),
        }
    }

    /// A fetch that failed midway leaves no multipart upload behind.
    async fn abandon(&self) {
        if let Some((upload_id, _)) = &self.multipart
            && let Err(e) = self.bucket.abort(&self.key, upload_id).await
        {
            tracing::warn!(key = self.key, error = %e, "abandoned download left to the lifecycle rule");
        }
    }
}
