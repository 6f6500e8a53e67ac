//! DynamoDB stream event sources, locally: the table's stream in the
//! emulator is read (GetRecords, every 100 ms per open shard) and handed to
//! the function in batches as Lambda's event source mapping would — the
//! template's `FilterCriteria` applied first, `BatchSize` at most, partial
//! batch failures honoured (the batch is sent again from the first failed
//! record), and a record that keeps failing skipped after
//! `MaximumRetryAttempts`. Records are reshaped where moto differs from
//! what Lambda delivers (empty images, the time's format, the source ARN).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::streams::DynamoDbEventResponse;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::template::StreamSource;

/// A function that takes stream batches.
pub type StreamConsumer = Arc<
    dyn Fn(
            Value,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = DynamoDbEventResponse> + Send>>
        + Send
        + Sync,
>;

/// How often an open shard is read when it had nothing new.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The DynamoDB Streams JSON API of the emulator (moto routes by the
/// target; it checks no signature).
struct StreamsApi {
    http: reqwest::Client,
    endpoint: String,
}

impl StreamsApi {
    async fn call(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "X-Amz-Target",
                format!("DynamoDBStreams_20120810.{operation}"),
            )
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            anyhow::bail!("{operation}: {status} {body}");
        }
        Ok(body)
    }

    /// The shards still open.
    async fn open_shards(&self, stream_arn: &str) -> anyhow::Result<Vec<String>> {
        let described = self
            .call("DescribeStream", json!({ "StreamArn": stream_arn }))
            .await?;
        Ok(described
            .pointer("/StreamDescription/Shards")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|shard| {
                shard
                    .pointer("/SequenceNumberRange/EndingSequenceNumber")
                    .is_none()
            })
            .filter_map(|shard| shard.get("ShardId").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// Up to 1,000 records of a shard from a position.
    async fn records(
        &self,
        stream_arn: &str,
        shard: &str,
        position: &Position,
    ) -> anyhow::Result<Vec<Value>> {
        let mut request = json!({"StreamArn": stream_arn, "ShardId": shard});
        match position {
            Position::Start => request["ShardIteratorType"] = json!("TRIM_HORIZON"),
            Position::At { sequence, .. } => {
                request["ShardIteratorType"] = json!("AT_SEQUENCE_NUMBER");
                request["SequenceNumber"] = json!(sequence);
            }
        }
        let iterator = self.call("GetShardIterator", request).await?;
        let iterator = iterator
            .get("ShardIterator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let out = self
            .call(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": 1000}),
            )
            .await?;
        Ok(out
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }
}

/// Where the pump is in a shard: the last record it read.
///
/// Each read starts with a fresh iterator at that record, checked by its
/// event id, rather than following `NextShardIterator`: moto numbers stream
/// records by their position, so when a cancelled transaction's records
/// are taken back out (`local/moto_runner.py`) the next write reuses a
/// sequence number, and another id at the position means it is news.
#[derive(Debug, Clone, PartialEq)]
enum Position {
    Start,
    At { sequence: String, event_id: String },
}

fn field<'a>(record: &'a Value, pointer: &str) -> &'a str {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The records read from `position` that are new, and where reading
/// stands after them.
fn news(position: &Position, read: Vec<Value>) -> (Vec<Value>, Position) {
    let mut read = read;
    if let Position::At { event_id, .. } = position
        && read
            .first()
            .is_some_and(|r| field(r, "/eventID") == event_id)
    {
        read.remove(0);
    }
    let next = match read.last() {
        Some(last) => Position::At {
            sequence: field(last, "/dynamodb/SequenceNumber").to_owned(),
            event_id: field(last, "/eventID").to_owned(),
        },
        None => position.clone(),
    };
    (read, next)
}

/// A record as Lambda hands it over.
fn as_lambda_delivers(mut record: Value, stream_arn: &str) -> Value {
    if let Some(change) = record.get_mut("dynamodb").and_then(Value::as_object_mut) {
        // moto writes `{}` for the image an INSERT or REMOVE does not have.
        for image in ["OldImage", "NewImage"] {
            if change
                .get(image)
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
            {
                change.remove(image);
            }
        }
        // Lambda: seconds since the epoch, as a number. moto writes a
        // naive UTC ISO time (`2026-12-06T01:48:55.116000`).
        if let Some(Value::String(at)) = change.get("ApproximateCreationDateTime") {
            let utc = at.replace(' ', "T").replace("+00:00", "");
            let seconds = time::OffsetDateTime::parse(
                &format!("{}Z", utc.trim_end_matches('Z')),
                &time::format_description::well_known::Rfc3339,
            )
            .map_or(0, |t| t.unix_timestamp());
            change.insert("ApproximateCreationDateTime".into(), json!(seconds));
        }
    }
    record["eventVersion"] = json!("1.1");
    record["eventSourceARN"] = json!(stream_arn);
    record
}

/// Whether `value` matches an event filter `pattern` (the subset Lambda
/// filters use here: nested objects, lists of alternatives, exact values,
/// `prefix`, `exists` and `anything-but`).
pub fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, inner)| matches(inner, value.and_then(|v| v.get(name)))),
        Value::Array(alternatives) => alternatives.iter().any(|alt| match alt {
            Value::Object(rule) => {
                if let Some(Value::String(prefix)) = rule.get("prefix") {
                    value
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.starts_with(prefix.as_str()))
                } else if let Some(Value::Bool(wanted)) = rule.get("exists") {
                    value.is_some() == *wanted
                } else if let Some(excluded) = rule.get("anything-but") {
                    let excluded = match excluded {
                        Value::Array(list) => list.clone(),
                        one => vec![one.clone()],
                    };
                    value.is_some_and(|v| !excluded.contains(v))
                } else {
                    false
                }
            }
            exact => value == Some(exact),
        }),
        exact => value == Some(exact),
    }
}

