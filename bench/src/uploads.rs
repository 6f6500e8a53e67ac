//! `uploads`: what the upload functions cost.
//!
//! - Part-URL signing throughput on one core (our presigner, and the SDK's
//!   presigner on the same request for a ratio).
//! - Each upload operation run through its function (lambda_http's adapter)
//!   against the emulator, behind a counting proxy: AWS calls per operation
//!   (by DynamoDB target / S3 operation), handler time end to end (emulator
//!   latency included), and reply size, for a 10,000-part initiate too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use assetbox_local::functions::LocalFunction;
use assetbox_local::{LocalStack, Options, emulator_sdk_config};
use assetbox_shared::http::HttpService;
use assetbox_shared::s3::presign::{BucketEndpoint, ObjectRequest, Presigner};
use aws_credential_types::Credentials;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::median;

/// Signs `count` part URLs with one presigner; URLs per second.
fn sign_rate(count: u32) -> f64 {
    let credentials = Credentials::new("AKIDBENCH", "bench-secret", None, None, "bench");
    let signer = Presigner::new(
        "media-bucket",
        "eu-west-1",
        BucketEndpoint::from_endpoint_url(None, "eu-west-1").unwrap(),
        &credentials,
        SystemTime::now(),
    );
    let upload_id = "VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA".to_owned();
    let started = Instant::now();
    for n in 1..=count {
        let url = signer.presign(
            &ObjectRequest {
                method: "PUT",
                key: "uploads/0b7c1e2a-5f43-4c1b-9d1e-2f7a8b9c0d1e/01JDQ3V8X4KQ7N2M5R6T9W0YZA/original.mp4",
                query: vec![
                    ("partNumber", n.to_string()),
                    ("uploadId", upload_id.clone()),
                ],
                headers: vec![("content-length", "5242880".to_owned())],
            },
            Duration::from_secs(3600),
        );
        std::hint::black_box(url);
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// The SDK's presigner on the same request (no signed length: it cannot).
async fn sdk_sign_rate(count: u32) -> f64 {
    use aws_sdk_s3::presigning::PresigningConfig;
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIDBENCH",
            "bench-secret",
            None,
            None,
            "bench",
        ))
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let presigning = PresigningConfig::expires_in(Duration::from_secs(3600)).unwrap();
    let started = Instant::now();
    for n in 1..=count {
        let request = client
            .upload_part()
            .bucket("media-bucket")
            .key("uploads/0b7c1e2a-5f43-4c1b-9d1e-2f7a8b9c0d1e/01JDQ3V8X4KQ7N2M5R6T9W0YZA/original.mp4")
            .upload_id("VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA")
            .part_number(n as i32)
            .presigned(presigning.clone())
            .await
            .unwrap();
        std::hint::black_box(request.uri().to_owned());
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// The local stack with its functions' AWS calls going through a counting
/// proxy, and development parameters plus `extra`.
pub(crate) async fn proxied_stack(
    extra: Vec<(String, String)>,
    deliver_s3_events: bool,
) -> anyhow::Result<(assetbox_local::LocalStack, Arc<Proxy>)> {
    let emulator_port = assetbox_local::emulator::free_port()?;
    let (proxy, proxy_url) = Proxy::spawn(format!("http://127.0.0.1:{emulator_port}")).await?;
    let mut parameters = assetbox_local::development_parameters();
    parameters.extend(extra);
    let stack = assetbox_local::LocalStack::start(assetbox_local::Options {
        emulator_port,
        functions_endpoint: Some(proxy_url),
        parameters,
        deliver_s3_events,
        ..assetbox_local::Options::default()
    })
    .await?;
    Ok((stack, proxy))
}

/// The id of the stand-in's image model the stack registered.
pub(crate) fn image_model(stack: &assetbox_local::LocalStack) -> anyhow::Result<String> {
    Ok(stack
        .registered
        .models
        .iter()
        .find(|m| m.spec.kind.as_str() == "image")
        .ok_or_else(|| anyhow::anyhow!("the stand-in image model"))?
        .id
        .clone())
}

/// Counts AWS calls on their way to the emulator.
pub(crate) struct Proxy {
    target: String,
    http: reqwest::Client,
    pub(crate) calls: Mutex<Vec<String>>,
}

impl Proxy {
    /// A counting proxy in front of `target`, served on a free loopback
    /// port; its URL.
    pub(crate) async fn spawn(target: String) -> anyhow::Result<(Arc<Self>, String)> {
        let proxy = Arc::new(Self {
            target,
            http: reqwest::Client::new(),
            calls: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((proxy, url))
    }
}

/// The operation a request to the emulator is: JSON protocols (DynamoDB,
/// SQS, Secrets Manager) name it in `x-amz-target`; S3 by method and query.
fn operation(request: &Request) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let (service, op) = target.split_once('.').unwrap_or(("?", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "dynamodb",
            "AmazonSQS" => "sqs",
            "secretsmanager" => "secretsmanager",
            other => other,
        };
        return format!("{service}:{op}");
    }
    let query = request.uri().query().unwrap_or_default();
    let has = |p: &str| {
        query
            .split('&')
            .any(|kv| kv == p || kv.starts_with(&format!("{p}=")))
    };
    let copy = request.headers().contains_key("x-amz-copy-source");
    let op = match (
        request.method().as_str(),
        has("uploads"),
        has("uploadId"),
        has("partNumber"),
    ) {
        ("POST", true, _, _) => "CreateMultipartUpload",
        ("GET", true, false, _) => "ListMultipartUploads",
        ("GET", _, false, _) if has("list-type") => "ListObjectsV2",
        ("PUT", _, false, _) if copy => "CopyObject",
        ("POST", _, true, _) => "CompleteMultipartUpload",
        ("PUT", _, true, true) => "UploadPart (client)",
        ("GET", _, true, _) => "ListParts",
        ("DELETE", _, true, _) => "AbortMultipartUpload",
        ("HEAD", _, _, _) => "HeadObject",
        ("DELETE", _, _, _) => "DeleteObject",
        ("PUT", _, _, _) => "PutObject",
        ("GET", _, _, _) => "GetObject",
        _ => "other",
    };
    format!("s3:{op}")
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    proxy.calls.lock().await.push(operation(&request));
    let (parts, body) = request.into_parts();
    let url = format!(
        "{}{}",
        proxy.target,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut outgoing = proxy.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        if name != "host" {
            outgoing = outgoing.header(name, value);
        }
    }
    let reply = outgoing.send().await.expect("emulator reachable");
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        response = response.header(name, value);
    }
    response
        .body(Body::from(reply.bytes().await.unwrap_or_default()))
        .unwrap()
}

fn event(method: &str, path: &str, query: &str, body: Option<&Value>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": { "content-type": "application/json", "host": "bench.example" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "domainPrefix": "bench", "requestId": "bench", "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "23/Nov/2026:14:00:00 +0000", "timeEpoch": 0,
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "authorizer": { "jwt": { "claims": { "sub": "bench-user-0001" }, "scopes": null } }
        },
        "isBase64Encoded": false,
        "body": body.map(Value::to_string),
    })
}

