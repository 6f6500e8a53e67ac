//! The DynamoDB adapter: the single table of [`crate::keys`] behind the store
//! ports. Items are converted with `serde_dynamo`; key attributes are added
//! here and nowhere else.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::boxes::BoxRecord;
use crate::error::ApiError;
use crate::keys::{self, prefix};
use crate::pagination::{StringKey, attributes_to_key, key_to_attributes};
use crate::projects::{ProjectRecord, ProjectStore};

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
        let items = serde_dynamo::from_items(items)
            .map_err(|e| StoreError::Failed(format!("reading page: {e}")))?;
        Ok(Listing { items, next })
    }
}

const BASE_KEYS: &[&str] = &[keys::PK, keys::SK];
/// The key attributes of a GSI1 position (index keys, then the table's).
pub(crate) const GSI1_KEYS: &[&str] = &[keys::GSI1_PK, keys::GSI1_SK, keys::PK, keys::SK];

impl ProjectStore for Table {
    async fn insert_project(&self, project: &ProjectRecord) -> Result<(), StoreError> {
        let item = Self::item(
            "project",
            project,
            &[
                (keys::PK, keys::user_pk(&project.owner)),
                (keys::SK, keys::project_sk(&project.id)),
            ],
        )?;
        self.insert_new(item).await
    }

    async fn get_project(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        // Consistent like every record read: a project just created is
        // found, and a reorder never starts from a stale box order.
        self.get_record(keys::user_pk(owner), keys::project_sk(id), "project")
            .await
    }

    async fn list_projects(
        &self,
        owner: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<ProjectRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::user_pk(owner)))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix::PROJECT.to_owned()))
            // A project just created is listed.
            .consistent_read(true)
            .scan_index_forward(false);
        self.query_page(query, limit, after, BASE_KEYS).await
    }

    async fn rename_project(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        updated_at: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        self.update_existing(
            keys::user_pk(owner),
            keys::project_sk(id),
            "project",
            vec![
                ("name", AttributeValue::S(name.to_owned())),
                ("updated_at", AttributeValue::S(updated_at.to_owned())),
            ],
        )
        .await
    }

    async fn delete_project(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(Self::primary_key(
                keys::user_pk(owner),
                keys::project_sk(id),
            )))
            // Never orphan boxes: only a project without boxes goes.
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(box_order) OR size(box_order) = :zero)",
            )
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        condition_held(result)
    }

    async fn get_boxes(&self, owner: &str, ids: &[String]) -> Result<Vec<BoxRecord>, StoreError> {
        let mut found: HashMap<String, BoxRecord> = HashMap::with_capacity(ids.len());
        // BatchGetItem takes 100 keys; DynamoDB may hand some back unprocessed.
        for chunk in ids.chunks(100) {
            let mut keys_left: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|id| Self::primary_key(keys::user_pk(owner), keys::box_sk(id)))
                .collect();
            for _attempt in 0..8 {
                if keys_left.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys_left)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.name)
                    .unwrap_or_default()
                {
                    let record: BoxRecord = serde_dynamo::from_item(item)
                        .map_err(|e| StoreError::Failed(format!("reading box: {e}")))?;
                    found.insert(record.id.clone(), record);
                }
                keys_left = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.name)
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !keys_left.is_empty() {
                return Err(StoreError::Unavailable("boxes left unprocessed".into()));
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

#[cfg(test)]
mod consistency_tests {
    //! The emulator is always consistent, so these check what we send
    //! DynamoDB: the request as it leaves the SDK.
    use super::*;
    use aws_credential_types::Credentials;
    use aws_smithy_http_client::test_util::capture_request;

    fn capturing_table() -> (
        Table,
        aws_smithy_http_client::test_util::CaptureRequestReceiver,
    ) {
        let (http, captured) = capture_request(None);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http)
            .build();
        (Table::new(Client::from_conf(config), "t"), captured)
    }

    fn body(
        captured: aws_smithy_http_client::test_util::CaptureRequestReceiver,
    ) -> serde_json::Value {
        let request = captured.expect_request();
        serde_json::from_slice(request.body().bytes().expect("a buffered body")).unwrap()
    }

    #[tokio::test]
    async fn projects_are_read_and_listed_consistently() {
        let (table, captured) = capturing_table();
        let _ = table.get_project("u1", "01J").await;
        assert_eq!(body(captured)["ConsistentRead"], true);
        let (table, captured) = capturing_table();
        let _ = table.list_projects("u1", 10, None).await;
        assert_eq!(body(captured)["ConsistentRead"], true);
    }
}
