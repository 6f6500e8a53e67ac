//! `cli`: the CLI's upload throughput against the local stack, beside a
//! single-stream PUT of the same file to the same emulator in the same run.
//!
//! The baseline is the fastest one connection can do through the contract:
//! initiate one part of the whole size, one streamed PUT of the file to its
//! presigned URL, complete. The CLI (`target/release/assetbox`, built with
//! `cargo build --release -p assetbox-cli`) uploads the same file with its
//! defaults (8 MiB parts, 4 in parallel) and with `--parallel 8`. Runs
//! alternate between the ways so drift hits all of them; objects are deleted
//! after each run (moto holds them in memory).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use assetbox_local::{LocalStack, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::generation::{Account, account};
use crate::median;

const MIB: u64 = 1024 * 1024;

async fn write_file(path: &Path, mib: u64) -> anyhow::Result<()> {
    let mut file = tokio::fs::File::create(path).await?;
    // Not all one byte, so nothing downstream can shortcut it.
    let chunk: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    for _ in 0..mib {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(())
}

/// The account as a caller of the API (the demo seed's client).
pub(crate) fn caller(http: &reqwest::Client, account: &Account) -> assetbox_local::demo::Api {
    assetbox_local::demo::Api {
        http: http.clone(),
        base: account.api.clone(),
        token: account.token.clone(),
    }
}

/// One PUT of the whole file, streamed from disk, through the contract.
async fn single_put(http: &reqwest::Client, account: &Account, file: &Path) -> anyhow::Result<f64> {
    let size = tokio::fs::metadata(file).await?.len();
    let started = Instant::now();
    let chunks =
        futures_util::stream::unfold(tokio::fs::File::open(file).await?, |mut file| async move {
            let mut chunk = vec![0u8; (MIB / 4) as usize];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok::<_, std::io::Error>(chunk), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
    let body = reqwest::Body::wrap_stream(chunks);
    caller(http, account)
        .upload(&account.box_id, "single.mp4", "video/mp4", size, body)
        .await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn cli(binary: &Path, config: &Path, api: &str, args: &[&str]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = tokio::process::Command::new(binary)
        .args(["--api", api])
        .args(args)
        .env("ASSETBOX_CONFIG_DIR", config)
        .stdin(Stdio::null())
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "assetbox {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn empty_bucket(stack: &LocalStack) -> anyhow::Result<()> {
    let s3 = assetbox_local::s3_client(&stack.sdk);
    let bucket = stack.physical_id("MediaBucket").context("bucket")?;
    let listed = s3.list_objects_v2().bucket(bucket).send().await?;
    for object in listed.contents() {
        if let Some(key) = object.key() {
            s3.delete_object().bucket(bucket).key(key).send().await?;
        }
    }
    Ok(())
}

pub async fn run(runs: usize, mib: u64, binary: PathBuf) -> anyhow::Result<()> {
    println!("\n== cli: a {mib} MiB file to the local stack, {runs} runs per way (medians)");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p assetbox-cli",
        binary.display()
    );
    let stack = LocalStack::start(Options {
        deliver_s3_events: false,
        parameters: vec![("CleanupScheduleState".into(), "DISABLED".into())],
        ..Options::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    let dir = std::env::temp_dir().join(format!("assetbox-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("take.mp4");
    write_file(&file, mib).await?;
    let config = dir.join("config");
    let email = account.email.clone();
    let mut login = tokio::process::Command::new(&binary)
        .args([
            "--api",
            &stack.api_url,
            "login",
            "--email",
            &email,
            "--password-stdin",
        ])
        .env("ASSETBOX_CONFIG_DIR", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    login
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{}\n", account.password).as_bytes())
        .await?;
    anyhow::ensure!(login.wait().await?.success(), "assetbox login failed");

    let file_arg = file.to_string_lossy().into_owned();
    let (mut single, mut four, mut eight) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        single.push(single_put(&http, &account, &file).await?);
        empty_bucket(&stack).await?;
        four.push(
            cli(
                &binary,
                &config,
                &stack.api_url,
                &["upload", &file_arg, "--box", &account.box_id],
            )
            .await?,
        );
        empty_bucket(&stack).await?;
        eight.push(
            cli(
                &binary,
                &config,
                &stack.api_url,
                &[
                    "upload",
                    &file_arg,
                    "--box",
                    &account.box_id,
                    "--parallel",
                    "8",
                ],
            )
            .await?,
        );
        empty_bucket(&stack).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rate = |s: f64| mib as f64 / s;
    let (single, four, eight) = (median(&mut single), median(&mut four), median(&mut eight));
    println!(
        "  single-stream PUT (1 part):       {single:.2} s, {:.0} MiB/s",
        rate(single)
    );
    println!(
        "  assetbox upload (8 MiB × 4):      {four:.2} s, {:.0} MiB/s, {:.2}× the single PUT",
        rate(four),
        single / four
    );
    println!(
        "  assetbox upload --parallel 8:     {eight:.2} s, {:.0} MiB/s, {:.2}× the single PUT",
        rate(eight),
        single / eight
    );
    Ok(())
}
