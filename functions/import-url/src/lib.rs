//! import-url: consumes the import queue (SPEC §3.4 "Import by URL"). For
//! each request it fetches the URL into S3 under the asset's key and moves
//! the asset from `PENDING` to `PROCESSING` (ingestion describes it), or to
//! `FAILED` with a reason a user can act on.
//!
//! - **Network guard**: only `https` (and `http` where
//!   `IMPORT_ALLOW_PRIVATE_NETWORKS=true`, the local stack). Every address the
//!   host resolves to must be public — not loopback, private, link-local
//!   (the instance metadata service), CGNAT, multicast or reserved. The check
//!   lives in the client's DNS resolver, so it also covers redirects (at most
//!   5) and the connection uses exactly the addresses checked (no DNS
//!   rebinding); IP-literal hosts are checked before each request.
//! - **Bounded memory**: the body streams into S3 in 8 MiB parts (one
//!   PutObject when it fits in one), never held whole; larger than
//!   `MAX_UPLOAD_BYTES` is refused as it arrives.
//! - **Type from the bytes**: the first bytes must be an allowed image or
//!   video, whatever the URL or its Content-Type say.
//! - **Idempotent**: the key is the asset's, and finishing is a conditional
//!   write on `PENDING` together with the quota, so a duplicated message
//!   changes nothing twice. Transient failures (network, 5xx, 429) are
//!   retried through SQS (batch item failures) up to [`MAX_ATTEMPTS`]
//!   receives, then the asset fails with the last reason.

mod guard;

use std::sync::Arc;

use assetbox_shared::assets::AssetStatus;
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings, vars};
use assetbox_shared::db::Refusal;
use assetbox_shared::imports::ImportRequest;
use assetbox_shared::lambda::{Outcome, run_sqs_batch};
use assetbox_shared::media::AssetType;
use assetbox_shared::s3::checksum::ClientPart;
use assetbox_shared::s3::presign::attachment_disposition;
use assetbox_shared::s3::{Bucket, CompleteChecks, Completion};
use assetbox_shared::uploads;
use assetbox_shared::uploads::flow::UploadEnv;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// Receives of one message before the asset fails instead of retrying.
pub const MAX_ATTEMPTS: u32 = 3;
/// Part size of streamed imports (and the most held in memory at once).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Records of one batch fetched at once.
const CONCURRENCY: usize = 4;

pub struct Importer {
    env: UploadEnv,
    http: reqwest::Client,
    allow_private: bool,
}

/// Why a fetch did not give an object.
#[derive(Debug)]
enum FetchError {
    /// Retrying will not help; the asset fails with this reason.
    Permanent(String),
    /// Might work later (network, 5xx, 429, S3 unavailable).
    Transient(String),
}

/// The object as stored.
struct Stored {
    key: String,
    content_type: &'static str,
    name: String,
    size: u64,
}

