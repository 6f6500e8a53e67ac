//! A generation's job on its asset item (attribute `generation`), moved on
//! only by conditional writes on the job state read. Terminal moves
//! (failed, stored) give back the owner's running-generation slot (counter
//! `running_generations` on the quota item) and leave the `due` index in
//! the same transaction, so a duplicate message can never count twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use crate::ai::{FinishedBy, Job, JobState};
use crate::assets::{AssetRecord, AssetStatus};
use crate::db::keys;
use crate::db::{Refusal, StoreError, Table, built, n, s};

/// Why a generation could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRecorded {
    /// The owner already runs the most generations allowed.
    TooManyRunning,
    /// The box went meanwhile.
    BoxGone,
    /// The `Idempotency-Key` was used before (read it to answer).
    KeyUsed,
}

/// What an `Idempotency-Key` stands for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyUse {
    pub body_digest: String,
    pub asset_id: String,
}

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// The job's `due` entry while it runs.
fn due_keys(asset: &AssetRecord, job: &Job) -> (String, String) {
    (
        keys::due_generation_pk(keys::due_shard(&asset.id)),
        format!("{}#{}", job.deadline, asset.id),
    )
}

impl Table {
    fn job_update(
        &self,
        owner: &str,
        id: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::asset_sk(id)))
            .expression_attribute_names("#g", "generation")
            .expression_attribute_names("#st", "state")
    }

    fn running_change(
        &self,
        owner: &str,
        delta: i64,
        cap: Option<u32>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::QUOTA_SK))
            .update_expression("ADD running_generations :d SET entity = :entity")
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":entity", s("quota"));
        if let Some(cap) = cap {
            update = update
                .condition_expression(
                    "attribute_not_exists(running_generations) OR running_generations < :cap",
                )
                .expression_attribute_values(":cap", n(cap));
        }
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Records a generation before the provider is called: its `PENDING`
    /// asset (job `recorded`, on the `due` index from the start, so a job
    /// whose submit crashed is still found at its deadline), the box's
    /// count, one of the owner's running slots (at most `cap`), and the
    /// `Idempotency-Key` when given.
    pub async fn record_generation(
        &self,
        asset: &AssetRecord,
        cap: u32,
        key: Option<(&str, &KeyUse)>,
        now_epoch: i64,
    ) -> Result<Result<(), NotRecorded>, StoreError> {
        let job = asset
            .generation
            .as_deref()
            .ok_or_else(|| StoreError::Failed("a generation is recorded with its job".into()))?;
        let (due_pk, due_sk) = due_keys(asset, job);
        let mut item = Self::asset_item(asset)?;
        item.insert(keys::DUE_PK.to_owned(), s(due_pk));
        item.insert(keys::DUE_SK.to_owned(), s(due_sk));
        let mut items = Vec::new();
        let mut meanings = Vec::new();
        self.add_asset_item(item, asset, &mut items, &mut meanings)?;
        items.push(self.running_change(&asset.owner, 1, Some(cap))?);
        meanings.push(Refusal::QuotaExceeded);
        if let Some((digest, used)) = key {
            let mut item = Self::item(
                "idempotency_key",
                used,
                &[
                    (keys::PK, keys::user_pk(&asset.owner)),
                    (keys::SK, keys::idempotency_sk(digest)),
                ],
            )?;
            item.insert(keys::TTL.into(), n(now_epoch + IDEMPOTENCY_TTL_SECS));
            // An expired key (TTL not yet applied) counts as unused.
            let put = Put::builder()
                .table_name(self.name())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR #ttl < :now")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#ttl", keys::TTL)
                .expression_attribute_values(":now", n(now_epoch));
            items.push(
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build(),
            );
            meanings.push(Refusal::StateChanged);
        }
        Ok(self.transact(items, meanings).await?.map_err(|r| match r {
            Refusal::QuotaExceeded => NotRecorded::TooManyRunning,
            Refusal::ParentGone => NotRecorded::BoxGone,
            Refusal::StateChanged => NotRecorded::KeyUsed,
        }))
    }

    /// What an `Idempotency-Key` was used for, unless expired.
    pub async fn key_use(
        &self,
        owner: &str,
        digest: &str,
        now_epoch: i64,
    ) -> Result<Option<KeyUse>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(Self::primary_key(
                keys::user_pk(owner),
                keys::idempotency_sk(digest),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(crate::db::store_error)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let expired = item
            .get(keys::TTL)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|ttl| ttl < now_epoch);
        if expired {
            return Ok(None);
        }
        serde_dynamo::from_item(item)
            .map(Some)
            .map_err(|e| StoreError::Failed(format!("reading idempotency key: {e}")))
    }

    /// `recorded` (after `attempts` submits) → `submitting`: the one write
    /// that allows a submit to be sent. `false`: someone else has it.
    pub async fn claim_submit(
        &self,
        owner: &str,
        id: &str,
        attempts: u32,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression(
                "SET #g.#st = :submitting, #g.submit_attempts = :next, updated_at = :now",
            )
            .condition_expression("#g.#st = :recorded AND #g.submit_attempts = :attempts")
            .expression_attribute_values(":submitting", s(JobState::Submitting.as_str()))
            .expression_attribute_values(":recorded", s(JobState::Recorded.as_str()))
            .expression_attribute_values(":attempts", n(attempts))
            .expression_attribute_values(":next", n(attempts + 1))
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// `submitting` → `submitted` (task id known) or `unconfirmed` (outcome
    /// unknown): the asset is `PROCESSING` (the job is on the `due` index
    /// since its record).
    pub async fn record_submit(
        &self,
        asset: &AssetRecord,
        task_id: Option<&str>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let state = match task_id {
            Some(_) => JobState::Submitted,
            None => JobState::Unconfirmed,
        };
        let mut update = self
            .job_update(&asset.owner, &asset.id)
            .update_expression(
                "SET #g.#st = :state, #g.submitted_at = :now, #status = :processing, \
                 #g.task_id = :task, updated_at = :now",
            )
            .condition_expression("#g.#st = :submitting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":submitting", s(JobState::Submitting.as_str()))
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":now", s(now));
        update = update
            .expression_attribute_values(":task", task_id.map_or(AttributeValue::Null(true), s));
        self.run_update(update).await
    }

    /// `submitting` → `recorded` after a refusal that queued nothing (429,
    /// 455): a resubmit is scheduled; the asset says why it waits.
    pub async fn release_submit(
        &self,
        owner: &str,
        id: &str,
        note: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression("SET #g.#st = :recorded, error_message = :note, updated_at = :now")
            .condition_expression("#g.#st = :submitting")
            .expression_attribute_values(":recorded", s(JobState::Recorded.as_str()))
            .expression_attribute_values(":submitting", s(JobState::Submitting.as_str()))
            .expression_attribute_values(":note", s(note))
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// `unconfirmed` → `submitted` with the task a callback named (checked
    /// with the provider first): the reconciliation of a lost reply.
    pub async fn reconcile_task(
        &self,
        owner: &str,
        id: &str,
        task_id: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression("SET #g.#st = :submitted, #g.task_id = :task, updated_at = :now")
            .condition_expression("#g.#st = :unconfirmed")
            .expression_attribute_values(":submitted", s(JobState::Submitted.as_str()))
            .expression_attribute_values(":unconfirmed", s(JobState::Unconfirmed.as_str()))
            .expression_attribute_values(":task", s(task_id))
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// Poll `polls` done, the next one scheduled: `false` when this poll
    /// was not the job's next (a duplicate or a late message).
    pub async fn advance_poll(
        &self,
        owner: &str,
        id: &str,
        polls: u32,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression("SET #g.polls = :next, updated_at = :now")
            .condition_expression("#g.polls = :polls AND #g.#st IN (:submitted, :unconfirmed)")
            .expression_attribute_values(":polls", n(polls))
            .expression_attribute_values(":next", n(polls + 1))
            .expression_attribute_values(":submitted", s(JobState::Submitted.as_str()))
            .expression_attribute_values(":unconfirmed", s(JobState::Unconfirmed.as_str()))
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// Undoes [`advance_poll`] when the next poll could not be queued.
    pub async fn retreat_poll(
        &self,
        owner: &str,
        id: &str,
        polls: u32,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression("SET #g.polls = :polls")
            .condition_expression("#g.polls = :next")
            .expression_attribute_values(":polls", n(polls))
            .expression_attribute_values(":next", n(polls + 1));
        self.run_update(update).await
    }

    /// `submitted` → `storing`, the outputs' assets fixed (the first is the
    /// generation's own).
    pub async fn claim_storing(
        &self,
        owner: &str,
        id: &str,
        outputs: &[String],
        by: FinishedBy,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .job_update(owner, id)
            .update_expression(
                "SET #g.#st = :storing, #g.outputs = :outputs, #g.finished_by = :by, \
                 updated_at = :now",
            )
            .expression_attribute_values(":by", s(by.as_str()))
            .condition_expression("#g.#st = :submitted")
            .expression_attribute_values(":storing", s(JobState::Storing.as_str()))
            .expression_attribute_values(":submitted", s(JobState::Submitted.as_str()))
            .expression_attribute_values(
                ":outputs",
                AttributeValue::L(outputs.iter().map(s).collect()),
            )
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// An output that could not be stored: its asset `FAILED` with why
    /// (only while it has no object).
    pub async fn fail_output(
        &self,
        owner: &str,
        id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::asset_sk(id)));
        let update = Self::onto_due(update, keys::due_retention_pk, id, now)
            .update_expression(format!(
                "SET #status = :failed, error_message = :why, updated_at = :now, {}",
                Table::ONTO_DUE
            ))
            .condition_expression("s3_key = :none AND #status IN (:pending, :processing)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(AssetStatus::Failed.as_str()))
            .expression_attribute_values(":pending", s(AssetStatus::Pending.as_str()))
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":none", s(""))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", s(now));
        self.run_update(update).await
    }

    /// Ends a job — `failed` (the asset too, with `reason`) or `stored` —
    /// from one of the states `from`: moves from the generation `due`
    /// partition to the in-flight one (stored: ingestion finishes it) or the
    /// retention one (failed; the retention task skips an asset favourited
    /// meanwhile), by its age, and gives back the running slot.
    /// `false`: it had moved on already.
    pub async fn finish_job(
        &self,
        asset: &AssetRecord,
        from: &[JobState],
        outcome: Result<(), &str>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let (owner, id) = (asset.owner.as_str(), asset.id.as_str());
        let names: Vec<String> = (0..from.len()).map(|i| format!(":from{i}")).collect();
        let mut update = self
            .job_update(owner, id)
            .condition_expression(format!("#g.#st IN ({})", names.join(", ")))
            .expression_attribute_values(":now", s(now));
        // Stored: its assets await ingestion (in flight); failed: done.
        let partition = match outcome {
            Ok(()) => keys::due_work_pk,
            Err(_) => keys::due_retention_pk,
        };
        update = Self::onto_due(update, partition, id, &asset.created_at);
        for (name, state) in names.iter().zip(from) {
            update = update.expression_attribute_values(name, s(state.as_str()));
        }
        update = match outcome {
            Ok(()) => update
                .update_expression(format!(
                    "SET #g.#st = :stored, #g.finished_at = :now, updated_at = :now, {}",
                    Table::ONTO_DUE
                ))
                .expression_attribute_values(":stored", s(JobState::Stored.as_str())),
            Err(reason) => update
                .update_expression(format!(
                    "SET #g.#st = :failed, #g.finished_at = :now, #status = :asset_failed, \
                     error_message = :why, updated_at = :now, {}",
                    Table::ONTO_DUE
                ))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":failed", s(JobState::Failed.as_str()))
                .expression_attribute_values(":asset_failed", s(AssetStatus::Failed.as_str()))
                .expression_attribute_values(":why", s(reason)),
        };
        let result = self
            .transact(
                vec![
                    TransactWriteItem::builder()
                        .update(built(update.build())?)
                        .build(),
                    self.running_change(owner, -1, None)?,
                ],
                vec![Refusal::StateChanged, Refusal::StateChanged],
            )
            .await?;
        Ok(result.is_ok())
    }

    /// The owner's running generations (the counter the cap holds).
    pub async fn running_generations(&self, owner: &str) -> Result<u32, StoreError> {
        let item: Option<HashMap<String, AttributeValue>> = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(Self::primary_key(
                keys::user_pk(owner),
                keys::QUOTA_SK.to_owned(),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(crate::db::store_error)?
            .item;
        Ok(item
            .and_then(|i| i.get("running_generations").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }
}
