//! The local stand-in AI provider (SPEC §3.5 "Locally"): a real HTTP server
//! on loopback that speaks the reference protocol (`createTask` /
//! `recordInfo`, Bearer key, `code` in the body, `resultJson` as a JSON
//! string, HMAC-signed callbacks) and, for the registry's second shape,
//! Replicate-style predictions (statuses, `output`, Standard Webhooks). Tasks
//! go `waiting → queuing → generating → success` one `step` apart; results
//! are real PNG and MP4 bytes of the requested size and duration behind
//! URLs that expire.
//!
//! Misbehaviour on request, by markers in the prompt:
//! `[refuse:402]` / `[refuse:422]` / `[refuse:401]` (refused, not queued),
//! `[busy:N]` (the first N submits of this prompt get 429, `[maintenance:N]`
//! 455), `[fail:why]` (the task fails with that message), `[stuck]` (never
//! finishes), `[no-callback]`, `[callbacks:N]` (N duplicates), `[late-callback]`
//! (one more a few seconds after), `[takes:N]` (the task succeeds after N
//! seconds instead of three steps), `[not-media]` (the result is text),
//! `[expired]` (the result URL has expired before anyone fetches it),
//! `[lost-reply]` (the task is created but the answer is a 502, as when a
//! gateway drops it). Predictions can be cancelled (`POST
//! /v1/predictions/{id}/cancel`). `GET /_standin/stats?prompt=` counts what
//! it received, created, was asked, cancelled and called back, and when the
//! task succeeded, so tests can prove nothing was submitted twice and the
//! bench can count calls.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assetbox_shared::ai::signing;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// What the stand-in is configured with.
#[derive(Clone)]
pub struct StandinConfig {
    pub api_key: String,
    /// The reference protocol's callback HMAC key.
    pub webhook_key: String,
    /// The Standard Webhooks secret (`whsec_…`) of the Replicate shape.
    pub whsec: String,
    /// Time between states.
    pub step: Duration,
    /// How long result URLs stay valid.
    pub result_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Reference,
    Replicate,
}

struct Task {
    id: String,
    shape: Shape,
    model: String,
    request: Value,
    prompt: String,
    created: Instant,
    /// When it reports success (unix ms), unless it fails or sticks.
    success_ms: u128,
    callback: Option<String>,
    created_at: String,
    /// Cancelled through the predictions' cancel call.
    canceled: bool,
}

#[derive(Default)]
struct Counts {
    received: u32,
    created: u32,
    /// Query (record info / prediction) calls about its tasks.
    queries: u32,
    callbacks: u32,
    /// Cancel calls about its tasks.
    cancels: u32,
    /// When its latest task reports success (unix ms).
    success_ms: u128,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Task>,
    files: HashMap<String, (Vec<u8>, &'static str, Instant)>,
    by_prompt: HashMap<String, Counts>,
    total: Counts,
}

#[derive(Clone)]
pub struct Standin {
    config: StandinConfig,
    inner: Arc<Mutex<Inner>>,
    base: String,
    http: reqwest::Client,
}

/// The running stand-in.
pub struct StandinHandle {
    pub url: String,
    pub config: StandinConfig,
}

/// Starts it on a free loopback port.
pub async fn start(
    config: StandinConfig,
) -> anyhow::Result<(StandinHandle, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let standin = Standin {
        config: config.clone(),
        inner: Arc::default(),
        base: base.clone(),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()?,
    };
    let app = axum::Router::new()
        .route("/api/v1/jobs/createTask", post(create_task))
        .route("/api/v1/jobs/recordInfo", get(record_info))
        .route("/v1/predictions", post(create_prediction))
        .route("/v1/predictions/{id}", get(get_prediction))
        .route("/v1/predictions/{id}/cancel", post(cancel_prediction))
        .route("/files/{token}", get(file))
        .route("/_standin/stats", get(stats))
        .with_state(standin);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "stand-in provider stopped");
        }
    });
    Ok((StandinHandle { url: base, config }, task))
}