impl Importer {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let allow_private = settings
            .get(vars::IMPORT_ALLOW_PRIVATE_NETWORKS)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let http = guard::client(allow_private).map_err(|e| ConfigError::Invalid {
            key: vars::IMPORT_ALLOW_PRIVATE_NETWORKS,
            reason: e.to_string(),
        })?;
        Ok(Self {
            env: UploadEnv::from_settings(settings, sdk)?,
            http,
            allow_private,
        })
    }

    /// One SQS batch; the messages to retry come back as item failures.
    pub async fn handle(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        run_sqs_batch(event, CONCURRENCY, |record| async move {
            self.process(&record).await
        })
        .await
    }

    /// Handles one message.
    async fn process(&self, record: &SqsMessage) -> Outcome {
        let Some(request) = record
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<ImportRequest>(b).ok())
        else {
            return Outcome::Drop("not an import request".into());
        };
        let attempt: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        match self.import(&request, attempt).await {
            Ok(false) => Outcome::Done,
            Ok(true) => Outcome::Retry(format!(
                "import of asset {} failed (attempt {attempt}); the asset says why",
                request.asset_id
            )),
            Err(err) => Outcome::Retry(format!("import of asset {}: {err}", request.asset_id)),
        }
    }

    // Long on purpose: every outcome of one import (gone, not pending,
    // fetched, refused for good, to retry, over quota, raced by a duplicate)
    // in one match-by-match flow, so none can be missed.
    async fn import(&self, request: &ImportRequest, attempt: u32) -> Result<bool, String> {
        let table = &self.env.table;
        let Some(pending) = table
            .get_asset(&request.owner, &request.asset_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(false); // deleted meanwhile
        };
        if pending.status != AssetStatus::Pending {
            return Ok(false); // a duplicate finished it
        }
        let now = || clock::rfc3339(clock::now());
        let stored = match self.fetch_into_s3(request).await {
            Ok(stored) => stored,
            Err(FetchError::Transient(reason)) if attempt < MAX_ATTEMPTS => {
                tracing::info!(asset = %request.asset_id, attempt, reason, "import will be retried");
                // The asset stays PENDING but says why, until the retry.
                let note = format!(
                    "attempt {attempt} of {MAX_ATTEMPTS} failed ({reason}); it will be retried"
                );
                table
                    .note_pending_asset(&request.owner, &request.asset_id, &note, &now())
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(true);
            }
            Err(FetchError::Transient(reason) | FetchError::Permanent(reason)) => {
                table
                    .fail_pending_asset(&request.owner, &request.asset_id, &reason, &now())
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(asset = %request.asset_id, reason, "import failed");
                return Ok(false);
            }
        };
        let mut asset = pending.clone();
        asset.status = AssetStatus::Processing;
        asset.asset_type =
            AssetType::of_content_type(stored.content_type).unwrap_or(AssetType::Image);
        asset.content_type = stored.content_type.to_owned();
        asset.s3_key = Some(stored.key.clone());
        asset.name = stored.name;
        asset.size = stored.size;
        asset.quota_bytes = stored.size;
        asset.updated_at = now();
        match table
            .finish_import(&asset, self.env.policy.quota_bytes)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(()) => Ok(false),
            Err(Refusal::QuotaExceeded) => {
                self.env
                    .bucket
                    .delete(&stored.key)
                    .await
                    .map_err(|e| e.to_string())?;
                let reason = format!(
                    "the file ({} bytes) would exceed your storage quota of {} bytes",
                    stored.size, self.env.policy.quota_bytes
                );
                table
                    .fail_pending_asset(&request.owner, &request.asset_id, &reason, &now())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(false)
            }
            Err(_) => {
                // No longer pending: finished by a duplicate (keep the object
                // if it is the one the asset names: a duplicate whose fetch
                // got another type stored under another key) or deleted
                // meanwhile (nothing references it).
                let still = table
                    .get_asset(&request.owner, &request.asset_id)
                    .await
                    .map_err(|e| e.to_string())?;
                if still.is_none_or(|asset| asset.s3_key.as_ref() != Some(&stored.key)) {
                    self.env
                        .bucket
                        .delete(&stored.key)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(false)
            }
        }
    }

    async fn fetch_into_s3(&self, request: &ImportRequest) -> Result<Stored, FetchError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|_| FetchError::Permanent("the URL is not valid".into()))?;
        assetbox_shared::imports::check_url(&url, self.allow_private)
            .map_err(|b| FetchError::Permanent(b.to_string()))?;
        let mut response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(classify_request_error)?;
        let room = self.admit(request, &response).await?;
        let max = self.env.policy.max_file_bytes;
        let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut total: u64 = 0;
        let mut writer: Option<ObjectWriter> = None;
        let result: Result<(), FetchError> = async {
            loop {
                let chunk = response.chunk().await.map_err(classify_request_error)?;
                let ended = chunk.is_none();
                if let Some(chunk) = chunk {
                    total += chunk.len() as u64;
                    if total > max {
                        return Err(too_large(max));
                    }
                    if total > room {
                        return Err(self.beyond_quota(format!("more than {room} bytes")));
                    }
                    buffer.extend_from_slice(&chunk);
                }
                if writer.is_none() && (buffer.len() >= 512 || ended) {
                    let content_type = self.sniff(&buffer)?;
                    let key = uploads::object_key(&request.owner, &request.asset_id, content_type);
                    let name = file_name_of(&url, &key);
                    writer = Some(ObjectWriter::new(&self.env.bucket, key, content_type, name));
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

    /// The answer's status and declared size, checked before its body is
    /// read; what the quota has room for now is the most that is fetched
    /// (finishing checks the quota again, atomically, for racing writes).
    async fn admit(
        &self,
        request: &ImportRequest,
        response: &reqwest::Response,
    ) -> Result<u64, FetchError> {
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FetchError::Transient(format!("the URL answered {status}")));
        }
        if !status.is_success() {
            return Err(FetchError::Permanent(format!("the URL answered {status}")));
        }
        let max = self.env.policy.max_file_bytes;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        let used = self
            .env
            .table
            .quota_used(&request.owner)
            .await
            .map_err(transient)?;
        let room = self.env.policy.quota_bytes.saturating_sub(used);
        if let Some(n) = response.content_length().filter(|n| *n > room) {
            return Err(self.beyond_quota(format!("{n} bytes")));
        }
        Ok(room)
    }

    fn beyond_quota(&self, size: String) -> FetchError {
        FetchError::Permanent(format!(
            "the file ({size}) would exceed your storage quota of {} bytes",
            self.env.policy.quota_bytes
        ))
    }

    /// The allowed image or video type the first bytes are.
    fn sniff(&self, head: &[u8]) -> Result<&'static str, FetchError> {
        if head.is_empty() {
            return Err(FetchError::Permanent(
                "the URL answered an empty body".into(),
            ));
        }
        self.env
            .policy
            .media_type_of(head)
            .map_err(|not| FetchError::Permanent(not.to_string()))
    }
}

