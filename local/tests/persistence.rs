//! `--data-dir`: command 1 stopped (SIGTERM, as Ctrl-C or a process manager
//! would) and started again with the same folder keeps its users, tokens'
//! keys, projects, assets and objects. Runs the real binary, as a user does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Running {
    child: Child,
    api: String,
    console: String,
    /// Everything the command printed, for a failing assertion.
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts command 1 on free ports and waits for its banner.
fn start(data_dir: &Path, demo: bool) -> Running {
    start_with(data_dir, demo, &[])
}

/// The same, with extra environment, in a process group of its own (so a
/// test can kill it and the emulator at once, as a crash would).
fn start_with(data_dir: &Path, demo: bool, env: &[(&str, &str)]) -> Running {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_assetbox-local"));
    command.process_group(0).envs(env.iter().copied());
    command
        .args([
            "--port",
            "0",
            "--live-port",
            "0",
            "--console-port",
            "0",
            "--emulator-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if demo {
        command.arg("--demo");
    }
    let mut child = command.spawn().expect("start assetbox-local");
    let stdout = child.stdout.take().unwrap();
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (found, banner) = std::sync::mpsc::channel();
    let seen = output.clone();
    std::thread::spawn(move || {
        let (mut api, mut console) = (None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.lock().unwrap().push_str(&format!("{line}\n"));
            let url = || {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(|u| u.trim_end_matches('/').to_owned())
            };
            if line.trim_start().starts_with("HTTP API") {
                api = url();
            } else if line.trim_start().starts_with("Web console") {
                console = url();
            }
            if let (Some(a), Some(c)) = (&api, &console) {
                let _ = found.send((a.clone(), c.clone()));
            }
        }
    });
    let (api, console) = banner
        .recv_timeout(Duration::from_secs(300))
        .unwrap_or_else(|_| panic!("no banner; output:\n{}", output.lock().unwrap()));
    Running {
        child,
        api,
        console,
        output,
    }
}

/// Stops it as Ctrl-C would, and checks it stopped cleanly (state saved).
fn stop(mut running: Running) {
    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop within 120 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = running.output.lock().unwrap().clone();
    assert!(status.success(), "stopped with {status}; output:\n{output}");
}

async fn login(http: &reqwest::Client, api: &str, email: &str, password: &str) -> Value {
    let reply = http
        .post(format!("{api}/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "login of {email}");
    reply.json().await.unwrap()
}

/// A new user (password "correct horse") with one project: their login.
async fn user_with_project(http: &reqwest::Client, api: &str, email: &str, project: &str) -> Value {
    let registered = http
        .post(format!("{api}/api/auth/register"))
        .json(&json!({"email": email, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let tokens = login(http, api, email, "correct horse").await;
    let made = http
        .post(format!("{api}/api/projects/"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .json(&json!({"name": project}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    tokens
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let reply = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// Each asset of a project: id, status, and the digest of its object's bytes.
async fn assets_with_digests(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    project: &str,
) -> Vec<(String, String, String)> {
    let (status, list) = get(http, &format!("{api}/api/assets/?project={project}"), token).await;
    assert_eq!(status, 200, "{list}");
    let mut out = Vec::new();
    for asset in list["results"].as_array().unwrap() {
        let url = asset["file_url"].as_str().expect("a file url");
        let bytes = http.get(url).send().await.unwrap();
        assert_eq!(bytes.status(), 200, "object of {}", asset["id"]);
        let digest = hex(&Sha256::digest(bytes.bytes().await.unwrap()));
        out.push((
            asset["id"].as_str().unwrap().to_owned(),
            asset["status"].as_str().unwrap().to_owned(),
            digest,
        ));
    }
    out.sort();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_until_settled(http: &reqwest::Client, api: &str, token: &str, project: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, list) = get(http, &format!("{api}/api/assets/?project={project}"), token).await;
        let statuses: Vec<_> = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap_or("").to_owned())
            .collect();
        if !statuses.is_empty() && statuses.iter().all(|s| s == "COMPLETED") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "assets never settled: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_the_same_data_dir_keeps_users_tokens_data_and_objects() {
    let data_dir = std::env::temp_dir().join(format!("assetbox-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let http = reqwest::Client::new();

    let first = start(&data_dir, true);
    let api = first.api.clone();
    // A second user, made by hand, beside the demo's.
    let grace = user_with_project(&http, &api, "grace@example.com", "Kept").await;
    let grace_token = grace["access_token"].as_str().unwrap().to_owned();
    let demo = login(&http, &api, "demo@example.com", "assetbox-demo").await;
    let demo_token = demo["access_token"].as_str().unwrap().to_owned();
    let (_, projects) = get(&http, &format!("{api}/api/projects/"), &demo_token).await;
    let project = projects["results"][0]["id"]
        .as_str()
        .expect("the demo project")
        .to_owned();
    wait_until_settled(&http, &api, &demo_token, &project).await;
    let before = assets_with_digests(&http, &api, &demo_token, &project).await;
    assert!(
        before.len() >= 5,
        "the demo's uploads and generations: {before:?}"
    );
    let (_, grace_before) = get(&http, &format!("{api}/api/projects/"), &grace_token).await;
    stop(first);
    let kept = std::fs::metadata(data_dir.join("emulator.pickle")).expect("emulator.pickle");
    // It holds password hashes and tokens.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(kept.permissions().mode() & 0o777, 0o600);

    let second = start(&data_dir, true);
    let api = second.api.clone();
    // The tokens issued before the restart still work (same pool, same keys).
    let (status, grace_after) = get(&http, &format!("{api}/api/projects/"), &grace_token).await;
    assert_eq!(status, 200, "an old token after the restart: {grace_after}");
    assert_eq!(grace_after["results"], grace_before["results"]);
    // The same users log in; the refresh token from before still refreshes.
    login(&http, &api, "grace@example.com", "correct horse").await;
    let refreshed = http
        .post(format!("{api}/api/auth/refresh"))
        .json(&json!({"refresh_token": grace["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refreshed.status(),
        200,
        "{}",
        refreshed.text().await.unwrap()
    );
    // The demo was not seeded twice; its assets and their bytes are there.
    let (_, projects) = get(&http, &format!("{api}/api/projects/"), &demo_token).await;
    assert_eq!(
        projects["results"].as_array().unwrap().len(),
        1,
        "{projects}"
    );
    let after = assets_with_digests(&http, &api, &demo_token, &project).await;
    assert_eq!(after, before);
    assert!(
        second
            .output
            .lock()
            .unwrap()
            .contains("kept from an earlier start")
    );
    // And it goes on working: a generation runs end to end (the stand-in,
    // on a new port, was re-registered under the same model ids).
    let (_, boxes) = get(
        &http,
        &format!("{api}/api/boxes/?project={project}"),
        &demo_token,
    )
    .await;
    let (_, models) = get(&http, &format!("{api}/api/ai/models/"), &demo_token).await;
    let model = models["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "image")
        .unwrap();
    let generated = http
        .post(format!(
            "{api}/api/boxes/{}/generate/",
            boxes["results"][0]["id"].as_str().unwrap()
        ))
        .bearer_auth(&demo_token)
        .json(&json!({"ai_model": model["id"], "prompt_text": "after the restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(generated.status(), 202);
    wait_until_settled(&http, &api, &demo_token, &project).await;
    // The console is served by the restarted stack too.
    let page = http
        .get(format!("{}/config.json", second.console))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    stop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loses_only_what_came_after_the_last_autosave() {
    let data_dir = std::env::temp_dir().join(format!("assetbox-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let http = reqwest::Client::new();
    let state = data_dir.join("emulator.pickle");

    let first = start_with(&data_dir, false, &[("ASSETBOX_AUTOSAVE_SECONDS", "1")]);
    let api = first.api.clone();
    let token =
        user_with_project(&http, &api, "linus@example.com", "Autosaved").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let written = std::time::SystemTime::now();
    // The autosave after the write: the file is replaced after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&state)
        .and_then(|m| m.modified())
        .map_or(true, |saved| saved < written)
    {
        assert!(Instant::now() < deadline, "no autosave within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A save that finished after the write may have pickled just before
    // it; the write then left the state dirty for the next round (1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // kill -9 of the stack and the emulator together: nothing saves now.
    let group = format!("-{}", first.child.id());
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    drop(first);

    let second = start(&data_dir, false);
    let (status, projects) = get(&http, &format!("{}/api/projects/", second.api), &token).await;
    assert_eq!(status, 200, "{projects}");
    assert_eq!(projects["results"][0]["name"], "Autosaved");
    stop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}
