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

use std::sync::Arc;

use assetbox_shared::assets::AssetStatus;
use assetbox_shared::clock;
use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::db::Refusal;
use assetbox_shared::download::{self, FetchError, Limits, Placement, Stored};
use assetbox_shared::imports::ImportRequest;
use assetbox_shared::lambda::{Outcome, json_body, run_sqs_batch};
use assetbox_shared::media::AssetType;
use assetbox_shared::uploads;
use assetbox_shared::uploads::flow::UploadEnv;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// Receives of one message before the asset fails instead of retrying.
pub const MAX_ATTEMPTS: u32 = 3;
/// Records of one batch fetched at once.
const CONCURRENCY: usize = 4;

pub struct Importer {
    env: UploadEnv,
    http: reqwest::Client,
    allow_private: bool,
}

impl Importer {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let allow_private = config::flag(settings, vars::IMPORT_ALLOW_PRIVATE_NETWORKS);
        let http = download::guarded_client(allow_private, "assetbox-import/1").map_err(|e| {
            ConfigError::Invalid {
                key: vars::IMPORT_ALLOW_PRIVATE_NETWORKS,
                reason: e.to_string(),
            }
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
        let Some(request) = json_body::<ImportRequest>(record) else {
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
            .record_fetched_object(&asset, self.env.policy.quota_bytes)
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
        let used = self
            .env
            .table
            .quota_used(&request.owner)
            .await
            .map_err(|e| FetchError::Transient(e.to_string()))?;
        let policy = &self.env.policy;
        let limits = Limits {
            max_bytes: policy.max_file_bytes,
            room: policy.quota_bytes.saturating_sub(used),
            quota_bytes: policy.quota_bytes,
        };
        let placement = ImportPlacement {
            env: &self.env,
            request,
        };
        download::fetch_into_bucket(
            &self.http,
            self.allow_private,
            &self.env.bucket,
            &request.url,
            limits,
            &placement,
        )
        .await
    }
}

/// An import's object: its asset's key, named after the URL's path.
struct ImportPlacement<'a> {
    env: &'a UploadEnv,
    request: &'a ImportRequest,
}

impl Placement for ImportPlacement<'_> {
    fn sniff(&self, head: &[u8]) -> Result<&'static str, String> {
        self.env
            .policy
            .media_type_of(head)
            .map_err(|not| not.to_string())
    }

    fn key_and_name(&self, content_type: &'static str) -> (String, String) {
        let key = uploads::object_key(&self.request.owner, &self.request.asset_id, content_type);
        let name = reqwest::Url::parse(&self.request.url)
            .map(|url| file_name_of(&url, &key))
            .unwrap_or_else(|_| "import.bin".into());
        (key, name)
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