fn classify_request_error(err: reqwest::Error) -> FetchError {
    if let Some(blocked) = guard::blocked_cause(&err) {
        return FetchError::Permanent(blocked.to_string());
    }
    if err.is_redirect() {
        return FetchError::Permanent("the URL redirects too often".into());
    }
    if err.is_builder() {
        return FetchError::Permanent("the URL cannot be fetched".into());
    }
    // Timeouts, refused or reset connections, DNS failures: maybe later.
    FetchError::Transient(format!(
        "the URL could not be fetched ({})",
        error_kind(&err)
    ))
}

fn error_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "no connection"
    } else {
        "transfer failed"
    }
}

/// A display name from the URL's last path segment, else `import.<ext>`.
fn file_name_of(url: &reqwest::Url, key: &str) -> String {
    let extension = key.rsplit('.').next().unwrap_or("bin");
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .and_then(|s| uploads::file_name(&s).ok())
        .unwrap_or_else(|| format!("import.{extension}"))
}

fn transient(err: impl std::fmt::Display) -> FetchError {
    FetchError::Transient(err.to_string())
}

fn too_large(max: u64) -> FetchError {
    FetchError::Permanent(format!("the file is larger than the {max} bytes allowed"))
}

/// An object written as it streams in: one PUT when it ends within its
/// first part, else a multipart upload of `PART_BYTES` parts, created with
/// the first one.
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
            tracing::warn!(key = self.key, error = %e, "abandoned import upload left to the lifecycle rule");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        let url =
            reqwest::Url::parse("https://cdn.example.com/out/Sz%C3%A8ne%201.png?sig=abc").unwrap();
        assert_eq!(
            file_name_of(&url, "uploads/o/i/original.png"),
            "Szène 1.png"
        );
        let bare = reqwest::Url::parse("https://cdn.example.com/").unwrap();
        assert_eq!(
            file_name_of(&bare, "uploads/o/i/original.jpg"),
            "import.jpg"
        );
    }
}
