//! Cleanup's items: the record of each step of a run (claimed before the
//! step works, so a duplicated message finds it and does nothing), and the
//! pages the tasks read — `due` entries of one shard, closed files of one
//! status — each a Query, never a Scan.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{Counts, Step, StepRecord, StepState};
use crate::db::keys::{self, prefix};
use crate::db::{Listing, StoreError, Table, condition_held, n, s, store_error};
use crate::pagination::StringKey;
use crate::uploads::{FileRecord, UploadStatus};

/// Step records outlive their run by this much (a late duplicate still
/// finds its record), then TTL removes them.
const STEP_RECORD_TTL_SECS: i64 = 3 * 24 * 3600;

/// The `due` index's key attributes: a position in it.
const DUE_KEYS: &[&str] = &[keys::DUE_PK, keys::DUE_SK, keys::PK, keys::SK];
const GSI2_KEYS: &[&str] = &[keys::GSI2_PK, keys::GSI2_SK, keys::PK, keys::SK];

/// Which `due` entries a task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    /// Open uploads, by expiry.
    Upload,
    /// Running generations, by deadline.
    Generation,
    /// Assets neither favourite nor headliner, by age.
    Retention,
    /// Assets in flight (`PENDING`, `PROCESSING`), by age.
    Work,
}

impl DueKind {
    /// The partition of its entries in one shard.
    fn partition(self, shard: u32) -> String {
        match self {
            Self::Upload => keys::due_upload_pk(shard),
            Self::Generation => keys::due_generation_pk(shard),
            Self::Retention => keys::due_retention_pk(shard),
            Self::Work => keys::due_work_pk(shard),
        }
    }

    /// The sort-key prefix of the items its entries stand for.
    fn item_prefix(self) -> &'static str {
        match self {
            Self::Upload => prefix::FILE,
            Self::Generation | Self::Retention | Self::Work => prefix::ASSET,
        }
    }
}

/// One `due` entry: whose item, which, and its position in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub owner: String,
    pub id: String,
    pub position: StringKey,
}

/// The sort key of a step: where it started, as a short digest.
fn step_sk(step: &Step) -> String {
    let position = match &step.after {
        None => "start".to_owned(),
        Some(after) => {
            let text = serde_json::to_string(after).unwrap_or_default();
            hex::encode(&Sha256::digest(text.as_bytes())[..12])
        }
    };
    keys::cleanup_step_sk(step.task.as_str(), step.part, &position)
}

