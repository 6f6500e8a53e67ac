//! status-push: reads the table's stream (new and old images, filtered at
//! the event source to asset items) and sends each change a subscriber
//! sees to every connection that follows the asset's project, with
//! `PostToConnection`. A connection API Gateway no longer has (410) is
//! forgotten. A send that fails otherwise fails its record: the batch
//! reports it (partial batch failures) and Lambda retries from there, so
//! delivery is at least once; a record that cannot be read is logged and
//! skipped, never retried for ever.

use std::collections::HashMap;

use assetbox_shared::assets::AssetRecord;
use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::db::Table;
use assetbox_shared::db::keys;
use assetbox_shared::live::{self, LiveEvent, Subscriber};
use assetbox_shared::{aws, clock};
use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use serde_json::Value;

/// Sends to the subscribers of one change at once.
const SENDS_AT_ONCE: usize = 16;

pub struct Pusher {
    table: Table,
    connections: aws_sdk_apigatewaymanagement::Client,
}

/// What one record asks for: its event and the owner whose connections
/// may see it; `None` when it is not news (or not an asset).
type Change = Option<(String, LiveEvent)>;

/// How one send went.
enum Sent {
    Delivered,
    Gone,
    Failed(String),
}

impl Pusher {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let endpoint = config::required(settings, vars::LIVE_ENDPOINT)?;
        let connections = aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
                .endpoint_url(endpoint)
                .build(),
        );
        Ok(Self {
            table: Table::new(
                aws::dynamodb(sdk),
                config::required(settings, vars::TABLE_NAME)?,
            ),
            connections,
        })
    }

    /// Pushes the batch's changes in stream order. The first record whose
    /// push fails is reported; Lambda retries it and everything after it.
    pub async fn handle(&self, event: Value) -> DynamoDbEventResponse {
        let records = match event {
            Value::Object(mut event) => match event.remove("Records") {
                Some(Value::Array(records)) => records,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let now = clock::now().unix_timestamp();
        // Subscribers read once per project per batch.
        let mut followers: HashMap<String, Vec<Subscriber>> = HashMap::new();
        let mut response = DynamoDbEventResponse::default();
        for raw in records {
            let sequence = raw
                .pointer("/dynamodb/SequenceNumber")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let change = match serde_json::from_value::<EventRecord>(raw) {
                Ok(record) => change_of(record),
                Err(e) => {
                    tracing::warn!(error = %e, sequence, "stream record skipped: unreadable");
                    None
                }
            };
            let Some((owner, event)) = change else {
                continue;
            };
            if let Err(reason) = self.push(&owner, &event, now, &mut followers).await {
                tracing::warn!(
                    asset = event.asset_id,
                    reason,
                    "push failed; retried from here"
                );
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }

    async fn push(
        &self,
        owner: &str,
        event: &LiveEvent,
        now: i64,
        followers: &mut HashMap<String, Vec<Subscriber>>,
    ) -> Result<(), String> {
        if !followers.contains_key(&event.project) {
            let found = self
                .table
                .subscribers(&event.project, now)
                .await
                .map_err(|e| e.to_string())?;
            followers.insert(event.project.clone(), found);
        }
        let connections: Vec<String> = followers[&event.project]
            .iter()
            // Subscribing checked the project is the owner's; a push never
            // crosses owners even if an item says otherwise.
            .filter(|s| s.owner == owner)
            .map(|s| s.connection_id.clone())
            .collect();
        if connections.is_empty() {
            return Ok(());
        }
        let data = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let sends = connections.into_iter().map(|connection| {
            let data = data.clone();
            async move {
                let sent = self.send(&connection, data).await;
                (connection, sent)
            }
        });
        let outcomes: Vec<(String, Sent)> = futures_util::stream::iter(sends)
            .buffer_unordered(SENDS_AT_ONCE)
            .collect()
            .await;
        let mut failure = None;
        for (connection, sent) in outcomes {
            match sent {
                Sent::Delivered => {}
                Sent::Gone => {
                    // The subscription directly too: one made after the
                    // connection's item was last read is not on it.
                    let forgotten = match self.table.close_connection(&connection).await {
                        Ok(()) => {
                            self.table
                                .forget_subscription(&event.project, &connection)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = forgotten {
                        tracing::warn!(connection, error = %e, "gone connection not forgotten");
                    }
                    if let Some(list) = followers.get_mut(&event.project) {
                        list.retain(|s| s.connection_id != connection);
                    }
                }
                Sent::Failed(reason) => failure = Some(format!("{connection}: {reason}")),
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn send(&self, connection: &str, data: Vec<u8>) -> Sent {
        match self
            .connections
            .post_to_connection()
            .connection_id(connection)
            .data(Blob::new(data))
            .send()
            .await
        {
            Ok(_) => Sent::Delivered,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PostToConnectionError::GoneException(_)) =>
            {
                Sent::Gone
            }
            Err(e) => Sent::Failed(
                aws_sdk_apigatewaymanagement::error::DisplayErrorContext(e).to_string(),
            ),
        }
    }
}

/// An asset item's image, if the record has one.
fn asset_of(image: serde_dynamo::Item) -> Option<AssetRecord> {
    if image.is_empty() {
        return None;
    }
    match serde_dynamo::from_item(image) {
        Ok(asset) => Some(asset),
        Err(e) => {
            tracing::warn!(error = %e, "an asset image that does not read as an asset");
            None
        }
    }
}

/// The event of a stream record, with the owner whose connections may see
/// it.
pub fn change_of(record: EventRecord) -> Change {
    let sk = record.change.keys.get(keys::SK)?;
    let is_asset =
        matches!(sk, serde_dynamo::AttributeValue::S(sk) if sk.starts_with(keys::prefix::ASSET));
    if !is_asset {
        return None;
    }
    let sequence = record.change.sequence_number?;
    let old = asset_of(record.change.old_image);
    let new = asset_of(record.change.new_image);
    let event = live::event_of(old.as_ref(), new.as_ref(), live::version_of(&sequence))?;
    let owner = new.or(old)?.owner;
    Some((owner, event))
}
