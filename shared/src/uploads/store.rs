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

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

use super::{FileRecord, PARENT_BOX, UploadStatus};
use crate::db::keys::{self, prefix};
use crate::db::{
    GSI1_KEYS, Listing, Refusal, StoreError, Table, condition_held, n, s, store_error,
};
use crate::pagination::StringKey;

impl Table {
    pub(crate) fn file_item(
        record: &FileRecord,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
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
            && kind == PARENT_BOX
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

    /// The condition that a file still has the parent it was read with
    /// (bind `:read_parent` when it had one, else `:null`).
    pub(crate) fn same_parent(before: &FileRecord) -> &'static str {
        match &before.parent_object_id {
            Some(_) => "parent_object_id = :read_parent",
            None => "(attribute_not_exists(parent_object_id) OR parent_object_id = :null)",
        }
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