impl Table {
    /// Claims a step for the SQS message `message_id`: `true` when this
    /// message may work it (its first delivery, or a redelivery of the same
    /// message whose try did not finish), `false` for a duplicate (another
    /// message holds it, or it is done).
    pub async fn claim_cleanup_step(
        &self,
        step: &Step,
        message_id: &str,
        now: &str,
        now_epoch: i64,
    ) -> Result<bool, StoreError> {
        let record = StepRecord {
            step: step.clone(),
            message_id: message_id.to_owned(),
            state: StepState::Running,
            counts: Counts::default(),
            follow_up: false,
            started: now.to_owned(),
            finished: None,
        };
        let mut item = Self::item(
            "cleanup_step",
            &record,
            &[
                (keys::PK, keys::cleanup_run_pk(&step.run)),
                (keys::SK, step_sk(step)),
            ],
        )?;
        item.insert(keys::TTL.to_owned(), n(now_epoch + STEP_RECORD_TTL_SECS));
        let result = self
            .client()
            .put_item()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR (message_id = :mine AND #state = :running)",
            )
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":mine", s(message_id))
            .expression_attribute_values(":running", s(StepState::Running.as_str()))
            .send()
            .await;
        condition_held(result)
    }

    /// Records what a claimed step did and whether it queued a follow-up.
    pub async fn finish_cleanup_step(
        &self,
        step: &Step,
        counts: Counts,
        follow_up: bool,
        now: &str,
    ) -> Result<(), StoreError> {
        let counts = serde_dynamo::to_attribute_value(counts)
            .map_err(|e| StoreError::Failed(format!("writing counts: {e}")))?;
        self.client()
            .update_item()
            .table_name(self.name())
            .set_key(Some(Self::primary_key(
                keys::cleanup_run_pk(&step.run),
                step_sk(step),
            )))
            .update_expression(
                "SET #state = :done, counts = :counts, follow_up = :follow, finished = :now",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s(StepState::Done.as_str()))
            .expression_attribute_values(":counts", counts)
            .expression_attribute_values(":follow", AttributeValue::Bool(follow_up))
            .expression_attribute_values(":now", s(now))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Every step record of a run (what an operator or a test reads to see
    /// what a run did).
    pub async fn cleanup_steps(&self, run: &str) -> Result<Vec<StepRecord>, StoreError> {
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.name())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :step)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", s(keys::cleanup_run_pk(run)))
                .expression_attribute_values(":step", s(prefix::STEP))
                .consistent_read(true)
                .set_exclusive_start_key(after)
                .send()
                .await
                .map_err(store_error)?;
            let page: Vec<StepRecord> = serde_dynamo::from_items(out.items.unwrap_or_default())
                .map_err(|e| StoreError::Failed(format!("reading cleanup steps: {e}")))?;
            records.extend(page);
            after = out.last_evaluated_key;
            if after.is_none() {
                return Ok(records);
            }
        }
    }

    /// Up to `limit` entries of one `due` shard that fell due before
    /// `before` (RFC 3339), oldest first, after position `after`.
    pub async fn due_page(
        &self,
        kind: DueKind,
        shard: u32,
        before: &str,
        after: Option<StringKey>,
        limit: u32,
    ) -> Result<Listing<DueEntry>, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(keys::DUE)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", keys::DUE_PK)
            .expression_attribute_names("#sk", keys::DUE_SK)
            .expression_attribute_values(":pk", s(kind.partition(shard)))
            .expression_attribute_values(":before", s(before));
        let page = self.query_items(query, limit, after, DUE_KEYS).await?;
        let item_prefix = kind.item_prefix();
        let items = page
            .items
            .iter()
            .filter_map(|item| {
                let position = crate::db::attributes_to_key(item, DUE_KEYS)?;
                let owner = position[keys::PK].strip_prefix(prefix::USER)?.to_owned();
                let id = position[keys::SK].strip_prefix(item_prefix)?.to_owned();
                Some(DueEntry {
                    owner,
                    id,
                    position,
                })
            })
            .collect();
        Ok(Listing {
            items,
            next: page.next,
        })
    }

    /// The records the `due` entries of `kind` stand for (file records or
    /// assets), read strongly consistent; gone ones are absent.
    pub async fn due_records<T: DeserializeOwned>(
        &self,
        kind: DueKind,
        entries: &[DueEntry],
    ) -> Result<Vec<T>, StoreError> {
        self.records_by_ids(
            kind.item_prefix(),
            entries.iter().map(|e| (e.owner.as_str(), e.id.as_str())),
        )
        .await
    }

    /// The file records `(owner, id)` name (gone ones are absent).
    pub async fn files_by_ids(
        &self,
        ids: &[(String, String)],
    ) -> Result<Vec<FileRecord>, StoreError> {
        self.records_by_ids(
            prefix::FILE,
            ids.iter().map(|(owner, id)| (owner.as_str(), id.as_str())),
        )
        .await
    }

    /// The items `<item_prefix><id>` of each `(owner, id)`, read strongly
    /// consistent; gone ones are absent.
    async fn records_by_ids<'a, T: DeserializeOwned>(
        &self,
        item_prefix: &str,
        ids: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<T>, StoreError> {
        let keys = ids
            .map(|(owner, id)| {
                Self::primary_key(keys::user_pk(owner), format!("{item_prefix}{id}"))
            })
            .collect();
        serde_dynamo::from_items(self.get_items(keys).await?)
            .map_err(|e| StoreError::Failed(format!("reading records: {e}")))
    }

    /// Which of the ids `(owner, id)` an asset or a file record holds (an
    /// object under such an id is claimed), read strongly consistent.
    pub async fn claimed_ids(
        &self,
        ids: &[(String, String)],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let keys = ids
            .iter()
            .flat_map(|(owner, id)| {
                [
                    Self::primary_key(keys::user_pk(owner), keys::asset_sk(id)),
                    Self::primary_key(keys::user_pk(owner), keys::file_sk(id)),
                ]
            })
            .collect();
        Ok(self
            .get_items(keys)
            .await?
            .iter()
            .filter_map(|item| {
                let sk = item.get(keys::SK)?.as_s().ok()?;
                sk.strip_prefix(prefix::ASSET)
                    .or_else(|| sk.strip_prefix(prefix::FILE))
                    .map(str::to_owned)
            })
            .collect())
    }

    /// Up to `limit` file records in `status` created before `before`
    /// (RFC 3339), oldest first, after position `after` (the admin list's
    /// index, read the other way round).
    pub async fn closed_files_page(
        &self,
        status: UploadStatus,
        before: &str,
        after: Option<StringKey>,
        limit: u32,
    ) -> Result<Listing<(FileRecord, StringKey)>, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(keys::GSI2)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", keys::GSI2_PK)
            .expression_attribute_names("#sk", keys::GSI2_SK)
            .expression_attribute_values(":pk", s(keys::files_by_status_pk(status.as_str())))
            .expression_attribute_values(":before", s(before));
        let page = self.query_items(query, limit, after, GSI2_KEYS).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for item in page.items {
            let Some(position) = crate::db::attributes_to_key(&item, GSI2_KEYS) else {
                continue;
            };
            let file: FileRecord = serde_dynamo::from_item(item)
                .map_err(|e| StoreError::Failed(format!("reading file: {e}")))?;
            items.push((file, position));
        }
        Ok(Listing {
            items,
            next: page.next,
        })
    }
}
