//! generation-poll: consumes the generation queue (SPEC §2). Each message
//! is one step of one generation — a resubmit after a refusal that queued
//! nothing, a scheduled poll, or a wake-up from a callback — run by
//! [`GenerationEnv::handle`]: the provider is asked, and the job moves on
//! by conditional writes (a duplicate or out-of-order message changes
//! nothing), the next poll is queued with a growing delay, and on success
//! the results are stored in S3 for ingestion. A step that could not finish
//! (the provider or AWS unavailable) is retried through SQS (partial batch
//! failures); the queue's DLQ and the deadline bound it.

use std::sync::Arc;

use assetbox_shared::ai::PollMessage;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::generation::flow::GenerationEnv;
use assetbox_shared::lambda::{Outcome, json_body, run_sqs_batch};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// Messages of one batch handled at once.
const CONCURRENCY: usize = 4;

pub struct Poller {
    env: GenerationEnv,
}

impl Poller {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            env: GenerationEnv::from_settings(settings, sdk)?,
        })
    }

    pub async fn handle(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        run_sqs_batch(event, CONCURRENCY, |record| async move {
            self.process(&record).await
        })
        .await
    }

    async fn process(&self, record: &SqsMessage) -> Outcome {
        let Some(message) = json_body::<PollMessage>(record) else {
            return Outcome::Drop("not a generation message".into());
        };
        match self.env.handle(&message).await {
            Ok(()) => Outcome::Done,
            Err(reason) => {
                let (_, generation) = message.generation();
                Outcome::Retry(format!("generation {generation}: {reason}"))
            }
        }
    }
}
