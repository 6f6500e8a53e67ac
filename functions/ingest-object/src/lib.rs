//! ingest-object (SPEC §3.6), invoked by S3 `ObjectCreated` events on
//! `uploads/`: `describe` is the pure core (event keys, types from bytes,
//! image description and thumbnail); `ingest` reads one object and finishes
//! its asset; [`handle`] runs an event's records a few at a time and fails
//! the invocation when any record should be retried, so Lambda's
//! asynchronous retries (twice, then the DLQ) run it again — harmless for
//! the records already done, which then change nothing.

pub mod describe;
pub mod webm;
pub mod ingest;
pub use describe::{
    ImageFacts, NotDescribed, THUMBNAIL_MAX_PX, decode_event_key, describe_image, sniff,
};
pub use ingest::{Ingestor, Outcome};

use std::sync::Arc;

use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::uploads::flow::UploadEnv;
use aws_lambda_events::s3::S3Event;
use futures_util::StreamExt;

/// Records ingested at once.
const CONCURRENCY: usize = 4;

impl Ingestor {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            env: UploadEnv::from_settings(settings, sdk)?,
        })
    }
}

/// One S3 event: `Err` names the records to retry.
pub async fn handle(ingestor: &Arc<Ingestor>, event: S3Event) -> Result<(), String> {
    let outcomes: Vec<(String, Outcome)> = futures_util::stream::iter(event.records)
        .map(|record| {
            let ingestor = ingestor.clone();
            async move {
                let key = record.s3.object.key.clone().unwrap_or_default();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                // A clock ahead of ours is no age at all.
                let age = (now - record.event_time.timestamp()).max(0);
                let outcome = ingestor
                    .ingest_event(&key, record.s3.object.e_tag.as_deref(), Some(age))
                    .await;
                (key, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut retry = Vec::new();
    for (key, outcome) in outcomes {
        match &outcome {
            Outcome::Retry(reason) => {
                tracing::warn!(key, reason, "ingestion to retry");
                retry.push(key);
            }
            other => tracing::info!(key, outcome = ?other, "ingested"),
        }
    }
    if retry.is_empty() {
        Ok(())
    } else {
        Err(format!("to retry: {}", retry.join(", ")))
    }
}
