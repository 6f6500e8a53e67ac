//! `console`: the web console's weight and time to interactive, locally.
//!
//! The stack serves `console/`; `tests/clients/console/timing.mjs` opens it
//! in Debian's headless Chromium (`$CHROMIUM`, else /usr/bin/chromium;
//! playwright-core from tests/clients/browser, installed with `npm ci` when
//! missing) in fresh contexts, signed out and signed in, for a user with one
//! project. Reported: the console's bytes over the wire and the medians of
//! navigation start → login form shown / project list rendered.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use assetbox_local::{LocalStack, Options};
use serde_json::{Value, json};

use crate::generation::account;
use crate::median;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

fn column(runs: &Value, key: &str) -> Vec<f64> {
    runs.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r[key].as_f64())
        .collect()
}

pub async fn run(runs: usize) -> anyhow::Result<()> {
    println!("\n== console: weight and time to interactive, {runs} fresh browser contexts each");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    anyhow::ensure!(
        chromium.exists(),
        "{} is missing (apt-get install chromium, or set CHROMIUM)",
        chromium.display()
    );
    let browser_dir = clients_dir().join("browser");
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&browser_dir)
            .status()?;
        anyhow::ensure!(status.success(), "npm ci in {}", browser_dir.display());
    }
    let stack = LocalStack::start(Options {
        deliver_s3_events: false,
        ..Options::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    let job = json!({
        "chromium": chromium, "console": format!("{}/", stack.console_url), "runs": runs,
        "email": account.email, "password": account.password, "project": "Bench",
    });
    let out = Command::new("node")
        .arg(clients_dir().join("console/timing.mjs"))
        .env("ASSETBOX_TIMING_JOB", job.to_string())
        .output()
        .context("node (Node.js)")?;
    if !out.status.success() {
        bail!("timing.mjs: {}", String::from_utf8_lossy(&out.stderr));
    }
    let figures: Value = serde_json::from_slice(&out.stdout)?;
    for (label, key) in [
        ("signed out (login form shown)", "signedOut"),
        ("signed in (project list rendered)", "signedIn"),
    ] {
        let mut ms = column(&figures[key], "ms");
        let mut kb: Vec<f64> = column(&figures[key], "bytes")
            .into_iter()
            .map(|b| b / 1024.0)
            .collect();
        println!(
            "  {label:<36} {:.0} ms to interactive, {:.1} KB of console files over the wire (medians)",
            median(&mut ms),
            median(&mut kb)
        );
    }
    Ok(())
}
