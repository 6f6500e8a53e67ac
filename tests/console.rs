//! The web console and the public share page (`console/`) in a real
//! browser: `tests/clients/console/journey.mjs` drives Debian's headless
//! Chromium through the pages the local stack serves — register, a project
//! of three boxes reordered by drag and by keyboard, an image and a 12 MiB
//! MP4 uploaded with progress and seen `COMPLETED` without a reload, a
//! favourite and a headliner, a generation, a share link opened by a
//! stranger who comments, the comment read in the console, the .docx
//! export, the revoked link's "not found" page, and an upload resumed after
//! a reload — by role and accessible name. This test then checks what the
//! API holds.
//!
//! Screenshots of every step are kept in `target/console-artifacts/`
//! (printed at the end, and on failure with the browser's log). Chromium
//! and playwright-core are installed on first run, as for tests/browser.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use assetbox_e2e::tools::{chromium, npm_ci};
use assetbox_e2e::{Client, media, stack_delivering_s3_events, test_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// A real MP4 (the stand-in's H.264 track) of at least `size` bytes: a
/// top-level `free` box after `moov` pads it. Ingestion reads box headers
/// up to `moov`, so it describes the video without reading the padding.
fn mp4_of_size(size: usize, seed: u64) -> Vec<u8> {
    let mut bytes = media::mp4(50, seed as u8);
    let pad = size.saturating_sub(bytes.len()).max(8);
    bytes.extend_from_slice(&(pad as u32).to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend(test_bytes(pad - 8, seed));
    bytes
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-artifacts")
}

/// What the driver reported: its result, the browser's log and the step it
/// reached (`done` when it went all the way).
struct Journey {
    result: Value,
    log: String,
    step: String,
    artifacts: PathBuf,
}

impl Journey {
    /// Panics with everything needed to see why: the check, the step,
    /// the result, the browser's log and where the screenshots are.
    #[track_caller]
    fn check(&self, ok: bool, what: &str) {
        assert!(
            ok,
            "{what}\nreached step: {}\nresult: {:#}\nbrowser log:\n{}\nscreenshots: {}",
            self.step,
            self.result,
            self.log,
            self.artifacts.display()
        );
    }

    /// Each `(ok, what)`; the first that fails panics as `check` does.
    #[track_caller]
    fn check_all(&self, checks: &[(bool, &str)]) {
        for &(ok, what) in checks {
            self.check(ok, what);
        }
    }

    fn str(&self, key: &str) -> &str {
        self.result[key].as_str().unwrap_or_default()
    }

    fn names(&self, key: &str) -> Vec<&str> {
        self.result[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }
}

/// Runs the journey; the driver bounds its own time (4 minutes) and then
/// reports the step it reached.
fn drive(job: &Value, artifacts: &Path) -> Journey {
    let out = Command::new("node")
        .arg(clients_dir().join("console").join("journey.mjs"))
        .current_dir(clients_dir().join("console"))
        .env("ASSETBOX_CONSOLE_JOB", job.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("node (Node.js) to run the console journey");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the console driver printed no report ({}): {}\nscreenshots: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            artifacts.display()
        )
    });
    Journey {
        result: printed["result"].clone(),
        log: printed["log"].as_str().unwrap_or_default().to_owned(),
        step: printed["step"].as_str().unwrap_or_default().to_owned(),
        artifacts: artifacts.to_owned(),
    }
}

/// The `results` of a list route.
async fn results(api: &Client, path: &str, token: Option<&str>) -> Vec<Value> {
    let reply = api.get(path, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
    reply.body["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_user_runs_a_project_in_the_web_console_and_a_client_comments_on_its_share_page() {
    let started = Instant::now();
    let stack = stack_delivering_s3_events();
    let api = Client::new();
    let console = stack.console.clone();
    let chromium = chromium();
    npm_ci(&clients_dir().join("browser"));

    let artifacts = artifacts_dir();
    std::fs::remove_dir_all(&artifacts).ok();
    std::fs::create_dir_all(&artifacts).unwrap();
    let files = std::env::temp_dir().join(format!("assetbox-console-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    let image = files.join("frame 01.png");
    let video = files.join("clip.mp4");
    let resume_video = files.join("take 2.mp4");
    std::fs::write(&image, media::png(640, 360, 9)).unwrap();
    let video_bytes = mp4_of_size(12 * MIB + 4321, 1);
    std::fs::write(&video, &video_bytes).unwrap();
    std::fs::write(&resume_video, mp4_of_size(12 * MIB + 999, 2)).unwrap();

    let email = format!(
        "console-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let job = json!({
        "chromium": chromium,
        "console": console,
        "artifacts": artifacts,
        "email": email,
        "password": "correct horse battery",
        "project": "Teaser",
        "image": image,
        "video": video,
        "resumeVideo": resume_video,
        "imageModel": stack.image_model,
        "videoModel": stack.video_model,
        "videoPrompt": "the light fades over the valley",
        "failPrompt": "a storm at sea [fail:out of credits]",
        "prompt": "a red fox in snow",
        "commentAuthor": "Dana",
        "commentText": "Love the light in this one.",
    });
    let j = tokio::task::spawn_blocking({
        let artifacts = artifacts.clone();
        move || drive(&job, &artifacts)
    })
    .await
    .unwrap();
    j.check(j.step == "done", "the journey did not finish");

    // What the page showed.
    let phone_fits = |key: &str| j.result[key].as_i64().is_some_and(|px| px <= 0);
    j.check_all(&[
        // Boxes: the drag put Shot 3 first, Alt+↑ moved Shot 2 above Shot 1.
        (
            j.names("afterDrag") == ["Shot 3", "Shot 1", "Shot 2"],
            "drag and drop moved Shot 3 to the top",
        ),
        (
            j.names("afterKeyboard") == ["Shot 3", "Shot 2", "Shot 1"],
            "Alt+ArrowUp moved Shot 2 up",
        ),
        (
            j.str("focusAfterMove").ends_with("Shot 2"),
            "focus stays on the moved box",
        ),
        (
            j.result["projectKeptAfterEscape"] == true,
            "Escape closes the confirmation, nothing deleted",
        ),
        // Uploads: a progress bar per file; completed without a reload (live),
        // the image with its thumbnail, the video playable.
        (
            j.result["progressMax"] == video_bytes.len(),
            "the video's progress bar counts its bytes",
        ),
        (
            j.result["progressDone"] == true,
            "the progress bar ends full",
        ),
        (j.result["reloaded"] == false, "no reload before COMPLETED"),
        (
            j.str("liveMode") == "Live",
            "the console follows the project over the WebSocket",
        ),
        (
            j.str("thumbnailSrc").ends_with("/thumbnail.jpg"),
            "the image card shows the thumbnail",
        ),
        (
            j.str("imageFacts").contains("640×360"),
            "the image card shows its pixels",
        ),
        (
            j.str("videoSrc").ends_with("/original.mp4") && j.result["videoControls"] == true,
            "the video plays in a <video controls>",
        ),
        (
            j.str("videoFacts").starts_with("Video"),
            "the video card says what it is",
        ),
        // Sharing: the link copied, the share page in order, the comment
        // shown unread, a revoked link's page the same as an unknown one's.
        (
            j.str("shareUrl").starts_with(&format!("{console}/shared/")),
            "the share link opens the console's share page",
        ),
        (
            j.str("clipboard") == j.str("shareUrl"),
            "Copy link copies it",
        ),
        (
            j.names("sharedShots") == ["1. Shot 3", "2. Shot 2", "3. Shot 1"],
            "the share page shows the boxes in order",
        ),
        (
            j.result["commentUnread"] == true,
            "the console showed the comment unread",
        ),
        (
            j.str("revokedPage") == j.str("unknownPage"),
            "a revoked link's page is an unknown token's",
        ),
        (
            !j.str("revokedPage").contains("Teaser"),
            "nothing of the owner's on it",
        ),
        (
            j.str("exportName").ends_with(".docx"),
            "the export is a .docx",
        ),
        (
            j.str("refusedReason")
                .contains("file content type must be one of"),
            "a refused file shows the API's reason",
        ),
        // Resume: after the reload only the part S3 did not hold was sent.
        (
            j.str("unfinishedShown").contains("2 of 3 parts stored"),
            "the unfinished upload is listed after the reload",
        ),
        (
            j.result["partsSentOnResume"] == json!([2]),
            "the resumed upload sent only part 2",
        ),
        (
            j.str("resumeMessage").starts_with("Resumed"),
            "the console says it resumed",
        ),
        // Tokens: a 401 refreshes once and retries; a token about to expire
        // is refreshed ahead of time.
        (
            j.result["refreshedOn401"] == 1,
            "one refresh after the API refused the token",
        ),
        (
            j.result["refreshedBeforeExpiry"].as_u64() >= Some(1),
            "a refresh before the token expired",
        ),
        (
            j.result["stillSignedIn"] == true,
            "still signed in after the refreshes",
        ),
        (
            phone_fits("phoneOverflow") && phone_fits("sharePhoneOverflow"),
            "nothing is wider than a phone",
        ),
    ]);

    // What the API holds.
    let token = j.result["session"]["accessToken"].as_str();
    let project = j.str("projectId");
    let boxes = results(&api, &format!("/api/projects/{project}/boxes/"), token).await;
    let names: Vec<&str> = boxes.iter().filter_map(|b| b["name"].as_str()).collect();
    let shot1 = boxes
        .iter()
        .find(|b| b["name"] == "Shot 1")
        .expect("Shot 1");
    let shot1_id = shot1["id"].as_str().unwrap();
    let assets = results(&api, &format!("/api/assets/?box={shot1_id}"), token).await;
    let find = |what: &str, test: &dyn Fn(&Value) -> bool| {
        let found = assets.iter().find(|a| test(a)).cloned();
        j.check(found.is_some(), &format!("{what} in Shot 1: {assets:#?}"));
        found.unwrap_or_default()
    };
    let image = find("the uploaded image", &|a| {
        a["asset_type"] == "IMAGE" && a["source_type"] == "UPLOADED"
    });
    let video = find("the uploaded video", &|a| {
        a["asset_type"] == "VIDEO" && a["source_type"] == "UPLOADED"
    });
    let generated = find("the generated image", &|a| a["source_type"] == "GENERATED");
    let clip = find("the image-to-video clip", &|a| {
        a["source_type"] == "IMG2VID"
    });
    let comments = results(&api, &format!("/api/boxes/{shot1_id}/comments/"), token).await;
    let share_token = j
        .str("shareUrl")
        .split_once("/shared/")
        .map_or("", |(_, t)| t);
    let revoked = api.get(&format!("/api/shared/{share_token}/"), None).await;
    let docx = std::fs::read(j.str("exportPath")).unwrap_or_default();
    j.check_all(&[
        (
            names == ["Shot 3", "Shot 2", "Shot 1"],
            "the API holds the order",
        ),
        (
            [&image, &video, &generated, &clip]
                .iter()
                .all(|a| a["status"] == "COMPLETED"),
            "all four completed",
        ),
        (
            j.result["failedText"]
                .as_str()
                .is_some_and(|t| t.contains("out of credits")),
            "a failed generation shows the provider's reason",
        ),
        (
            j.result["videosOnly"] == json!(["clip.mp4", "the light fades over the valley"])
                && j.result["failedOnly"] == json!(["a storm at sea [fail:out of credits]"])
                && j.result["searchFox"] == json!(["a red fox in snow"]),
            "the type and status filters and the search show what they should",
        ),
        (
            assets.len() == 4 && assets.iter().all(|a| a["status"] != "FAILED"),
            "the deleted asset is gone from the API",
        ),
        (
            clip["parent_asset"] == image["id"]
                && clip["prompt_text"] == "the light fades over the valley",
            "the clip was made from the picked image with the form's prompt",
        ),
        (
            video["size"] == video_bytes.len(),
            "the whole video arrived",
        ),
        (image["is_favorite"] == true, "the image is a favourite"),
        (
            shot1["headliner_asset"] == image["id"],
            "the image is the headliner",
        ),
        (
            generated["width"] == 320 && generated["prompt_text"] == "a red fox in snow",
            "generated with the form's prompt and params",
        ),
        (
            comments.len() == 1 && comments[0]["author_name"] == "Dana",
            "the comment arrived",
        ),
        (
            comments.first().is_some_and(|c| {
                c["text"] == "Love the light in this one." && c["is_read"] == true
            }),
            "the comment is marked read",
        ),
        (
            revoked.status == StatusCode::NOT_FOUND,
            "the link is revoked",
        ),
        (
            docx.starts_with(b"PK"),
            "the downloaded export is a zip (.docx)",
        ),
    ]);

    std::fs::remove_dir_all(&files).ok();
    eprintln!(
        "console journey: {} steps in {:.1} s; screenshots in {}",
        j.result["steps"].as_array().map_or(0, Vec::len),
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
}
