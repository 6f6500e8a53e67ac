//! `generation`: what one generation costs.
//!
//! - CPU of generate-dispatch without I/O: compiling a model's parameter
//!   schema (once per model version in a warm function), then per request
//!   validating `params` against it and filling the submit template.
//! - End to end through the local stack (gateway, generate-dispatch, the SQS
//!   pump, generation-poll, ingest-object) with the stand-in provider and a
//!   counting proxy in front of the emulator: provider calls (the stand-in's
//!   counts) and AWS calls (the proxy's) per generation, on the callback path
//!   and with callbacks lost (polling alone), and the time from the moment
//!   the stand-in reports success to our asset's `COMPLETED`; then a 60 s job
//!   polled alone: how many polls.
//!
//! Generations run one at a time, and each is given a few seconds after it
//! completes, so every call counted is its own (the poll still queued when a
//! callback finished the job included).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use assetbox_local::LocalStack;
use assetbox_shared::ai::{ModelSpec, SubmitValues, check_params, compile_schema, template};
use assetbox_shared::assets::AssetStatus;
use assetbox_shared::db::Table;
use base64::Engine;
use serde_json::{Value, json};

use crate::median;
use crate::uploads::{Proxy, image_model, proxied_stack};

/// The stand-in's image model as command 1 registers it.
fn standin_image_model() -> anyhow::Result<ModelSpec> {
    let defs = assetbox_local::registry::definitions(
        assetbox_local::registry::STANDIN_DEFINITIONS,
        "https://standin.example",
        "bench",
    )?;
    let mut model = defs["models"][0].clone();
    model["provider"] = json!("P");
    Ok(serde_json::from_value(model)?)
}

/// Schema compile, and per request: params check + submit template.
fn dispatch_cpu() -> anyhow::Result<()> {
    let model = standin_image_model()?;
    let mut compile_us: Vec<f64> = (0..51)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(compile_schema(&model.params_schema).expect("compiles"));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let validator = compile_schema(&model.params_schema).map_err(anyhow::Error::msg)?;
    let body = model.submit.body.clone().context("a submit body")?;
    let params = json!({"width": 1024, "height": 576});
    let mut per_request_us = Vec::new();
    for _ in 0..55 {
        let started = Instant::now();
        for i in 0..1000 {
            check_params(&validator, &params).map_err(|e| anyhow::anyhow!(e.message))?;
            let values = SubmitValues {
                prompt: "a red fox in snow, cinematic light",
                seed: Some(i),
                params: &params,
                parent_asset_url: None,
                callback_url: Some(
                    "https://api.example/api/ai/callbacks/01JDQ3V8X4KQ7N2M5R6T9W0YZG?owner=u&token=t"
                        .into(),
                ),
                generation_id: "01JDQ3V8X4KQ7N2M5R6T9W0YZG",
            };
            std::hint::black_box(template::fill(&body, &values));
        }
        per_request_us.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "generation dispatch CPU: params schema compile median {:.1} µs (once per model version); \
         params check + submit template median {:.2} µs per request",
        median(&mut compile_us),
        median(&mut per_request_us[5..].to_vec())
    );
    Ok(())
}

/// A signed-in user with a box, through the API.
pub(crate) struct Account {
    pub(crate) api: String,
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) token: String,
    pub(crate) owner: String,
    pub(crate) project: String,
    pub(crate) box_id: String,
}

