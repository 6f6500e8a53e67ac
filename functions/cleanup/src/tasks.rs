//! The tasks. Each reads one page of its items, then changes each item
//! conditionally on the state it read: a user who moved the item on a
//! moment before wins and the item counts as skipped.

use std::collections::HashMap;
use std::time::Instant;

use assetbox_shared::assets::{AssetRecord, AssetStatus};
use assetbox_shared::cleanup::{
    CleanupPolicy, Counts, DueEntry, DueKind, ItemOutcome, PURGED_STATUSES, Step, Task, in_rounds,
};
use assetbox_shared::clock;
use assetbox_shared::db::Table;
use assetbox_shared::generation::provider::TaskCanceller;
use assetbox_shared::ingestion::Claim;
use assetbox_shared::pagination::StringKey;
use assetbox_shared::s3::{Bucket, OpenMultipart};
use assetbox_shared::uploads::{FileRecord, UploadStatus, object_owner_and_id, parse_object_key};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// Why a message could not be handled now: SQS delivers it again.
pub(crate) type Retry = String;

/// What the tasks work with.
pub(crate) struct Parts<'a> {
    pub table: &'a Table,
    pub bucket: &'a Bucket,
    pub policy: &'a CleanupPolicy,
    pub canceller: &'a TaskCanceller,
}

/// What an expired upload tells its owner.
const EXPIRED: &str = "the upload was not completed before it expired";
/// What a generation stuck past its deadline tells its owner (the words
/// the poll uses when it sees the deadline itself).
const TIMED_OUT: &str = "the generation timed out";
/// What a stuck import tells its owner.
const IMPORT_STUCK: &str = "the import did not finish in time";
/// What an asset whose object could not be ingested, twice, tells its owner.
const NOT_PROCESSED: &str = "the file could not be processed";
/// Where every upload's object lives.
const UPLOADS_PREFIX: &str = "uploads/";

/// One page of `step`: what it did and where its follow-up starts (`None`
/// when the part is done).
pub(crate) async fn work(
    cleaner: Parts<'_>,
    step: &Step,
    as_of: OffsetDateTime,
    started: Instant,
) -> Result<(Counts, Option<StringKey>), Retry> {
    let cutoff_time = cleaner.policy.cutoff(step.task, as_of);
    let cutoff = clock::rfc3339(cutoff_time);
    let cutoff = cutoff.as_str();
    let worker = Worker {
        cleaner,
        started,
        now: clock::rfc3339(clock::now()),
    };
    let w = &worker;
    match step.task {
        Task::ExpireUploads => {
            w.each_due(
                step,
                DueKind::Upload,
                cutoff,
                |f: &FileRecord| &f.id,
                |file| w.expire(file, cutoff),
            )
            .await
        }
        Task::StuckGenerations => {
            w.each_due(
                step,
                DueKind::Generation,
                cutoff,
                |a: &AssetRecord| &a.id,
                |asset| w.time_out(asset, cutoff),
            )
            .await
        }
        Task::StuckWork => {
            w.each_due(
                step,
                DueKind::Work,
                cutoff,
                |a: &AssetRecord| &a.id,
                |asset| w.unstick(asset, cutoff),
            )
            .await
        }
        // Off: nothing to read.
        Task::Retention if w.cleaner.policy.retention.is_none() => Ok((Counts::default(), None)),
        Task::Retention => {
            w.each_due(
                step,
                DueKind::Retention,
                cutoff,
                |a: &AssetRecord| &a.id,
                |asset| w.retire(asset, cutoff),
            )
            .await
        }
        Task::PurgeFiles => w.purge_files(step, cutoff).await,
        Task::LeakedObjects => w.leaked_objects(step, cutoff_time.unix_timestamp()).await,
        Task::OrphanMultipart => w.orphan_multipart(step, cutoff_time.unix_timestamp()).await,
    }
}

/// When an object or multipart upload was last written, in epoch seconds:
/// the later of the time S3 gives and the time in the ULID its key names
/// (ours all do), so it counts as young if either says so. (The emulator
/// reports one fixed `Initiated` for every multipart upload; the ULID
/// still tells.)
fn last_written(key: &str, s3_time: i64) -> i64 {
    let minted = object_owner_and_id(key)
        .and_then(|(_, id)| ulid::Ulid::from_string(id).ok())
        .map(|id| (id.timestamp_ms() / 1000) as i64)
        .unwrap_or(0);
    s3_time.max(minted)
}

