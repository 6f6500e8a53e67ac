//! `cargo run -p assetbox-local`: the whole system on loopback.

use std::time::Duration;

use assetbox_local::{LocalStack, Options};
use clap::Parser;

#[derive(Parser)]
#[command(
    about = "Runs assetbox locally: AWS emulator, resources from template.yaml, HTTP API, schedules"
)]
struct Args {
    /// Port of the HTTP API.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Port of the live WebSocket API (asset status pushed to browsers).
    #[arg(long, default_value_t = 3001)]
    live_port: u16,
    /// Port of the web console and the share page.
    #[arg(long, default_value_t = 3002)]
    console_port: u16,
    /// Port of the AWS emulator (moto).
    #[arg(long, default_value_t = 4566)]
    emulator_port: u16,
    /// Fire every schedule this often (seconds) instead of its template rate.
    #[arg(long)]
    schedule_every: Option<u64>,
    /// Time between the stand-in AI provider's task states (waiting →
    /// queuing → generating → success), in milliseconds.
    #[arg(long, default_value_t = 700)]
    standin_step_ms: u64,
    /// Keep users, the table, objects, queues and the stack's secrets in this
    /// folder across restarts (saved every 30 s after a change and at Ctrl-C).
    /// Without it, every start is fresh.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Seed a demo user (demo@example.com / assetbox-demo) with a project,
    /// boxes, uploaded and generated assets, a share link and a comment.
    #[arg(long)]
    demo: bool,
    /// Override a template parameter, e.g. `--parameter UserQuotaBytes=1073741824`.
    #[arg(long = "parameter", value_parser = parse_parameter)]
    parameters: Vec<(String, String)>,
}

fn parse_parameter(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "expected Name=Value".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    assetbox_shared::http::init_logging();
    let args = Args::parse();
    // Later values win, so a --parameter overrides a development default.
    let mut parameters = assetbox_local::development_parameters();
    parameters.extend(args.parameters);
    let stack = LocalStack::start(Options {
        api_port: args.port,
        live_port: args.live_port,
        console_port: args.console_port,
        emulator_port: args.emulator_port,
        schedule_every: args.schedule_every.map(Duration::from_secs),
        parameters,
        standin_step: Duration::from_millis(args.standin_step_ms),
        data_dir: args.data_dir.clone(),
        ..Options::default()
    })
    .await?;
    let demo = match args.demo {
        true => match assetbox_local::demo::seed(&stack).await {
            Ok(demo) => Some(demo),
            Err(e) => {
                // Stopped as at Ctrl-C, so the emulator saves what it has.
                stack.shutdown().await?;
                return Err(e.context("seeding the demo"));
            }
        },
        false => None,
    };
    let api = &stack.api_url;
    println!(
        r#"
assetbox is running.
  Web console   {console}/   (share links open {console}/shared/<token>)
  HTTP API      {api}   (OpenAPI: {api}/openapi.json)
  Live status   {live}?token=<access token>   (WebSocket: README, "Live status")
  AWS emulator  {emu}   (DynamoDB table {table}, bucket {bucket})

Register and log in:
  curl -s -X POST {api}/api/auth/register -H 'content-type: application/json' \
       -d '{{"email":"ada@example.com","password":"correct horse"}}'
  TOKEN=$(curl -s -X POST {api}/api/auth/login -H 'content-type: application/json' \
       -d '{{"email":"ada@example.com","password":"correct horse"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST {api}/api/projects/ -H "authorization: Bearer $TOKEN" \
       -H 'content-type: application/json' -d '{{"name":"Teaser"}}'
  curl -s {api}/api/projects/ -H "authorization: Bearer $TOKEN"

Generate (the stand-in AI provider at {standin} is registered with {models}):
  curl -s {api}/api/ai/models/ -H "authorization: Bearer $TOKEN"
  curl -s -X POST {api}/api/boxes/<box id>/generate/ -H "authorization: Bearer $TOKEN" \
       -H 'content-type: application/json' \
       -d '{{"ai_model":"{image_model}","prompt_text":"a red fox in snow","params":{{"width":640,"height":360}}}}'
  then GET {api}/api/assets/<id>/ until COMPLETED (prompt markers such as [fail:why]
  or [busy:1] make the stand-in misbehave: README, "AI generation").

{demo}Browser front ends: CORS as the template's CorsAllowedOrigins says (any origin by
default; --parameter CorsAllowedOrigins=http://localhost:5173 to allow one). Uppy:
see the README ("Front ends").

{state}"#,
        state = match &args.data_dir {
            Some(dir) => format!(
                "State is kept in {}: Ctrl-C saves it and stops everything this command\nstarted; the next start with --data-dir {0} carries on.",
                dir.display()
            ),
            None => "State lives in memory: Ctrl-C stops everything this command started, and its\nusers, tokens and data go with it (--data-dir DIR keeps them).".to_owned(),
        },
        demo = match &demo {
            Some(demo) => format!(
                "Demo ({}): open {}/ and log in as {} / {}{}\n\n",
                if demo.created { "seeded" } else { "kept from an earlier start" },
                stack.console_url,
                assetbox_local::demo::EMAIL,
                assetbox_local::demo::PASSWORD,
                demo.share_url
                    .as_deref()
                    .map(|url| format!("\n  its share page: {url}"))
                    .unwrap_or_default(),
            ),
            None => String::new(),
        },
        emu = stack.emulator.endpoint,
        console = stack.console_url,
        live = stack.live_url.as_deref().unwrap_or("(none)"),
        standin = stack.standin.url,
        models = stack
            .registered
            .models
            .iter()
            .map(|m| format!("{} ({}, {})", m.spec.name, m.spec.kind.as_str(), m.id))
            .collect::<Vec<_>>()
            .join(" and "),
        image_model = stack
            .registered
            .models
            .iter()
            .find(|m| m.spec.kind.as_str() == "image")
            .map_or("?", |m| m.id.as_str()),
        table = stack.physical_id("Table").unwrap_or("?"),
        bucket = stack.physical_id("MediaBucket").unwrap_or("?"),
    );
    // Ctrl-C in a terminal, or SIGTERM from a process manager or a test.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        _ = terminate.recv() => {}
    }
    match &args.data_dir {
        Some(dir) => println!("stopping (saving the state in {})…", dir.display()),
        None => println!("stopping…"),
    }
    stack.shutdown().await?;
    println!("stopped");
    Ok(())
}
