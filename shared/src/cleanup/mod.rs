//! Scheduled cleanup (SPEC §3.7): what each task acts on, how old things
//! must be, and how a run is cut into bounded steps.
//!
//! A run starts from the scheduler's message and fans out into one step per
//! task and part (a `due` shard, a file status, the bucket's listing). A
//! step handles one page of items within a time budget and, when more
//! remains, queues its follow-up with the position it stopped at. Every
//! step is recorded under its run (`store.rs`) before it works, so a
//! duplicated message finds its record and does nothing, and every change
//! to an item is conditional on the state read, so a user acting at the
//! same moment wins. All steps of a run share the run's time (`as_of`):
//! what becomes due while the run pages is left to the next run, so a run
//! always ends.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{self, ConfigError, Settings, vars};
use crate::pagination::StringKey;
use crate::uploads::UploadStatus;
use crate::wire::wire_enum;

mod store;

pub use store::{DueEntry, DueKind};

wire_enum! {
    /// One kind of cleanup work.
    pub enum Task {
        /// Open uploads past their expiry: S3 side aborted, record
        /// `expired`, reserved quota given back.
        ExpireUploads = "expire-uploads",
        /// Closed file records (`failed`, `aborted`, `expired`) past the
        /// purge age, with their objects.
        PurgeFiles = "purge-files",
        /// S3 multipart uploads under `uploads/` that no open record knows.
        OrphanMultipart = "orphan-multipart",
        /// Generations past their deadline: failed "timed out".
        StuckGenerations = "stuck-generations",
        /// Assets older than the retention period that are neither a
        /// favourite nor a headliner: deleted with their objects.
        Retention = "retention",
        /// Objects under `uploads/` that no record claims, once old enough
        /// that nothing could still claim them (daily).
        LeakedObjects = "leaked-objects",
        /// Assets in flight too long: an import still `PENDING` fails; an
        /// asset still `PROCESSING` has its object announced again once
        /// (ingestion runs again), then fails.
        StuckWork = "stuck-work",
    }
}

/// The tasks of the hourly run (a run that names none): all but the daily
/// listing of the bucket's objects.
pub const HOURLY: &[Task] = &[
    Task::ExpireUploads,
    Task::PurgeFiles,
    Task::OrphanMultipart,
    Task::StuckGenerations,
    Task::StuckWork,
    Task::Retention,
];

/// The file statuses the purge removes, in part order.
pub const PURGED_STATUSES: [UploadStatus; 3] = [
    UploadStatus::Failed,
    UploadStatus::Aborted,
    UploadStatus::Expired,
];

impl Task {
    /// How many parts the task is cut into: one per `due` shard for the
    /// tasks on that index, one per purged status, one bucket listing.
    pub fn parts(self, due_shards: u32) -> u32 {
        match self {
            Self::ExpireUploads | Self::StuckGenerations | Self::StuckWork | Self::Retention => {
                due_shards
            }
            Self::PurgeFiles => PURGED_STATUSES.len() as u32,
            Self::OrphanMultipart | Self::LeakedObjects => 1,
        }
    }
}

/// What the cleanup queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CleanupMessage {
    /// The scheduler's hourly message. `scheduled_time` is EventBridge
    /// Scheduler's `<aws.scheduler.scheduled-time>`: one run per firing,
    /// however often the message is delivered. `tasks` names the run's
    /// tasks ([`HOURLY`] when absent).
    ScheduledRun {
        #[serde(default)]
        scheduled_time: Option<String>,
        #[serde(default)]
        tasks: Option<Vec<Task>>,
    },
    /// One bounded piece of a run.
    Step(Step),
}

/// One page of one task's part within a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The run's id (its scheduled time, or the id of the message that
    /// started it).
    pub run: String,
    /// The run's time (RFC 3339): every age is measured from it.
    pub as_of: String,
    pub task: Task,
    pub part: u32,
    /// Where the previous page stopped; `None` for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<StringKey>,
}

impl Step {
    /// The run's time, if this is a step a run could have queued: a valid
    /// `as_of` and a part its task has. `Err` names what is wrong (a
    /// message to drop: it would never work).
    pub fn checked_time(&self, due_shards: u32) -> Result<OffsetDateTime, String> {
        if self.part >= self.task.parts(due_shards) {
            return Err(format!("{} has no part {}", self.task.as_str(), self.part));
        }
        OffsetDateTime::parse(&self.as_of, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("step time {:?}: {e}", self.as_of))
    }
}

