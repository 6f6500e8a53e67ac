//! `upload`: files straight to S3 through the `/v1/files` contract —
//! initiate (into a box), PUT the parts to presigned URLs in parallel,
//! complete — resumable after an interruption or a kill.

mod plan;
mod state;
mod transfer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use self::plan::Plan;
use self::state::{DonePart, Identity, Journal, State, stamp};
use self::transfer::{Part, PutError, Signer, part_checksum, put_part};
use crate::api::{Api, Retry, backoff, segment};
use crate::checksum::Checksum;
use crate::config::{Paths, remove_if_present};
use crate::error::{CliError, Exit, Result};
use crate::progress::{FileProgress, Output};
use crate::rate::RateLimit;

const PART_ATTEMPTS: u32 = 5;

pub struct UploadArgs {
    pub files: Vec<PathBuf>,
    pub box_id: String,
    pub parallel: usize,
    pub part_size_mib: Option<u64>,
    pub checksum: Option<Checksum>,
    pub limit_rate: Option<u64>,
    pub no_resume: bool,
}

struct Run<'a> {
    api: &'a Api,
    paths: &'a Paths,
    args: &'a UploadArgs,
    output: Output,
    box_name: String,
    /// Part PUTs in flight, across all files: `--parallel`.
    slots: Semaphore,
    rate: Option<Arc<RateLimit>>,
}

/// Uploads every file (up to `--parallel` at once, sharing `--parallel`
/// part slots); the first error for one file, or a summary for several.
pub async fn upload(api: &Api, paths: &Paths, args: UploadArgs, bars: bool) -> Result<()> {
    let found = api
        .get(&format!("/api/boxes/{}/", segment(&args.box_id)), &[])
        .await
        .map_err(|e| e.about(&format!("box {}", args.box_id)))?;
    let total = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let output = Output::new(bars).with_total(args.files.len(), total);
    let run = Run {
        api,
        paths,
        args: &args,
        output: output.clone(),
        box_name: found["name"].as_str().unwrap_or_default().to_owned(),
        slots: Semaphore::new(args.parallel),
        rate: args.limit_rate.map(|r| Arc::new(RateLimit::new(r))),
    };
    let work = futures_util::stream::iter(&args.files)
        .map(|path| run.file(path))
        .buffer_unordered(args.parallel)
        .collect::<Vec<_>>();
    // The work is dropped (its bars cleared, its requests cancelled) before
    // anything more is printed.
    let results = tokio::select! {
        results = work => Some(results),
        () = interrupted() => None,
    };
    output.finish();
    let Some(results) = results else {
        return Err(CliError::new(
            Exit::Interrupted,
            format!(
                "interrupted: the finished parts are kept ({}); to resume, run:\n  {}",
                paths.uploads().display(),
                resume_hint()
            ),
        ));
    };
    let count = results.len();
    let mut failed: Vec<CliError> = results.into_iter().filter_map(Result::err).collect();
    match failed.len() {
        0 => Ok(()),
        _ if count == 1 => Err(failed.remove(0)),
        n if n == count => Err(CliError::new(
            failed[0].exit,
            format!("none of the {count} files was uploaded"),
        )),
        n => Err(CliError::new(
            Exit::Partial,
            format!("{n} of {count} files failed (named above); the others were uploaded"),
        )),
    }
}

/// Ctrl-C, or a polite kill.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}

/// The command as it was run, without `--no-resume` (which would start
/// over instead of resuming).
fn resume_hint() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--no-resume")
        .map(|a| shell_quote(&a))
        .collect();
    format!("assetbox {}", args.join(" "))
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    match plain {
        true => arg.to_owned(),
        false => format!("'{}'", arg.replace('\'', r"'\''")),
    }
}

/// What the server says of an earlier upload.
enum Earlier {
    Open(Vec<(u32, String, u64)>),
    Completed(Value),
    Gone(String),
}

