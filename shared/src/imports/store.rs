//! Imported assets in the table: the `PENDING` asset and its moves, each
//! conditional on `PENDING`.

use aws_sdk_dynamodb::types::{AttributeValue, Update};

use crate::assets::{AssetRecord, AssetStatus};
use crate::db::keys;
use crate::db::{Refusal, StoreError, Table};

impl Table {
    /// Records a pending asset in its box (and the box's count): an import,
    /// or a generation's extra output. `ParentGone` when the box went.
    pub async fn create_pending_asset(
        &self,
        asset: &AssetRecord,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut items = Vec::new();
        let mut meanings = Vec::new();
        self.add_asset(asset, &mut items, &mut meanings)?;
        self.transact(items, meanings).await
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
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(keys::user_pk(owner)))
            .key(keys::SK, AttributeValue::S(keys::asset_sk(id)));
        let mut expression =
            String::from("SET #status = :to, error_message = :reason, updated_at = :now");
        if to != AssetStatus::Pending {
            // Out of flight: onto the retention partition.
            update = Self::onto_due(update, keys::due_retention_pk, id, now);
            expression = format!("{expression}, {}", Self::ONTO_DUE);
        }
        self.run_update(
            update
                .update_expression(expression)
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
                .expression_attribute_values(
                    ":pending",
                    AttributeValue::S(AssetStatus::Pending.as_str().into()),
                )
                .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
                .expression_attribute_values(":now", AttributeValue::S(now.to_owned())),
        )
        .await
    }
}
