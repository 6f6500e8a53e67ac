//! S3 → function delivery, locally. moto can notify an SQS queue of created
//! objects but not invoke a function, and its records are not what real S3
//! sends (see `../shared/notes/local-emulator.md`). So each `Type: S3` event
//! of the template becomes: a private queue that the bucket notifies, and a
//! pump that hands the function the records real S3 would have sent —
//! asynchronously, as S3 invokes Lambda:
//!
//! - the key URL-encoded as S3 does (`+` for spaces, `/` kept; moto escapes
//!   `/` as `%2F`);
//! - `userIdentity`, `requestParameters` and `responseElements` present;
//! - `eventTime` in UTC with its `Z`;
//! - one event per object: moto announces a completed multipart upload twice
//!   (`Put`, then `CompleteMultipartUpload`), real S3 once — the `Put` whose
//!   ETag has a part count (`-N`) is dropped.
//!
//! A failed invocation is retried twice like Lambda's asynchronous retries
//! (after 1 s and 2 s here instead of about 1 and 2 minutes), then logged as
//! sent to the function's failure destination.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::template::S3Source;

/// A function that takes S3 events (as S3 invokes it, asynchronously).
pub type S3Consumer =
    Arc<dyn Fn(S3Event) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Creates the private queue of each source and points its bucket at them
/// (one notification configuration per bucket, as S3 has). The queue URL of
/// each source, in order.
pub async fn connect(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    stack_name: &str,
    sources: &[S3Source],
) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    let mut by_bucket: std::collections::BTreeMap<&str, Vec<QueueConfiguration>> =
        Default::default();
    for source in sources {
        let name = format!("{stack_name}-local-s3-{}", source.function);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .context("creating the S3 event queue")?
            .queue_url
            .context("queue url")?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .context("queue arn")?;
        let mut config = QueueConfiguration::builder().queue_arn(arn);
        for event in &source.events {
            config = config.events(Event::from(event.as_str()));
        }
        if let Some(prefix) = &source.prefix {
            config = config.filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(
                                FilterRule::builder()
                                    .name(FilterRuleName::Prefix)
                                    .value(prefix)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            );
        }
        by_bucket
            .entry(source.bucket.as_str())
            .or_default()
            .push(config.build()?);
        urls.push(url);
    }
    for (bucket, queues) in by_bucket {
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(queues))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("notifications of bucket {bucket}"))?;
    }
    Ok(urls)
}

/// S3's encoding of a key in an event: form-encoded per segment (`+` for a
/// space), `/` kept.
fn s3_event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// One moto record as real S3 would have sent it; `None` for moto's extra
/// `Put` announcement of a completed multipart upload.
pub fn as_real_s3(mut record: Value) -> Option<Value> {
    let etag = record
        .pointer("/s3/object/eTag")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name == "ObjectCreated:Put" && etag.contains('-') {
        return None;
    }
    if let Some(raw) = record.pointer("/s3/object/key").and_then(Value::as_str) {
        let stored = percent_decode_plus(raw);
        record["s3"]["object"]["key"] = json!(s3_event_key(&stored));
    }
    if let Some(time) = record.get("eventTime").and_then(Value::as_str)
        && !time.ends_with('Z')
        && !time.contains('+')
    {
        record["eventTime"] = json!(format!("{time}Z"));
    }
    let object = record.as_object_mut()?;
    object
        .entry("userIdentity")
        .or_insert_with(|| json!({ "principalId": "AWS:LOCALSTACKUSER" }));
    object
        .entry("requestParameters")
        .or_insert_with(|| json!({ "sourceIPAddress": "127.0.0.1" }));
    object.entry("responseElements").or_insert_with(
        || json!({ "x-amz-request-id": ulid::Ulid::new().to_string(), "x-amz-id-2": "local" }),
    );
    Some(record)
}

fn percent_decode_plus(raw: &str) -> String {
    form_urlencoded::parse(format!("k={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Long-polls a source's queue and invokes the function per notification.
pub fn spawn_pump(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    function: String,
    consumer: S3Consumer,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let messages = crate::pumps::receive(&sqs, &queue_url, 10).await;
            for message in messages {
                let records: Vec<Value> = message
                    .body()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .and_then(|v| v.get("Records").and_then(Value::as_array).cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(as_real_s3)
                    .collect();
                if !records.is_empty() {
                    match serde_json::from_value::<S3Event>(json!({ "Records": records })) {
                        Ok(event) => {
                            let consumer = consumer.clone();
                            let function = function.clone();
                            // S3 invokes asynchronously: don't hold the queue.
                            tokio::spawn(invoke_async(consumer, event, function));
                        }
                        Err(e) => tracing::error!(error = %e, "not an S3 event"),
                    }
                }
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .ok();
                }
            }
        }
    })
}

/// One asynchronous invocation with Lambda's two retries.
async fn invoke_async(consumer: S3Consumer, event: S3Event, function: String) {
    for (attempt, pause) in [0u64, 1, 2].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_secs(pause)).await;
        match consumer(event.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(function, attempt, error = %e, "S3 event failed"),
        }
    }
    tracing::error!(
        function,
        "S3 event failed 3 times: to the failure destination"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_records_become_what_s3_sends() {
        let moto = json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-23T10:00:00.000000", "eventName": "ObjectCreated:Put",
            "s3": { "s3SchemaVersion": "1.0", "configurationId": "c",
                    "bucket": { "name": "b", "arn": "arn:aws:s3:::b" },
                    "object": { "key": "uploads%2Fu%2Fmy%20file%2B1.png", "size": 3, "eTag": "abc", "versionId": "", "sequencer": "1" } }
        });
        let real = as_real_s3(moto).unwrap();
        assert_eq!(real["s3"]["object"]["key"], "uploads/u/my+file%2B1.png");
        assert_eq!(real["eventTime"], "2026-11-23T10:00:00.000000Z");
        let event: S3Event = serde_json::from_value(json!({ "Records": [real] })).unwrap();
        assert_eq!(event.records.len(), 1);

        let duplicate = json!({ "eventName": "ObjectCreated:Put",
            "s3": { "object": { "key": "k", "eTag": "abc-2" } } });
        assert!(as_real_s3(duplicate).is_none());
        let completed = json!({ "eventName": "ObjectCreated:CompleteMultipartUpload",
            "s3": { "object": { "key": "k", "eTag": "abc-2" } } });
        assert!(as_real_s3(completed).is_some());
    }
}
