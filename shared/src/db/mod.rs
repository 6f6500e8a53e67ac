//! The DynamoDB adapter: the single table of [`keys`], its errors and the
//! building blocks every domain's `store.rs` writes with (items, conditional
//! writes, transactions and what their refusals mean, pages). Items are
//! converted with `serde_dynamo`; key attributes are added by the stores.
//! Knows no domain: it is below all of them.

pub mod keys;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::pagination::StringKey;

/// One page read from the table and the position after it.
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next: Option<StringKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, connection failures: worth a retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Failed(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            StoreError::Failed(cause) => ApiError::internal(cause),
        }
    }
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

pub(crate) fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        _ => false,
    };
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if retryable {
        StoreError::Unavailable(text)
    } else {
        StoreError::Failed(text)
    }
}

pub(crate) fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

/// Whether a conditional write happened: `false` when its condition failed.
pub(crate) fn condition_held<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(store_error(err)),
    }
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute, or NULL (how `serde_dynamo` stores `None`).
pub(crate) fn s_or_null(v: Option<impl Into<String>>) -> AttributeValue {
    v.map(s).unwrap_or(AttributeValue::Null(true))
}

/// A number attribute, or NULL.
pub(crate) fn n_or_null(v: Option<impl std::fmt::Display>) -> AttributeValue {
    v.map(n).unwrap_or(AttributeValue::Null(true))
}

/// A request builder's result, its error as a store failure.
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Failed(e.to_string()))
}

/// The item a conditional `UpdateItem` (with `ALL_NEW`) wrote, or `None`
/// when its condition (the item exists) failed.
pub(crate) fn updated_record<T: DeserializeOwned, R: std::fmt::Debug>(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
    >,
    what: &str,
) -> Result<Option<T>, StoreError> {
    match result {
        Ok(out) => out
            .attributes
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(|e| StoreError::Failed(format!("reading {what}: {e}"))),
        Err(err) if is_condition_failure(&err) => Ok(None),
        Err(err) => Err(store_error(err)),
    }
}

/// The table and a client for it.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An entity's attributes plus its keys.
    pub(crate) fn item<T: Serialize>(
        entity: &str,
        record: &T,
        keys: &[(&str, String)],
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record)
            .map_err(|e| StoreError::Failed(format!("serialising {entity}: {e}")))?;
        for (name, value) in keys {
            item.insert((*name).to_owned(), AttributeValue::S(value.clone()));
        }
        item.insert(
            keys::ENTITY.to_owned(),
            AttributeValue::S(entity.to_owned()),
        );
        Ok(item)
    }

    /// Writes an item that must not exist yet (a fresh id cannot clash, so a
    /// refusal is a bug, reported as a store error).
    pub(crate) async fn insert_new(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// One item by its primary key, strongly consistent: callers act on the
    /// state they read (status transitions, ownership).
    pub(crate) async fn get_record<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(Self::primary_key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(|e| StoreError::Failed(format!("reading {what}: {e}")))
    }

    /// Runs a built conditional update: whether its condition held.
    pub(crate) async fn run_update(
        &self,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<bool, StoreError> {
        let update = built(update.build())?;
        condition_held(
            self.client()
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
                .await,
        )
    }

    /// Items by primary key, strongly consistent, in BatchGetItems of at
    /// most 100 keys; keys DynamoDB hands back unprocessed are asked again
    /// a few times. Missing items are simply absent; the order is not kept.
    pub(crate) async fn get_items(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut keys_left = chunk.to_vec();
            for _attempt in 0..8 {
                if keys_left.is_empty() {
                    break;
                }
                let request = built(
                    aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut keys_left)))
                        .consistent_read(true)
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.name)
                        .unwrap_or_default(),
                );
                keys_left = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.name)
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !keys_left.is_empty() {
                return Err(StoreError::Unavailable("reads left unprocessed".into()));
            }
        }
        Ok(found)
    }

    /// Sets `fields` on an existing item (names and values bound, never
    /// spliced into the expression) and returns it; `None` when there is no
    /// such item.
    pub(crate) async fn update_existing<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        what: &str,
        fields: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<T>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(Self::primary_key(pk, sk)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .return_values(ReturnValue::AllNew);
        let mut sets = Vec::with_capacity(fields.len());
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#f{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#f{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        updated_record(result, what)
    }

    /// A newest-first Query of the GSI1 partition `pk` for items whose GSI1
    /// sort key starts with `prefix` (a parent's children of one kind).
    pub(crate) fn gsi1_children(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.name)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_names("#sk", keys::GSI1_SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .scan_index_forward(false)
    }

    pub(crate) fn primary_key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (keys::PK.to_owned(), AttributeValue::S(pk)),
            (keys::SK.to_owned(), AttributeValue::S(sk)),
        ])
    }

    /// Runs a query for one page. Asks for one item more than the page so the
    /// last page is known as such (no trailing empty page); when DynamoDB stops
    /// early at its 1 MB cap, its own LastEvaluatedKey is the position.
    pub(crate) async fn query_page<T: DeserializeOwned>(
        &self,
        query: QueryFluentBuilder,
        limit: u32,
        after: Option<StringKey>,
        key_names: &[&str],
    ) -> Result<Listing<T>, StoreError> {
        let page = self.query_items(query, limit, after, key_names).await?;
        let items = serde_dynamo::from_items(page.items)
            .map_err(|e| StoreError::Failed(format!("reading page: {e}")))?;
        Ok(Listing {
            items,
            next: page.next,
        })
    }

    /// Every item of a partition, page after page (for partitions that
    /// stay small, such as a project's live subscribers).
    pub(crate) async fn whole_partition(
        &self,
        pk: String,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let query = self
                .client()
                .query()
                .table_name(self.name())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":pk", s(pk.clone()));
            let page = self
                .query_items(query, 500, after, &[keys::PK, keys::SK])
                .await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// [`Self::query_page`] with the items as stored (keys included).
    pub(crate) async fn query_items(
        &self,
        query: QueryFluentBuilder,
        limit: u32,
        after: Option<StringKey>,
        key_names: &[&str],
    ) -> Result<Listing<HashMap<String, AttributeValue>>, StoreError> {
        let out = query
            .limit(limit as i32 + 1)
            .set_exclusive_start_key(after.as_ref().map(key_to_attributes))
            .send()
            .await
            .map_err(store_error)?;
        let mut items = out.items.unwrap_or_default();
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items
                .last()
                .and_then(|item| attributes_to_key(item, key_names))
        } else {
            out.last_evaluated_key
                .as_ref()
                .and_then(|k| attributes_to_key(k, key_names))
        };
        Ok(Listing { items, next })
    }
}