struct Worker<'a> {
    cleaner: Parts<'a>,
    started: Instant,
    now: String,
}

fn keyed<T>(records: Vec<T>, id: impl Fn(&T) -> &str) -> HashMap<String, T> {
    records
        .into_iter()
        .map(|r| (id(&r).to_owned(), r))
        .collect()
}

fn failed(what: &str, id: &str, error: impl std::fmt::Display) -> ItemOutcome {
    tracing::warn!(item = id, error = %error, "cleanup: {what} failed; left for the next run");
    ItemOutcome::Failed
}

impl Worker<'_> {
    /// One page of the `due` entries of `kind` in the step's shard, each
    /// with the record it stands for (`None` when it went meanwhile), worked
    /// by `act` in bounded rounds.
    async fn each_due<T, F, Fut>(
        &self,
        step: &Step,
        kind: DueKind,
        cutoff: &str,
        id: fn(&T) -> &str,
        act: F,
    ) -> Result<(Counts, Option<StringKey>), Retry>
    where
        T: DeserializeOwned,
        F: Fn(Option<T>) -> Fut,
        Fut: std::future::Future<Output = ItemOutcome>,
    {
        let table = self.cleaner.table;
        let page = table
            .due_page(
                kind,
                step.part,
                cutoff,
                step.after.clone(),
                self.cleaner.policy.page_size,
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut records = keyed(
            table
                .due_records::<T>(kind, &page.items)
                .await
                .map_err(|e| e.to_string())?,
            id,
        );
        let items = page
            .items
            .into_iter()
            .map(|e: DueEntry| (records.remove(&e.id), e.position))
            .collect();
        Ok(in_rounds(self.cleaner.policy, self.started, items, page.next, act).await)
    }

    /// Aborts an open upload's S3 side (a single PUT's object is deleted),
    /// then closes it `expired` and gives its reserved bytes back in one
    /// transaction conditional on it still being open. S3 first, as the
    /// abort route does: both S3 calls are idempotent, so a failed record
    /// write is simply tried again. A complete cannot race it: complete
    /// refuses an upload past its expiry, and the cutoff lies a grace
    /// period after it.
    async fn expire(&self, file: Option<FileRecord>, cutoff: &str) -> ItemOutcome {
        let Some(mut file) = file else {
            return ItemOutcome::Skipped; // deleted meanwhile
        };
        let table = self.cleaner.table;
        // A refusal is either a user who moved the upload on (it is no
        // longer open: they win) or another transaction on the owner's
        // quota counter at the same moment (an owner with many expired
        // uploads): re-read and try again while it is still open.
        for _attempt in 0..3 {
            if !file.upload_status.is_open() || file.expires_at.as_str() >= cutoff {
                return ItemOutcome::Skipped;
            }
            let bucket = self.cleaner.bucket;
            let s3 = match &file.upload_id {
                Some(upload_id) => bucket.abort(&file.s3_key, upload_id).await,
                None => bucket.delete(&file.s3_key).await,
            };
            if let Err(e) = s3 {
                return failed("expiring an upload's S3 side", &file.id, e);
            }
            match table
                .close_upload(&file, UploadStatus::Expired, Some(EXPIRED), &self.now)
                .await
            {
                Ok(Ok(())) => return ItemOutcome::Done,
                Ok(Err(_)) => match table.get_file(&file.owner, &file.id).await {
                    Ok(Some(now)) => file = now,
                    Ok(None) => return ItemOutcome::Skipped,
                    Err(e) => return failed("re-reading an upload", &file.id, e),
                },
                Err(e) => return failed("expiring an upload", &file.id, e),
            }
        }
        failed(
            "expiring an upload",
            &file.id,
            "it kept clashing with other writes",
        )
    }

    /// Fails a generation still running past its deadline (and its asset),
    /// giving back the owner's running slot, conditional on the job state
    /// read: a poll that finished it a moment before wins. Then, where its
    /// model has a cancel call, the provider is asked to stop the task; a
    /// cancel that fails is logged, not retried (the job has failed
    /// already, and the provider's own limits end the task).
    async fn time_out(&self, asset: Option<AssetRecord>, cutoff: &str) -> ItemOutcome {
        let Some(asset) = asset else {
            return ItemOutcome::Skipped;
        };
        let Some(job) = asset.generation.as_deref() else {
            return ItemOutcome::Skipped;
        };
        if !job.state.is_running() || job.deadline.as_str() >= cutoff {
            return ItemOutcome::Skipped;
        }
        match self
            .cleaner
            .table
            .finish_job(&asset, &[job.state], Err(TIMED_OUT), &self.now)
            .await
        {
            Ok(true) => {
                match self
                    .cleaner
                    .canceller
                    .cancel(self.cleaner.table, job, &asset.id)
                    .await
                {
                    Ok(true) => tracing::info!(generation = asset.id, "cancelled at the provider"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(generation = asset.id, error = e, "cancel failed"),
                }
                ItemOutcome::Done
            }
            Ok(false) => ItemOutcome::Skipped,
            Err(e) => failed("failing a stuck generation", &asset.id, e),
        }
    }

    /// Deletes an asset past the retention period with its records (its
    /// file's, its bytes of the quota, its box's count) in one transaction
    /// refused if it is a favourite or its box's headliner by then, and only
    /// after that its objects: a user who kept it a moment before wins, and
    /// nothing of a kept asset is touched. An object whose delete fails is
    /// left to the sweep of objects no record claims.
    async fn retire(&self, asset: Option<AssetRecord>, cutoff: &str) -> ItemOutcome {
        let Some(asset) = asset else {
            return ItemOutcome::Skipped;
        };
        let table = self.cleaner.table;
        if asset.created_at.as_str() >= cutoff {
            return ItemOutcome::Skipped;
        }
        if asset.is_favorite {
            // Favourited without leaving the partition (a write that failed
            // half-way): take it off now.
            if let Err(e) = table.retention_off(&asset.owner, &asset.id).await {
                tracing::warn!(asset = asset.id, error = %e, "retention entry not removed");
            }
            return ItemOutcome::Skipped;
        }
        let in_flight = matches!(asset.status, AssetStatus::Pending | AssetStatus::Processing)
            || asset
                .generation
                .as_deref()
                .is_some_and(|job| job.state.is_running());
        if in_flight {
            return ItemOutcome::Skipped;
        }
        match table.retire_asset(&asset).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return ItemOutcome::Skipped,
            Err(e) => return failed("retiring an asset", &asset.id, e),
        }
        for key in [&asset.s3_key, &asset.thumbnail_key].into_iter().flatten() {
            if let Err(e) = self.cleaner.bucket.delete(key).await {
                tracing::warn!(
                    asset = asset.id,
                    key,
                    error = %e,
                    "retired asset's object left for the sweep of unclaimed objects"
                );
            }
        }
        ItemOutcome::Done
    }

    async fn leaked_objects(
        &self,
        step: &Step,
        modified_before: i64,
    ) -> Result<(Counts, Option<StringKey>), Retry> {
        let after = step.after.as_ref().and_then(|k| k.get("key").cloned());
        let (objects, next) = self
            .cleaner
            .bucket
            .object_page(UPLOADS_PREFIX, after, self.cleaner.policy.page_size)
            .await
            .map_err(|e| e.to_string())?;
        let position = |key: &str| StringKey::from([("key".to_owned(), key.to_owned())]);
        // Who claims the old ones, in one read.
        let mut ids: Vec<(String, String)> = objects
            .iter()
            .filter(|(key, modified)| last_written(key, *modified) < modified_before)
            .filter_map(|(key, _)| object_owner_and_id(key))
            .map(|(owner, id)| (owner.to_owned(), id.to_owned()))
            .collect();
        ids.sort();
        ids.dedup();
        let claimed = self
            .cleaner
            .table
            .claimed_ids(&ids)
            .await
            .map_err(|e| e.to_string())?;
        let items = objects
            .into_iter()
            .map(|object| {
                let at = position(&object.0);
                (object, at)
            })
            .collect();
        let more = next.as_deref().map(position);
        Ok(
            in_rounds(self.cleaner.policy, self.started, items, more, |object| {
                self.delete_leaked(object, modified_before, &claimed)
            })
            .await,
        )
    }

    /// Deletes an object old enough that no upload or ingestion could still
    /// claim it, under an id no asset or file record holds. Keys that are
    /// not ours (no owner and id) are left alone.
    async fn delete_leaked(
        &self,
        (key, modified): (String, i64),
        modified_before: i64,
        claimed: &std::collections::HashSet<String>,
    ) -> ItemOutcome {
        if last_written(&key, modified) >= modified_before {
            return ItemOutcome::Skipped;
        }
        match object_owner_and_id(&key) {
            Some((_, id)) if !claimed.contains(id) => {}
            _ => return ItemOutcome::Skipped,
        }
        match self.cleaner.bucket.delete(&key).await {
            Ok(()) => {
                tracing::info!(key, "cleanup: deleted an object no record claims");
                ItemOutcome::Done
            }
            Err(e) => failed("deleting a leaked object", &key, e),
        }
    }

    /// An asset in flight past the limit: a `PENDING` import fails; a
    /// `PROCESSING` one has its object announced again (S3 sends the
    /// ingestion function a new event) and its age restarts — unless that
    /// was done before or the object is gone: then it fails, through the
    /// same write ingestion uses to reject an object (its bytes go back).
    async fn unstick(&self, asset: Option<AssetRecord>, cutoff: &str) -> ItemOutcome {
        let Some(asset) = asset else {
            return ItemOutcome::Skipped;
        };
        let table = self.cleaner.table;
        match asset.status {
            AssetStatus::Pending => {
                if asset.created_at.as_str() >= cutoff {
                    return ItemOutcome::Skipped;
                }
                match table
                    .fail_pending_asset(&asset.owner, &asset.id, IMPORT_STUCK, &self.now)
                    .await
                {
                    Ok(true) => ItemOutcome::Done,
                    Ok(false) => ItemOutcome::Skipped,
                    Err(e) => failed("failing a stuck import", &asset.id, e),
                }
            }
            AssetStatus::Processing => {
                let since = asset
                    .ingest_retried_at
                    .as_deref()
                    .unwrap_or(&asset.created_at);
                if since >= cutoff {
                    return ItemOutcome::Skipped;
                }
                let Some(key) = asset.s3_key.clone() else {
                    return ItemOutcome::Skipped;
                };
                if asset.ingest_retried_at.is_none() {
                    match self
                        .cleaner
                        .bucket
                        .announce_again(&key, &asset.content_type)
                        .await
                    {
                        Ok(true) => {
                            return match table.mark_ingest_retried(&asset, &key, &self.now).await {
                                Ok(true) => ItemOutcome::Done,
                                Ok(false) => ItemOutcome::Skipped,
                                Err(e) => failed("marking an ingestion retried", &asset.id, e),
                            };
                        }
                        Ok(false) => {} // gone: nothing to ingest
                        Err(e) => return failed("announcing an object again", &asset.id, e),
                    }
                }
                self.fail_processing(&asset, &key).await
            }
            // Moved on without leaving the partition: not stuck.
            _ => ItemOutcome::Skipped,
        }
    }

    async fn fail_processing(&self, asset: &AssetRecord, key: &str) -> ItemOutcome {
        let table = self.cleaner.table;
        let Some((owner, id)) = object_owner_and_id(key) else {
            return ItemOutcome::Skipped;
        };
        // The object's claim is the asset itself when the key names it (what
        // `claim_of` would find first); otherwise the file it came from.
        let claim = if id == asset.id {
            Claim::Asset(asset.clone())
        } else {
            match table.claim_of(owner, id).await {
                Ok(Some(claim)) => claim,
                Ok(None) => return ItemOutcome::Skipped,
                Err(e) => return failed("reading a stuck asset's claim", &asset.id, e),
            }
        };
        match table.fail_ingest(&claim, NOT_PROCESSED, &self.now).await {
            Ok(Ok(())) => ItemOutcome::Done,
            Ok(Err(_)) => ItemOutcome::Skipped,
            Err(e) => failed("failing a stuck asset", &asset.id, e),
        }
    }

    async fn purge_files(
        &self,
        step: &Step,
        cutoff: &str,
    ) -> Result<(Counts, Option<StringKey>), Retry> {
        // A part beyond the statuses is refused before a step works.
        let status = PURGED_STATUSES[step.part as usize];
        let page = self
            .cleaner
            .table
            .closed_files_page(
                status,
                cutoff,
                step.after.clone(),
                self.cleaner.policy.page_size,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(in_rounds(
            self.cleaner.policy,
            self.started,
            page.items,
            page.next,
            |file| self.purge(file),
        )
        .await)
    }

    /// Deletes a closed file record that no asset holds, and whatever
    /// object its key still names (normally none: abort, expiry and
    /// failed ingestion remove it; a crash may not have).
    async fn purge(&self, file: FileRecord) -> ItemOutcome {
        if file.asset_id.is_some() || file.upload_status.is_open() {
            return ItemOutcome::Skipped; // its asset's retention decides
        }
        if let Err(e) = self.cleaner.bucket.delete(&file.s3_key).await {
            return failed("deleting a purged file's object", &file.id, e);
        }
        match self.cleaner.table.delete_file(&file).await {
            Ok(Ok(())) => ItemOutcome::Done,
            Ok(Err(_)) => ItemOutcome::Skipped,
            Err(e) => failed("purging a file record", &file.id, e),
        }
    }

    async fn orphan_multipart(
        &self,
        step: &Step,
        initiated_before: i64,
    ) -> Result<(Counts, Option<StringKey>), Retry> {
        let after = step
            .after
            .as_ref()
            .and_then(|k| Some((k.get("key")?.clone(), k.get("upload_id")?.clone())));
        let (uploads, next) = self
            .cleaner
            .bucket
            .multipart_page(UPLOADS_PREFIX, after, self.cleaner.policy.page_size)
            .await
            .map_err(|e| e.to_string())?;
        let position = |key: &str, upload_id: &str| {
            StringKey::from([
                ("key".to_owned(), key.to_owned()),
                ("upload_id".to_owned(), upload_id.to_owned()),
            ])
        };
        // The records of the old ones, in one read.
        let mut ids: Vec<(String, String)> = uploads
            .iter()
            .filter(|u| last_written(&u.key, u.initiated_epoch) < initiated_before)
            .filter_map(|u| parse_object_key(&u.key))
            .map(|(owner, id)| (owner.to_owned(), id.to_owned()))
            .collect();
        ids.sort();
        ids.dedup();
        let files = keyed(
            self.cleaner
                .table
                .files_by_ids(&ids)
                .await
                .map_err(|e| e.to_string())?,
            |f| &f.id,
        );
        let items = uploads
            .into_iter()
            .map(|u| {
                let at = position(&u.key, &u.upload_id);
                (u, at)
            })
            .collect();
        let more = next.map(|(key, upload_id)| position(&key, &upload_id));
        Ok(
            in_rounds(self.cleaner.policy, self.started, items, more, |upload| {
                self.abort_orphan(upload, initiated_before, &files)
            })
            .await,
        )
    }

    /// Aborts a multipart upload older than the orphan age unless an open
    /// upload record claims it (by its id, or an open record that has not
    /// learnt its id yet: Uppy's signed uploads create it in the browser).
    async fn abort_orphan(
        &self,
        upload: OpenMultipart,
        initiated_before: i64,
        files: &HashMap<String, FileRecord>,
    ) -> ItemOutcome {
        if last_written(&upload.key, upload.initiated_epoch) >= initiated_before {
            return ItemOutcome::Skipped;
        }
        let claimed = parse_object_key(&upload.key)
            .and_then(|(_, id)| files.get(id))
            .is_some_and(|f| {
                f.upload_status.is_open()
                    && f.upload_id
                        .as_deref()
                        .is_none_or(|known| known == upload.upload_id)
            });
        if claimed {
            return ItemOutcome::Skipped;
        }
        match self
            .cleaner
            .bucket
            .abort(&upload.key, &upload.upload_id)
            .await
        {
            Ok(()) => ItemOutcome::Done,
            Err(e) => failed("aborting an orphan multipart upload", &upload.key, e),
        }
    }
}
