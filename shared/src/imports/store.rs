//! Imported assets in the table: the `PENDING` asset and its moves, each
//! conditional on `PENDING`.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use crate::assets::{AssetRecord, AssetStatus};
use crate::db::keys;
use crate::db::{Refusal, StoreError, Table, built, condition_held};

impl Table {
    /// Records a pending import in its box (and the box's count).
    pub async fn create_pending_asset(
        &self,
        asset: &AssetRecord,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut items = Vec::new();
        let mut meanings = Vec::new();
        self.add_asset(asset, &mut items, &mut meanings)?;
        self.transact(items, meanings).await
    }

    /// Records the fetched object on the pending asset — only the fields the
    /// import learns, so edits made meanwhile (favourite, prompt) stay — with
    /// its bytes counted against the quota in the same transaction.
    /// `StateChanged` when it is no longer pending (a duplicate finished it,
    /// or it was deleted).
    pub async fn finish_import(
        &self,
        asset: &AssetRecord,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let Some(key) = asset.s3_key.as_deref() else {
            return Err(StoreError::Failed(
                "an import finishes with its object's key".into(),
            ));
        };
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(&keys::user_pk(&asset.owner)))
            .key(keys::SK, s(&keys::asset_sk(&asset.id)))
            .update_expression(
                "SET #status = :processing, s3_key = :key, asset_type = :type, \
                 content_type = :ct, #size = :size, quota_bytes = :size, #name = :name, \
                 updated_at = :now",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#size", "size")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":pending", s(AssetStatus::Pending.as_str()))
            .expression_attribute_values(":key", s(key))
            .expression_attribute_values(":type", s(asset.asset_type.as_str()))
            .expression_attribute_values(":ct", s(&asset.content_type))
            .expression_attribute_values(":size", AttributeValue::N(asset.size.to_string()))
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

    /// Marks a pending asset `FAILED` with a reason; `false` when it was no
    /// longer pending.
    pub async fn fail_pending_asset(
        &self,
        owner: &str,
        id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        self.update_pending_asset(owner, id, AssetStatus::Failed, reason, now)
            .await
    }

    /// Says on a `PENDING` asset why its fetch is being retried (it stays
    /// `PENDING`); `false` when it is no longer pending.
    pub async fn note_pending_asset(
        &self,
        owner: &str,
        id: &str,
        message: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        self.update_pending_asset(owner, id, AssetStatus::Pending, message, now)
            .await
    }

    async fn update_pending_asset(
        &self,
        owner: &str,
        id: &str,
        to: AssetStatus,
        reason: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(keys::user_pk(owner)))
            .key(keys::SK, AttributeValue::S(keys::asset_sk(id)))
            .update_expression("SET #status = :to, error_message = :reason, updated_at = :now")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(AssetStatus::Pending.as_str().into()),
            )
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_owned()))
            .send()
            .await;
        condition_held(result)
    }
}