pub(crate) async fn account(http: &reqwest::Client, api: &str) -> anyhow::Result<Account> {
    let email = format!("bench-{}@example.com", ulid::Ulid::new());
    let password = "correct horse battery".to_owned();
    let credentials = json!({"email": email, "password": password});
    let post = |path: &str, token: Option<&str>, body: &Value| {
        let mut request = http.post(format!("{api}{path}")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let registered = post("/api/auth/register", None, &credentials).await?;
    anyhow::ensure!(
        registered.status().is_success(),
        "register: {}",
        registered.status()
    );
    let login: Value = post("/api/auth/login", None, &credentials)
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("access token")?
        .to_owned();
    let claims = token.split('.').nth(1).context("a JWT")?;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?)?;
    let owner = claims["sub"].as_str().context("sub")?.to_owned();
    let project: Value = post("/api/projects/", Some(&token), &json!({"name": "Bench"}))
        .await?
        .json()
        .await?;
    let b: Value = post(
        "/api/boxes/",
        Some(&token),
        &json!({"project": project["id"], "name": "Shot 1"}),
    )
    .await?
    .json()
    .await?;
    Ok(Account {
        api: api.to_owned(),
        email,
        password,
        token,
        owner,
        project: project["id"].as_str().context("project id")?.to_owned(),
        box_id: b["id"].as_str().context("box id")?.to_owned(),
    })
}

/// What one generation cost.
struct Run {
    provider_calls: u64,
    polls: u64,
    callbacks: u64,
    aws_calls: Vec<String>,
    /// Stand-in success → our COMPLETED, in ms.
    finish_ms: f64,
}

async fn one_generation(
    http: &reqwest::Client,
    account: &Account,
    stack: &LocalStack,
    table: &Table,
    proxy: &Proxy,
    model: &str,
    prompt: &str,
) -> anyhow::Result<Run> {
    proxy.calls.lock().await.clear();
    let accepted: Value = http
        .post(format!("{}/api/boxes/{}/generate/", account.api, account.box_id))
        .bearer_auth(&account.token)
        .json(&json!({"ai_model": model, "prompt_text": prompt, "params": {"width": 640, "height": 360}}))
        .send()
        .await?
        .json()
        .await?;
    let id = accepted["id"].as_str().context("asset id")?.to_owned();
    // Read straight from the emulator (not through the proxy).
    let done = loop {
        let asset = table
            .get_asset(&account.owner, &id)
            .await?
            .context("the asset")?;
        match asset.status {
            AssetStatus::Completed => break asset,
            AssetStatus::Failed => bail!("{prompt}: {:?}", asset.error_message),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    // Long enough for a poll queued before a callback finished the job.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let aws_calls = proxy.calls.lock().await.clone();
    let stats: Value = http
        .get(format!("{}/_standin/stats", stack.standin.url))
        .query(&[("prompt", prompt)])
        .send()
        .await?
        .json()
        .await?;
    let completed_ms = time::OffsetDateTime::parse(
        &done.updated_at,
        &time::format_description::well_known::Rfc3339,
    )?
    .unix_timestamp_nanos()
        / 1_000_000;
    let number = |k: &str| stats[k].as_u64().unwrap_or_default();
    Ok(Run {
        provider_calls: number("received") + number("queries"),
        polls: number("queries"),
        callbacks: number("callbacks"),
        aws_calls,
        finish_ms: (completed_ms - stats["success_ms"].as_u64().unwrap_or_default() as i128) as f64,
    })
}

fn report(path: &str, runs: &[Run]) {
    let mut counted: BTreeMap<&str, f64> = BTreeMap::new();
    for run in runs {
        for call in &run.aws_calls {
            *counted.entry(call.as_str()).or_default() += 1.0 / runs.len() as f64;
        }
    }
    let calls: Vec<String> = counted
        .iter()
        .map(|(k, v)| format!("{v:.1}× {k}"))
        .collect();
    let mean = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    println!(
        "generation {path} ({} runs): provider calls {:.1} (polls {:.1}, callbacks received {:.1}); \
         AWS calls {:.1} ({}); stand-in success → COMPLETED median {:.0} ms",
        runs.len(),
        mean(|r| r.provider_calls as f64),
        mean(|r| r.polls as f64),
        mean(|r| r.callbacks as f64),
        mean(|r| r.aws_calls.len() as f64),
        calls.join(", "),
        median(&mut runs.iter().map(|r| r.finish_ms).collect::<Vec<_>>())
    );
}

pub async fn run(runs: usize, long_job_secs: u64) -> anyhow::Result<()> {
    dispatch_cpu()?;

    let (stack, proxy) = proxied_stack(Vec::new(), false).await?;
    let table = Table::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        stack.physical_id("Table").context("table")?,
    );
    let model = image_model(&stack)?;
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    for (path, marker) in [("callback path", ""), ("poll-only path", " [no-callback]")] {
        let mut measured = Vec::new();
        for i in 0..runs {
            let prompt = format!("bench {i}{marker} {}", ulid::Ulid::new());
            measured.push(
                one_generation(&http, &account, &stack, &table, &proxy, &model, &prompt).await?,
            );
        }
        report(path, &measured);
    }
    if long_job_secs > 0 {
        let prompt = format!(
            "bench long [no-callback] [takes:{long_job_secs}] {}",
            ulid::Ulid::new()
        );
        let long = one_generation(&http, &account, &stack, &table, &proxy, &model, &prompt).await?;
        report(&format!("poll-only path, a {long_job_secs} s job"), &[long]);
    }
    Ok(())
}
