//! `cargo run --release -p assetbox-bench -- <what>`: measures, never asserts.
//!
//! - `coldstart`: spawns the release `catalog-api` binary against a minimal
//!   Lambda Runtime API on loopback, times process exec → first event
//!   answered, and reads its peak RSS (VmHWM); repeated, medians reported.
//! - `handler`: in-process time per request through lambda_http's adapter
//!   (event JSON in, response out) with the in-memory store: routing, JSON,
//!   validation, serialisation — no AWS I/O.
//! - `size`: the binary's size on disk.
//! - `uploads`: part-URL signing throughput and the AWS calls, time and reply
//!   size of each upload operation (see `uploads.rs`).
//! - `export`: thumbnails, .docx building and type sniffing (see `export.rs`).
//! - `ingest`: a 24 MP JPEG to its thumbnail beside vipsthumbnail (`ingest.rs`).
//! - `generation`: dispatch CPU, provider and AWS calls per generation and
//!   time to `COMPLETED` on the callback and poll-only paths (`generation.rs`).
//! - `cleanup`: AWS calls per item and items per second per step for each
//!   cleanup task; the cost of a run over 10,000 expired uploads (`cleanup.rs`).
//! - `live`: write → event latency at a WebSocket subscriber, AWS calls per
//!   pushed event, status-push's time per event, the cost of 1,000 events
//!   (`live.rs`).

mod cleanup;
mod cli_upload;
mod console_load;
mod export;
mod generation;
mod ingest;
mod live;
mod restart;
mod uploads;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use assetbox_shared::catalog::memory::MemoryStore;
use assetbox_shared::pagination::CursorKey;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use catalog_api::{AppState, router};
use clap::{Parser, Subcommand};
use tokio::sync::{Mutex, mpsc};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Cold start and peak RSS of a function binary.
    Coldstart {
        #[arg(long, default_value = "target/release/catalog-api")]
        binary: PathBuf,
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// The first event: an HTTP health call (API functions), or `sqs`,
        /// an empty SQS batch (ingest-object, import-url, status-push: the
        /// same init, and an answer that needs no AWS call), `websocket`
        /// (live-api: a message of no known action) or `authorizer`
        /// (live-authorizer: a connect without a token).
        #[arg(long, default_value = "http")]
        event: String,
    },
    /// Handler time per request without AWS I/O.
    Handler {
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
    },
    /// Size of a binary on disk.
    Size {
        #[arg(long, default_value = "target/release/catalog-api")]
        binary: PathBuf,
    },
    /// Upload functions: signing throughput, AWS calls per operation.
    Uploads {
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// Export and small-upload CPU work: thumbnails, .docx, type sniffing.
    Export {
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// 24 MP JPEG → thumbnail: time and peak RSS, beside vipsthumbnail.
    Ingest {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// AI generation: dispatch CPU; provider and AWS calls per generation
    /// and time to COMPLETED, by callback and by polling alone.
    Generation {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Also one poll-only job that takes this long at the stand-in (0: none).
        #[arg(long, default_value_t = 60)]
        long_job_secs: u64,
    },
    /// Cleanup: AWS calls per item and items per second per step, per
    /// task; the cost of expiring 10,000 uploads.
    Cleanup {
        /// Items made due for each task (moto's memory grows fast with
        /// transactions over a big table: 1,000 assets exhausted 20 GB).
        #[arg(long, default_value_t = 200)]
        items: usize,
    },
    /// Live status: write → event latency, AWS calls per pushed event, the
    /// cost of 1,000 events.
    Live {
        #[arg(long, default_value_t = 100)]
        changes: usize,
    },
    /// The CLI's upload throughput beside a single-stream PUT of the same
    /// file (build it first: cargo build --release -p assetbox-cli).
    Cli {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Size of the file.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value = "target/release/assetbox")]
        binary: PathBuf,
    },
    /// The web console's weight and time to interactive (headless Chromium).
    Console {
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// `--data-dir`: the save at stop, and a start from a populated folder
    /// beside a fresh one.
    Restart {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Direct uploads made before the first stop.
        #[arg(long, default_value_t = 200)]
        files: usize,
        /// Size of each upload.
        #[arg(long, default_value_t = 2)]
        file_mib: usize,
    },
    /// One thumbnail in this process (what `ingest` runs per sample).
    #[command(hide = true)]
    IngestChild { path: PathBuf },
    /// All of the above.
    All {
        #[arg(long, default_value = "target/release/catalog-api")]
        binary: PathBuf,
    },
}

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/catalog-api")
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().what {
        What::Coldstart {
            binary,
            runs,
            event,
        } => coldstart(&binary, runs, &event).await,
        What::Handler { requests } => handler(requests).await,
        What::Size { binary } => size(&binary),
        What::Uploads { runs } => uploads::run(runs).await,
        What::Export { runs } => export::run(runs),
        What::Ingest { runs } => ingest::run(runs),
        What::IngestChild { path } => ingest::child(&path),
        What::Generation {
            runs,
            long_job_secs,
        } => generation::run(runs, long_job_secs).await,
        What::Cleanup { items } => cleanup::run(items).await,
        What::Live { changes } => live::run(changes).await,
        What::Console { runs } => console_load::run(runs).await,
        What::Cli { runs, mib, binary } => cli_upload::run(runs, mib, binary).await,
        What::Restart {
            runs,
            files,
            file_mib,
        } => restart::run(runs, files, file_mib).await,
        What::All { binary } => {
            size(&binary)?;
            coldstart(&binary, 30, "http").await?;
            handler(20_000).await?;
            uploads::run(15).await?;
            export::run(15)?;
            generation::run(5, 60).await?;
            ingest::run(5)
        }
    }
}

