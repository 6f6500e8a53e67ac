//! The local stack: everything `template.yaml` deploys, on loopback, without
//! Docker or an AWS account. moto emulates DynamoDB, S3, SQS and Cognito; the
//! resources are created from the template; an API Gateway stand-in verifies
//! JWTs and runs the very `Router`s the Lambdas run; schedules fire into their
//! queues. Tests start the same stack in-process on free ports.

pub mod console;
pub mod cors;
pub mod demo;
pub mod emulator;
pub mod functions;
pub mod gateway;
pub mod jwt;
pub mod live;
pub mod provision;
pub mod pumps;
pub mod registry;
pub mod s3_events;
pub mod standin;
pub mod streams;
pub mod template;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use assetbox_shared::config::vars;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use tokio::task::JoinHandle;

use crate::emulator::Emulator;
use crate::gateway::{BoundFunction, Gateway};
use crate::template::{FunctionSpec, Resolved, Template};

/// The repository root (where `template.yaml` lives).
pub fn project_root() -> PathBuf {
    std::env::var_os("ASSETBOX_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            root.canonicalize().unwrap_or(root)
        })
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the HTTP API; 0 picks a free one.
    pub api_port: u16,
    /// Port of the live WebSocket API; 0 picks a free one.
    pub live_port: u16,
    /// Port of the web console and share page; 0 picks a free one.
    pub console_port: u16,
    /// Port of the emulator; 0 picks a free one.
    pub emulator_port: u16,
    pub stack_name: String,
    /// Replaces every schedule's rate (e.g. 10 s while developing).
    pub schedule_every: Option<Duration>,
    /// Template parameter values, like `sam deploy --parameter-overrides`.
    pub parameters: Vec<(String, String)>,
    /// Deliver S3 notifications to the functions (on by default; tests
    /// that assert on states ingestion would change turn it off).
    pub deliver_s3_events: bool,
    /// Time between the stand-in provider's task states.
    pub standin_step: Duration,
    /// Where the functions send their AWS calls, when not straight to the
    /// emulator (the bench puts a counting proxy there).
    pub functions_endpoint: Option<String>,
    /// Keeps the emulator's state (users, table, objects, queues) and the
    /// stack's generated secrets here across restarts; `None`: fresh state.
    pub data_dir: Option<PathBuf>,
}

/// Template parameters that `cargo run -p assetbox-local` (and the tests'
/// stack) start with, before any `--parameter`: what a developer on one
/// machine needs and a deployment must not have.
pub fn development_parameters() -> Vec<(String, String)> {
    // Imports may fetch from this machine (`http://127.0.0.1:8000/a.png`
    // from `python3 -m http.server`); deployed, the default `false` stands.
    vec![("ImportAllowPrivateNetworks".into(), "true".into())]
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_port: 0,
            live_port: 0,
            console_port: 0,
            emulator_port: 0,
            stack_name: "assetbox-local".into(),
            schedule_every: None,
            parameters: Vec::new(),
            deliver_s3_events: true,
            standin_step: Duration::from_millis(700),
            functions_endpoint: None,
            data_dir: None,
        }
    }
}

pub struct LocalStack {
    pub api_url: String,
    /// The live WebSocket API (`ws://…/<stage>`), when the template has one.
    pub live_url: Option<String>,
    /// The web console; share links point at its `/shared/<token>` page.
    pub console_url: String,
    pub emulator: Emulator,
    pub sdk: SdkConfig,
    pub resolved: Resolved,
    pub functions: Vec<FunctionSpec>,
    /// The stand-in AI provider and what the registry holds of it.
    pub standin: standin::StandinHandle,
    pub registered: registry::Registered,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What `--data-dir` keeps: moto's state (`emulator.pickle`, written by
/// moto_runner.py) and the values of the template's generated secrets
/// (`secrets.json`: cursors and callback tokens stay valid across restarts).
struct DataDir {
    emulator_state: PathBuf,
    secrets_file: PathBuf,
}

impl DataDir {
    fn open(dir: &std::path::Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        // Only its owner may list it: it holds users, tokens and secrets.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
        Ok(Self {
            emulator_state: dir.join("emulator.pickle"),
            secrets_file: dir.join("secrets.json"),
        })
    }

    fn secrets(&self) -> anyhow::Result<HashMap<String, String>> {
        match std::fs::read(&self.secrets_file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", self.secrets_file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.secrets_file.display())),
        }
    }

    fn keep_secrets(&self, secrets: &HashMap<String, String>) -> anyhow::Result<()> {
        write_private(&self.secrets_file, &serde_json::to_vec_pretty(secrets)?)
            .with_context(|| format!("writing {}", self.secrets_file.display()))
    }
}

/// Writes a file only its owner can read (it holds secrets): a new file
/// beside it, renamed into place, so a crash leaves the old one whole.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// SDK configuration for the emulator: loopback endpoint, fixed region, and
/// placeholder credentials (moto accepts any; nothing secret is involved).
pub async fn emulator_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(provision::REGION))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "assetbox-local",
        ))
        .load()
        .await
}

