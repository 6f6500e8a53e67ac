//! Projects and boxes in the table. Every write that changes a project's
//! `box_order` is conditional on the list as it was read, so concurrent
//! creates, moves and deletes cannot lose or duplicate an entry; the caller
//! retries on [`Refusal::StateChanged`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};

use super::{BoxRecord, ProjectRecord};
use crate::db::keys::{self, prefix};
use crate::db::{Listing, Refusal, StoreError, Table, built, condition_held, n, s, s_or_null};
use crate::pagination::StringKey;

/// The storage a projects handler needs. Implemented for DynamoDB in
/// this module; handlers are generic over it.
pub trait ProjectStore: Clone + Send + Sync + 'static {
    /// Writes a new project; fails if the id exists (it never should: ULIDs).
    fn insert_project(
        &self,
        project: &ProjectRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_project(
        &self,
        owner: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<ProjectRecord>, StoreError>> + Send;

    /// Newest first.
    fn list_projects(
        &self,
        owner: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> impl Future<Output = Result<Listing<ProjectRecord>, StoreError>> + Send;

    /// `None` when the caller has no such project.
    fn rename_project(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        updated_at: &str,
    ) -> impl Future<Output = Result<Option<ProjectRecord>, StoreError>> + Send;

    /// `false` when the caller has no such project, or it has boxes.
    fn delete_project(
        &self,
        owner: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The owner's boxes with these ids, in the order given (ids that name
    /// no box are skipped).
    fn get_boxes(
        &self,
        owner: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<BoxRecord>, StoreError>> + Send;
}

const BASE_KEYS: &[&str] = &[keys::PK, keys::SK];

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
            .client()
            .query()
            .table_name(self.name())
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
            .client()
            .delete_item()
            .table_name(self.name())
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
        let keys = ids
            .iter()
            .map(|id| Self::primary_key(keys::user_pk(owner), keys::box_sk(id)))
            .collect();
        let mut found: HashMap<String, BoxRecord> = HashMap::with_capacity(ids.len());
        for item in self.get_items(keys).await? {
            let record: BoxRecord = serde_dynamo::from_item(item)
                .map_err(|e| StoreError::Failed(format!("reading box: {e}")))?;
            found.insert(record.id.clone(), record);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

impl Table {
    pub(crate) fn box_count_change(
        &self,
        owner: &str,
        box_id: &str,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(self.name())
                    .key(keys::PK, s(keys::user_pk(owner)))
                    .key(keys::SK, s(keys::box_sk(box_id)))
                    .update_expression("ADD assets_count :one")
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", keys::PK)
                    .expression_attribute_values(":one", n(delta))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .build())
    }

    pub async fn get_box(&self, owner: &str, id: &str) -> Result<Option<BoxRecord>, StoreError> {
        self.get_record(keys::user_pk(owner), keys::box_sk(id), "box")
            .await
    }
}

fn list(ids: &[String]) -> AttributeValue {
    AttributeValue::L(ids.iter().map(|id| s(id.clone())).collect())
}

impl Table {
    /// The project's new order, written only if the order is still `before`.
    fn order_change(
        &self,
        project: &ProjectRecord,
        after: &[String],
        now: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&project.owner)))
            .key(keys::SK, s(keys::project_sk(&project.id)))
            .update_expression("SET box_order = :after, boxes_count = :count, updated_at = :now")
            .expression_attribute_values(":after", list(after))
            .expression_attribute_values(":count", AttributeValue::N(after.len().to_string()))
            .expression_attribute_values(":now", s(now));
        update = if project.box_order.is_empty() {
            // A project written before boxes existed has no list at all.
            update
                .condition_expression(
                    "attribute_exists(#pk) AND (attribute_not_exists(box_order) OR size(box_order) = :zero)",
                )
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        } else {
            update
                .condition_expression("box_order = :before")
                .expression_attribute_values(":before", list(&project.box_order))
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    fn box_item(record: &BoxRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
        Self::item(
            "box",
            record,
            &[
                (keys::PK, keys::user_pk(&record.owner)),
                (keys::SK, keys::box_sk(&record.id)),
                (keys::GSI1_PK, keys::project_children_pk(&record.project)),
                (keys::GSI1_SK, keys::box_sk(&record.id)),
            ],
        )
    }

    /// Writes a new box and the project's order with it in place.
    pub async fn create_box(
        &self,
        project: &ProjectRecord,
        record: &BoxRecord,
        order_after: &[String],
    ) -> Result<Result<(), Refusal>, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.name())
            .set_item(Some(Self::box_item(record)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK);
        let items = vec![
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            self.order_change(project, order_after, &record.created_at)?,
        ];
        self.transact(items, vec![]).await
    }

    /// A new order of the same boxes.
    pub async fn reorder_boxes(
        &self,
        project: &ProjectRecord,
        order_after: &[String],
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        self.transact(vec![self.order_change(project, order_after, now)?], vec![])
            .await
    }

    /// Deletes the box item and takes it out of the order, together;
    /// conditional on the box still holding the `assets_count` read (every
    /// asset added or removed moves it in the same transaction), so the
    /// caller knows exactly how many assets the box took with it.
    pub async fn delete_box(
        &self,
        project: &ProjectRecord,
        record: &BoxRecord,
        order_after: &[String],
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let delete = Delete::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&record.owner)))
            .key(keys::SK, s(keys::box_sk(&record.id)))
            .condition_expression("attribute_exists(#pk) AND assets_count = :count")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":count", n(record.assets_count));
        let items = vec![
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build(),
            self.order_change(project, order_after, now)?,
        ];
        self.transact(items, vec![]).await
    }

    /// Sets a box's name and/or headliner (`Some(None)` clears it); `None`
    /// when there is no such box.
    pub async fn update_box(
        &self,
        owner: &str,
        id: &str,
        name: Option<&str>,
        headliner: Option<Option<&str>>,
        now: &str,
    ) -> Result<Option<BoxRecord>, StoreError> {
        let mut fields = vec![("updated_at", s(now))];
        if let Some(name) = name {
            fields.push(("name", s(name)));
        }
        if let Some(headliner) = headliner {
            fields.push(("headliner_asset", s_or_null(headliner)));
        }
        self.update_existing(keys::user_pk(owner), keys::box_sk(id), "box", fields)
            .await
    }

    /// Makes `asset_id` the box's headliner (and sets `name` when given) in
    /// one transaction with a check that the asset is still one of this box:
    /// a delete of the asset racing this makes one of the two fail, never a
    /// headliner that points at nothing. `ParentGone` when the box is gone,
    /// `StateChanged` when the asset is (or is in another box).
    pub async fn set_headliner(
        &self,
        owner: &str,
        box_id: &str,
        asset_id: &str,
        name: Option<&str>,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::box_sk(box_id)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":headliner", s(asset_id))
            .expression_attribute_values(":now", s(now));
        let mut expression = String::from("SET headliner_asset = :headliner, updated_at = :now");
        if let Some(name) = name {
            expression.push_str(", #name = :name");
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        let check = ConditionCheck::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::asset_sk(asset_id)))
            // The asset's `box` attribute (a reserved word in expressions).
            .condition_expression("#box = :box")
            .expression_attribute_names("#box", "box")
            .expression_attribute_values(":box", s(box_id));
        let items = vec![
            TransactWriteItem::builder()
                .update(built(update.update_expression(expression).build())?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(built(check.build())?)
                .build(),
        ];
        self.transact(items, vec![Refusal::ParentGone, Refusal::StateChanged])
            .await
    }

    /// Clears a box's headliner if it is still `asset_id` (the asset is being
    /// deleted); a headliner set to another asset meanwhile stays.
    pub async fn clear_headliner_if(
        &self,
        owner: &str,
        box_id: &str,
        asset_id: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::box_sk(box_id)))
            .update_expression("SET headliner_asset = :null, updated_at = :now")
            .condition_expression("headliner_asset = :asset")
            .expression_attribute_values(":asset", s(asset_id))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        condition_held(result)
    }
}

impl Table {
    pub(crate) fn box_exists_check(
        &self,
        owner: &str,
        box_id: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(self.name())
                    .key(keys::PK, s(keys::user_pk(owner)))
                    .key(keys::SK, s(keys::box_sk(box_id)))
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", keys::PK)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .build())
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
        (
            Table::new(aws_sdk_dynamodb::Client::from_conf(config), "t"),
            captured,
        )
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
