//! cleanup: consumes the cleanup queue (SPEC §2, §3.7). The scheduler's
//! message starts a run, which fans out into one step message per task and
//! part; each step claims its record (a duplicate does nothing), handles one
//! page of items within its time budget, queues its follow-up when more
//! remains, and reports what it did as one log line and as CloudWatch
//! Embedded Metric Format metrics. A step whose page could not be read is
//! retried through SQS (partial batch failures; the queue's DLQ bounds it),
//! a step no run could have queued (bad time or part) is dropped;
//! an item that fails is counted, left on its index and tried again by the
//! next run, never looped on within this one.

use std::sync::Arc;
use std::time::Instant;

use assetbox_shared::cleanup::{CleanupMessage, CleanupPolicy, Counts, Step, Task, first_steps};
use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::db::Table;
use assetbox_shared::db::keys::DUE_SHARDS;
use assetbox_shared::generation::provider::TaskCanceller;
use assetbox_shared::lambda::{Outcome, json_body, run_sqs_batch};
use assetbox_shared::s3::Bucket;
use assetbox_shared::{aws, cleanup, clock};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

mod tasks;

use tasks::{Parts, Retry};

/// Messages of one batch handled at once (each step works its own page
/// with [`CleanupPolicy::concurrency`] items at a time).
const CONCURRENCY: usize = 2;

pub struct Cleaner {
    table: Table,
    bucket: Bucket,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    policy: CleanupPolicy,
    canceller: TaskCanceller,
}

impl Cleaner {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Table::new(
                aws::dynamodb(sdk),
                config::required(settings, vars::TABLE_NAME)?,
            ),
            bucket: Bucket::new(
                aws::s3(sdk),
                config::required(settings, vars::MEDIA_BUCKET)?,
            ),
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: config::required(settings, vars::CLEANUP_QUEUE_URL)?,
            policy: CleanupPolicy::from_settings(settings)?,
            canceller: TaskCanceller::new(
                sdk,
                config::flag(settings, vars::IMPORT_ALLOW_PRIVATE_NETWORKS),
            ),
        })
    }

    pub async fn handle(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        run_sqs_batch(event, CONCURRENCY, |record| async move {
            self.process(&record).await
        })
        .await
    }

    async fn process(&self, record: &SqsMessage) -> Outcome {
        let Some(message) = json_body::<CleanupMessage>(record) else {
            return Outcome::Drop("not a cleanup message".into());
        };
        let message_id = record.message_id.as_deref().unwrap_or("unknown");
        let result = match message {
            CleanupMessage::ScheduledRun {
                scheduled_time,
                tasks,
            } => {
                self.start_run(scheduled_time.as_deref(), tasks, message_id)
                    .await
            }
            CleanupMessage::Step(step) => match step.checked_time(DUE_SHARDS) {
                Ok(as_of) => self.run_step(step, as_of, message_id).await,
                Err(why) => return Outcome::Drop(why),
            },
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(reason) => Outcome::Retry(reason),
        }
    }

    /// Queues the first step of every part of every task. Sending them
    /// again (a redelivered or duplicated run message) is harmless: each
    /// step's record lets only one message work it.
    async fn start_run(
        &self,
        scheduled_time: Option<&str>,
        tasks: Option<Vec<Task>>,
        message_id: &str,
    ) -> Result<(), Retry> {
        let now = clock::now();
        // One run per firing: the scheduled time names it, so the same
        // firing delivered twice is the same run.
        let (run, as_of) = match cleanup::run_time(scheduled_time, now) {
            Some(at) => (scheduled_time.unwrap_or_default().to_owned(), at),
            None => (message_id.to_owned(), now),
        };
        // With retention off, its steps would only find nothing.
        let tasks: Vec<Task> = tasks
            .unwrap_or_else(|| cleanup::HOURLY.to_vec())
            .into_iter()
            .filter(|&task| self.policy.runs(task))
            .collect();
        let steps = first_steps(&run, &clock::rfc3339(as_of), &tasks, DUE_SHARDS);
        self.send(&steps).await?;
        tracing::info!(run, steps = steps.len(), "cleanup run started");
        Ok(())
    }

    /// Works one step: claim, one page, follow-up, record.
    async fn run_step(
        &self,
        step: Step,
        as_of: time::OffsetDateTime,
        message_id: &str,
    ) -> Result<(), Retry> {
        let now = clock::now();
        let claimed = self
            .table
            .claim_cleanup_step(
                &step,
                message_id,
                &clock::rfc3339(now),
                now.unix_timestamp(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !claimed {
            tracing::info!(
                run = step.run,
                task = step.task.as_str(),
                part = step.part,
                "cleanup step already taken: duplicate skipped"
            );
            return Ok(());
        }
        let started = Instant::now();
        let parts = Parts {
            table: &self.table,
            bucket: &self.bucket,
            policy: &self.policy,
            canceller: &self.canceller,
        };
        let (counts, next) = tasks::work(parts, &step, as_of, started).await?;
        if let Some(after) = &next {
            let follow_up = Step {
                after: Some(after.clone()),
                ..step.clone()
            };
            self.send(std::slice::from_ref(&follow_up)).await?;
        }
        self.table
            .finish_cleanup_step(&step, counts, next.is_some(), &clock::rfc3339(clock::now()))
            .await
            .map_err(|e| e.to_string())?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            run = step.run,
            task = step.task.as_str(),
            part = step.part,
            found = counts.found,
            done = counts.done,
            skipped = counts.skipped,
            failed = counts.failed,
            follow_up = next.is_some(),
            elapsed_ms,
            "cleanup step"
        );
        // EMF: CloudWatch turns this stdout line into metrics.
        println!(
            "{}",
            metrics_line(step.task, counts, elapsed_ms, clock::now())
        );
        Ok(())
    }

    /// Queues steps, ten to a SendMessageBatch.
    async fn send(&self, steps: &[Step]) -> Result<(), Retry> {
        for (batch, chunk) in steps.chunks(10).enumerate() {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, step) in chunk.iter().enumerate() {
                let body = serde_json::to_string(&CleanupMessage::Step(step.clone()))
                    .map_err(|e| e.to_string())?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("s{batch}-{i}"))
                        .message_body(body)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "queueing cleanup steps: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            if let Some(failed) = out.failed().first() {
                return Err(format!(
                    "queueing cleanup steps: {} refused ({})",
                    out.failed().len(),
                    failed.message().unwrap_or(failed.code())
                ));
            }
        }
        Ok(())
    }
}