/// S3 against an emulator needs path-style addressing.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

async fn bind_loopback(
    port: u16,
    what: &str,
    flag: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("binding {what} to 127.0.0.1:{port} (free it or pass another {flag})")
        })
}

/// Gives a template parameter left empty this start's value.
fn default_parameter(template: &mut Template, name: &str, value: &str) {
    if let Some(param) = template.parameters.get_mut(name)
        && param["Default"].as_str().is_none_or(str::is_empty)
    {
        param["Default"] = serde_json::Value::String(value.to_owned());
    }
}

impl LocalStack {
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let root = project_root();
        let mut template = Template::load(&root.join("template.yaml"))?;
        for (name, value) in &options.parameters {
            let Some(param) = template.parameters.get_mut(name) else {
                anyhow::bail!("template has no parameter {name}");
            };
            param["Default"] = serde_json::Value::String(value.clone());
        }
        // The ports first: a taken one fails at once, with the reason.
        let listener = bind_loopback(options.api_port, "the HTTP API", "--port").await?;
        let api_url = format!("http://{}", listener.local_addr()?);
        let live_listener =
            bind_loopback(options.live_port, "the live WebSocket API", "--live-port").await?;
        let live_addr = live_listener.local_addr()?;
        let console_listener =
            bind_loopback(options.console_port, "the web console", "--console-port").await?;
        let console_url = format!("http://{}", console_listener.local_addr()?);
        let websocket_api = template.websocket_api()?;
        // Provider callbacks come back to this API, and share links open
        // the console's share page, unless told otherwise.
        default_parameter(&mut template, "PublicApiUrl", &api_url);
        default_parameter(&mut template, "PublicAppUrl", &console_url);
        let emulator_port = match options.emulator_port {
            0 => emulator::free_port()?,
            port => port,
        };
        let data = options.data_dir.as_deref().map(DataDir::open).transpose()?;
        let emulator = emulator::start(
            &root.join("local"),
            emulator_port,
            data.as_ref().map(|d| d.emulator_state.as_path()),
        )
        .await?;
        let sdk = emulator_sdk_config(&emulator.endpoint).await;
        let known_secrets = match &data {
            Some(data) => data.secrets()?,
            None => HashMap::new(),
        };
        let resolved = provision::provision(&sdk, &template, &options.stack_name, &known_secrets)
            .await
            .context("provisioning the template's resources")?;
        if let Some(data) = &data {
            data.keep_secrets(&resolved.secrets)?;
        }

        let (api_key, webhook_key, whsec) = registry::standin_keys();
        let (standin, standin_task) = standin::start(standin::StandinConfig {
            api_key,
            webhook_key,
            whsec,
            step: options.standin_step,
            result_ttl: Duration::from_secs(600),
        })
        .await
        .context("starting the stand-in AI provider")?;
        let table_name = resolved
            .refs
            .get("Table")
            .cloned()
            .context("the template has no Table")?;
        let registered = registry::register_standin(
            &sdk,
            &table_name,
            &options.stack_name,
            &standin.url,
            &standin.config,
        )
        .await?;

        let mut specs = template.functions(&resolved)?;
        // The live API's management endpoint and the pool's keys are on
        // loopback here (moto serves no JWKS in server mode).
        if let Some(api) = &websocket_api {
            for spec in &mut specs {
                if let Some(endpoint) = spec.environment.get_mut(vars::LIVE_ENDPOINT) {
                    *endpoint = format!("http://{live_addr}/{}", api.stage);
                }
                if let Some(url) = spec.environment.get_mut(vars::COGNITO_JWKS_URL) {
                    *url = format!("http://{live_addr}{}", live::JWKS_PATH);
                }
            }
        }
        let functions_sdk = match &options.functions_endpoint {
            Some(endpoint) => emulator_sdk_config(endpoint).await,
            None => sdk.clone(),
        };
        let mut bound = HashMap::new();
        for spec in &specs {
            let function = functions::build(spec, &functions_sdk)
                .with_context(|| format!("wiring {}", spec.logical_id))?;
            bound.insert(
                spec.logical_id.clone(),
                Arc::new(BoundFunction {
                    name: spec.logical_id.clone(),
                    function,
                    timeout: Duration::from_secs(spec.timeout_secs),
                }),
            );
        }
        let routes = template.http_routes()?;
        let mut authorizers = HashMap::new();
        for name in routes.iter().filter_map(|r| r.authorizer.clone()) {
            if authorizers.contains_key(&name) {
                continue;
            }
            let (issuer, audiences) = template.jwt_authorizer(&resolved, &name)?;
            let keys = jwt::read_key_set(&emulator.cognito_keys_dir, "jwks-public")?;
            authorizers.insert(
                name,
                jwt::JwtVerifier::new(&keys, issuer, audiences).map_err(anyhow::Error::msg)?,
            );
        }
        let cors = template
            .cors_configuration(&resolved)?
            .map(|config| cors::CorsPolicy::from_config(&config))
            .transpose()?;
        let gateway = Arc::new(Gateway::new(routes, &bound, authorizers, cors)?);