/// Positions a pump at the end of `source`'s stream as it is now (as
/// `StartingPosition: LATEST`), before the stack is handed out, so no write
/// a caller makes after start can fall before it; then reads it and feeds
/// its function, for ever.
pub async fn spawn_stream_pump(
    emulator_endpoint: String,
    source: StreamSource,
    consumer: StreamConsumer,
    timeout: Duration,
) -> anyhow::Result<JoinHandle<()>> {
    let api = StreamsApi {
        http: reqwest::Client::builder().no_proxy().build()?,
        endpoint: emulator_endpoint,
    };
    let mut positions = Vec::new();
    for shard in api.open_shards(&source.stream_arn).await? {
        let mut position = Position::Start;
        loop {
            let read = api.records(&source.stream_arn, &shard, &position).await?;
            let (news, next) = news(&position, read);
            position = next;
            if news.is_empty() {
                break;
            }
        }
        positions.push((shard, position));
    }
    Ok(tokio::spawn(async move {
        let mut pending: VecDeque<Value> = VecDeque::new();
        let mut attempts = 0u32;
        loop {
            for (shard, position) in &mut positions {
                match api.records(&source.stream_arn, shard, position).await {
                    Ok(read) => {
                        let (news, next) = news(position, read);
                        *position = next;
                        for record in news {
                            let record = as_lambda_delivers(record, &source.stream_arn);
                            let wanted = source.filters.is_empty()
                                || source.filters.iter().any(|f| matches(f, Some(&record)));
                            if wanted {
                                pending.push_back(record);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "GetRecords failed"),
                }
            }
            if pending.is_empty() {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            let batch: Vec<Value> = pending
                .iter()
                .take(source.batch_size.max(1))
                .cloned()
                .collect();
            let sequence_of = |r: &Value| {
                r.pointer("/dynamodb/SequenceNumber")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            // A timeout, or a failure naming no record of the batch, fails
            // the whole batch, as Lambda takes it.
            let answer = tokio::time::timeout(timeout, consumer(json!({ "Records": batch }))).await;
            let failed_at = match answer {
                Err(_) => Some(0),
                Ok(response) => response
                    .batch_item_failures
                    .iter()
                    .map(|f| {
                        f.item_identifier
                            .as_deref()
                            .and_then(|id| {
                                batch
                                    .iter()
                                    .position(|r| sequence_of(r).as_deref() == Some(id))
                            })
                            .unwrap_or(0)
                    })
                    .min(),
            };
            match failed_at {
                None => {
                    pending.drain(..batch.len());
                    attempts = 0;
                }
                Some(at) => {
                    // What came before the failed record is done.
                    pending.drain(..at);
                    if at > 0 {
                        attempts = 0;
                    }
                    attempts += 1;
                    if attempts > source.max_retries {
                        let skipped = pending.pop_front();
                        tracing::warn!(
                            function = source.function,
                            sequence = skipped.as_ref().and_then(sequence_of),
                            "stream record skipped after its retries"
                        );
                        attempts = 0;
                    } else {
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_lambda_s() {
        let pattern = json!({"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "ASSET#"}]}}}});
        let asset = json!({"dynamodb": {"Keys": {"sk": {"S": "ASSET#01J"}}}});
        let quota = json!({"dynamodb": {"Keys": {"sk": {"S": "QUOTA"}}}});
        assert!(matches(&pattern, Some(&asset)));
        assert!(!matches(&pattern, Some(&quota)));
        assert!(matches(
            &json!({"eventName": ["INSERT", "MODIFY"]}),
            Some(&json!({"eventName": "MODIFY"}))
        ));
        assert!(!matches(
            &json!({"eventName": ["INSERT"]}),
            Some(&json!({"eventName": "REMOVE"}))
        ));
        assert!(matches(
            &json!({"a": [{"exists": false}]}),
            Some(&json!({}))
        ));
        assert!(matches(
            &json!({"a": [{"anything-but": ["x"]}]}),
            Some(&json!({"a": "y"}))
        ));
    }

    #[test]
    fn records_are_reshaped_as_lambda_delivers_them() {
        let record = json!({"eventName": "INSERT", "dynamodb": {
            "ApproximateCreationDateTime": "2026-12-06 01:48:55.116000+00:00",
            "NewImage": {"pk": {"S": "a"}}, "OldImage": {}, "SequenceNumber": "11"}});
        let out = as_lambda_delivers(record, "arn:stream");
        assert!(out["dynamodb"].get("OldImage").is_none());
        assert_eq!(
            out["dynamodb"]["ApproximateCreationDateTime"],
            1_796_521_735
        );
        assert_eq!(out["eventSourceARN"], "arn:stream");
        let on_the_wire =
            json!({"dynamodb": {"ApproximateCreationDateTime": "2026-12-06T01:48:55.116000"}});
        let out = as_lambda_delivers(on_the_wire, "arn:stream");
        assert_eq!(
            out["dynamodb"]["ApproximateCreationDateTime"],
            1_796_521_735
        );
    }
}