/// A marker's argument: `[name:arg]` → `Some("arg")`, `[name]` → `Some("")`.
fn marker<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("[{name}");
    let at = prompt.find(&open)?;
    let rest = &prompt[at + open.len()..];
    let end = rest.find(']')?;
    let inner = &rest[..end];
    match inner.strip_prefix(':') {
        Some(arg) => Some(arg),
        None if inner.is_empty() => Some(""),
        None => None,
    }
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == key)
}

fn now_text() -> String {
    assetbox_shared::clock::rfc3339(assetbox_shared::clock::now())
}

impl Standin {
    /// Counts a submit; `Some(refusal)` when the prompt asks for one.
    fn admit(&self, prompt: &str) -> Option<(u16, String)> {
        let mut inner = self.inner.lock().expect("stand-in state");
        inner.total.received += 1;
        let counts = inner.by_prompt.entry(prompt.to_owned()).or_default();
        counts.received += 1;
        let received = counts.received;
        if let Some(code) = marker(prompt, "refuse") {
            let code: u16 = code.parse().unwrap_or(422);
            let msg = match code {
                401 => "You do not have access permissions",
                402 => "Credits insufficient",
                _ => "Parameter validation failed: the prompt is not allowed",
            };
            return Some((code, msg.into()));
        }
        for (name, code, msg) in [
            ("busy", 429, "Rate limited"),
            ("maintenance", 455, "Service under maintenance"),
        ] {
            if let Some(n) = marker(prompt, name)
                && received <= n.parse().unwrap_or(1)
            {
                return Some((code, msg.into()));
            }
        }
        None
    }

