//! What ingestion writes (SPEC §3.6): an asset `PROCESSING` becomes
//! `COMPLETED` with its description, or `FAILED` with a reason and its bytes
//! given back. Both are conditional on `PROCESSING` and on the object key
//! the event named, so a duplicate or late event changes nothing.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use crate::assets::{AssetRecord, AssetStatus};
use crate::dynamo::{StoreError, Table};
use crate::files_store::Refusal;
use crate::keys;
use crate::uploads::{FileRecord, UploadStatus};

/// What ingestion learned about an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Description {
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub thumbnail_key: Option<String>,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Failed(e.to_string()))
}

impl Table {
    /// An update of the asset while it is still `PROCESSING` this object.
    fn asset_update(
        asset: &AssetRecord,
        table: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(table)
            .key(keys::PK, s(&keys::user_pk(&asset.owner)))
            .key(keys::SK, s(&keys::asset_sk(&asset.id)))
            .condition_expression("#status = :processing AND s3_key = :key")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":key", s(&asset.s3_key))
    }

    /// `PROCESSING` → `COMPLETED` with the description. `StateChanged` when
    /// the asset is no longer processing this object.
    pub async fn complete_ingest(
        &self,
        asset: &AssetRecord,
        description: &Description,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let optional = |v: Option<u64>| v.map(n).unwrap_or(AttributeValue::Null(true));
        let update = Self::asset_update(asset, self.name())
            .update_expression(
                "SET #status = :completed, content_type = :ct, #size = :size, width = :w, \
                 height = :h, duration_ms = :d, thumbnail_key = :t, updated_at = :now",
            )
            .expression_attribute_names("#size", "size")
            .expression_attribute_values(":completed", s(AssetStatus::Completed.as_str()))
            .expression_attribute_values(":ct", s(&description.content_type))
            .expression_attribute_values(":size", n(description.size))
            .expression_attribute_values(":w", optional(description.width.map(u64::from)))
            .expression_attribute_values(":h", optional(description.height.map(u64::from)))
            .expression_attribute_values(":d", optional(description.duration_ms))
            .expression_attribute_values(
                ":t",
                description
                    .thumbnail_key
                    .as_deref()
                    .map(s)
                    .unwrap_or(AttributeValue::Null(true)),
            )
            .expression_attribute_values(":now", s(now));
        self.transact(
            vec![
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
            ],
            vec![Refusal::StateChanged],
        )
        .await
    }

    /// `PROCESSING` → `FAILED` with the reason; the bytes the asset (or the
    /// file it came from) holds go back to the quota in the same transaction.
    pub async fn fail_ingest(
        &self,
        asset: &AssetRecord,
        file: Option<&FileRecord>,
        reason: &str,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let update = Self::asset_update(asset, self.name())
            .update_expression(
                "SET #status = :failed, error_message = :reason, quota_bytes = :zero, updated_at = :now",
            )
            .expression_attribute_values(":failed", s(AssetStatus::Failed.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(now));
        let mut items = vec![
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
        ];
        let mut released = asset.quota_bytes;
        if let Some(file) = file {
            let update = Update::builder()
                .table_name(self.name())
                .key(keys::PK, s(&keys::user_pk(&file.owner)))
                .key(keys::SK, s(&keys::file_sk(&file.id)))
                .update_expression(
                    "SET upload_status = :failed, reserved_bytes = :zero, updated = :now, #g2 = :g2",
                )
                .condition_expression("reserved_bytes = :reserved")
                .expression_attribute_names("#g2", keys::GSI2_PK)
                .expression_attribute_values(":failed", s(UploadStatus::Failed.as_str()))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":reserved", n(file.reserved_bytes))
                .expression_attribute_values(":now", s(now))
                .expression_attribute_values(
                    ":g2",
                    s(&keys::files_by_status_pk(UploadStatus::Failed.as_str())),
                );
            items.push(
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
            );
            released += file.reserved_bytes;
        }
        if released > 0 {
            items.push(self.quota_change(&asset.owner, -(released as i128), 0)?);
        }
        self.transact(items, vec![Refusal::StateChanged]).await
    }
}