        let mut tasks = vec![standin_task];
        let live_url = match websocket_api {
            Some(api) => {
                let url = format!("ws://{live_addr}/{}", api.stage);
                let keys = jwt::read_key_set(&emulator.cognito_keys_dir, "jwks-public")?;
                let gateway = Arc::new(live::LiveGateway::new(api, &bound, keys)?);
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = axum::serve(live_listener, live::router(gateway)).await {
                        tracing::error!(error = %e, "live WebSocket API stopped");
                    }
                }));
                Some(url)
            }
            None => None,
        };
        // Stream event sources: the table's stream read and handed over as
        // Lambda's event source mapping would (see streams.rs).
        for source in template.stream_sources(&resolved)? {
            let Some(function) = bound.get(&source.function) else {
                anyhow::bail!("stream source of unknown function {}", source.function);
            };
            let functions::LocalFunction::Stream(consumer) = &function.function else {
                anyhow::bail!(
                    "{} has a DynamoDB event but takes no stream batches",
                    source.function
                );
            };
            tasks.push(
                streams::spawn_stream_pump(
                    emulator.endpoint.clone(),
                    source,
                    consumer.clone(),
                    function.timeout,
                )
                .await
                .context("opening the table's stream")?,
            );
        }
        let console_router = console::router(console::ConsoleConfig {
            api_url: api_url.clone(),
            live_url: live_url.clone(),
        });
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(console_listener, console_router).await {
                tracing::error!(error = %e, "web console stopped");
            }
        }));
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, gateway::router(gateway)).await {
                tracing::error!(error = %e, "HTTP API stopped");
            }
        }));
        // S3 notifications: each S3 event of a function, delivered as real
        // S3 would (see s3_events.rs).
        let s3_sources = match options.deliver_s3_events {
            true => template.s3_sources(&resolved)?,
            false => Vec::new(),
        };
        let s3_queues = s3_events::connect(
            &s3_client(&sdk),
            &aws_sdk_sqs::Client::new(&sdk),
            &options.stack_name,
            &s3_sources,
        )
        .await?;
        for (source, queue_url) in s3_sources.iter().zip(s3_queues) {
            let Some(function) = bound.get(&source.function) else {
                anyhow::bail!("S3 source of unknown function {}", source.function);
            };
            let functions::LocalFunction::S3(consumer) = &function.function else {
                anyhow::bail!("{} has an S3 event but takes no S3 events", source.function);
            };
            tasks.push(s3_events::spawn_pump(
                aws_sdk_sqs::Client::new(&sdk),
                queue_url,
                source.function.clone(),
                consumer.clone(),
            ));
        }
        // Event source mappings: each SQS event of a function, its queue
        // long-polled and batches handed over as Lambda would.
        for source in template.sqs_sources(&resolved)? {
            let Some(function) = bound.get(&source.function) else {
                anyhow::bail!("SQS source of unknown function {}", source.function);
            };
            let functions::LocalFunction::Sqs(consumer) = &function.function else {
                anyhow::bail!(
                    "{} has an SQS event but is not an SQS consumer",
                    source.function
                );
            };
            // Lambda's SQS event source mapping starts with five
            // concurrent batches; so does the local one.
            for _ in 0..pumps::SQS_POLLERS {
                tasks.push(pumps::spawn_sqs_pump(
                    aws_sdk_sqs::Client::new(&sdk),
                    source.queue_url.clone(),
                    source.queue_arn.clone(),
                    source.batch_size,
                    consumer.clone(),
                ));
            }
        }
        let schedules = pumps::schedules(&template, &resolved, options.schedule_every)?;
        tasks.extend(pumps::spawn_schedules(
            aws_sdk_sqs::Client::new(&sdk),
            schedules,
        ));

        Ok(Self {
            api_url,
            live_url,
            console_url,
            emulator,
            sdk,
            resolved,
            functions: specs,
            standin,
            registered,
            tasks,
        })
    }

    /// Stops everything, letting the emulator save its state first when it
    /// has a data directory.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.emulator.stop(Duration::from_secs(600)).await
    }

    /// The physical id (`!Ref`) of a template resource, e.g. the table name.
    pub fn physical_id(&self, logical_id: &str) -> Option<&str> {
        self.resolved.refs.get(logical_id).map(String::as_str)
    }

    pub fn function_env(&self, logical_id: &str) -> Option<&HashMap<String, String>> {
        self.functions
            .iter()
            .find(|f| f.logical_id == logical_id)
            .map(|f| &f.environment)
    }
}
