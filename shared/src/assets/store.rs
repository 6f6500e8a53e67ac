//! Assets in the table: their item and lists, and every transaction that
//! writes an asset together with its file, its box's `assets_count` and the
//! quota (a small upload, a completed upload in a box, a delete), so the
//! count and the bytes cannot drift from the assets that exist.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

use super::{AssetFilters, AssetRecord, AssetScope, AssetStatus};
use crate::db::keys::{self, prefix};
use crate::db::{
    GSI1_KEYS, Listing, Meanings, Refusal, StoreError, Table, built, condition_held, n, s,
    s_or_null,
};
use crate::pagination::StringKey;
use crate::uploads::{FileRecord, PARENT_BOX};

impl Table {
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
        self.delete_asset_items(asset, count_in_box, false).await
    }

    /// The retention policy's delete: [`Self::delete_asset_records`] with
    /// its box's count, refused (`StateChanged`) if the asset is a favourite
    /// or its box's headliner by the time it runs — a user who kept it a
    /// moment before wins.
    pub async fn retire_asset(
        &self,
        asset: &AssetRecord,
    ) -> Result<Result<(), Refusal>, StoreError> {
        self.delete_asset_items(asset, true, true).await
    }

    async fn delete_asset_items(
        &self,
        asset: &AssetRecord,
        count_in_box: bool,
        unless_kept: bool,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let kept = if unless_kept {
            " AND is_favorite = :false"
        } else {
            ""
        };
        let mut delete = Delete::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)))
            // As read: an import finishing meanwhile changes both, and the
            // caller must then delete its object and release its bytes too.
            .condition_expression(format!("#status = :status AND quota_bytes = :quota{kept}"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(asset.status.as_str()))
            .expression_attribute_values(
                ":quota",
                AttributeValue::N(asset.quota_bytes.to_string()),
            );
        if unless_kept {
            delete = delete.expression_attribute_values(":false", AttributeValue::Bool(false));
        }
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

    /// The names and values that put an asset on the `due` partition
    /// `partition` (`keys::due_retention_pk` or `keys::due_work_pk`) by its
    /// age as of `at`; the update's SET clause must name [`Self::ONTO_DUE`].
    /// Used by every write that moves an asset into or out of flight.
    pub(crate) fn onto_due(
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        partition: fn(u32) -> String,
        id: &str,
        at: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        update
            .expression_attribute_names("#due_pk", keys::DUE_PK)
            .expression_attribute_names("#due_sk", keys::DUE_SK)
            .expression_attribute_values(":due_pk", s(partition(keys::due_shard(id))))
            .expression_attribute_values(":due_sk", s(keys::due_age_sk(at, id)))
    }

    /// The SET assignments [`Self::onto_due`] binds.
    pub(crate) const ONTO_DUE: &'static str = "#due_pk = :due_pk, #due_sk = :due_sk";

    /// Records that cleanup announced a stuck asset's object again, and
    /// counts its age on the in-flight partition from now; only while it
    /// is still `PROCESSING` that object and was never announced again.
    pub async fn mark_ingest_retried(
        &self,
        asset: &AssetRecord,
        key: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)));
        self.run_update(
            Self::onto_due(update, keys::due_work_pk, &asset.id, now)
                .update_expression(format!("SET ingest_retried_at = :now, {}", Self::ONTO_DUE))
                .condition_expression(
                    "#status = :processing AND s3_key = :key AND attribute_not_exists(ingest_retried_at)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
                .expression_attribute_values(":key", s(key))
                .expression_attribute_values(":now", s(now)),
        )
        .await
    }

    /// Takes an asset off the retention partition (it became a favourite or
    /// its box's headliner): only an entry of that partition goes, never a
    /// running generation's. `false` when it had none.
    pub async fn retention_off(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::asset_sk(id)))
            .update_expression("REMOVE #due_pk, #due_sk")
            .condition_expression("begins_with(#due_pk, :retention)")
            .expression_attribute_names("#due_pk", keys::DUE_PK)
            .expression_attribute_names("#due_sk", keys::DUE_SK)
            .expression_attribute_values(":retention", s(keys::prefix::RETENTION))
            .send()
            .await;
        condition_held(result)
    }

    /// Puts an asset back on the retention partition (it stopped being a
    /// favourite or its box's headliner), if it is now neither — checked in
    /// the same transaction — and on no other `due` partition. `false` when
    /// it stays off.
    pub async fn retention_on(&self, asset: &AssetRecord) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)));
        let update = Self::onto_due(update, keys::due_retention_pk, &asset.id, &asset.created_at)
            .update_expression(format!("SET {}", Self::ONTO_DUE))
            .condition_expression("attribute_not_exists(#due_pk) AND is_favorite = :false")
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        let not_headliner = ConditionCheck::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::box_sk(&asset.box_id)))
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(headliner_asset) OR headliner_asset <> :asset)",
            )
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":asset", s(&asset.id));
        let items = vec![
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(built(not_headliner.build())?)
                .build(),
        ];
        Ok(self.transact(items, vec![]).await?.is_ok())
    }

    /// After a write of `is_favorite`: a favourite leaves the retention
    /// partition, an asset that stopped being one goes back (unless it is
    /// its box's headliner). The retention delete checks both itself, so
    /// this only keeps kept assets out of its reads.
    pub async fn follow_favorite(&self, asset: &AssetRecord) -> Result<bool, StoreError> {
        if asset.is_favorite {
            self.retention_off(&asset.owner, &asset.id).await
        } else {
            self.retention_on(asset).await
        }
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
        crate::db::updated_record(result, "asset")
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

impl Table {
    pub(crate) fn asset_item(
        asset: &AssetRecord,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut item = Self::item(
            "asset",
            asset,
            &[
                (keys::PK, keys::user_pk(&asset.owner)),
                (keys::SK, keys::asset_sk(&asset.id)),
                (keys::GSI1_PK, keys::box_children_pk(&asset.box_id)),
                (keys::GSI1_SK, keys::asset_sk(&asset.id)),
                (keys::GSI2_PK, keys::project_assets_pk(&asset.project)),
                (keys::GSI2_SK, keys::asset_sk(&asset.id)),
            ],
        )?;
        // In flight: on the partition cleanup watches for stuck work. Done:
        // on the retention one while neither favourite nor headliner (a new
        // asset is never the headliner yet).
        let shard = keys::due_shard(&asset.id);
        let due_pk = match asset.status {
            AssetStatus::Pending | AssetStatus::Processing => Some(keys::due_work_pk(shard)),
            _ if !asset.is_favorite => Some(keys::due_retention_pk(shard)),
            _ => None,
        };
        if let Some(due_pk) = due_pk {
            item.insert(keys::DUE_PK.to_owned(), s(due_pk));
            item.insert(
                keys::DUE_SK.to_owned(),
                s(keys::due_age_sk(&asset.created_at, &asset.id)),
            );
        }
        // A lower-cased copy makes the prompt `search` case-insensitive.
        if let Some(prompt) = &asset.prompt_text {
            item.insert(
                "prompt_search".to_owned(),
                AttributeValue::S(prompt.to_lowercase()),
            );
        }
        Ok(item)
    }

    /// Records an asset that arrived whole through the API (no file record):
    /// the asset, its box's count and its bytes against the quota, at once.
    pub async fn create_small_asset(
        &self,
        asset: &AssetRecord,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut items = Vec::new();
        let mut meanings = Vec::new();
        self.add_asset(asset, &mut items, &mut meanings)?;
        items.push(self.quota_change(&asset.owner, asset.quota_bytes as i128, quota)?);
        meanings.push(Refusal::QuotaExceeded);
        self.transact(items, meanings).await
    }

    /// Moves an open upload to `completed`: only from `uploading` with this
    /// upload id. Settles the quota to the measured size and, for a file in a
    /// box, writes its asset and bumps the box's count in the same transaction.
    pub async fn complete_upload(
        &self,
        before: &FileRecord,
        after: &FileRecord,
        asset: Option<&AssetRecord>,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let Some(upload_id) = before.upload_id.as_deref() else {
            // Only a multipart upload completes here (a single PUT completes
            // when its object arrives).
            return Ok(Err(Refusal::StateChanged));
        };
        // An Update of what completing changes (not a Put of the whole
        // record), so a rename made meanwhile is kept; conditional on the
        // status and upload id read.
        let opt = |v: &Option<String>| s_or_null(v.as_deref());
        let mut expression = String::from(
            "SET upload_status = :done, etag = :etag, file_size = :size, reserved_bytes = :size, \
             updated = :now, asset_id = :asset, #g2 = :g2, parent_content_type = :pct, \
             parent_object_id = :poid, parent_project = :pp REMOVE #duepk, #duesk",
        );
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&after.owner)))
            .key(keys::SK, s(keys::file_sk(&after.id)))
            // The parent as read too: a set-parent meanwhile is not undone.
            .condition_expression(format!(
                "upload_status = :open AND upload_id = :upload AND {}",
                Self::same_parent(before)
            ))
            .expression_attribute_names("#g2", keys::GSI2_PK)
            .expression_attribute_names("#duepk", keys::DUE_PK)
            .expression_attribute_names("#duesk", keys::DUE_SK)
            .expression_attribute_values(":open", s(before.upload_status.as_str()))
            .expression_attribute_values(":upload", s(upload_id))
            .expression_attribute_values(":done", s(after.upload_status.as_str()))
            .expression_attribute_values(":etag", opt(&after.etag))
            .expression_attribute_values(":size", n(after.file_size))
            .expression_attribute_values(":now", s(&after.updated))
            .expression_attribute_values(":asset", opt(&after.asset_id))
            .expression_attribute_values(
                ":g2",
                s(keys::files_by_status_pk(after.upload_status.as_str())),
            )
            .expression_attribute_values(":pct", opt(&after.parent_content_type))
            .expression_attribute_values(":poid", opt(&after.parent_object_id))
            .expression_attribute_values(":pp", opt(&after.parent_project));
        update = match &before.parent_object_id {
            Some(parent) => update.expression_attribute_values(":read_parent", s(parent)),
            None => update.expression_attribute_values(":null", AttributeValue::Null(true)),
        };
        if after.parent_object_id.is_none() && before.parent_object_id.is_some() {
            // Detached (its box is gone): off the parent's list too.
            expression.push_str(", #g1pk, #g1sk");
            update = update
                .expression_attribute_names("#g1pk", keys::GSI1_PK)
                .expression_attribute_names("#g1sk", keys::GSI1_SK);
        }
        let update = update
            .update_expression(expression)
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let mut meanings = vec![Refusal::StateChanged];
        let delta = after.reserved_bytes as i128 - before.reserved_bytes as i128;
        if delta != 0 {
            items.push(self.quota_change(&after.owner, delta, quota)?);
            meanings.push(Refusal::QuotaExceeded);
        }
        if let Some(asset) = asset {
            self.add_asset(asset, &mut items, &mut meanings)?;
        }
        self.transact(items, meanings).await
    }

    /// The asset of a file in a box, and the box's count, into a transaction.
    /// Records an object stored for an asset that had none — an import's
    /// fetched URL, a generation's result — with only the fields the fetch
    /// learns (edits made meanwhile, favourite or prompt, stay) and its bytes
    /// counted against the quota, in one transaction. `StateChanged` when it
    /// has an object already (a duplicate finished it), is settled, or is
    /// gone.
    pub async fn record_fetched_object(
        &self,
        asset: &AssetRecord,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let Some(key) = asset.s3_key.as_deref() else {
            return Err(StoreError::Failed(
                "a fetched object is recorded with its key".into(),
            ));
        };
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&asset.owner)))
            .key(keys::SK, s(keys::asset_sk(&asset.id)))
            .update_expression(
                "SET #status = :processing, s3_key = :key, asset_type = :type, \
                 content_type = :ct, #size = :size, quota_bytes = :size, #name = :name, \
                 updated_at = :now",
            )
            .condition_expression("s3_key = :none AND #status IN (:pending, :processing)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#size", "size")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":pending", s(AssetStatus::Pending.as_str()))
            .expression_attribute_values(":none", s(""))
            .expression_attribute_values(":key", s(key))
            .expression_attribute_values(":type", s(asset.asset_type.as_str()))
            .expression_attribute_values(":ct", s(&asset.content_type))
            .expression_attribute_values(":size", n(asset.size))
            .expression_attribute_values(":name", s(&asset.name))
            .expression_attribute_values(":now", s(&asset.updated_at));
        self.transact(
            vec![
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
                self.quota_change(&asset.owner, asset.size as i128, quota)?,
            ],
            vec![Refusal::StateChanged, Refusal::QuotaExceeded],
        )
        .await
    }

    pub(crate) fn add_asset(
        &self,
        asset: &AssetRecord,
        items: &mut Vec<TransactWriteItem>,
        meanings: &mut Meanings,
    ) -> Result<(), StoreError> {
        self.add_asset_item(Self::asset_item(asset)?, asset, items, meanings)
    }

    /// [`Self::add_asset`] with the item given (extra attributes set).
    pub(crate) fn add_asset_item(
        &self,
        item: HashMap<String, AttributeValue>,
        asset: &AssetRecord,
        items: &mut Vec<TransactWriteItem>,
        meanings: &mut Meanings,
    ) -> Result<(), StoreError> {
        items.push(self.put_new(item)?);
        meanings.push(Refusal::StateChanged);
        items.push(self.box_count_change(&asset.owner, &asset.box_id, 1)?);
        meanings.push(Refusal::ParentGone);
        Ok(())
    }
}

