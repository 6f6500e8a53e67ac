//! The runner of every SQS-fed function: a per-message handler with a typed
//! outcome becomes Lambda's partial batch response, so one failing message
//! is retried alone and the rest of its batch is not delivered again.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (or nothing left to do): SQS deletes it.
    Done,
    /// Might work later: SQS delivers it again after its visibility
    /// timeout, and moves it to the DLQ after `maxReceiveCount`.
    Retry(String),
    /// Never will (not a message of ours): deleted, with the reason logged.
    Drop(String),
}

/// A message's JSON body as `T`; `None` when it has none or it is not one
/// (a message to drop).
pub fn json_body<T: serde::de::DeserializeOwned>(record: &SqsMessage) -> Option<T> {
    record
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
}

/// Runs `handle` on each record, `concurrency` at a time, and reports the
/// ones to retry as batch item failures (the function's event source
/// mapping must have `ReportBatchItemFailures`).
pub async fn run_sqs_batch<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let outcomes: Vec<(Option<String>, Outcome)> = futures_util::stream::iter(event.records)
        .map(|record| {
            let id = record.message_id.clone();
            let handled = handle(record);
            async move { (id, handled.await) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in outcomes {
        match outcome {
            Outcome::Done => {}
            Outcome::Drop(reason) => {
                tracing::error!(message_id = ?id, reason, "message dropped");
            }
            Outcome::Retry(reason) => {
                tracing::warn!(message_id = ?id, reason, "message will be retried");
                // A record without an id cannot be reported alone: SQS always
                // sets one, so this is only a malformed test event.
                if let Some(id) = id {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body.to_owned());
        message
    }

    #[tokio::test]
    async fn only_the_messages_to_retry_are_reported() {
        let mut event = SqsEvent::default();
        event.records = vec![
            message("a", "done"),
            message("b", "retry"),
            message("c", "drop"),
            message("d", "retry"),
        ];
        let response = run_sqs_batch(event, 2, |m| async move {
            match m.body.as_deref() {
                Some("retry") => Outcome::Retry("later".into()),
                Some("drop") => Outcome::Drop("not ours".into()),
                _ => Outcome::Done,
            }
        })
        .await;
        let mut failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        failed.sort();
        assert_eq!(failed, ["b", "d"]);
    }
}