/// One step's counts as a CloudWatch Embedded Metric Format line
/// (namespace `assetbox/cleanup`, dimension `Task`).
pub fn metrics_line(
    task: Task,
    counts: Counts,
    elapsed_ms: u64,
    at: time::OffsetDateTime,
) -> String {
    let metric = |name: &str, unit: &str| serde_json::json!({ "Name": name, "Unit": unit });
    serde_json::json!({
        "_aws": {
            "Timestamp": (at.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": "assetbox/cleanup",
                "Dimensions": [["Task"]],
                "Metrics": [
                    metric("Found", "Count"),
                    metric("Done", "Count"),
                    metric("Skipped", "Count"),
                    metric("Failed", "Count"),
                    metric("StepDuration", "Milliseconds"),
                ],
            }],
        },
        "Task": task.as_str(),
        "Found": counts.found,
        "Done": counts.done,
        "Skipped": counts.skipped,
        "Failed": counts.failed,
        "StepDuration": elapsed_ms,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_line_is_embedded_metric_format() {
        let counts = Counts {
            found: 5,
            done: 3,
            skipped: 1,
            failed: 1,
        };
        let at = time::OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(&metrics_line(Task::ExpireUploads, counts, 42, at)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_764_000_000_000i64);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Task"]]));
        // Every metric the directive names is a member of the line.
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} missing");
        }
        assert_eq!(line["Task"], "expire-uploads");
        assert_eq!(
            (line["Found"].as_u64(), line["Failed"].as_u64()),
            (Some(5), Some(1))
        );
    }
}