fn size(binary: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::metadata(binary)
        .with_context(|| {
            format!(
                "{} (build it: cargo build --release -p catalog-api)",
                binary.display()
            )
        })?
        .len();
    println!(
        "size      {}: {:.2} MB ({bytes} bytes)",
        binary.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// The stand-in's shared state: the event to hand out and who answered.
struct RuntimeApi {
    event: String,
    answered: mpsc::UnboundedSender<(String, Instant)>,
    served: Mutex<bool>,
}

async fn next_invocation(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, String) {
    let mut served = api.served.lock().await;
    if *served {
        // One event per process: park the poll until the process is killed.
        drop(served);
        std::future::pending::<()>().await;
        unreachable!();
    }
    *served = true;
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("bench-request"),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:catalog-api"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (headers, api.event.clone())
}

async fn invocation_response(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> &'static str {
    let _ = api.answered.send((format!("{id}: {body}"), Instant::now()));
    "{}"
}

async fn invocation_error(UrlPath(id): UrlPath<String>, body: String) -> &'static str {
    eprintln!("invocation {id} failed: {body}");
    "{}"
}

async fn init_error(body: String) -> &'static str {
    eprintln!("init failed: {body}");
    "{}"
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn coldstart(binary: &Path, runs: usize, kind: &str) -> anyhow::Result<()> {
    let event = match kind {
        "http" => std::fs::read_to_string(events_dir().join("health.json"))?,
        "sqs" => r#"{"Records":[]}"#.to_owned(),
        // live-api: a message of no known action (answered without AWS).
        "websocket" => r#"{"requestContext":{"routeKey":"$default","eventType":"MESSAGE","connectionId":"bench0000000000=","connectedAt":1796500000000,"requestTimeEpoch":1796500000000},"body":"{}","isBase64Encoded":false}"#.to_owned(),
        // live-authorizer: a connect without a token (denied without
        // fetching the pool's keys).
        "authorizer" => r#"{"type":"REQUEST","methodArn":"arn:aws:execute-api:us-east-1:123456789012:bench/live/$connect","queryStringParameters":{},"requestContext":{"routeKey":"$connect","eventType":"CONNECT","connectionId":"bench0000000000=","connectedAt":1796500000000,"requestTimeEpoch":1796500000000}}"#.to_owned(),
        other => bail!("--event is http, sqs, websocket or authorizer, not {other}"),
    };
    let mut cold_ms = Vec::new();
    let mut rss_mb = Vec::new();
    for _ in 0..runs {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            event: event.clone(),
            answered: tx,
            served: Mutex::new(false),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "catalog-api")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("TABLE_NAME", "bench-table")
            .env("CURSOR_SECRET", "bench-cursor-secret-of-at-least-32-bytes")
            .env("MEDIA_BUCKET", "bench-media")
            .env(
                "IMPORT_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/bench-import",
            )
            .env(
                "GENERATION_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/bench-generation",
            )
            .env(
                "CLEANUP_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/bench-cleanup",
            )
            .env("PROVIDER_SECRET_PREFIX", "bench/providers/")
            .env(
                "LIVE_ENDPOINT",
                "https://bench.execute-api.us-east-1.amazonaws.com/live",
            )
            .env(
                "COGNITO_ISSUER",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
            )
            .env("COGNITO_AUDIENCES", "bench-client")
            .env(
                "CALLBACK_SECRET",
                "bench-callback-secret-of-at-least-32-bytes",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().unwrap_or_default();
        let (answer, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("no answer within 10 s")?
            .context("runtime API closed")?;
        // The health event: 200 from catalog-api; functions without that
        // route answer their own 404, which has run the same init and routing.
        // An empty SQS batch: any answer (errors go to `/error`, not here).
        let answered = matches!(kind, "sqs" | "websocket" | "authorizer")
            || answer.contains("\"statusCode\":200")
            || answer.contains("route_not_found");
        if !answered {
            bail!("unexpected answer: {answer}");
        }
        cold_ms.push((at - started).as_secs_f64() * 1000.0);
        rss_mb.push(peak_rss_kb(pid).unwrap_or_default() as f64 / 1024.0);
        child.kill().await.ok();
        server.abort();
    }
    println!(
        "coldstart {runs} runs, exec → first answer: median {:.2} ms, p90 {:.2} ms, min {:.2} ms",
        median(&mut cold_ms.clone()),
        percentile(&mut cold_ms.clone(), 0.9),
        cold_ms.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    println!(
        "peak RSS  median {:.1} MB, max {:.1} MB",
        median(&mut rss_mb.clone()),
        rss_mb.iter().cloned().fold(0.0, f64::max)
    );
    Ok(())
}

async fn handler(requests: usize) -> anyhow::Result<()> {
    let dir = events_dir();
    let create = std::fs::read_to_string(dir.join("create-project.json"))?;
    let list = std::fs::read_to_string(dir.join("list-projects.json"))?;
    for (name, event) in [
        ("create project", &create),
        ("list projects (limit 2 of 10)", &list),
    ] {
        // A fresh store per scenario, with ten projects, so the in-memory
        // store's own cost stays flat and the figure is the handler's.
        let service = assetbox_shared::http::service(router(AppState {
            store: MemoryStore::default(),
            cursors: CursorKey::new(vec![7u8; 32]).map_err(anyhow::Error::msg)?,
        }));
        for _ in 0..10 {
            invoke(&service, &create).await?;
        }
        // Warm up, then time batches of 100 and report the median per request.
        let mut per_request_us = Vec::new();
        for batch in 0..(requests / 100).max(1) + 5 {
            let started = Instant::now();
            for _ in 0..100 {
                std::hint::black_box(invoke(&service, event).await?);
            }
            if batch >= 5 {
                per_request_us.push(started.elapsed().as_secs_f64() * 1e6 / 100.0);
            }
        }
        println!(
            "handler   {name}: median {:.1} µs/request (p90 of batches {:.1} µs), event in → response JSON out, no AWS I/O",
            median(&mut per_request_us.clone()),
            percentile(&mut per_request_us, 0.9)
        );
    }
    Ok(())
}

/// One event through lambda_http's adapter, as the runtime would run it.
async fn invoke(
    service: &assetbox_shared::http::HttpService,
    event: &str,
) -> anyhow::Result<String> {
    let event = serde_json::from_str(event)?;
    let response = assetbox_shared::http::invoke(service, event, "bench")
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(serde_json::to_string(&response)?)
}
