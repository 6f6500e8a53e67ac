//! The generation workflow that dispatch, poll and callback share: submit
//! once, poll on a schedule, and on success store every result in S3 (under
//! the download guard) for ingestion to describe. Each step starts from the
//! job state it reads and moves it with a conditional write, so duplicated,
//! late or out-of-order messages change nothing twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::provider::{ProviderClient, ProviderKeys, TaskReport, echoes_generation};
use crate::ai::response::{Output, TaskState};
use crate::ai::schedule::{FIRST_POLL_SECS, next_poll_delay, resubmit_delay};
use crate::ai::{
    FinishedBy, Job, JobState, Model, PollMessage, Provider, SubmitOutcome, SubmitValues, signing,
};
use crate::assets::{AssetRecord, AssetStatus};
use crate::clock;
use crate::config::{self, ConfigError, Settings, vars};
use crate::db::{Refusal, StoreError};
use crate::download::{self, FetchError, Limits, Placement};
use crate::secrets::SecretCache;
use crate::uploads::{self, flow::UploadEnv};

/// Submits refused-but-not-queued (429, 455, unreachable) before giving up.
pub const MAX_SUBMIT_ATTEMPTS: u32 = 5;

/// The limits a deployment sets.
#[derive(Debug, Clone)]
pub struct GenerationLimits {
    pub max_running: u32,
    pub deadline: Duration,
    pub max_polls: u32,
}

pub struct GenerationEnv {
    pub uploads: UploadEnv,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub secrets: SecretCache,
    pub provider: ProviderClient,
    pub callback_secret: Vec<u8>,
    /// `PUBLIC_API_URL`: where callbacks go when set (else the URL the
    /// generation request came in on, kept on its job).
    pub public_api_url: Option<String>,
    pub limits: GenerationLimits,
    pub allow_private: bool,
    pub secret_prefix: String,
    /// Registry entries read lately.
    definitions: Mutex<DefinitionCache>,
}

/// (model id, provider id) → when read, and what.
type DefinitionCache = HashMap<(String, String), (Instant, (Model, Provider))>;

/// How long a warm function reuses a model and provider it read: a poll
/// chain reads them once a minute instead of at every step (registry edits
/// reach running jobs within this).
pub const DEFINITION_TTL: Duration = Duration::from_secs(60);

/// Why a step did not finish: try the message again later.
pub type StepError = String;

fn now_text() -> String {
    clock::rfc3339(clock::now())
}

fn store(e: StoreError) -> StepError {
    e.to_string()
}

