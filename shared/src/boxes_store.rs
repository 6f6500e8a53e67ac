//! Boxes and their order in the table. Every write that changes a project's
//! `box_order` is conditional on the list as it was read, so concurrent
//! creates, moves and deletes cannot lose or duplicate an entry; the caller
//! retries on [`Refusal::StateChanged`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};

use crate::assets::AssetRecord;
use crate::boxes::BoxRecord;
use crate::dynamo::{
    GSI1_KEYS, Listing, StoreError, Table, built, condition_held, n, s, s_or_null,
};
use crate::files_store::Refusal;
use crate::keys::{self, prefix};
use crate::pagination::StringKey;
use crate::projects::ProjectRecord;

/// Where an asset list looks.
#[derive(Debug, Clone, Copy)]
pub enum AssetScope<'a> {
    Box(&'a str),
    Project(&'a str),
    Owner,
}

/// The filters of `GET /api/assets/`, checked.
#[derive(Debug, Default, Clone)]
pub struct AssetFilters {
    pub asset_type: Option<crate::assets::AssetType>,
    pub status: Option<crate::assets::AssetStatus>,
    pub is_favorite: Option<bool>,
    /// Matched case-insensitively within the prompt text.
    pub search: Option<String>,
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

    pub async fn get_asset(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<AssetRecord>, StoreError> {
        self.get_record(keys::user_pk(owner), keys::asset_sk(id), "asset")
            .await
    }

    /// A box's assets, newest first.
    pub async fn list_box_assets(
        &self,
        box_id: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<AssetRecord>, StoreError> {
        let query = self.gsi1_children(keys::box_children_pk(box_id), prefix::ASSET);
        self.query_page(query, limit, after, GSI1_KEYS).await
    }

    /// Assets in a scope, newest first, narrowed by filters. Filters apply
    /// after DynamoDB's page limit (a FilterExpression), so a page reads at
    /// most `limit` items: bounded work, possibly a short page with a cursor.
    pub async fn list_assets(
        &self,
        owner: &str,
        scope: AssetScope<'_>,
        filters: &AssetFilters,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<AssetRecord>, StoreError> {
        let (mut query, key_names): (_, &[&str]) = match scope {
            AssetScope::Box(id) => (
                self.gsi1_children(keys::box_children_pk(id), prefix::ASSET),
                GSI1_KEYS,
            ),
            AssetScope::Project(id) => (
                self.client()
                    .query()
                    .table_name(self.name())
                    .index_name(keys::GSI2)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", keys::GSI2_PK)
                    .expression_attribute_names("#sk", keys::GSI2_SK)
                    .expression_attribute_values(":pk", s(keys::project_assets_pk(id)))
                    .expression_attribute_values(":prefix", s(prefix::ASSET))
                    .scan_index_forward(false),
                &[keys::GSI2_PK, keys::GSI2_SK, keys::PK, keys::SK],
            ),
            AssetScope::Owner => (
                self.client()
                    .query()
                    .table_name(self.name())
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", keys::PK)
                    .expression_attribute_names("#sk", keys::SK)
                    .expression_attribute_values(":pk", s(keys::user_pk(owner)))
                    .expression_attribute_values(":prefix", s(prefix::ASSET))
                    .scan_index_forward(false),
                &[keys::PK, keys::SK],
            ),
        };
        // Index partitions are not owner-scoped: say so in the filter too.
        let mut conditions = vec!["#owner = :owner".to_owned()];
        query = query
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner));
        if let Some(kind) = filters.asset_type {
            conditions.push("asset_type = :type".into());
            query = query.expression_attribute_values(":type", s(kind.as_str()));
        }
        if let Some(status) = filters.status {
            conditions.push("#status = :status".into());
            query = query
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()));
        }
        if let Some(favorite) = filters.is_favorite {
            conditions.push("is_favorite = :fav".into());
            query = query.expression_attribute_values(":fav", AttributeValue::Bool(favorite));
        }
        if let Some(text) = &filters.search {
            conditions.push("contains(prompt_search, :q)".into());
            query = query.expression_attribute_values(":q", s(text.to_lowercase()));
        }
        let query = query.filter_expression(conditions.join(" AND "));
        self.query_page(query, limit, after, key_names).await
    }

    /// Deletes an asset record (if still in the status and holding the bytes
    /// it was read with, else `StateChanged`) and, for an uploaded one, its
    /// file record with the quota it holds, in one transaction; with `count_in_box`, the box's
    /// `assets_count` goes down in it too (not when the box itself is going).
    pub async fn delete_asset_records(
        &self,
        asset: &AssetRecord,
        count_in_box: bool,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let delete = Delete::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)))
            // As read: an import finishing meanwhile changes both, and the
            // caller must then delete its object and release its bytes too.
            .condition_expression("#status = :status AND quota_bytes = :quota")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(asset.status.as_str()))
            .expression_attribute_values(
                ":quota",
                AttributeValue::N(asset.quota_bytes.to_string()),
            );
        let mut items = vec![
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build(),
        ];
        if let Some(file_id) = &asset.file_id
            && let Some(file) = self.get_file(&asset.owner, file_id).await?
        {
            let delete = Delete::builder()
                .table_name(self.name())
                .key(keys::PK, s(keys::user_pk(&file.owner)))
                .key(keys::SK, s(keys::file_sk(&file.id)))
                .condition_expression("reserved_bytes = :reserved")
                .expression_attribute_values(
                    ":reserved",
                    AttributeValue::N(file.reserved_bytes.to_string()),
                );
            items.push(
                TransactWriteItem::builder()
                    .delete(built(delete.build())?)
                    .build(),
            );
            if file.reserved_bytes > 0 {
                items.push(self.quota_change(&file.owner, -(file.reserved_bytes as i128), 0)?);
            }
        }
        if asset.quota_bytes > 0 {
            items.push(self.quota_change(&asset.owner, -(asset.quota_bytes as i128), 0)?);
        }
        if count_in_box {
            // Not while the box names it as its headliner (a PATCH may just
            // have): the caller clears it and tries again.
            items.push(
                TransactWriteItem::builder()
                    .update(built(
                        Update::builder()
                            .table_name(self.name())
                            .key(keys::PK, s(keys::user_pk(&asset.owner)))
                            .key(keys::SK, s(keys::box_sk(&asset.box_id)))
                            .update_expression("ADD assets_count :minus_one")
                            .condition_expression(
                                "attribute_exists(#pk) AND (attribute_not_exists(headliner_asset) \
                             OR headliner_asset <> :asset)",
                            )
                            .expression_attribute_names("#pk", keys::PK)
                            .expression_attribute_values(
                                ":minus_one",
                                AttributeValue::N("-1".into()),
                            )
                            .expression_attribute_values(":asset", s(&asset.id))
                            .build(),
                    )?)
                    .build(),
            );
        }
        self.transact(items, vec![]).await
    }

    /// Sets `is_favorite` only if it is still `from` (a toggle that cannot be
    /// applied twice); `None` when it changed meanwhile or is gone.
    pub async fn set_favorite(
        &self,
        asset: &AssetRecord,
        to: bool,
        now: &str,
    ) -> Result<Option<AssetRecord>, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)))
            .update_expression("SET is_favorite = :to, updated_at = :now")
            .condition_expression("is_favorite = :from")
            .expression_attribute_values(":to", AttributeValue::Bool(to))
            .expression_attribute_values(":from", AttributeValue::Bool(!to))
            .expression_attribute_values(":now", s(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        crate::dynamo::updated_record(result, "asset")
    }

    /// Edits `name`, `prompt_text` and/or `is_favorite`.
    pub async fn update_asset(
        &self,
        owner: &str,
        id: &str,
        fields: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<AssetRecord>, StoreError> {
        self.update_existing(keys::user_pk(owner), keys::asset_sk(id), "asset", fields)
            .await
    }
}