    fn create(
        &self,
        shape: Shape,
        model: String,
        request: Value,
        prompt: String,
        callback: Option<String>,
    ) -> String {
        let id = format!("task-{}", ulid::Ulid::new().to_string().to_lowercase());
        let step = self.step_of(&prompt);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let task = Task {
            id: id.clone(),
            shape,
            model,
            request,
            prompt: prompt.clone(),
            created: Instant::now(),
            success_ms: now_ms + (step * 3).as_millis(),
            callback,
            created_at: now_text(),
            canceled: false,
        };
        let mut inner = self.inner.lock().expect("stand-in state");
        inner.total.created += 1;
        let counts = inner.by_prompt.entry(prompt.clone()).or_default();
        counts.created += 1;
        counts.success_ms = task.success_ms;
        let callbacks = match (marker(&prompt, "no-callback"), marker(&prompt, "stuck")) {
            (None, None) if task.callback.is_some() => marker(&prompt, "callbacks")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1u32),
            _ => 0,
        };
        inner.tasks.insert(id.clone(), task);
        drop(inner);
        if callbacks > 0 {
            let me = self.clone();
            let task_id = id.clone();
            let late = marker(&prompt, "late-callback").is_some();
            tokio::spawn(async move {
                tokio::time::sleep(step * 3 + Duration::from_millis(50)).await;
                for _ in 0..callbacks {
                    me.send_callback(&task_id).await;
                }
                if late {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    me.send_callback(&task_id).await;
                }
            });
        }
        id
    }

    /// Time between a task's states: the configured step, or a third of
    /// `[takes:N]` seconds.
    fn step_of(&self, prompt: &str) -> Duration {
        marker(prompt, "takes")
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(self.config.step, |secs| {
                Duration::from_millis(secs * 1000 / 3)
            })
    }

    /// The task's state now: one step per state, the end by its markers.
    fn state_of(&self, task: &Task) -> &'static str {
        let step = self.step_of(&task.prompt);
        let steps = task.created.elapsed().as_millis() / step.as_millis().max(1);
        match steps {
            _ if task.canceled => "canceled",
            0 => "waiting",
            1 => "queuing",
            2 => "generating",
            _ if marker(&task.prompt, "stuck").is_some() => "generating",
            _ if marker(&task.prompt, "fail").is_some() => "fail",
            _ => "success",
        }
    }

    /// The result URLs of a finished task (made on first ask, then kept).
    fn results(&self, task_id: &str) -> Vec<String> {
        let mut inner = self.inner.lock().expect("stand-in state");
        let key = format!("{task_id}-0");
        if !inner.files.contains_key(&key) {
            let task = &inner.tasks[task_id];
            let input = task.request.get("input").cloned().unwrap_or(Value::Null);
            let count = input
                .get("n")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 4);
            let expired = marker(&task.prompt, "expired").is_some();
            let not_media = marker(&task.prompt, "not-media").is_some();
            let video = task.model.contains("video") || input.get("image_url").is_some();
            let ttl = if expired {
                Duration::ZERO
            } else {
                self.config.result_ttl
            };
            let made: Vec<(String, Vec<u8>, &'static str)> = (0..count)
                .map(|i| {
                    let (bytes, ct) = if not_media {
                        (b"<html>this is not an image</html>".to_vec(), "text/html")
                    } else if video {
                        (media::mp4_of(&input, i as u8), "video/mp4")
                    } else {
                        (media::png_of(&input, i as u8), "image/png")
                    };
                    (format!("{task_id}-{i}"), bytes, ct)
                })
                .collect();
            let expires = Instant::now() + ttl;
            for (k, bytes, ct) in made {
                inner.files.insert(k, (bytes, ct, expires));
            }
        }
        let mut keys: Vec<&String> = inner
            .files
            .keys()
            .filter(|k| k.starts_with(&format!("{task_id}-")))
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|k| format!("{}/files/{k}", self.base))
            .collect()
    }

    /// The task as the query endpoint shows it (counted as a query).
    fn queried(&self, task_id: &str) -> Option<Value> {
        {
            let mut inner = self.inner.lock().expect("stand-in state");
            let prompt = inner.tasks.get(task_id)?.prompt.clone();
            inner.total.queries += 1;
            inner.by_prompt.entry(prompt).or_default().queries += 1;
        }
        self.record(task_id)
    }

    fn record(&self, task_id: &str) -> Option<Value> {
        let inner = self.inner.lock().expect("stand-in state");
        let task = inner.tasks.get(task_id)?;
        let state = self.state_of(task);
        let (shape, model, created_at, request, prompt, id) = (
            task.shape,
            task.model.clone(),
            task.created_at.clone(),
            task.request.clone(),
            task.prompt.clone(),
            task.id.clone(),
        );
        drop(inner);
        let results = (state == "success").then(|| self.results(task_id));
        let fail_msg = marker(&prompt, "fail").map(|m| {
            if m.is_empty() {
                "generation failed".to_owned()
            } else {
                m.to_owned()
            }
        });
        Some(match shape {
            Shape::Reference => json!({
                "code": 200, "msg": "success",
                "data": {
                    "taskId": id, "model": model, "state": state,
                    "param": request.to_string(),
                    "resultJson": results.map(|r| json!({"resultUrls": r}).to_string()).unwrap_or_default(),
                    "failCode": if state == "fail" { "501" } else { "" },
                    "failMsg": if state == "fail" { fail_msg.clone().unwrap_or_default() } else { String::new() },
                    "createTime": created_at,
                }
            }),
            Shape::Replicate => json!({
                "id": id, "model": model,
                "status": match state { "waiting" => "starting", "success" => "succeeded", "fail" => "failed", "canceled" => "canceled", _ => "processing" },
                "input": request.get("input"),
                "webhook": request.get("webhook"),
                "output": results.map(Value::from),
                "error": if state == "fail" { fail_msg.map(Value::from).unwrap_or(Value::Null) } else { Value::Null },
                "created_at": created_at,
            }),
        })
    }

    async fn send_callback(&self, task_id: &str) {
        let (url, shape) = {
            let inner = self.inner.lock().expect("stand-in state");
            let Some(task) = inner.tasks.get(task_id) else {
                return;
            };
            let Some(url) = task.callback.clone() else {
                return;
            };
            (url, task.shape)
        };
        let Some(body) = self.record(task_id) else {
            return;
        };
        let text = body.to_string();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut request = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json");
        request = match shape {
            Shape::Reference => {
                let ts = now.to_string();
                request.header("x-webhook-timestamp", &ts).header(
                    "x-webhook-signature",
                    signing::reference_signature(self.config.webhook_key.as_bytes(), task_id, &ts),
                )
            }
            Shape::Replicate => {
                let id = format!("msg_{task_id}");
                let sig =
                    signing::standard_signature(&self.config.whsec, &id, now, text.as_bytes())
                        .unwrap_or_default();
                request
                    .header("webhook-id", id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", sig)
            }
        };
        {
            let mut inner = self.inner.lock().expect("stand-in state");
            inner.total.callbacks += 1;
            if let Some(prompt) = inner.tasks.get(task_id).map(|t| t.prompt.clone()) {
                inner.by_prompt.entry(prompt).or_default().callbacks += 1;
            }
        }
        if let Err(e) = request.body(text).send().await {
            tracing::warn!(error = %e, "stand-in callback not delivered");
        }
    }
}