impl GenerationEnv {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let allow_private = config::flag(settings, vars::IMPORT_ALLOW_PRIVATE_NETWORKS);
        let callback_secret = config::required(settings, vars::CALLBACK_SECRET)?.into_bytes();
        if callback_secret.len() < 32 {
            return Err(ConfigError::Invalid {
                key: vars::CALLBACK_SECRET,
                reason: "needs at least 32 bytes".into(),
            });
        }
        let cache_secs: u64 = config::parsed_or(settings, vars::SECRET_CACHE_SECONDS, 300)?;
        Ok(Self {
            uploads: UploadEnv::from_settings(settings, sdk)?,
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: config::required(settings, vars::GENERATION_QUEUE_URL)?,
            secrets: SecretCache::new(sdk, Duration::from_secs(cache_secs)),
            provider: ProviderClient::new(allow_private),
            callback_secret,
            public_api_url: settings
                .get(vars::PUBLIC_API_URL)
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            limits: GenerationLimits {
                max_running: config::parsed_or(settings, vars::GENERATION_MAX_RUNNING, 5)?,
                deadline: Duration::from_secs(config::parsed_or(
                    settings,
                    vars::GENERATION_DEADLINE_SECONDS,
                    900,
                )?),
                max_polls: config::parsed_or(settings, vars::GENERATION_MAX_POLLS, 100)?,
            },
            allow_private,
            secret_prefix: config::required(settings, vars::PROVIDER_SECRET_PREFIX)?,
            definitions: Mutex::default(),
        })
    }

    /// Our callback URL of a generation: the owner (the item's partition)
    /// and a token bound to both in the query; `None` without a base URL.
    pub fn callback_url(&self, owner: &str, generation: &str, job: &Job) -> Option<String> {
        let base = self
            .public_api_url
            .as_deref()
            .or(job.callback_base.as_deref())?;
        Some(format!(
            "{base}/api/ai/callbacks/{generation}?owner={owner}&token={}",
            signing::callback_token(&self.callback_secret, owner, generation)
        ))
    }

    /// The provider's keys, read through the cache.
    pub async fn keys_of(&self, provider: &Provider) -> Result<ProviderKeys, StepError> {
        let secret = self
            .secrets
            .get(&provider.secret_ref)
            .await
            .map_err(|e| e.to_string())?;
        ProviderKeys::parse(&secret)
            .ok_or_else(|| format!("the secret of provider {} has no api_key", provider.name))
    }

    /// Queues a message for the generation poll function.
    pub async fn send(&self, message: &PollMessage, delay_secs: u32) -> Result<(), StepError> {
        let body = serde_json::to_string(message).map_err(|e| e.to_string())?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_secs.min(crate::ai::schedule::MAX_DELAY_SECS) as i32)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "queueing a poll: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        Ok(())
    }

    /// The model and provider a job runs on (deleted ones included: a
    /// running generation finishes on its definition), read at most once
    /// per [`DEFINITION_TTL`].
    pub async fn definition(&self, job: &Job) -> Result<Option<(Model, Provider)>, StepError> {
        let ids = (job.model.clone(), job.provider.clone());
        if let Some((at, found)) = self.definitions.lock().expect("definitions").get(&ids)
            && at.elapsed() < DEFINITION_TTL
        {
            return Ok(Some(found.clone()));
        }
        let table = &self.uploads.table;
        let Some((model, _)) = table.get_model(&job.model).await.map_err(store)? else {
            return Ok(None);
        };
        let Some((provider, _)) = table.get_provider(&job.provider).await.map_err(store)? else {
            return Ok(None);
        };
        self.remember(&model, &provider);
        Ok(Some((model, provider)))
    }

    /// Keeps a model and provider just read (dispatch checks them fresh,
    /// then its submit reuses them).
    pub fn remember(&self, model: &Model, provider: &Provider) {
        self.definitions.lock().expect("definitions").insert(
            (model.id.clone(), provider.id.clone()),
            (Instant::now(), (model.clone(), provider.clone())),
        );
    }

    /// Sends the submit of a `recorded` job once — after claiming it, so no
    /// other copy can — and records what came of it.
    // Long on purpose: every outcome of a submit (taken, refused for good,
    // refused for now, unknown) with its write and its next message.
    pub async fn submit(&self, asset: &AssetRecord) -> Result<(), StepError> {
        let table = &self.uploads.table;
        let Some(job) = asset.generation.as_ref() else {
            return Ok(());
        };
        if job.state != JobState::Recorded {
            return Ok(());
        }
        let now = now_text();
        let fail = |reason: &'static str| {
            self.fail_from(asset, &[JobState::Recorded, JobState::Submitting], reason)
        };
        let Some((model, provider)) = self.definition(job).await? else {
            return fail("the model is no longer in the registry").await;
        };
        let keys = match self.keys_of(&provider).await {
            Ok(keys) => keys,
            Err(reason) => {
                tracing::error!(generation = asset.id, reason, "provider key unavailable");
                return fail("the provider's key is not available").await;
            }
        };
        let parent_asset_url = match &job.parent_asset {
            Some(parent) => Some(self.parent_url(&asset.owner, parent).await?),
            None => None,
        };
        if !table
            .claim_submit(&asset.owner, &asset.id, job.submit_attempts, &now)
            .await
            .map_err(store)?
        {
            return Ok(()); // another copy of this message has it
        }
        let values = SubmitValues {
            prompt: asset.prompt_text.as_deref().unwrap_or_default(),
            seed: job.seed,
            params: &job.params,
            parent_asset_url,
            callback_url: self.callback_url(&asset.owner, &asset.id, job),
            generation_id: &asset.id,
        };
        let outcome = self
            .provider
            .submit(&provider, &model, &keys, &values)
            .await;
        let attempt = job.submit_attempts + 1;
        tracing::info!(generation = asset.id, attempt, outcome = ?outcome_kind(&outcome), "submitted");
        match outcome {
            SubmitOutcome::Accepted(task) => self.start_polling(asset, Some(&task)).await,
            SubmitOutcome::Unknown(reason) => {
                tracing::warn!(
                    generation = asset.id,
                    reason,
                    "submit outcome unknown: not resent"
                );
                self.start_polling(asset, None).await
            }
            SubmitOutcome::Refused(reason) => {
                self.fail_from(asset, &[JobState::Submitting], &reason)
                    .await
            }
            SubmitOutcome::RetryLater { reason, .. } if attempt >= MAX_SUBMIT_ATTEMPTS => {
                let why =
                    format!("the provider stayed unavailable after {attempt} attempts ({reason})");
                self.fail_from(asset, &[JobState::Submitting], &why).await
            }
            SubmitOutcome::RetryLater {
                reason,
                retry_after,
            } => {
                let note = format!("attempt {attempt} was refused ({reason}); it will be retried");
                table
                    .release_submit(&asset.owner, &asset.id, &note, &now_text())
                    .await
                    .map_err(store)?;
                let again = PollMessage::Resubmit {
                    owner: asset.owner.clone(),
                    generation: asset.id.clone(),
                    attempt,
                };
                self.send(&again, resubmit_delay(attempt, retry_after))
                    .await
            }
        }
    }

    /// Records a sent submit (`submitted` with its task, or `unconfirmed`)
    /// and queues the first poll.
    async fn start_polling(
        &self,
        asset: &AssetRecord,
        task: Option<&str>,
    ) -> Result<(), StepError> {
        self.uploads
            .table
            .record_submit(asset, task, &now_text())
            .await
            .map_err(store)?;
        let first = PollMessage::Poll {
            owner: asset.owner.clone(),
            generation: asset.id.clone(),
            poll: 0,
        };
        self.send(&first, FIRST_POLL_SECS).await
    }

    /// A short-lived URL of the parent image for the provider to fetch.
    async fn parent_url(&self, owner: &str, parent: &str) -> Result<String, StepError> {
        let parent = self
            .uploads
            .table
            .get_asset(owner, parent)
            .await
            .map_err(store)?
            .and_then(|p| p.s3_key.clone().map(|k| (k, p.name)))
            .ok_or("the parent asset is gone")?;
        let signer = self.uploads.presigner().await.map_err(|e| e.message)?;
        Ok(self.uploads.object_url(&signer, &parent.0, &parent.1))
    }

    /// One poll-queue message.
    pub async fn handle(&self, message: &PollMessage) -> Result<(), StepError> {
        let (owner, generation) = message.generation();
        let Some(asset) = self
            .uploads
            .table
            .get_asset(owner, generation)
            .await
            .map_err(store)?
        else {
            return Ok(()); // deleted meanwhile
        };
        let Some(job) = asset.generation.as_deref().cloned() else {
            return Ok(());
        };
        match (job.state, message) {
            (JobState::Stored | JobState::Failed, _) => Ok(()),
            (JobState::Storing, _) => self.store_results(&asset, &job, None).await,
            (JobState::Recorded, PollMessage::Resubmit { attempt, .. })
                if *attempt == job.submit_attempts =>
            {
                // Past its deadline, a refused job is not tried again.
                match self.is_late(&job) {
                    true => {
                        self.fail(&asset, job.state, "the generation timed out")
                            .await
                    }
                    false => self.submit(&asset).await,
                }
            }
            (JobState::Recorded | JobState::Submitting, _) => self.fail_if_late(&asset, &job).await,
            (JobState::Submitted | JobState::Unconfirmed, PollMessage::Poll { poll, .. }) => {
                if *poll != job.polls {
                    return Ok(()); // a duplicate or a late one
                }
                self.poll(&asset, &job, true, None).await
            }
            (JobState::Submitted | JobState::Unconfirmed, PollMessage::Wake { task_id, .. }) => {
                self.poll(&asset, &job, false, task_id.as_deref()).await
            }
            (_, PollMessage::Resubmit { .. }) => Ok(()),
        }
    }

    fn is_late(&self, job: &Job) -> bool {
        uploads::flow::is_past(&job.deadline)
    }

    async fn fail_if_late(&self, asset: &AssetRecord, job: &Job) -> Result<(), StepError> {
        if self.is_late(job) {
            self.fail(asset, job.state, "the generation timed out")
                .await?;
        }
        Ok(())
    }

    async fn fail(
        &self,
        asset: &AssetRecord,
        from: JobState,
        reason: &str,
    ) -> Result<(), StepError> {
        self.fail_from(asset, &[from], reason).await
    }

    /// Fails the job (and its asset) if it is still in one of `from`.
    async fn fail_from(
        &self,
        asset: &AssetRecord,
        from: &[JobState],
        reason: &str,
    ) -> Result<(), StepError> {
        self.uploads
            .table
            .finish_job(asset, from, Err(reason), &now_text())
            .await
            .map(|_| ())
            .map_err(store)
    }

    /// Asks the provider; `scheduled` polls keep the chain going.
    async fn poll(
        &self,
        asset: &AssetRecord,
        job: &Job,
        scheduled: bool,
        named_task: Option<&str>,
    ) -> Result<(), StepError> {
        let Some((model, provider)) = self.definition(job).await? else {
            return self
                .fail(asset, job.state, "the model is no longer in the registry")
                .await;
        };
        let keys = self.keys_of(&provider).await?;
        let mut job = job.clone();
        if job.task_id.is_none() {
            // The submit's reply was lost: a callback may name the task; it
            // is ours only if the provider echoes our callback path for it.
            if let Some(task) = named_task {
                let report = self
                    .provider
                    .query(&provider, &model, &keys, task, &asset.id)
                    .await?;
                if echoes_generation(&report.body, &asset.id)
                    && self
                        .uploads
                        .table
                        .reconcile_task(&asset.owner, &asset.id, task, &now_text())
                        .await
                        .map_err(store)?
                {
                    tracing::info!(
                        generation = asset.id,
                        "lost submit reconciled by its callback"
                    );
                    job.task_id = Some(task.to_owned());
                    job.state = JobState::Submitted;
                    return self.act_on(asset, &job, report, scheduled).await;
                }
            }
            if scheduled {
                return self.next_poll(asset, &job, None).await;
            }
            return Ok(());
        }
        let task = job.task_id.clone().expect("checked above");
        match self
            .provider
            .query(&provider, &model, &keys, &task, &asset.id)
            .await
        {
            Ok(report) => self.act_on(asset, &job, report, scheduled).await,
            Err(not_now) if scheduled => {
                tracing::info!(
                    generation = asset.id,
                    reason = not_now.reason,
                    "poll failed; polling on"
                );
                self.next_poll(asset, &job, not_now.retry_after).await
            }
            Err(not_now) => Err(not_now.reason),
        }
    }

    async fn act_on(
        &self,
        asset: &AssetRecord,
        job: &Job,
        report: TaskReport,
        scheduled: bool,
    ) -> Result<(), StepError> {
        match report.state {
            TaskState::Running if scheduled => self.next_poll(asset, job, report.retry_after).await,
            TaskState::Running => Ok(()),
            TaskState::Failed => {
                let reason = match report.failure {
                    Some(message) => format!("the generation failed at the provider: {message}"),
                    None => "the generation failed at the provider".into(),
                };
                self.fail(asset, job.state, &reason).await
            }
            TaskState::Succeeded if report.outputs.is_empty() => {
                self.fail(
                    asset,
                    job.state,
                    "the provider reported success without a result",
                )
                .await
            }
            TaskState::Succeeded => {
                let by = match scheduled {
                    true => FinishedBy::Poll,
                    false => FinishedBy::Callback,
                };
                self.store_results(asset, job, Some((report.outputs, by)))
                    .await
            }
        }
    }

    /// Schedules poll `job.polls + 1` — or fails the job when it is past
    /// its deadline or out of polls.
    async fn next_poll(
        &self,
        asset: &AssetRecord,
        job: &Job,
        retry_after: Option<u64>,
    ) -> Result<(), StepError> {
        if self.is_late(job) || job.polls + 1 >= self.limits.max_polls {
            return self
                .fail(asset, job.state, "the generation timed out")
                .await;
        }
        let table = &self.uploads.table;
        if !table
            .advance_poll(&asset.owner, &asset.id, job.polls, &now_text())
            .await
            .map_err(store)?
        {
            return Ok(()); // another copy got here first
        }
        let since = job
            .submitted_at
            .as_deref()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(0, |t| (clock::now() - t).whole_seconds().max(0) as u64);
        let delay = next_poll_delay(since, retry_after);
        let message = PollMessage::Poll {
            owner: asset.owner.clone(),
            generation: asset.id.clone(),
            poll: job.polls + 1,
        };
        if let Err(e) = self.send(&message, delay).await {
            // Undo, so the redelivered message can schedule it again.
            table
                .retreat_poll(&asset.owner, &asset.id, job.polls)
                .await
                .map_err(store)?;
            return Err(e);
        }
        Ok(())
    }

    /// Stores every output (resuming where a crash left off): one asset per
    /// output, the first the generation's own.
    // Long on purpose: claim, per-output create/fetch/record, and the end.
    async fn store_results(
        &self,
        asset: &AssetRecord,
        job: &Job,
        found: Option<(Vec<Output>, FinishedBy)>,
    ) -> Result<(), StepError> {
        let table = &self.uploads.table;
        let (outputs, by) = match found {
            Some((outputs, by)) => (outputs, Some(by)),
            // Resumed: ask again for the results (the URLs were not kept).
            None => {
                let Some((model, provider)) = self.definition(job).await? else {
                    return self
                        .fail(asset, job.state, "the model is no longer in the registry")
                        .await;
                };
                let keys = self.keys_of(&provider).await?;
                let task = job.task_id.clone().ok_or("a storing job has a task")?;
                let report = self
                    .provider
                    .query(&provider, &model, &keys, &task, &asset.id)
                    .await?;
                (report.outputs, None)
            }
        };
        let mut ids = job.outputs.clone();
        if job.state != JobState::Storing {
            ids = std::iter::once(asset.id.clone())
                .chain((1..outputs.len()).map(|_| crate::validation::new_id()))
                .collect();
            if !table
                .claim_storing(
                    &asset.owner,
                    &asset.id,
                    &ids,
                    by.unwrap_or(FinishedBy::Poll),
                    &now_text(),
                )
                .await
                .map_err(store)?
            {
                return Ok(()); // another copy is storing them
            }
        }
        let mut primary_failure = None;
        for (index, (id, output)) in ids.iter().zip(outputs).enumerate() {
            let target = if index == 0 {
                asset.clone()
            } else {
                match self.output_asset(asset, job, id).await? {
                    Some(target) => target,
                    None => continue, // the box went
                }
            };
            if target.s3_key.is_some() || target.status == AssetStatus::Failed {
                continue; // stored (or refused) by an earlier run
            }
            match self.store_output(&target, output).await {
                Ok(()) => {}
                Err(FetchError::Transient(reason)) => return Err(reason),
                Err(FetchError::Permanent(reason)) => {
                    let reason = format!("the result could not be stored: {reason}");
                    tracing::info!(asset = id, reason, "output refused");
                    table
                        .fail_output(&asset.owner, id, &reason, &now_text())
                        .await
                        .map_err(store)?;
                    if index == 0 {
                        primary_failure = Some(reason);
                    }
                }
            }
        }
        let outcome = primary_failure.as_deref().map_or(Ok(()), Err);
        table
            .finish_job(asset, &[JobState::Storing], outcome, &now_text())
            .await
            .map(|_| ())
            .map_err(store)
    }

    /// The asset of an extra output, recorded on first sight.
    async fn output_asset(
        &self,
        primary: &AssetRecord,
        job: &Job,
        id: &str,
    ) -> Result<Option<AssetRecord>, StepError> {
        let table = &self.uploads.table;
        if let Some(existing) = table.get_asset(&primary.owner, id).await.map_err(store)? {
            return Ok(Some(existing));
        }
        let now = now_text();
        let mut extra = AssetRecord::in_box(
            id.to_owned(),
            &primary.owner,
            &primary.box_id,
            &primary.project,
            &now,
        );
        extra.status = AssetStatus::Pending;
        extra.source_type = primary.source_type;
        extra.asset_type = primary.asset_type;
        extra.prompt_text.clone_from(&primary.prompt_text);
        extra.ai_model.clone_from(&primary.ai_model);
        extra.content_type = "application/octet-stream".into();
        extra.generation = Some(Box::new(Job {
            state: JobState::Stored,
            outputs: Vec::new(),
            output_of: Some(primary.id.clone()),
            finished_at: Some(now.clone()),
            ..job.clone()
        }));
        if table
            .create_pending_asset(&extra)
            .await
            .map_err(store)?
            .is_ok()
        {
            return Ok(Some(extra));
        }
        // Raced by another copy, or the box went.
        table.get_asset(&primary.owner, id).await.map_err(store)
    }

    /// One output into S3 under its asset's key, recorded with its bytes
    /// against the quota; ingestion describes it from there.
    async fn store_output(&self, target: &AssetRecord, output: Output) -> Result<(), FetchError> {
        let env = &self.uploads;
        let used = env
            .table
            .quota_used(&target.owner)
            .await
            .map_err(|e| FetchError::Transient(e.to_string()))?;
        let limits = Limits {
            max_bytes: env.policy.max_file_bytes,
            room: env.policy.quota_bytes.saturating_sub(used),
            quota_bytes: env.policy.quota_bytes,
        };
        let placement = OutputPlacement { env, target };
        let stored = match output {
            Output::Url(url) => {
                download::fetch_into_bucket(
                    self.provider.http().map_err(FetchError::Transient)?,
                    self.allow_private,
                    &env.bucket,
                    &url,
                    limits,
                    &placement,
                )
                .await?
            }
            Output::Bytes(bytes) => {
                let size = bytes.len() as u64;
                if size > limits.max_bytes.min(limits.room) {
                    return Err(FetchError::Permanent(format!(
                        "the result ({size} bytes) is larger than allowed or your quota has room for"
                    )));
                }
                let content_type = placement.sniff(&bytes).map_err(FetchError::Permanent)?;
                let (key, name) = placement.key_and_name(content_type);
                let disposition = Some(crate::s3::presign::attachment_disposition(&name));
                env.bucket
                    .put(&key, bytes, content_type, disposition)
                    .await
                    .map_err(|e| FetchError::Transient(e.to_string()))?;
                download::Stored {
                    key,
                    content_type,
                    name,
                    size,
                }
            }
        };
        let mut done = target.clone();
        done.s3_key = Some(stored.key.clone());
        done.content_type = stored.content_type.to_owned();
        done.asset_type = crate::media::AssetType::of_content_type(stored.content_type)
            .unwrap_or(target.asset_type);
        done.name = stored.name;
        done.size = stored.size;
        done.updated_at = now_text();
        match env
            .table
            .record_fetched_object(&done, env.policy.quota_bytes)
            .await
            .map_err(|e| FetchError::Transient(e.to_string()))?
        {
            Ok(()) => Ok(()),
            Err(Refusal::QuotaExceeded) => {
                let _ = env.bucket.delete(&stored.key).await;
                Err(FetchError::Permanent(format!(
                    "the file ({} bytes) would exceed your storage quota of {} bytes",
                    stored.size, env.policy.quota_bytes
                )))
            }
            // Recorded by another copy (same key, same bytes) or deleted.
            Err(_) => Ok(()),
        }
    }
}

/// A result's object: its asset's key, named after the generation.
struct OutputPlacement<'a> {
    env: &'a UploadEnv,
    target: &'a AssetRecord,
}

impl Placement for OutputPlacement<'_> {
    fn sniff(&self, head: &[u8]) -> Result<&'static str, String> {
        self.env
            .policy
            .media_type_of(head)
            .map_err(|not| format!("the result is not an allowed image or video ({not})"))
    }

    fn key_and_name(&self, content_type: &'static str) -> (String, String) {
        let key = uploads::object_key(&self.target.owner, &self.target.id, content_type);
        let extension = key.rsplit('.').next().unwrap_or("bin").to_owned();
        (key, format!("generation-{}.{extension}", self.target.id))
    }
}

fn outcome_kind(outcome: &SubmitOutcome) -> &'static str {
    match outcome {
        SubmitOutcome::Accepted(_) => "accepted",
        SubmitOutcome::RetryLater { .. } => "retry later",
        SubmitOutcome::Refused(_) => "refused",
        SubmitOutcome::Unknown(_) => "unknown",
    }
}

/// Shared across a batch's tasks.
pub type SharedEnv = Arc<GenerationEnv>;