impl Table {
    /// Points a file at a new parent (and, for a completed file moved into a
    /// box, writes its asset), conditional on the parent it had.
    pub async fn set_file_parent(
        &self,
        before: &FileRecord,
        after: &FileRecord,
        asset: Option<&AssetRecord>,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut item = Self::file_item(after)?;
        if !after.upload_status.is_open() {
            item.remove(keys::DUE_PK);
            item.remove(keys::DUE_SK);
        }
        // Only from the state read: same status, same parent, no asset yet,
        // and described or not as read (the asset is made from that).
        let same_parent = Self::same_parent(before);
        let same_media = match &before.media {
            Some(_) => "attribute_type(media, :map)",
            None => "(attribute_not_exists(media) OR media = :null)",
        };
        let mut put = Put::builder()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression(format!(
                "upload_status = :status AND {same_parent} AND {same_media} AND (attribute_not_exists(asset_id) OR asset_id = :null)"
            ))
            .expression_attribute_values(":status", s(before.upload_status.as_str()))
            .expression_attribute_values(":null", AttributeValue::Null(true));
        if let Some(parent) = &before.parent_object_id {
            put = put.expression_attribute_values(":read_parent", s(parent));
        }
        if before.media.is_some() {
            put = put.expression_attribute_values(":map", s("M"));
        }
        let mut items = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| StoreError::Failed(e.to_string()))?)
                .build(),
        ];
        let mut meanings = vec![Refusal::StateChanged];
        if let Some(asset) = asset {
            self.add_asset(asset, &mut items, &mut meanings)?;
        } else if let (Some(kind), Some(id)) = (&after.parent_content_type, &after.parent_object_id)
            && kind == PARENT_BOX
        {
            items.push(self.box_exists_check(&after.owner, id)?);
            meanings.push(Refusal::ParentGone);
        }
        self.transact(items, meanings).await
    }
}