fn prompt_of(body: &Value) -> String {
    body.pointer("/input/prompt")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn create_task(State(s): State<Standin>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &s.config.api_key) {
        return Json(json!({"code": 401, "msg": "You do not have access permissions"}))
            .into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Json(json!({"code": 422, "msg": "body is not JSON"})).into_response();
    };
    let prompt = prompt_of(&body);
    if let Some((code, msg)) = s.admit(&prompt) {
        return Json(json!({"code": code, "msg": msg})).into_response();
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("standin")
        .to_owned();
    let callback = body
        .get("callBackUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = s.create(Shape::Reference, model, body, prompt.clone(), callback);
    if marker(&prompt, "lost-reply").is_some() {
        return (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response();
    }
    Json(json!({"code": 200, "msg": "success", "data": {"taskId": id}})).into_response()
}

#[derive(serde::Deserialize)]
struct TaskQuery {
    #[serde(rename = "taskId")]
    task_id: String,
}

async fn record_info(
    State(s): State<Standin>,
    headers: HeaderMap,
    Query(q): Query<TaskQuery>,
) -> Response {
    if !authorized(&headers, &s.config.api_key) {
        return Json(json!({"code": 401, "msg": "You do not have access permissions"}))
            .into_response();
    }
    match s.queried(&q.task_id) {
        Some(record) => Json(record).into_response(),
        None => Json(json!({"code": 404, "msg": "task not found"})).into_response(),
    }
}

/// Replicate's answer to a missing or wrong token.
fn prediction_refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"detail": "Invalid token."})),
    )
        .into_response()
}

fn prediction_not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response()
}

async fn create_prediction(State(s): State<Standin>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &s.config.api_key) {
        return prediction_refused();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": "body is not JSON"})),
        )
            .into_response();
    };
    let prompt = prompt_of(&body);
    if let Some((code, msg)) = s.admit(&prompt) {
        return (
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            Json(json!({"detail": msg})),
        )
            .into_response();
    }
    let model = body
        .get("version")
        .or(body.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("standin")
        .to_owned();
    let callback = body
        .get("webhook")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = s.create(Shape::Replicate, model, body, prompt, callback);
    let record = s.record(&id).unwrap_or_default();
    (StatusCode::CREATED, Json(record)).into_response()
}

async fn get_prediction(
    State(s): State<Standin>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers, &s.config.api_key) {
        return prediction_refused();
    }
    match s.queried(&id) {
        Some(record) => Json(record).into_response(),
        None => prediction_not_found(),
    }
}