/// The steps a run starts with.
pub fn first_steps(run: &str, as_of: &str, tasks: &[Task], due_shards: u32) -> Vec<Step> {
    tasks
        .iter()
        .flat_map(|&task| {
            (0..task.parts(due_shards)).map(move |part| Step {
                run: run.to_owned(),
                as_of: as_of.to_owned(),
                task,
                part,
                after: None,
            })
        })
        .collect()
}

/// The scheduler's time of a run, when it gave a valid one that is not in
/// the future (a message cannot make things look older than they are).
pub fn run_time(scheduled_time: Option<&str>, now: OffsetDateTime) -> Option<OffsetDateTime> {
    scheduled_time
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .filter(|t| *t <= now)
}

/// Ages, limits and page bounds, from the function's environment.
#[derive(Debug, Clone)]
pub struct CleanupPolicy {
    /// Closed file records live this long after they were created.
    pub purge_after: Duration,
    /// A multipart upload no record knows is aborted once this old.
    pub orphan_after: Duration,
    /// Expiries and deadlines count only this long after they passed, so
    /// a request that checked them a moment before has finished.
    pub grace: Duration,
    /// Items one step reads at most.
    pub page_size: u32,
    /// A step stops taking items after this long (well inside the
    /// function's timeout) and leaves the rest to its follow-up.
    pub time_budget: Duration,
    /// An import or ingestion is stuck once its asset has been in flight
    /// this long (ingestion retries within minutes; an import's fetch is
    /// bounded by its function's timeout).
    pub stuck_after: Duration,
    /// An object no record claims is deleted once this old (past any open
    /// upload's expiry and any ingestion's retries).
    pub leaked_after: Duration,
    /// Items a step changes at once.
    pub concurrency: usize,
    /// Assets older than this are deleted unless kept (favourite,
    /// headliner); `None`: the retention policy is off.
    pub retention: Option<Duration>,
}

impl CleanupPolicy {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        let days: u64 = config::parsed_or(settings, vars::CLEANUP_PURGE_AFTER_DAYS, 7)?;
        let page_size: u32 = config::parsed_or(settings, vars::CLEANUP_PAGE_SIZE, 100)?;
        if !(1..=100).contains(&page_size) {
            // BatchGetItem reads at most 100 keys; a page is one such read.
            return Err(ConfigError::Invalid {
                key: vars::CLEANUP_PAGE_SIZE,
                reason: "must be 1 to 100".into(),
            });
        }
        let seconds = |key, default| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(config::parsed_or(
                settings, key, default,
            )?))
        };
        let retention_days: u64 = config::parsed_or(settings, vars::RETENTION_DAYS, 10)?;
        Ok(Self {
            purge_after: Duration::from_secs(days * 24 * 3600),
            orphan_after: seconds(vars::CLEANUP_ORPHAN_AFTER_SECONDS, 3600)?,
            stuck_after: seconds(vars::CLEANUP_STUCK_AFTER_SECONDS, 3600)?,
            leaked_after: seconds(vars::CLEANUP_LEAKED_AFTER_SECONDS, 2 * 24 * 3600)?,
            grace: Duration::from_secs(300),
            page_size,
            time_budget: seconds(vars::CLEANUP_STEP_SECONDS, 30)?,
            concurrency: 8,
            retention: (retention_days > 0)
                .then(|| Duration::from_secs(retention_days * 24 * 3600)),
        })
    }

    /// Whether a run has work for `task` at all (retention can be off).
    pub fn runs(&self, task: Task) -> bool {
        task != Task::Retention || self.retention.is_some()
    }

    /// Items of `task` older than this are its work in a run of time
    /// `as_of`. (With retention off the task returns before reading, so
    /// its cutoff is never used.)
    pub fn cutoff(&self, task: Task, as_of: OffsetDateTime) -> OffsetDateTime {
        let age = match task {
            Task::ExpireUploads | Task::StuckGenerations => self.grace,
            Task::PurgeFiles => self.purge_after,
            Task::OrphanMultipart => self.orphan_after,
            Task::LeakedObjects => self.leaked_after,
            Task::StuckWork => self.stuck_after,
            Task::Retention => self.retention.unwrap_or(Duration::ZERO),
        };
        as_of - age
    }
}

wire_enum! {
    /// Where a step is.
    pub enum StepState {
        /// Claimed by a message that is working on it.
        Running = "running",
        Done = "done",
    }
}

/// The record of one step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(flatten)]
    pub step: Step,
    /// The SQS message that claimed it.
    pub message_id: String,
    pub state: StepState,
    pub counts: Counts,
    /// Whether it queued a follow-up.
    pub follow_up: bool,
    pub started: String,
    pub finished: Option<String>,
}

