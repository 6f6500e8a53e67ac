//! `restart`: what `--data-dir` costs. A stack is populated through the API
//! (`files` direct uploads of `file_mib` MiB into a box, each a file record,
//! an asset and an object), stopped (moto pickles its state), and started
//! again `runs` times from that folder. Reported: the save at stop, the
//! start from the folder beside a fresh start (no folder), and the size of
//! what is kept.

use std::time::{Duration, Instant};

use assetbox_local::{LocalStack, Options};

use crate::cli_upload::caller;
use crate::generation::account;
use crate::median;

fn options(data_dir: Option<std::path::PathBuf>) -> Options {
    Options {
        // Nothing but the restart is measured: no ingestion, no cleanup runs.
        deliver_s3_events: false,
        parameters: vec![("CleanupScheduleState".into(), "DISABLED".into())],
        data_dir,
        ..Options::default()
    }
}

async fn populate(stack: &LocalStack, files: usize, file_mib: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    let size = file_mib * 1024 * 1024;
    let body = vec![7u8; size];
    let caller = caller(&http, &account);
    for i in 0..files {
        caller
            .upload(
                &account.box_id,
                &format!("take {i}.mp4"),
                "video/mp4",
                size as u64,
                body.clone().into(),
            )
            .await?;
    }
    Ok(())
}

async fn timed_start(data_dir: Option<std::path::PathBuf>) -> anyhow::Result<(LocalStack, f64)> {
    let started = Instant::now();
    let stack = LocalStack::start(options(data_dir)).await?;
    Ok((stack, started.elapsed().as_secs_f64() * 1000.0))
}

pub async fn run(runs: usize, files: usize, file_mib: usize) -> anyhow::Result<()> {
    println!(
        "\n== restart: a data directory with {files} uploads of {file_mib} MiB ({} MiB), {runs} restarts",
        files * file_mib
    );
    let dir = std::env::temp_dir().join(format!("assetbox-bench-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let mut fresh_ms = Vec::new();
    for _ in 0..runs {
        let (stack, ms) = timed_start(None).await?;
        fresh_ms.push(ms);
        stack.shutdown().await?;
    }

    let (stack, _) = timed_start(Some(dir.clone())).await?;
    let filled = Instant::now();
    populate(&stack, files, file_mib).await?;
    let fill_s = filled.elapsed().as_secs_f64();
    let (mut save_ms, mut restart_ms) = (Vec::new(), Vec::new());
    let stopping = Instant::now();
    stack.shutdown().await?;
    save_ms.push(stopping.elapsed().as_secs_f64() * 1000.0);
    let kept = std::fs::metadata(dir.join("emulator.pickle"))?.len();
    for _ in 0..runs {
        let (stack, ms) = timed_start(Some(dir.clone())).await?;
        restart_ms.push(ms);
        // Nothing changed: this stop saves the same state again.
        let stopping = Instant::now();
        stack.shutdown().await?;
        save_ms.push(stopping.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);

    let fresh = median(&mut fresh_ms);
    let restart = median(&mut restart_ms);
    println!("  populating through the API:        {fill_s:.1} s");
    println!(
        "  kept (emulator.pickle):            {:.1} MiB",
        kept as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  stop with save:                    {:.0} ms (median of {})",
        median(&mut save_ms),
        runs + 1
    );
    println!("  start, fresh (no --data-dir):      {fresh:.0} ms (median of {runs})");
    println!(
        "  start from the data directory:     {restart:.0} ms (median of {runs}), {:.2}× a fresh start",
        restart / fresh
    );
    Ok(())
}