/// The key attributes of a GSI1 position (index keys, then the table's).
pub(crate) const GSI1_KEYS: &[&str] = &[keys::GSI1_PK, keys::GSI1_SK, keys::PK, keys::SK];

/// Why a transaction did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The file is not in the state the write expected (raced or retried).
    StateChanged,
    QuotaExceeded,
    /// The parent box no longer exists.
    ParentGone,
}

/// The reason codes of a cancelled transaction, one per item.
fn cancellation_codes(
    err: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>,
) -> Option<Vec<String>> {
    match err {
        SdkError::ServiceError(service) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(e) => Some(
                e.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

/// What each item of a transaction means when its condition fails.
pub(crate) type Meanings = Vec<Refusal>;

impl Table {
    /// Runs a transaction. A failed condition becomes the refusal `meanings`
    /// gives that item (items without one mean [`Refusal::StateChanged`]);
    /// a clash with a concurrent transaction is a `StateChanged` too, so
    /// callers re-read and retry or answer 409.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        meanings: Meanings,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(Ok(()));
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(store_error(err));
        };
        if let Some(index) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
            let mut meanings = meanings;
            return Ok(Err(if index < meanings.len() {
                meanings.swap_remove(index)
            } else {
                Refusal::StateChanged
            }));
        }
        if codes.iter().any(|c| c == "TransactionConflict") {
            return Ok(Err(Refusal::StateChanged));
        }
        Err(store_error(err))
    }

    /// A Put of an item that must not exist yet.
    pub(crate) fn put_new(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(self.name())
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", keys::PK)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .build())
    }
}

pub fn key_to_attributes(key: &StringKey) -> HashMap<String, AttributeValue> {
    key.iter()
        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
        .collect()
}

/// Extracts `names` from an item (or a LastEvaluatedKey). `None` when one is
/// missing or not a string, which would mean the index design was broken.
pub fn attributes_to_key(
    item: &HashMap<String, AttributeValue>,
    names: &[&str],
) -> Option<StringKey> {
    names
        .iter()
        .map(|name| match item.get(*name) {
            Some(AttributeValue::S(v)) => Some(((*name).to_owned(), v.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_round_trip() {
        let attrs = key_to_attributes(&StringKey::from([
            ("pk".to_owned(), "USER#alice".to_owned()),
            ("sk".to_owned(), "PROJECT#01J".to_owned()),
        ]));
        assert_eq!(
            attributes_to_key(&attrs, &["pk", "sk"]).unwrap(),
            StringKey::from([
                ("pk".to_owned(), "USER#alice".to_owned()),
                ("sk".to_owned(), "PROJECT#01J".to_owned())
            ])
        );
        assert!(attributes_to_key(&attrs, &["pk", "gsi1pk"]).is_none());
    }
}