/// What one step did, per item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Items the step read.
    pub found: u32,
    /// Items it changed.
    pub done: u32,
    /// Items it left alone (someone else moved them on, or not yet due).
    pub skipped: u32,
    /// Items whose change failed; still due, so the next run tries again.
    pub failed: u32,
}

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    Done,
    Skipped,
    Failed,
}

impl Counts {
    pub fn add(&mut self, outcome: ItemOutcome) {
        self.found += 1;
        match outcome {
            ItemOutcome::Done => self.done += 1,
            ItemOutcome::Skipped => self.skipped += 1,
            ItemOutcome::Failed => self.failed += 1,
        }
    }
}

/// Works `items` (each with its position) [`CleanupPolicy::concurrency`]
/// at a time until all are done or the step's time budget, counted from
/// `started`, is spent — after at least one round, so every step moves on.
/// Returns the counts and the position to go on from: after the last item
/// worked when the budget stopped it, else the page's own `more`.
pub async fn in_rounds<I, F, Fut>(
    policy: &CleanupPolicy,
    started: std::time::Instant,
    items: Vec<(I, StringKey)>,
    more: Option<StringKey>,
    act: F,
) -> (Counts, Option<StringKey>)
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = ItemOutcome>,
{
    let mut counts = Counts::default();
    let mut last: Option<StringKey> = None;
    let mut items = items.into_iter();
    loop {
        let round: Vec<(I, StringKey)> = items.by_ref().take(policy.concurrency).collect();
        let Some((_, end)) = round.last() else {
            return (counts, more);
        };
        if last.is_some() && started.elapsed() > policy.time_budget {
            return (counts, last);
        }
        let end = end.clone();
        let outcomes =
            futures_util::future::join_all(round.into_iter().map(|(item, _)| act(item))).await;
        for outcome in outcomes {
            counts.add(outcome);
        }
        last = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_fans_out_into_every_part_of_every_task() {
        let steps = first_steps("r", "2026-12-05T10:00:00Z", Task::ALL, 8);
        assert_eq!(steps.len(), 8 + 3 + 1 + 8 + 8 + 1 + 8);
        let purge: Vec<u32> = steps
            .iter()
            .filter(|s| s.task == Task::PurgeFiles)
            .map(|s| s.part)
            .collect();
        assert_eq!(purge, [0, 1, 2]);
        assert!(steps.iter().all(|s| s.after.is_none() && s.run == "r"));
    }

    #[test]
    fn messages_read_as_the_scheduler_and_the_steps_write_them() {
        let run: CleanupMessage = serde_json::from_str(
            r#"{"kind":"scheduled-run","scheduled_time":"2026-12-05T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            run,
            CleanupMessage::ScheduledRun {
                scheduled_time: Some("2026-12-05T10:00:00Z".into()),
                tasks: None
            }
        );
        let bare: CleanupMessage = serde_json::from_str(r#"{"kind":"scheduled-run"}"#).unwrap();
        assert!(matches!(bare, CleanupMessage::ScheduledRun { .. }));
        let step = CleanupMessage::Step(Step {
            run: "r".into(),
            as_of: "2026-12-05T10:00:00Z".into(),
            task: Task::ExpireUploads,
            part: 3,
            after: Some(StringKey::from([("pk".into(), "USER#a".into())])),
        });
        let text = serde_json::to_string(&step).unwrap();
        assert!(text.contains(r#""kind":"step""#) && text.contains(r#""task":"expire-uploads""#));
        assert_eq!(serde_json::from_str::<CleanupMessage>(&text).unwrap(), step);
    }

    #[test]
    fn a_step_no_run_could_have_queued_is_refused() {
        let step = |as_of: &str, task, part| Step {
            run: "r".into(),
            as_of: as_of.into(),
            task,
            part,
            after: None,
        };
        let now = "2026-12-05T10:00:00Z";
        assert!(step(now, Task::ExpireUploads, 7).checked_time(8).is_ok());
        assert!(step(now, Task::ExpireUploads, 8).checked_time(8).is_err());
        assert!(step(now, Task::PurgeFiles, 3).checked_time(8).is_err());
        assert!(
            step("yesterday", Task::PurgeFiles, 0)
                .checked_time(8)
                .is_err()
        );
    }

    #[test]
    fn object_keys_name_their_owner_and_id() {
        let id = "01M949SXJWB11P3Z78SWB1GA0C";
        for leaf in ["original.png", "thumbnail.jpg"] {
            assert_eq!(
                crate::uploads::object_owner_and_id(&format!("uploads/u-1/{id}/{leaf}")),
                Some(("u-1", id))
            );
        }
        assert_eq!(
            crate::uploads::object_owner_and_id(&format!("uploads/u-1/{id}/a/b")),
            None
        );
        assert_eq!(
            crate::uploads::object_owner_and_id("uploads/u-1/not-an-id/original.png"),
            None
        );
        assert_eq!(
            crate::uploads::object_owner_and_id(&format!("exports/u-1/{id}/x.docx")),
            None
        );
        assert_eq!(
            crate::uploads::object_owner_and_id(&format!("uploads//{id}/original.png")),
            None
        );
    }

    #[test]
    fn only_a_past_scheduled_time_names_the_run() {
        let now = OffsetDateTime::parse(
            "2026-12-05T10:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(run_time(Some("2026-12-09T10:00:00Z"), now), None);
        assert_eq!(run_time(Some("not a time"), now), None);
        assert_eq!(run_time(None, now), None);
        let earlier = run_time(Some("2026-12-05T09:00:00Z"), now).unwrap();
        assert_eq!((now - earlier).whole_hours(), 1);
    }

    #[test]
    fn cutoffs_measure_each_task_s_age_from_the_run() {
        let policy = CleanupPolicy::from_settings(&std::collections::HashMap::new()).unwrap();
        let as_of = OffsetDateTime::parse(
            "2026-12-15T10:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let cutoff = |task| crate::clock::rfc3339(policy.cutoff(task, as_of));
        assert_eq!(cutoff(Task::PurgeFiles), "2026-12-08T10:00:00Z");
        assert_eq!(cutoff(Task::OrphanMultipart), "2026-12-15T09:00:00Z");
        assert_eq!(cutoff(Task::ExpireUploads), "2026-12-15T09:55:00Z");
        assert_eq!(cutoff(Task::Retention), "2026-12-05T10:00:00Z");
        let off =
            std::collections::HashMap::from([(vars::RETENTION_DAYS.to_owned(), "0".to_owned())]);
        let off = CleanupPolicy::from_settings(&off).unwrap();
        assert_eq!(off.retention, None);
        assert!(!off.runs(Task::Retention) && off.runs(Task::PurgeFiles));
        assert!(policy.runs(Task::Retention));
    }

    fn position(i: u32) -> StringKey {
        StringKey::from([("sk".to_owned(), format!("{i:03}"))])
    }

    fn page(n: u32) -> Vec<(u32, StringKey)> {
        (0..n).map(|i| (i, position(i))).collect()
    }

    fn policy(budget_secs: u64) -> CleanupPolicy {
        let mut policy = CleanupPolicy::from_settings(&std::collections::HashMap::new()).unwrap();
        policy.time_budget = Duration::from_secs(budget_secs);
        policy
    }

    #[tokio::test]
    async fn a_page_worked_through_goes_on_where_the_page_ends() {
        let outcome = |i: u32| async move {
            match i % 3 {
                0 => ItemOutcome::Done,
                1 => ItemOutcome::Skipped,
                _ => ItemOutcome::Failed,
            }
        };
        let (counts, next) = in_rounds(
            &policy(30),
            std::time::Instant::now(),
            page(20),
            Some(position(99)),
            outcome,
        )
        .await;
        assert_eq!(
            counts,
            Counts {
                found: 20,
                done: 7,
                skipped: 7,
                failed: 6
            }
        );
        assert_eq!(next, Some(position(99)));
        let (counts, next) = in_rounds(
            &policy(30),
            std::time::Instant::now(),
            page(0),
            None,
            outcome,
        )
        .await;
        assert_eq!((counts, next), (Counts::default(), None));
    }

    #[tokio::test]
    async fn a_spent_budget_stops_after_one_round_at_its_last_item() {
        let started = std::time::Instant::now() - Duration::from_secs(5);
        let (counts, next) = in_rounds(&policy(0), started, page(20), None, |_| async {
            ItemOutcome::Done
        })
        .await;
        // One round of `concurrency` (8) items, then the follow-up goes on
        // after the eighth.
        assert_eq!(counts.found, 8);
        assert_eq!(next, Some(position(7)));
    }

    #[test]
    fn a_page_larger_than_one_batch_read_is_refused() {
        let settings = std::collections::HashMap::from([(
            vars::CLEANUP_PAGE_SIZE.to_owned(),
            "101".to_owned(),
        )]);
        assert!(CleanupPolicy::from_settings(&settings).is_err());
    }
}
