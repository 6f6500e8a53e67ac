//! Import by URL (SPEC §3.4): the API records a `PENDING` asset and queues
//! an [`ImportRequest`]; the `import-url` function fetches the URL into S3 and
//! moves the asset to `PROCESSING` (ingestion describes it from there) or to
//! `FAILED` with a reason. Both moves are conditional on `PENDING`, so a
//! redelivered or duplicated message changes nothing twice.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use crate::assets::{AssetRecord, AssetStatus};
use crate::dynamo::{StoreError, Table, is_condition_failure, store_error};
use crate::files_store::Refusal;
use crate::keys;

/// The queue message. The URL travels only here: provider links carry
/// signatures, which the table and the logs should not keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub owner: String,
    pub asset_id: String,
    pub url: String,
}

/// Longest URL accepted.
pub const URL_MAX_CHARS: usize = 2048;

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Failed(e.to_string()))
}

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

    /// The fetched object's asset, replacing the pending one, with its bytes
    /// counted against the quota in the same transaction. `StateChanged` when
    /// it is no longer pending (a duplicate finished it, or it was deleted).
    pub async fn finish_import(
        &self,
        asset: &AssetRecord,
        quota: u64,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let put = Put::builder()
            .table_name(self.name())
            .set_item(Some(Self::asset_item(asset)?))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(AssetStatus::Pending.as_str().into()),
            );
        self.transact(
            vec![
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build(),
                self.quota_change(&asset.owner, asset.quota_bytes as i128, quota)?,
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
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(keys::user_pk(owner)))
            .key(keys::SK, AttributeValue::S(keys::asset_sk(id)))
            .update_expression("SET #status = :failed, error_message = :reason, updated_at = :now")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":failed",
                AttributeValue::S(AssetStatus::Failed.as_str().into()),
            )
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(AssetStatus::Pending.as_str().into()),
            )
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(now.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(store_error(err)),
        }
    }
}
