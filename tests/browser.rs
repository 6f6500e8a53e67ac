//! Browser tests: the stock Uppy clients from npm, bundled unmodified — 6.x
//! with its `signRequest` hook, 5.x with `endpoint` + `headers` — upload
//! from a page served on another origin than the API and the bucket, in
//! Debian's headless Chromium; then each file is read back through the API
//! as `completed` with identical bytes.
//!
//! What they need is installed on first run: Debian's `chromium` package
//! (apt-get; `$CHROMIUM` names another binary), and the pinned npm packages
//! of `tests/clients/{browser,uppy5,uppy6}` (`npm ci`). A failure prints the
//! browser's console and every failed request.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use assetbox_e2e::tools::{chromium, npm_ci, run};
use assetbox_e2e::{Client, Stack, media, stack_with, test_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

struct Browser {
    /// Where the test pages are served: an origin the stack allows.
    page_origin: String,
    /// The same server under another name: an origin the stack does not allow.
    other_origin: String,
    chromium: PathBuf,
    driver: PathBuf,
    files: PathBuf,
    stack: &'static Stack,
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Bundles a client's `setup.js` with its stock packages into one script
/// that sets `window.assetboxUppy`.
fn bundle(esbuild: &Path, client: &str, out: &Path) {
    npm_ci(&clients_dir().join(client));
    run(Command::new(esbuild)
        .arg(clients_dir().join(client).join("setup.js"))
        .args([
            "--bundle",
            "--format=iife",
            "--global-name=assetboxUppy",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", out.display())));
}

/// Serves the test pages: `/<client>/page.html`, its `harness.js` and its
/// bundle `uppy.js`, and the test's files under `/files/`.
async fn serve_pages(listener: tokio::net::TcpListener, bundles: PathBuf, files: PathBuf) {
    let browser_dir = clients_dir().join("browser");
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (bundles, files, browser_dir) = (bundles.clone(), files.clone(), browser_dir.clone());
        async move {
            let path = uri.path().trim_start_matches('/');
            let (file, content_type) = match path.split_once('/') {
                Some(("files", name)) => (files.join(name), "application/octet-stream"),
                Some((client, "page.html")) if !client.contains('.') => {
                    (browser_dir.join("page.html"), "text/html; charset=utf-8")
                }
                Some((_, "harness.js")) => (browser_dir.join("harness.js"), "text/javascript"),
                Some((client, "uppy.js")) if !client.contains('.') => {
                    (bundles.join(format!("{client}.js")), "text/javascript")
                }
                _ => return Err(axum::http::StatusCode::NOT_FOUND),
            };
            let bytes = std::fs::read(file).map_err(|_| axum::http::StatusCode::NOT_FOUND)?;
            Ok(([(axum::http::header::CONTENT_TYPE, content_type)], bytes))
        }
    });
    axum::serve(listener, app).await.expect("page server");
}

fn browser() -> &'static Browser {
    static BROWSER: OnceLock<Browser> = OnceLock::new();
    BROWSER.get_or_init(|| {
        let chromium = chromium();
        let bin = npm_ci(&clients_dir().join("browser"));
        let work = std::env::temp_dir().join(format!("assetbox-browser-{}", std::process::id()));
        let (bundles, files) = (work.join("bundles"), work.join("files"));
        std::fs::create_dir_all(&bundles).unwrap();
        std::fs::create_dir_all(&files).unwrap();
        for client in ["uppy5", "uppy6"] {
            bundle(
                &bin.join("esbuild"),
                client,
                &bundles.join(format!("{client}.js")),
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let served = (bundles, files.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                serve_pages(listener, served.0, served.1).await;
            });
        });
        let page_origin = format!("http://127.0.0.1:{port}");
        let stack = stack_with(
            vec![("CorsAllowedOrigins".into(), page_origin.clone())],
            true,
        );
        Browser {
            other_origin: format!("http://localhost:{port}"),
            page_origin,
            chromium,
            driver: clients_dir().join("browser").join("drive.mjs"),
            files,
            stack,
        }
    })
}

/// What one run of the page reported, and the browser's log.
struct PageRun {
    result: Value,
    log: Vec<String>,
}

impl PageRun {
    fn log(&self) -> String {
        self.log.join("\n")
    }
}

/// Opens `page` in Chromium and calls the page's `call(arg)`. One browser at
/// a time: two cores, and the logs stay readable.
fn in_browser(page: &str, call: &str, arg: Value) -> PageRun {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b = browser();
    let job = json!({ "chromium": b.chromium, "page": page, "call": call, "arg": arg });
    let mut child = Command::new("node")
        .arg(&b.driver)
        .current_dir(clients_dir().join("browser"))
        .env("ASSETBOX_BROWSER_JOB", job.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js) to run the browser driver");
    let started = Instant::now();
    while child.try_wait().expect("driver").is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            child.kill().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("driver output");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the browser driver printed no report ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    PageRun {
        result: printed["result"].clone(),
        log: printed["log"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    }
}

/// A file the page uploads.
struct TestFile {
    name: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
}

/// The object key an upload ended at: Uppy reports it, or its location
/// (`…/<bucket>/uploads/<owner>/<id>/original.<ext>`) names it.
fn uploaded_key(upload: &Value) -> String {
    if let Some(key) = upload["key"].as_str() {
        return key.to_owned();
    }
    let location = upload["location"].as_str().expect("key or location");
    let path = location.split('?').next().unwrap_or_default();
    let at = path
        .find("/uploads/")
        .expect("an uploads/ key in the location");
    percent_encoding::percent_decode_str(&path[at + 1..])
        .decode_utf8_lossy()
        .into_owned()
}

/// Uploads `files` with one Uppy major from the allowed origin; then each
/// file must become `completed` through the API with identical bytes. The
/// S3 objects' ETags, for the caller to check how they were uploaded.
async fn upload_in_browser(client: &str, files: Vec<TestFile>) -> Vec<String> {
    let b = browser();
    let api = Client::new();
    let user = api.new_user().await;
    let mut specs = Vec::new();
    for file in &files {
        // The page's copy: a plain name (the upload's name is Uppy's).
        let stored = ulid::Ulid::new().to_string();
        std::fs::write(b.files.join(&stored), &file.bytes).unwrap();
        specs.push(json!({
            "path": format!("/files/{stored}"),
            "name": file.name,
            "type": file.content_type,
        }));
    }
    let run = in_browser(
        &format!("{}/{client}/page.html", b.page_origin),
        "uploadWithUppy",
        json!({
            "api": b.stack.api,
            "token": user.access_token,
            "multipartAbove": 5 * MIB,
            "files": specs,
        }),
    );
    let uploaded = run.result["successful"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        uploaded.len() == files.len() && run.result["failed"].as_array().is_some_and(Vec::is_empty),
        "{client}: Uppy did not upload every file: {:#}\nbrowser log:\n{}",
        run.result,
        run.log()
    );
    let mut etags = Vec::new();
    for file in &files {
        let upload = uploaded
            .iter()
            .find(|u| u["name"] == file.name)
            .unwrap_or_else(|| panic!("{client}: no upload named {}: {:#}", file.name, run.result));
        let key = uploaded_key(upload);
        let (owner, id) = assetbox_shared::uploads::parse_object_key(&key)
            .unwrap_or_else(|| panic!("{client}: {key} is not a key of ours"));
        assert_eq!(owner, user.id, "{client}: stored under another owner");
        let record = completed_file(&api, &user.access_token, id, &run).await;
        assert_eq!(record["file_name"], file.name, "{client}");
        assert_eq!(record["file_size"], file.bytes.len() as u64, "{client}");
        assert_eq!(record["file_content_type"], file.content_type, "{client}");
        let url = record["url"].as_str().expect("a completed file has a url");
        let stored = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        assert!(
            stored.len() == file.bytes.len()
                && Sha256::digest(&stored) == Sha256::digest(&file.bytes),
            "{client}: {} came back with other bytes ({} of {})",
            file.name,
            stored.len(),
            file.bytes.len()
        );
        let head = b
            .stack
            .s3()
            .await
            .head_object()
            .bucket(b.stack.bucket())
            .key(&key)
            .send()
            .await
            .expect("the object");
        etags.push(head.e_tag().unwrap_or_default().to_owned());
    }
    etags
}

/// The file once ingestion (or completion) finished it; a file that ends
/// otherwise, or never, fails with the browser's log.
async fn completed_file(api: &Client, token: &str, id: &str, run: &PageRun) -> Value {
    let started = Instant::now();
    loop {
        let reply = api.get(&format!("/v1/files/{id}"), Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        match reply.body["upload_status"].as_str() {
            Some("completed") => return reply.body,
            Some("uploading" | "pending") if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!(
                "file {id} is {other:?}, not completed: {:#}\nbrowser log:\n{}",
                reply.body,
                run.log()
            ),
        }
    }
}

fn files(seed: u64) -> Vec<TestFile> {
    vec![
        // 12 MiB and a bit: three parts of 5 MiB at most.
        TestFile {
            name: "Szène 1 – take 2.webm",
            content_type: "video/webm",
            bytes: media::webm(640, 360, Some(2500), 12 * MIB + (seed as usize % 997)),
        },
        TestFile {
            name: "frame 01.png",
            content_type: "image/png",
            bytes: media::png(64, 48, seed as u8),
        },
    ]
}

#[tokio::test]
async fn uppy6_uploads_multipart_and_single_put_through_sign_request() {
    let etags = upload_in_browser("uppy6", files(6)).await;
    // S3 gives a multipart object a composite ETag ("…-<parts>").
    assert!(etags[0].trim_matches('"').ends_with("-3"), "{etags:?}");
    assert!(!etags[1].contains('-'), "{etags:?}");
}

#[tokio::test]
async fn uppy5_uploads_multipart_and_single_put_through_companion_routes() {
    let etags = upload_in_browser("uppy5", files(5)).await;
    assert!(etags[0].trim_matches('"').ends_with("-3"), "{etags:?}");
    assert!(!etags[1].contains('-'), "{etags:?}");
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_cors_grant() {
    let b = browser();
    let user = Client::new().new_user().await;
    // A connection each: the gateway answers the oversized body's 413 before
    // reading it all and closes that connection, which a pooled client could
    // pick again for the next request.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let grant = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for origin in [&b.page_origin, &b.other_origin] {
        let allowed = origin == &b.page_origin;
        // The preflight is the gateway's, whatever the route: one that
        // exists, a protected one (no token on a preflight), and none.
        for path in ["/s3/multipart", "/api/projects/", "/no/such/route"] {
            let preflight = http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", b.stack.api))
                .header("origin", origin.as_str())
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .unwrap();
            assert_eq!(
                preflight.status(),
                StatusCode::NO_CONTENT,
                "{origin} {path}"
            );
            assert_eq!(
                grant(&preflight),
                allowed.then(|| origin.clone()),
                "{origin} {path}"
            );
            if allowed {
                let headers = preflight.headers();
                let allows = |name: &str, what: &str| {
                    headers[name]
                        .to_str()
                        .unwrap()
                        .split(',')
                        .any(|v| v.trim() == what)
                };
                assert!(allows("access-control-allow-headers", "authorization"));
                assert!(allows("access-control-allow-headers", "content-type"));
                assert!(allows("access-control-allow-methods", "PATCH"));
                assert!(headers.contains_key("access-control-max-age"));
            } else {
                assert!(
                    preflight
                        .headers()
                        .keys()
                        .all(|k| !k.as_str().starts_with("access-control-"))
                );
            }
        }
        // The function's answers and the gateway's own 401, 404 and 413.
        let big = test_bytes(11 * MIB, 1);
        for (method, path, token, body) in [
            (
                "GET",
                "/api/projects/",
                Some(user.access_token.as_str()),
                None,
            ),
            ("GET", "/api/projects/", None, None),
            ("GET", "/no/such/route", None, None),
            ("POST", "/api/auth/login", None, Some(big.clone())),
        ] {
            let mut request = http
                .request(method.parse().unwrap(), format!("{}{path}", b.stack.api))
                .header("origin", origin.as_str());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            assert_eq!(
                grant(&response),
                allowed.then(|| origin.clone()),
                "{origin} {method} {path} → {status}"
            );
            if allowed {
                let exposed = response.headers()["access-control-expose-headers"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(exposed.contains("retry-after"), "{exposed}");
            }
        }
    }
    // And a real browser on each origin: only the allowed one may read.
    let call = json!({ "api": b.stack.api, "token": user.access_token, "path": "/api/projects/" });
    let allowed = in_browser(
        &format!("{}/uppy6/page.html", b.page_origin),
        "callApi",
        call.clone(),
    );
    assert_eq!(
        allowed.result,
        json!({"ok": true, "status": 200}),
        "{}",
        allowed.log()
    );
    let refused = in_browser(
        &format!("{}/uppy6/page.html", b.other_origin),
        "callApi",
        call,
    );
    assert_eq!(refused.result["ok"], false, "{}", refused.log());
    assert!(
        refused
            .log
            .iter()
            .any(|l| l.contains("CORS") || l.contains("Access-Control-Allow-Origin")),
        "the browser should say why: {}",
        refused.log()
    );
}

/// The README's live-status lines, as written (the first `js` block of its
/// "Live status" section).
fn readme_live_snippet() -> String {
    let readme = std::fs::read_to_string(clients_dir().join("../../README.md")).unwrap();
    let section = &readme[readme
        .find("## Live status")
        .expect("a Live status section")..];
    let start = section.find("```js\n").expect("a js block") + "```js\n".len();
    section[start..][..section[start..].find("```").unwrap()].to_owned()
}

#[tokio::test]
async fn the_readme_s_live_status_lines_print_an_upload_s_states_in_chromium() {
    let b = browser();
    let api = Client::new();
    let user = api.new_user().await;
    let (project, box_id) = api.project_and_box(&user).await;
    let page = format!("{}/live/page.html", b.page_origin);
    let arg = json!({
        "source": readme_live_snippet(), "liveUrl": b.stack.live,
        "token": user.access_token, "project": project,
        "until": "asset_changed .* COMPLETED", "waitMs": 60_000,
    });
    let browser_run = tokio::task::spawn_blocking(move || in_browser(&page, "runLiveSnippet", arg));
    // Upload once the page follows the project.
    let store = b.stack.store().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut followed = false;
    for _ in 0..600 {
        if !store.subscribers(&project, now).await.unwrap().is_empty() {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(followed, "the page never subscribed");
    let asset = api
        .small_upload(&user, &box_id, "frame.png", &media::png(48, 32, 9))
        .await;
    let id = asset["id"].as_str().unwrap();
    let run = browser_run.await.unwrap();
    let printed: Vec<&str> = run
        .result
        .as_array()
        .unwrap_or_else(|| panic!("no result; the browser's log:\n{}", run.log()))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        printed.iter().any(|l| l.contains("\"subscribed\"")),
        "{printed:?}\n{}",
        run.log()
    );
    let created = format!("asset_created {id} PROCESSING");
    let completed = format!("asset_changed {id} COMPLETED");
    let at = |wanted: &str| printed.iter().position(|l| l.starts_with(wanted));
    assert!(
        at(&created).is_some_and(|c| at(&completed).is_some_and(|d| c < d)),
        "{printed:?}\n{}",
        run.log()
    );
}
