//! What AWS does between services, locally: EventBridge Scheduler sending a
//! schedule's input to its SQS target, and SQS event source mappings handing
//! batches to functions. The S3 → function delivery joins here with the
//! ingestion function.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::template::{Resolved, Template};

/// One `AWS::Scheduler::Schedule` with an SQS target.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub queue_url: String,
    pub input: String,
    pub every: Duration,
}

/// `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)`. Cron expressions are not
/// emulated (none is declared).
pub fn parse_rate(expression: &str) -> anyhow::Result<Duration> {
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| anyhow!("only rate(...) schedules run locally, not {expression}"))?;
    let (amount, unit) = inner
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("bad rate {expression}"))?;
    let amount: u64 = amount.parse()?;
    let seconds = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => bail!("unknown rate unit {other}"),
    };
    Ok(Duration::from_secs(amount * seconds))
}

/// The template's schedules, their SQS targets resolved to queue URLs.
/// `every` replaces every rate locally (so a developer need not wait an hour).
pub fn schedules(
    template: &Template,
    resolved: &Resolved,
    every: Option<Duration>,
) -> anyhow::Result<Vec<Schedule>> {
    let mut out = Vec::new();
    for (id, schedule) in template.of_type("AWS::Scheduler::Schedule") {
        let props = resolved
            .resolve(template, schedule.get("Properties").unwrap_or(&Value::Null))
            .map_err(|e| anyhow!("{id}: {e:?}"))?;
        // As EventBridge Scheduler: a DISABLED schedule does not fire.
        if props.get("State").and_then(Value::as_str) == Some("DISABLED") {
            tracing::info!(schedule = id, "schedule disabled");
            continue;
        }
        let arn = props
            .pointer("/Target/Arn")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let queue = resolved
            .attrs
            .iter()
            .find(|((_, attr), value)| attr == "Arn" && value.as_str() == arn)
            .map(|((res, _), _)| res.clone())
            .ok_or_else(|| anyhow!("{id}: target {arn} is not a queue of this template"))?;
        let rate = parse_rate(
            props
                .get("ScheduleExpression")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )?;
        out.push(Schedule {
            name: id.clone(),
            queue_url: resolved.refs[&queue].clone(),
            input: props
                .pointer("/Target/Input")
                .and_then(Value::as_str)
                .unwrap_or("{}")
                .to_owned(),
            every: every.unwrap_or(rate),
        });
    }
    Ok(out)
}

/// Sends each schedule's input to its queue at its rate, first after one period.
pub fn spawn_schedules(sqs: aws_sdk_sqs::Client, schedules: Vec<Schedule>) -> Vec<JoinHandle<()>> {
    schedules
        .into_iter()
        .map(|schedule| {
            let sqs = sqs.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(schedule.every);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let sent = sqs
                        .send_message()
                        .queue_url(&schedule.queue_url)
                        .message_body(scheduled_input(&schedule.input, time::OffsetDateTime::now_utc()))
                        .send()
                        .await;
                    match sent {
                        Ok(_) => tracing::info!(schedule = schedule.name, "schedule fired"),
                        Err(e) => tracing::warn!(schedule = schedule.name, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "schedule failed to fire"),
                    }
                }
            })
        })
        .collect()
}

/// A schedule's input as EventBridge Scheduler sends it: the context
/// attribute `<aws.scheduler.scheduled-time>` replaced by the firing's time
/// (RFC 3339, whole seconds, UTC).
pub fn scheduled_input(input: &str, at: time::OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    input.replace("<aws.scheduler.scheduled-time>", &at)
}

/// A function that consumes SQS batches, as an event source mapping with
/// `ReportBatchItemFailures` calls it.
pub type SqsConsumer = Arc<
    dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = anyhow::Result<SqsBatchResponse>> + Send>>
        + Send
        + Sync,
>;

/// One long poll of a queue (2 s); nothing after a failed receive, which is
/// logged and paced so a dead emulator does not spin.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    batch_size: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(batch_size.clamp(1, 10))
        .wait_time_seconds(2)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await;
    match received {
        Ok(out) => out.messages.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}

/// Pollers per SQS event source: Lambda's event source mapping for a
/// standard queue starts with five concurrent batches.
pub const SQS_POLLERS: usize = 5;

/// Long-polls `queue_url` and hands each batch to `consumer` like Lambda's
/// event source mapping: messages the consumer reports as failed, or all of
/// them when it errors, stay on the queue and come back after the visibility
/// timeout (and reach the DLQ after `maxReceiveCount`); the rest are deleted.
pub fn spawn_sqs_pump(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    batch_size: i32,
    consumer: SqsConsumer,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let messages = receive(&sqs, &queue_url, batch_size).await;
            if messages.is_empty() {
                continue;
            }
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let attributes: serde_json::Map<String, Value> = m
                        .attributes()
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "messageId": m.message_id(),
                        "receiptHandle": m.receipt_handle(),
                        "body": m.body(),
                        "md5OfBody": m.md5_of_body(),
                        "attributes": attributes,
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": queue_arn,
                        "awsRegion": crate::provision::REGION,
                    })
                })
                .collect();
            let event: SqsEvent = match serde_json::from_value(json!({ "Records": records })) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(error = %e, "could not build an SQS event");
                    continue;
                }
            };
            let failed: HashSet<String> = match consumer(event).await {
                Ok(response) => response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
                Err(e) => {
                    tracing::warn!(queue_url, error = %e, "consumer failed the whole batch");
                    continue;
                }
            };
            let done: Vec<DeleteMessageBatchRequestEntry> = messages
                .iter()
                .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            if !done.is_empty()
                && let Err(e) = sqs
                    .delete_message_batch()
                    .queue_url(&queue_url)
                    .set_entries(Some(done))
                    .send()
                    .await
            {
                tracing::warn!(queue_url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("rate(1 hour)").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_rate("rate(5 minutes)").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_rate("rate(2 days)").unwrap(),
            Duration::from_secs(172_800)
        );
        assert!(parse_rate("cron(0 * * * ? *)").is_err());
        assert!(parse_rate("rate(1 fortnight)").is_err());
    }

    #[test]
    fn the_scheduled_time_is_filled_in() {
        let at = time::OffsetDateTime::from_unix_timestamp(1_764_928_800).unwrap()
            + Duration::from_millis(250);
        assert_eq!(
            scheduled_input(
                r#"{"kind":"scheduled-run","scheduled_time":"<aws.scheduler.scheduled-time>"}"#,
                at
            ),
            r#"{"kind":"scheduled-run","scheduled_time":"2025-12-05T10:00:00Z"}"#
        );
    }
}
