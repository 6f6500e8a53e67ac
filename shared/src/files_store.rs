//! Files, uploads and quotas in the table. Every status change is a
//! conditional write on the current status (and upload id), made in one
//! transaction with the quota counter, so that retries, races and parallel
//! uploads can neither skip a state nor count bytes twice.
//!
//! Quota: one counter item per owner (`USER#<owner>` / `QUOTA`, attribute
//! `used_bytes`) holds the bytes of open uploads (reserved) and of completed
//! files. Initiate adds the declared size only if the sum stays within the
//! quota (`used_bytes <= quota - size` as the condition), complete settles a
//! difference between reserved and measured size, abort/expiry/delete give the
//! file's `reserved_bytes` back. DynamoDB serialises the conditional updates,
//! so parallel initiates cannot overshoot.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};

use crate::assets::AssetRecord;
use crate::boxes::BoxRecord;
use crate::dynamo::{
    GSI1_KEYS, Listing, StoreError, Table, condition_held, n, s, s_or_null, store_error,
};
use crate::keys::{self, prefix};
use crate::pagination::StringKey;
use crate::uploads::{FileRecord, UploadStatus};

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
type Meanings = Vec<Refusal>;

impl Table {
    fn file_item(record: &FileRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let mut keys_of = vec![
            (keys::PK, keys::user_pk(&record.owner)),
            (keys::SK, keys::file_sk(&record.id)),
            (
                keys::GSI2_PK,
                keys::files_by_status_pk(record.upload_status.as_str()),
            ),
            (keys::GSI2_SK, format!("{}#{}", record.created, record.id)),
        ];
        if let (Some(kind), Some(id)) = (&record.parent_content_type, &record.parent_object_id) {
            keys_of.push((keys::GSI1_PK, keys::parent_pk(kind, id)));
            keys_of.push((keys::GSI1_SK, keys::file_sk(&record.id)));
        }
        if record.upload_status.is_open() {
            keys_of.push((
                keys::DUE_PK,
                keys::due_upload_pk(keys::due_shard(&record.id)),
            ));
            keys_of.push((keys::DUE_SK, format!("{}#{}", record.expires_at, record.id)));
        }
        Self::item("file", record, &keys_of)
    }

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