impl Run<'_> {
    async fn file(&self, path: &Path) -> Result<()> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let result = self
            .file_named(path, &name)
            .await
            .map_err(|e| e.about(&name));
        if let Err(e) = &result
            && self.args.files.len() > 1
        {
            self.output.warn(format!("error: {e}"));
        }
        result
    }

    async fn file_named(&self, path: &Path, name: &str) -> Result<()> {
        let unreadable = |e: std::io::Error| CliError::usage(format!("cannot read it: {e}"));
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(CliError::usage("not a file"));
        }
        let identity = Identity {
            api: self.api.base().to_owned(),
            path: std::fs::canonicalize(path).map_err(unreadable)?,
            size: meta.len(),
            mtime: stamp(&meta),
            box_id: self.args.box_id.clone(),
        };
        let state_path = identity.state_path(self.paths);
        // Two runs of one upload would fight over its parts and its state.
        let Some(_lock) = crate::config::lock_beside(&state_path)? else {
            return Err(CliError::usage(
                "another `assetbox upload` of this file to this box is running; let it finish (or stop it) first",
            ));
        };
        let progress = Arc::new(self.output.file(name, meta.len()));
        let result = self
            .transfer(path, name, &identity, &state_path, &progress)
            .await;
        if result.is_ok() {
            // Done: its lock goes too (still held, so no run of it is waiting).
            let _ = std::fs::remove_file(state_path.with_extension("lock"));
        }
        if result.is_err() {
            progress.abandon();
            // A file that changed meanwhile is another upload now: this
            // one can never be resumed, so it goes.
            if identity.changed()
                && let Some(old) = State::load(&state_path)
            {
                self.abort(&old.file_id).await;
                remove_if_present(&state_path)?;
                return Err(CliError::usage(
                    "the file changed while it was uploading; its upload was aborted: run again to upload it as it is now",
                ));
            }
        }
        result
    }

    async fn transfer(
        &self,
        path: &Path,
        name: &str,
        identity: &Identity,
        state_path: &Path,
        progress: &Arc<FileProgress>,
    ) -> Result<()> {
        let mut resumed = None;
        if let Some(old) = State::load(state_path) {
            if self.args.no_resume {
                self.abort(&old.file_id).await;
                remove_if_present(state_path)?;
                progress.line(format!("{name}: discarded the earlier unfinished upload"));
            } else {
                match self.earlier(&old).await? {
                    Earlier::Open(held) => resumed = Some(self.trust(old, held).await?),
                    Earlier::Completed(file) => {
                        remove_if_present(state_path)?;
                        progress.finish(self.done(name, &file, 0, old.num_parts));
                        return Ok(());
                    }
                    Earlier::Gone(why) => {
                        remove_if_present(state_path)?;
                        progress.line(format!("{name}: the earlier upload {why}; starting again"));
                    }
                }
            }
        }
        let was_resumed = resumed.is_some();
        let (state, started) = match resumed {
            Some(state) => (state, None),
            None => {
                let (state, reply) = self.initiate(path, name, identity).await?;
                state.save(state_path)?;
                (state, Some(reply))
            }
        };
        let plan = Plan {
            size: state.size,
            part_size: state.part_size,
            num_parts: state.num_parts,
        };
        let signer = Signer::new(self.api, &state.file_id, state.grant.clone());
        if let Some(reply) = &started {
            signer.keep(reply).await;
        }
        let todo: Vec<u32> = (1..=plan.num_parts)
            .filter(|n| !state.parts.contains_key(n))
            .collect();
        let held_bytes = state.parts.keys().map(|n| plan.range(*n).1).sum();
        progress.start(plan.num_parts, state.parts.len() as u32, held_bytes);
        if was_resumed {
            progress.line(format!(
                "{name}: resuming: {} of {} parts already uploaded",
                state.parts.len(),
                plan.num_parts
            ));
        }
        let kind = state.checksum;
        let journal = Journal::new(state_path.to_owned(), state);
        let job = PartJob {
            identity,
            plan,
            kind,
            signer: &signer,
            journal: &journal,
            progress,
            todo: &todo,
        };
        let mut sends = futures_util::stream::iter(todo.iter().copied())
            .map(|n| self.send_part(&job, n))
            .buffer_unordered(self.args.parallel);
        while let Some(sent) = sends.next().await {
            sent.map_err(|e| {
                e.note("; the finished parts are kept: run the same command again to resume")
            })?;
        }
        drop(sends);
        self.complete(
            name,
            plan,
            journal.into_state(),
            state_path,
            todo.len(),
            progress,
        )
        .await
    }

    /// Where the earlier upload stands: open (with the parts storage holds),
    /// completed after all (killed before the state went), or gone.
    async fn earlier(&self, old: &State) -> Result<Earlier> {
        let id = &old.file_id;
        let err = match self
            .api
            .get(&format!("/v1/files/uploads/{id}/uploaded-parts"), &[])
            .await
        {
            Ok(reply) => {
                let parts = reply["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        Some((
                            p["part_number"].as_u64()? as u32,
                            p["etag"].as_str()?.to_owned(),
                            p["size"].as_u64()?,
                        ))
                    })
                    .collect();
                return Ok(Earlier::Open(parts));
            }
            Err(e) => e,
        };
        match err.status {
            Some(404) => Ok(Earlier::Gone("no longer exists".into())),
            Some(409) => match self.api.get(&format!("/v1/files/{id}"), &[]).await {
                Ok(file) if file["upload_status"] == "completed" => Ok(Earlier::Completed(file)),
                Ok(file) => Ok(Earlier::Gone(format!(
                    "is {}",
                    file["upload_status"].as_str().unwrap_or("closed")
                ))),
                Err(e) if e.status == Some(404) => Ok(Earlier::Gone("no longer exists".into())),
                Err(e) => Err(e),
            },
            _ => Err(err),
        }
    }

    /// The parts storage holds are done (those of the right size): their
    /// ETags from storage, their checksums from the state or the file.
    async fn trust(&self, mut old: State, held: Vec<(u32, String, u64)>) -> Result<State> {
        let plan = Plan {
            size: old.size,
            part_size: old.part_size,
            num_parts: old.num_parts,
        };
        let mut parts = std::collections::BTreeMap::new();
        for (n, etag, size) in held {
            if n == 0 || n > plan.num_parts || size != plan.range(n).1 {
                continue;
            }
            let checksum = match old.checksum {
                None => None,
                Some(kind) => match old.parts.get(&n).and_then(|d| d.checksum.clone()) {
                    Some(known) => Some(known),
                    None => Some(part_checksum(&self.part(&old.path, plan, n), kind).await?),
                },
            };
            parts.insert(n, DonePart { etag, checksum });
        }
        old.parts = parts;
        Ok(old)
    }

    fn part(&self, path: &Path, plan: Plan, n: u32) -> Part {
        let (offset, len) = plan.range(n);
        Part {
            path: path.to_owned(),
            offset,
            len,
            checksum: None,
        }
    }

    async fn initiate(
        &self,
        path: &Path,
        name: &str,
        identity: &Identity,
    ) -> Result<(State, Value)> {
        let plan = Plan::new(identity.size, self.args.part_size_mib).map_err(CliError::usage)?;
        let content_type = mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        let mut body = json!({
            "file_name": name,
            "file_size": identity.size,
            "file_content_type": content_type,
            "num_parts": plan.num_parts,
            "part_size": plan.part_size,
            "parent_content_type": "box",
            "parent_object_id": self.args.box_id,
        });
        if let Some(kind) = self.args.checksum {
            body["checksum_algorithm"] = json!(kind.api_name());
            if kind.full_object() {
                body["checksum_type"] = json!("FULL_OBJECT");
            }
        }
        // Not repeated after a lost reply: it could reserve the quota twice.
        let reply = self
            .api
            .post("/v1/files/uploads", &body, Retry::Unsent)
            .await?;
        let file_id = reply["id"]
            .as_str()
            .ok_or_else(|| CliError::failure("the initiate reply has no id"))?;
        let mut state = State::new(identity, file_id.to_owned(), name.to_owned());
        state.part_size = plan.part_size;
        state.num_parts = plan.num_parts;
        state.checksum = self.args.checksum;
        state.grant = reply["next_parts_url"].as_str().and_then(grant_of);
        Ok((state, reply))
    }

    async fn send_part(&self, job: &PartJob<'_>, n: u32) -> Result<()> {
        let _slot = self.slots.acquire().await.expect("the slots stay open");
        let mut part = self.part(&job.identity.path, job.plan, n);
        if let Some(kind) = job.kind {
            part.checksum = Some((kind, part_checksum(&part, kind).await?));
        }
        let sum = part.checksum.as_ref().map(|(_, v)| v.clone());
        let mut resigned = false;
        let mut attempt = 0;
        let etag = loop {
            attempt += 1;
            let url = job.signer.url(n, sum.as_deref(), job.todo).await?;
            match put_part(
                self.api.http(),
                &url,
                &part,
                job.progress,
                self.rate.as_ref(),
            )
            .await
            {
                Ok(etag) => break etag,
                // Expired (a slow upload, a suspended laptop): sign again, once.
                Err(PutError::Refused(_)) if !resigned => {
                    resigned = true;
                    job.signer.forget(n).await;
                }
                Err(PutError::Transient(_)) if attempt < PART_ATTEMPTS => backoff(attempt).await,
                Err(PutError::Refused(e) | PutError::Transient(e) | PutError::Fatal(e)) => {
                    return Err(e.about(&format!("part {n}")));
                }
            }
        };
        // Bytes read from a file being written are not the file: stop
        // (the caller aborts the upload) rather than record them.
        if job.identity.changed() {
            return Err(CliError::usage("the file changed while it was uploading"));
        }
        job.journal
            .record(
                n,
                DonePart {
                    etag,
                    checksum: sum,
                },
            )
            .await?;
        job.progress.part_done();
        Ok(())
    }

    /// Completes with every part (and, for CRCs, the whole file's checksum
    /// combined from the parts', which S3 verifies). A refusal aborts the
    /// upload, so nothing is left behind; a network failure keeps it for
    /// another run.
    async fn complete(
        &self,
        name: &str,
        plan: Plan,
        state: State,
        state_path: &Path,
        sent: usize,
        progress: &FileProgress,
    ) -> Result<()> {
        let parts: Vec<Value> = state
            .parts
            .iter()
            .map(|(n, p)| {
                let mut part = json!({ "part_number": n, "etag": p.etag });
                if let Some(sum) = &p.checksum {
                    part["checksum"] = json!(sum);
                }
                part
            })
            .collect();
        let mut body = json!({ "parts": parts });
        if let Some(kind) = state.checksum.filter(|k| k.full_object()) {
            let sums: Option<Vec<(String, u64)>> = state
                .parts
                .iter()
                .map(|(n, p)| Some((p.checksum.clone()?, plan.range(*n).1)))
                .collect();
            if let Some(whole) = sums.and_then(|s| kind.combine(&s)) {
                body["checksum"] = json!(whole);
            }
        }
        let path = format!("/v1/files/uploads/{}/complete", state.file_id);
        match self.api.post(&path, &body, Retry::Safe).await {
            Ok(file) => {
                remove_if_present(state_path)?;
                progress.finish(self.done(name, &file, sent, plan.num_parts));
                Ok(())
            }
            // 409 is both "already closed" and "changed meanwhile, retry"
            // (S3 may have assembled the object already): look before
            // aborting anything.
            Err(e) if e.status == Some(409) => {
                let file = self
                    .api
                    .get(&format!("/v1/files/{}", state.file_id), &[])
                    .await;
                match file {
                    Ok(file) if file["upload_status"] == "completed" => {
                        remove_if_present(state_path)?;
                        progress.finish(self.done(name, &file, sent, plan.num_parts));
                        Ok(())
                    }
                    _ => Err(e.note("; run the same command again to complete or start again")),
                }
            }
            Err(e) if e.status == Some(404) => {
                remove_if_present(state_path)?;
                Err(e)
            }
            Err(e) if matches!(e.status, Some(400 | 413 | 422)) => {
                self.abort(&state.file_id).await;
                remove_if_present(state_path)?;
                Err(e.note(" (the upload was aborted; nothing is left behind)"))
            }
            Err(e) => {
                Err(e.note("; every part is uploaded: run the same command again to complete"))
            }
        }
    }

    fn done(&self, name: &str, file: &Value, sent: usize, parts: u32) -> String {
        let size = indicatif::BinaryBytes(file["file_size"].as_u64().unwrap_or(0));
        let id = file["id"].as_str().unwrap_or("?");
        let place = match file["asset_id"].as_str() {
            Some(asset) => format!("asset {asset} in box “{}”", self.box_name),
            None => "not in a box (the box was deleted meanwhile)".to_owned(),
        };
        format!("{name}: uploaded {size}, sent {sent} of {parts} parts → {place} (file {id})")
    }

    /// Best effort: an upload left open expires by itself in a day.
    async fn abort(&self, file_id: &str) {
        self.api
            .delete(&format!("/v1/files/uploads/{file_id}"))
            .await
            .ok();
    }
}

/// What every part of one file shares.
struct PartJob<'a> {
    identity: &'a Identity,
    plan: Plan,
    kind: Option<Checksum>,
    signer: &'a Signer<'a>,
    journal: &'a Journal,
    progress: &'a Arc<FileProgress>,
    todo: &'a [u32],
}

/// The `grant` of a `next_parts_url` (`/v1/files/uploads/{id}/parts?…&grant=…`).
fn grant_of(next_parts_url: &str) -> Option<String> {
    let query = next_parts_url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "grant")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_is_read_from_next_parts_url() {
        assert_eq!(
            grant_of("/v1/files/uploads/01F/parts?part_numbers=101-200&grant=a%2Bb_c").as_deref(),
            Some("a+b_c")
        );
        assert_eq!(
            grant_of("/v1/files/uploads/01F/parts?part_numbers=1-2"),
            None
        );
    }

    #[test]
    fn resume_hints_quote_what_a_shell_would_split() {
        assert_eq!(shell_quote("clip.mp4"), "clip.mp4");
        assert_eq!(shell_quote("Szene 1.mp4"), "'Szene 1.mp4'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