/// Replicate's cancel: the prediction as it now stands (a finished one
/// stays finished).
async fn cancel_prediction(
    State(s): State<Standin>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers, &s.config.api_key) {
        return prediction_refused();
    }
    {
        let mut inner = s.inner.lock().expect("stand-in state");
        let Some(task) = inner.tasks.get(&id) else {
            return prediction_not_found();
        };
        let running = !matches!(s.state_of(task), "success" | "fail" | "canceled");
        let prompt = task.prompt.clone();
        if running {
            inner.tasks.get_mut(&id).expect("just read").canceled = true;
        }
        inner.total.cancels += 1;
        inner.by_prompt.entry(prompt).or_default().cancels += 1;
    }
    match s.record(&id) {
        Some(record) => Json(record).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn file(State(s): State<Standin>, Path(token): Path<String>) -> Response {
    let inner = s.inner.lock().expect("stand-in state");
    match inner.files.get(&token) {
        Some((_, _, expires)) if Instant::now() >= *expires => {
            (StatusCode::GONE, "this result link has expired").into_response()
        }
        Some((bytes, ct, _)) => ([(header::CONTENT_TYPE, *ct)], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct StatsQuery {
    prompt: Option<String>,
}

async fn stats(State(s): State<Standin>, Query(q): Query<StatsQuery>) -> Json<Value> {
    let inner = s.inner.lock().expect("stand-in state");
    let counts = match &q.prompt {
        Some(p) => inner.by_prompt.get(p),
        None => Some(&inner.total),
    };
    Json(match counts {
        Some(c) => json!({
            "received": c.received, "created": c.created, "queries": c.queries,
            "callbacks": c.callbacks, "cancels": c.cancels, "success_ms": c.success_ms,
        }),
        None => json!({"received": 0, "created": 0, "queries": 0, "callbacks": 0, "cancels": 0}),
    })
}

/// Real media of the requested shape.
pub mod media {
    use super::*;

    fn dimension(input: &Value, name: &str, default: u32) -> u32 {
        input
            .get(name)
            .and_then(Value::as_u64)
            .map_or(default, |v| v.clamp(16, 4096) as u32)
    }

    /// A PNG of `width`×`height` (default 64×64): a gradient per seed.
    pub fn png_of(input: &Value, seed: u8) -> Vec<u8> {
        png(
            dimension(input, "width", 64),
            dimension(input, "height", 64),
            seed,
        )
    }

    pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                seed,
            ])
        });
        let mut out = Cursor::new(Vec::new());
        picture
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode PNG");
        out.into_inner()
    }

    /// An MP4 of `duration` seconds (default 2, at most 10) at 25 fps.
    pub fn mp4_of(input: &Value, seed: u8) -> Vec<u8> {
        let seconds = input
            .get("duration")
            .and_then(Value::as_u64)
            .unwrap_or(2)
            .clamp(1, 10) as u32;
        mp4(
            seconds * 25,
            dimension(input, "width", 64) as u16,
            dimension(input, "height", 48) as u16,
            seed,
        )
    }

    /// An H.264 track of `frames` samples at 25 fps.
    pub fn mp4(frames: u32, width: u16, height: u16, seed: u8) -> Vec<u8> {
        let config = mp4::Mp4Config {
            major_brand: str::parse("isom").expect("brand"),
            minor_version: 512,
            compatible_brands: ["isom", "iso2", "avc1", "mp41"]
                .into_iter()
                .map(|b| str::parse(b).expect("brand"))
                .collect(),
            timescale: 1000,
        };
        let mut writer =
            mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).expect("mp4");
        writer
            .add_track(&mp4::TrackConfig {
                track_type: mp4::TrackType::Video,
                timescale: 25,
                language: "und".into(),
                media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                    width,
                    height,
                    seq_param_set: vec![0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0x40, 0x0c],
                    pic_param_set: vec![0x68, 0xce, 0x3c, 0x80],
                }),
            })
            .expect("track");
        for i in 0..frames {
            let sample = mp4::Mp4Sample {
                start_time: i as u64,
                duration: 1,
                rendering_offset: 0,
                is_sync: i == 0,
                bytes: bytes::Bytes::from(vec![0, 0, 0, 2, 0x65, seed ^ i as u8]),
            };
            writer.write_sample(1, &sample).expect("sample");
        }
        writer.write_end().expect("end");
        writer.into_writer().into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read_from_the_prompt() {
        assert_eq!(marker("a fox [refuse:402]", "refuse"), Some("402"));
        assert_eq!(marker("a fox [stuck] now", "stuck"), Some(""));
        assert_eq!(marker("a fox [stuckx]", "stuck"), None);
        assert_eq!(marker("a fox", "stuck"), None);
    }
}