    pub(crate) fn quota_change(
        &self,
        owner: &str,
        delta: i128,
        quota: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::QUOTA_SK))
            .update_expression("ADD used_bytes :delta SET entity = :entity")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":entity", s("quota"));
        if delta > 0 {
            // Within quota after adding: used + delta <= quota.
            let headroom = quota as i128 - delta;
            update = update
                // A first write (no counter yet) must fit the quota as well.
                .condition_expression(
                    "(attribute_not_exists(used_bytes) AND :zero <= :headroom) OR used_bytes <= :headroom",
                )
                .expression_attribute_values(":headroom", n(headroom))
                .expression_attribute_values(":zero", n(0));
        }
        Ok(TransactWriteItem::builder()
            .update(
                update
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .build())
    }

    /// Holds while the owner has at least one byte of quota left: what an
    /// upload of undeclared size, which reserves nothing, must find.
    fn quota_room_check(&self, owner: &str, quota: u64) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(self.name())
                    .key(keys::PK, s(keys::user_pk(owner)))
                    .key(keys::SK, s(keys::QUOTA_SK))
                    .condition_expression("attribute_not_exists(used_bytes) OR used_bytes < :quota")
                    .expression_attribute_values(":quota", n(quota))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .build())
    }

    fn box_exists_check(&self, owner: &str, box_id: &str) -> Result<TransactWriteItem, StoreError> {
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

    /// Records a new upload and reserves its bytes (one of undeclared size
    /// needs a byte of quota left); checks the parent box still exists in
    /// the same transaction.
    pub async fn create_upload(
        &self,
        record: &FileRecord,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut items = vec![
            self.put_new(Self::file_item(record)?)?,
            match record.reserved_bytes {
                0 => self.quota_room_check(&record.owner, quota)?,
                bytes => self.quota_change(&record.owner, bytes as i128, quota)?,
            },
        ];
        let mut meanings = vec![Refusal::StateChanged, Refusal::QuotaExceeded];
        if let (Some(kind), Some(id)) = (&record.parent_content_type, &record.parent_object_id)
            && kind == crate::uploads::PARENT_BOX
        {
            items.push(self.box_exists_check(&record.owner, id)?);
            meanings.push(Refusal::ParentGone);
        }
        self.transact(items, meanings).await
    }

    pub async fn get_file(&self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.get_record(keys::user_pk(owner), keys::file_sk(id), "file")
            .await
    }

    pub async fn get_box(&self, owner: &str, id: &str) -> Result<Option<BoxRecord>, StoreError> {
        self.get_record(keys::user_pk(owner), keys::box_sk(id), "box")
            .await
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
            .expression_attribute_values(":upload", s(before.upload_id.clone().unwrap_or_default()))
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

    /// The condition that a file still has the parent it was read with
    /// (bind `:read_parent` when it had one, else `:null`).
    pub(crate) fn same_parent(before: &FileRecord) -> &'static str {
        match &before.parent_object_id {
            Some(_) => "parent_object_id = :read_parent",
            None => "(attribute_not_exists(parent_object_id) OR parent_object_id = :null)",
        }
    }

    /// A Put of an item that must not exist yet.
    fn put_new(
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

    /// The asset of a file in a box, and the box's count, into a transaction.
    pub(crate) fn add_asset(
        &self,
        asset: &AssetRecord,
        items: &mut Vec<TransactWriteItem>,
        meanings: &mut Meanings,
    ) -> Result<(), StoreError> {
        items.push(self.put_new(Self::asset_item(asset)?)?);
        meanings.push(Refusal::StateChanged);
        items.push(self.box_count_change(&asset.owner, &asset.box_id, 1)?);
        meanings.push(Refusal::ParentGone);
        Ok(())
    }

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

    /// Closes an open upload as `aborted`, `expired` or `failed` and gives its
    /// reserved bytes back. `Err(StateChanged)` when it was not open.
    pub async fn close_upload(
        &self,
        file: &FileRecord,
        status: UploadStatus,
        reason: Option<&str>,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let set_reason = if reason.is_some() {
            ", error_message = :reason"
        } else {
            ""
        };
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&file.owner)))
            .key(keys::SK, s(keys::file_sk(&file.id)))
            .update_expression(format!(
                "SET upload_status = :to, reserved_bytes = :zero, updated = :now, #g2 = :g2{set_reason} REMOVE #duepk, #duesk",
            ))
            .condition_expression("upload_status IN (:pending, :uploading)")
            .expression_attribute_names("#g2", keys::GSI2_PK)
            .expression_attribute_names("#duepk", keys::DUE_PK)
            .expression_attribute_names("#duesk", keys::DUE_SK)
            .expression_attribute_values(":to", s(status.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":g2", s(keys::files_by_status_pk(status.as_str())))
            .expression_attribute_values(":pending", s(UploadStatus::Pending.as_str()))
            .expression_attribute_values(":uploading", s(UploadStatus::Uploading.as_str()));
        let update = match reason {
            Some(reason) => update.expression_attribute_values(":reason", s(reason)),
            None => update,
        }
        .build()
        .map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if file.reserved_bytes > 0 {
            items.push(self.quota_change(&file.owner, -(file.reserved_bytes as i128), 0)?);
        }
        self.transact(items, vec![Refusal::StateChanged]).await
    }

    /// Deletes a file record that is not open, giving back what it holds of
    /// the quota; conditional on the state read (status, bytes, still no
    /// asset, described or not), so a racing change — a set-parent making
    /// an asset, ingestion adding a thumbnail — wins.
    pub async fn delete_file(&self, file: &FileRecord) -> Result<Result<(), Refusal>, StoreError> {
        let same_media = match &file.media {
            Some(_) => "attribute_type(media, :map)",
            None => "(attribute_not_exists(media) OR media = :null)",
        };
        let mut delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&file.owner)))
            .key(keys::SK, s(keys::file_sk(&file.id)))
            .condition_expression(format!(
                "upload_status = :status AND reserved_bytes = :reserved AND {same_media} \
                 AND (attribute_not_exists(asset_id) OR asset_id = :null)"
            ))
            .expression_attribute_values(":status", s(file.upload_status.as_str()))
            .expression_attribute_values(":reserved", n(file.reserved_bytes))
            .expression_attribute_values(":null", AttributeValue::Null(true));
        if file.media.is_some() {
            delete = delete.expression_attribute_values(":map", s("M"));
        }
        let delete = delete
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        if file.reserved_bytes > 0 {
            items.push(self.quota_change(&file.owner, -(file.reserved_bytes as i128), 0)?);
        }
        self.transact(items, vec![Refusal::StateChanged]).await
    }

    /// Records the S3 multipart upload a browser created for an open file
    /// that has none yet (Uppy 6 creates it with a presigned URL, so we learn
    /// its id from the first signed request that names it). `false` when the
    /// file is no longer open or already has one.
    pub async fn bind_upload_id(
        &self,
        file: &FileRecord,
        upload_id: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&file.owner)))
            .key(keys::SK, s(keys::file_sk(&file.id)))
            .update_expression("SET upload_id = :upload, updated = :now")
            .condition_expression(
                "upload_status = :uploading AND (attribute_not_exists(upload_id) OR upload_id = :null)",
            )
            .expression_attribute_values(":upload", s(upload_id))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":uploading", s(UploadStatus::Uploading.as_str()))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .send()
            .await;
        condition_held(result)
    }

    /// Edits `name` and/or `description`; `None` when there is no such file.
    pub async fn update_file_text(
        &self,
        owner: &str,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        now: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        let mut fields = vec![("updated", s(now))];
        if let Some(name) = name {
            fields.push(("name", s(name)));
        }
        if let Some(description) = description {
            fields.push(("description", s(description)));
        }
        self.update_existing(keys::user_pk(owner), keys::file_sk(id), "file", fields)
            .await
    }

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
            && kind == crate::uploads::PARENT_BOX
        {
            items.push(self.box_exists_check(&after.owner, id)?);
            meanings.push(Refusal::ParentGone);
        }
        self.transact(items, meanings).await
    }

    /// The owner's files, newest first, optionally in one status.
    pub async fn list_own_files(
        &self,
        owner: &str,
        status: Option<UploadStatus>,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<FileRecord>, StoreError> {
        let mut query = self
            .client()
            .query()
            .table_name(self.name())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", s(keys::user_pk(owner)))
            .expression_attribute_values(":prefix", s(prefix::FILE))
            .scan_index_forward(false);
        if let Some(status) = status {
            query = query
                .filter_expression("upload_status = :status")
                .expression_attribute_values(":status", s(status.as_str()));
        }
        self.query_page(query, limit, after, &[keys::PK, keys::SK])
            .await
    }

    /// Files attached to one parent, optionally only the owner's and in one status.
    pub async fn list_files_of_parent(
        &self,
        parent_type: &str,
        parent_id: &str,
        owner: Option<&str>,
        status: Option<UploadStatus>,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<FileRecord>, StoreError> {
        let mut filters = vec!["entity = :file"];
        let mut query = self
            .gsi1_children(keys::parent_pk(parent_type, parent_id), prefix::FILE)
            .expression_attribute_values(":file", s("file"));
        if let Some(owner) = owner {
            filters.push("#owner = :owner");
            query = query
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner));
        }
        if let Some(status) = status {
            filters.push("upload_status = :status");
            query = query.expression_attribute_values(":status", s(status.as_str()));
        }
        let query = query.filter_expression(filters.join(" AND "));
        self.query_page(query, limit, after, GSI1_KEYS).await
    }

    /// Every owner's files in one status, newest first (admins).
    pub async fn list_all_files(
        &self,
        status: UploadStatus,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<FileRecord>, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(keys::GSI2)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI2_PK)
            .expression_attribute_values(":pk", s(keys::files_by_status_pk(status.as_str())))
            .scan_index_forward(false);
        self.query_page(
            query,
            limit,
            after,
            &[keys::GSI2_PK, keys::GSI2_SK, keys::PK, keys::SK],
        )
        .await
    }

    /// The owner's quota use in bytes.
    pub async fn quota_used(&self, owner: &str) -> Result<u64, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::QUOTA_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out
            .item
            .and_then(|i| {
                i.get("used_bytes")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0))
    }
}