/// Status, body and reply size of one event through a function.
async fn call(service: &HttpService, event: &Value) -> anyhow::Result<(u16, Value, usize)> {
    let event = serde_json::from_value(event.clone())?;
    let response = assetbox_shared::http::invoke(service, event, "bench")
        .await
        .map_err(anyhow::Error::msg)?;
    let response = serde_json::to_value(response)?;
    let body = response["body"].as_str().unwrap_or_default().to_owned();
    Ok((
        response["statusCode"].as_u64().unwrap_or_default() as u16,
        serde_json::from_str(&body).unwrap_or(Value::Null),
        body.len(),
    ))
}

struct Measured {
    calls: Vec<String>,
    median_ms: f64,
    reply_bytes: usize,
}

fn report(name: &str, m: &Measured) {
    let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &m.calls {
        *counted.entry(c.as_str()).or_default() += 1;
    }
    let list: Vec<String> = counted.iter().map(|(k, v)| format!("{v}× {k}")).collect();
    println!(
        "uploads   {name}: {} AWS calls ({}), median {:.2} ms vs the emulator, reply {} bytes",
        m.calls.len(),
        list.join(", "),
        m.median_ms,
        m.reply_bytes
    );
}

pub async fn run(runs: usize) -> anyhow::Result<()> {
    // Signing on one core (this task runs on one thread at a time).
    let mut ours: Vec<f64> = (0..7).map(|_| sign_rate(20_000)).collect();
    let mut sdk = Vec::new();
    for _ in 0..7 {
        sdk.push(sdk_sign_rate(2_000).await);
    }
    let (ours, sdk) = (median(&mut ours), median(&mut sdk));
    println!(
        "uploads   part-URL signing, one core: median {:.0} URLs/s (aws-sdk-s3 presigner: {:.0} URLs/s, {:.1}× slower)",
        ours,
        sdk,
        ours / sdk
    );
    let mut per_100: Vec<f64> = (0..31)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(sign_rate(100));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    println!(
        "uploads   first batch of 100 URLs incl. key derivation: median {:.0} µs",
        median(&mut per_100)
    );

    // A 10,000-part upload is ~49 GiB (every part but the last >= 5 MiB):
    // above the 5 GiB default limit, so the bench raises it as the tests do.
    // Ingestion off: its calls would run beside the ones measured.
    let stack = LocalStack::start(Options {
        deliver_s3_events: false,
        parameters: vec![
            ("MaxUploadBytes".into(), (64u64 << 30).to_string()),
            ("UserQuotaBytes".into(), (1u64 << 50).to_string()),
        ],
        ..Options::default()
    })
    .await?;
    let (proxy, proxy_url) = Proxy::spawn(stack.emulator.endpoint.clone()).await?;
    let sdk = emulator_sdk_config(&proxy_url).await;
    let function = |binary: &str| -> anyhow::Result<HttpService> {
        let spec = stack
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .context("function in template")?;
        match assetbox_local::functions::build(spec, &sdk)? {
            LocalFunction::Http(service) => Ok(service),
            _ => anyhow::bail!("{binary} is not an HTTP function"),
        }
    };
    let (initiate, parts, complete, abort) = (
        function("upload-initiate")?,
        function("upload-parts")?,
        function("upload-complete")?,
        function("upload-abort")?,
    );

    let measure = |service: HttpService, make: Box<dyn Fn(usize) -> Value>| {
        let proxy = proxy.clone();
        async move {
            let mut times = Vec::new();
            let mut calls = Vec::new();
            let mut reply_bytes = 0;
            for i in 0..runs {
                proxy.calls.lock().await.clear();
                let started = Instant::now();
                let (status, body, bytes) = call(&service, &make(i)).await?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                anyhow::ensure!(status < 300, "status {status}: {body}");
                calls = proxy.calls.lock().await.clone();
                reply_bytes = bytes;
            }
            anyhow::Ok(Measured {
                calls,
                median_ms: median(&mut times),
                reply_bytes,
            })
        }
    };

    let initiate_body = |parts: u64| {
        let part_size = 5u64 << 20;
        json!({
            "file_name": "bench.mp4",
            "file_size": (parts - 1) * part_size + 1,
            "file_content_type": "video/mp4",
            "num_parts": parts,
            "part_size": part_size,
        })
    };
    let big = initiate_body(10_000);
    let small = initiate_body(1);
    report(
        "initiate 10,000 parts",
        &measure(
            initiate.clone(),
            Box::new(move |_| event("POST", "/v1/files/uploads", "", Some(&big))),
        )
        .await?,
    );

    // Uploads to sign, complete and abort, one per run.
    let mut ids = Vec::new();
    for _ in 0..runs * 2 {
        let (_, body, _) = call(
            &initiate,
            &event("POST", "/v1/files/uploads", "", Some(&small)),
        )
        .await?;
        let url = body["presigned_urls"][0]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let etag = reqwest::Client::new()
            .put(url)
            .header("content-type", "application/octet-stream")
            .body(vec![7u8])
            .send()
            .await?
            .headers()["etag"]
            .to_str()?
            .to_owned();
        ids.push((body["id"].as_str().unwrap().to_owned(), etag));
    }
    let to_sign = ids[0].0.clone();
    report(
        "sign 1 part, no grant (reads the record)",
        &measure(
            parts.clone(),
            Box::new(move |_| {
                event(
                    "GET",
                    &format!("/v1/files/uploads/{to_sign}/parts"),
                    "part_numbers=1",
                    None,
                )
            }),
        )
        .await?,
    );
    // The next batch as initiate's next_parts_url names it (with its grant).
    let (_, started, _) = call(
        &initiate,
        &event(
            "POST",
            "/v1/files/uploads",
            "",
            Some(&initiate_body(10_000)),
        ),
    )
    .await?;
    let next = started["next_parts_url"]
        .as_str()
        .context("next_parts_url")?
        .to_owned();
    let (path, query) = next.split_once('?').context("query")?;
    let (path, query) = (path.to_owned(), query.to_owned());
    report(
        "sign next 100 parts with the grant",
        &measure(
            parts.clone(),
            Box::new(move |_| event("GET", &path, &query, None)),
        )
        .await?,
    );
    let to_complete = ids[..runs].to_vec();
    report(
        "complete",
        &measure(
            complete.clone(),
            Box::new(move |i| {
                let (id, etag) = &to_complete[i];
                event(
                    "POST",
                    &format!("/v1/files/uploads/{id}/complete"),
                    "",
                    Some(&json!({ "parts": [{ "part_number": 1, "etag": etag }] })),
                )
            }),
        )
        .await?,
    );
    let to_abort = ids[runs..].to_vec();
    report(
        "abort",
        &measure(
            abort,
            Box::new(move |i| {
                event(
                    "DELETE",
                    &format!("/v1/files/uploads/{}", to_abort[i].0),
                    "",
                    None,
                )
            }),
        )
        .await?,
    );

    // Uppy 6's signRequest hook: a new multipart upload, then its first
    // part (which binds the browser-made S3 upload id) and a later part.
    let sign = function("upload-sign")?;
    let create = json!({ "method": "POST", "key": "bench.mp4" });
    report(
        "Uppy 6 sign: CreateMultipartUpload",
        &measure(
            sign.clone(),
            Box::new(move |_| event("POST", "/s3/sign", "", Some(&create))),
        )
        .await?,
    );
    let mut browser_uploads = Vec::new();
    for _ in 0..runs {
        let (_, signed, _) = call(
            &sign,
            &event(
                "POST",
                "/s3/sign",
                "",
                Some(&json!({ "method": "POST", "key": "bench.mp4" })),
            ),
        )
        .await?;
        // What the browser does with the URL: S3 answers the upload id.
        let mut request = reqwest::Client::new().post(signed["url"].as_str().context("url")?);
        for (name, value) in signed["headers"].as_object().context("headers")? {
            request = request.header(name.as_str(), value.as_str().unwrap_or_default());
        }
        let xml = request.send().await?.text().await?;
        let upload_id = xml
            .split_once("<UploadId>")
            .and_then(|(_, rest)| rest.split_once("</UploadId>"))
            .context("UploadId")?
            .0
            .to_owned();
        browser_uploads.push((signed["key"].as_str().context("key")?.to_owned(), upload_id));
    }
    let part = |uploads: Vec<(String, String)>, n: u32| -> Box<dyn Fn(usize) -> Value> {
        Box::new(move |i| {
            let (key, upload_id) = &uploads[i];
            event(
                "POST",
                "/s3/sign",
                "",
                Some(
                    &json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": n }),
                ),
            )
        })
    };
    report(
        "Uppy 6 sign: first UploadPart (binds the upload id)",
        &measure(sign.clone(), part(browser_uploads.clone(), 1)).await?,
    );
    report(
        "Uppy 6 sign: a later UploadPart",
        &measure(sign, part(browser_uploads, 2)).await?,
    );

    // A small upload through catalog-api (multipart/form-data, base64 as
    // API Gateway delivers binary bodies) into a box made for it.
    let catalog = function("catalog-api")?;
    let (_, project, _) = call(
        &catalog,
        &event(
            "POST",
            "/api/projects",
            "",
            Some(&json!({ "name": "Bench" })),
        ),
    )
    .await?;
    let (_, shot, _) = call(
        &catalog,
        &event(
            "POST",
            "/api/boxes",
            "",
            Some(&json!({ "project": project["id"], "name": "Shot" })),
        ),
    )
    .await?;
    let shot = shot["id"].as_str().context("box id")?.to_owned();
    let boundary = "benchboundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dot.png\"\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&small_png());
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut upload = event("POST", &format!("/api/boxes/{shot}/upload"), "", None);
    upload["headers"]["content-type"] = json!(format!("multipart/form-data; boundary={boundary}"));
    upload["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&form));
    upload["isBase64Encoded"] = json!(true);
    report(
        "small upload (catalog-api, 64x48 PNG)",
        &measure(catalog, Box::new(move |_| upload.clone())).await?,
    );

    // Ingesting each of those uploads, as their S3 event would (delivery is
    // off in this stack, so they are all still PROCESSING).
    let spec = stack
        .functions
        .iter()
        .find(|f| f.binary == "ingest-object")
        .context("ingest-object in the template")?;
    let ingestor = ingest_object::Ingestor::from_settings(&spec.environment, &sdk)?;
    let listed = assetbox_local::s3_client(&stack.sdk)
        .list_objects_v2()
        .bucket(&ingestor.env.policy.bucket)
        .prefix("uploads/bench-user-0001/")
        .send()
        .await?;
    let originals: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| k.ends_with("/original.png"))
        .map(str::to_owned)
        .collect();
    report(
        "ingest a 64x48 PNG small upload (keyed by its asset; thumbnail included)",
        &measure_ingest(&ingestor, &proxy, &originals[..runs.min(originals.len())]).await?,
    );

    // Direct uploads into the box (keyed by their file, whose record names
    // the asset): a 1920x1080 JPEG each, initiated, PUT and completed.
    let photo = photo_jpeg(1920, 1080);
    let mut file_keys = Vec::new();
    for _ in 0..runs {
        let request = json!({
            "file_name": "frame.jpg", "file_size": photo.len(), "file_content_type": "image/jpeg",
            "num_parts": 1, "part_size": photo.len(),
            "parent_content_type": "box", "parent_object_id": shot,
        });
        let (_, started, _) = call(
            &initiate,
            &event("POST", "/v1/files/uploads", "", Some(&request)),
        )
        .await?;
        let url = started["presigned_urls"][0]["url"]
            .as_str()
            .context("part URL")?;
        let etag = reqwest::Client::new()
            .put(url)
            .header("content-type", "application/octet-stream")
            .body(photo.clone())
            .send()
            .await?
            .headers()["etag"]
            .to_str()?
            .to_owned();
        let id = started["id"].as_str().context("file id")?;
        let (status, body, _) = call(
            &complete,
            &event(
                "POST",
                &format!("/v1/files/uploads/{id}/complete"),
                "",
                Some(&json!({ "parts": [{ "part_number": 1, "etag": etag }] })),
            ),
        )
        .await?;
        anyhow::ensure!(status == 200, "complete: {status} {body}");
        file_keys.push(format!("uploads/bench-user-0001/{id}/original.jpg"));
    }
    report(
        &format!(
            "ingest a 1920x1080 JPEG direct upload, {} KB (keyed by its file)",
            photo.len() / 1000
        ),
        &measure_ingest(&ingestor, &proxy, &file_keys).await?,
    );
    Ok(())
}

/// Ingests each key once, as its S3 event would; the AWS calls of the last.
async fn measure_ingest(
    ingestor: &ingest_object::Ingestor,
    proxy: &Proxy,
    keys: &[String],
) -> anyhow::Result<Measured> {
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for key in keys {
        proxy.calls.lock().await.clear();
        let started = Instant::now();
        let outcome = ingestor.ingest(key, None).await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(outcome == ingest_object::Outcome::Completed, "{outcome:?}");
        calls = proxy.calls.lock().await.clone();
    }
    Ok(Measured {
        calls,
        median_ms: median(&mut times),
        reply_bytes: 0,
    })
}

/// A photo-like JPEG (gradient and noise) of the given size.
fn photo_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state & 0x1f) as u32;
        image::Rgb([
            (x * 200 / width + noise) as u8,
            (y * 200 / height + noise) as u8,
            (noise * 4) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode JPEG");
    out.into_inner()
}

/// A real 64x48 PNG (decodes, so ingestion thumbnails it).
fn small_png() -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}
