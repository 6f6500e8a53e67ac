//! The `assetbox` binary end to end: run as a user would, against this
//! binary's local stack (`assetbox_e2e::stack()`), each test with its own
//! user and its own config folder. What the CLI did is checked through the
//! API (and the bytes read back through its download URLs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assetbox_e2e::{Client, User, stack, test_bytes};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const MIB: usize = 1 << 20;

/// A user's machine: a config folder and a working folder.
struct Machine {
    root: PathBuf,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Machine {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("assetbox-cli-e2e-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(root.join("work")).unwrap();
        Self { root }
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn config(&self) -> PathBuf {
        self.root.join("config").join("assetbox")
    }

    fn uploads(&self) -> PathBuf {
        self.config().join("uploads")
    }

    /// The resume states left in the uploads folder.
    fn states(&self) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(self.uploads()) else {
            return vec![];
        };
        dir.filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "json").then_some(path)
        })
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The binary, with this machine's folders and no API from the
    /// environment (the saved login names it).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_assetbox"));
        command
            .args(args)
            .env("ASSETBOX_CONFIG_DIR", self.root.join("config"))
            .env_remove("ASSETBOX_API")
            .current_dir(self.work())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Ran {
        let out = self.command(args).output().await.expect("the binary runs");
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn login(&self, user: &User) -> Ran {
        let mut command = self.command(&[
            "login",
            "--api",
            &stack().api,
            "--email",
            &user.email,
            "--password-stdin",
        ]);
        let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{}\n", user.password).as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let ran = Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(ran.code, 0, "{ran:?}");
        ran
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.root).ok();
    }
}

/// A fresh user with a project ("Teaser") and a box ("Shot 1"), and a
/// machine (logged in as them when `login`): client, user, project, box,
/// machine.
async fn setup(login: bool) -> (Client, User, String, String, Machine) {
    let api = Client::new();
    let user = api.new_user().await;
    let (project, box_id) = api.project_and_box(&user).await;
    let machine = Machine::new();
    if login {
        let ran = machine.login(&user).await;
        assert!(ran.stdout.contains(&user.email), "{ran:?}");
    }
    (api, user, project, box_id, machine)
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Every file of `user` in `status` (the API lists completed ones unless told).
async fn files(api: &Client, user: &User, status: &str) -> Vec<Value> {
    let reply = api
        .get(
            &format!("/v1/files?status={status}&limit=200"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["results"].as_array().unwrap().clone()
}

/// The bytes of a completed file, through its download URL.
async fn downloaded(api: &Client, user: &User, file_id: &str) -> Vec<u8> {
    let file = api
        .get(&format!("/v1/files/{file_id}"), Some(&user.access_token))
        .await;
    assert_eq!(file.body["upload_status"], "completed", "{:?}", file.body);
    let url = file.body["url"].as_str().expect("a download url");
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// The one file of `user` named `name`, completed.
async fn completed_file(api: &Client, user: &User, name: &str) -> Value {
    let done = files(api, user, "completed").await;
    let found: Vec<_> = done
        .into_iter()
        .filter(|f| f["file_name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// "resuming: K of N parts already uploaded" → K.
fn resumed_parts(stdout: &str, of: u32) -> Option<usize> {
    let suffix = format!(" of {of} parts already uploaded");
    stdout.lines().find_map(|l| {
        let rest = &l[l.find("resuming: ")? + "resuming: ".len()..];
        rest.strip_suffix(&suffix)?.parse().ok()
    })
}

#[tokio::test]
async fn login_then_a_multipart_upload_lands_in_the_box_byte_for_byte() {
    let (api, user, _, box_id, machine) = setup(true).await;

    // Only the owner may read the tokens, and the password is not kept.
    let credentials = machine.config().join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved = std::fs::read_to_string(&credentials).unwrap();
    assert!(!saved.contains(&user.password));
    assert!(saved.contains(&stack().api));

    // 20 MiB and a bit: 8 MiB parts make three, the last one short; CRC32C
    // makes each part URL sign its checksum and complete send the file's.
    let data = test_bytes(20 * MIB + 12_345, 71);
    let path = machine.write("Szene 1.mp4", &data);
    let ran = machine
        .run(&[
            "upload",
            path.to_str().unwrap(),
            "--box",
            &box_id,
            "--checksum",
            "crc32c",
        ])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("sent 3 of 3 parts"), "{ran:?}");

    let file = completed_file(&api, &user, "Szene 1.mp4").await;
    assert_eq!(file["file_size"], data.len() as u64);
    assert_eq!(file["file_content_type"], "video/mp4");
    assert_eq!(file["parent_object_id"], box_id.as_str());
    let assets = api
        .get(
            &format!("/api/boxes/{box_id}/assets/"),
            Some(&user.access_token),
        )
        .await;
    let ids: Vec<&Value> = assets.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, vec![&file["asset_id"]], "{:?}", assets.body);
    assert!(ran.stdout.contains(file["asset_id"].as_str().unwrap()));

    let back = downloaded(&api, &user, file["id"].as_str().unwrap()).await;
    assert_eq!(sha256(&back), sha256(&data));
    assert!(machine.states().is_empty(), "the resume state is deleted");
    assert!(files(&api, &user, "uploading").await.is_empty());
}

/// Waits until the upload's state shows at least `parts` finished parts;
/// the number it shows then. The process must still be running.
async fn state_with_parts(
    machine: &Machine,
    child: &mut tokio::process::Child,
    parts: usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(done) = machine
            .states()
            .first()
            .and_then(|s| s["parts"].as_object().map(|p| p.len()))
            .filter(|n| *n >= parts)
        {
            return done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upload ended before {parts} parts were recorded"
        );
        assert!(
            Instant::now() < deadline,
            "no {parts} parts recorded in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `upload FILE --box BOX` in 5 MiB parts, one at a time at 4 MiB/s: a
/// part every ~1.3 s.
fn slow_upload<'a>(path: &'a str, box_id: &'a str) -> [&'a str; 10] {
    [
        "upload",
        path,
        "--box",
        box_id,
        "--part-size",
        "5",
        "--parallel",
        "1",
        "--limit-rate",
        "4M",
    ]
}

/// The upload's state once it shows at least `parts` finished parts.
async fn machine_state_after(
    machine: &Machine,
    child: &mut tokio::process::Child,
    parts: usize,
) -> Value {
    state_with_parts(machine, child, parts).await;
    machine.states().remove(0)
}

/// Runs `args` and kills it (SIGKILL) once `parts` parts are recorded; the
/// state it leaves, which has them.
async fn killed_after(machine: &Machine, args: &[&str], parts: usize) -> Value {
    let mut child = machine.command(args).spawn().unwrap();
    let recorded = state_with_parts(machine, &mut child, parts).await;
    child.kill().await.unwrap();
    let mut states = machine.states();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["parts"].as_object().unwrap().len(), recorded);
    states.remove(0)
}

#[tokio::test]
async fn an_upload_killed_midway_resumes_with_only_the_missing_parts() {
    let (api, user, _, box_id, machine) = setup(true).await;
    let data = test_bytes(25 * MIB, 72);
    let path = machine.write("take.mov", &data);
    let path = path.to_str().unwrap();
    let slow = slow_upload(path, &box_id);

    // kill -9 once two parts are recorded: the state survives.
    let state = killed_after(&machine, &slow, 2).await;
    let recorded = state["parts"].as_object().unwrap().len();
    assert_eq!(state["num_parts"], 5);
    let file_id = state["file_id"].as_str().unwrap().to_owned();

    // Ctrl-C on the next run: it resumes, then stops cleanly, keeping the
    // state and saying how to go on.
    let mut second = machine.command(&slow).spawn().unwrap();
    let pid = second.id().unwrap();
    let before_interrupt = state_with_parts(&machine, &mut second, recorded + 1).await;
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let out = second.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    let resumed = resumed_parts(&stdout, 5).expect("a resuming line");
    assert!(resumed >= recorded, "{stdout}");
    assert!(stderr.contains("to resume, run:"), "{stderr}");
    assert!(stderr.contains("assetbox upload"), "{stderr}");
    let states = machine.states();
    assert_eq!(states.len(), 1, "the state is kept");
    assert_eq!(states[0]["file_id"], file_id.as_str(), "the same upload");
    let kept = states[0]["parts"].as_object().unwrap().len();
    assert!(kept >= before_interrupt);

    // Without the limit it finishes, sending only what storage lacks.
    let last = machine.run(&["upload", path, "--box", &box_id]).await;
    assert_eq!(last.code, 0, "{last:?}");
    let held = resumed_parts(&last.stdout, 5).expect("a resuming line");
    assert!(held >= kept && held < 5, "{last:?}");
    assert!(
        last.stdout
            .contains(&format!("sent {} of 5 parts", 5 - held)),
        "{last:?}"
    );
    assert!(machine.states().is_empty(), "the state is deleted");

    // One upload all along: the file of the first run, complete and whole.
    let file = completed_file(&api, &user, "take.mov").await;
    assert_eq!(file["id"], file_id.as_str());
    assert!(files(&api, &user, "uploading").await.is_empty());
    let back = downloaded(&api, &user, &file_id).await;
    assert_eq!(sha256(&back), sha256(&data));
}

/// A second run of an upload that is still running refuses at once (exit 2)
/// instead of fighting the first over its parts and state; the first goes on.
#[tokio::test]
async fn a_second_run_of_a_running_upload_is_refused() {
    let (_api, _user, _, box_id, machine) = setup(true).await;
    let data = test_bytes(15 * MIB, 75);
    let path = machine.write("twice.mp4", &data);
    let path = path.to_str().unwrap();
    let mut first = machine
        .command(&slow_upload(path, &box_id))
        .spawn()
        .unwrap();
    state_with_parts(&machine, &mut first, 1).await;
    let second = machine.run(&["upload", path, "--box", &box_id]).await;
    assert_eq!(second.code, 2, "{second:?}");
    assert!(second.stderr.contains("is running"), "{second:?}");
    first.kill().await.unwrap();
    // Once the first is gone, the upload resumes.
    let third = machine.run(&["upload", path, "--box", &box_id]).await;
    assert_eq!(third.code, 0, "{third:?}");
    assert!(resumed_parts(&third.stdout, 3).is_some(), "{third:?}");
}

/// An earlier upload that was aborted meanwhile is said so and started
/// again; `--no-resume` aborts the earlier one itself.
#[tokio::test]
async fn a_closed_earlier_upload_starts_again_and_no_resume_aborts_it() {
    let (api, user, _, box_id, machine) = setup(true).await;
    let token = Some(user.access_token.as_str());
    for (name, no_resume) in [("aborted.mp4", false), ("restart.mp4", true)] {
        let data = test_bytes(10 * MIB, 74);
        let path = machine.write(name, &data);
        let path = path.to_str().unwrap();
        let state = killed_after(&machine, &slow_upload(path, &box_id), 1).await;
        let earlier = state["file_id"].as_str().unwrap().to_owned();
        let mut args = vec!["upload", path, "--box", &box_id];
        if no_resume {
            args.push("--no-resume");
        } else {
            let aborted = api
                .delete(&format!("/v1/files/uploads/{earlier}"), token)
                .await;
            assert_eq!(aborted.status, 200, "{:?}", aborted.body);
        }
        let ran = machine.run(&args).await;
        assert_eq!(ran.code, 0, "{ran:?}");
        let said = match no_resume {
            true => "discarded the earlier unfinished upload",
            false => "the earlier upload is aborted; starting again",
        };
        assert!(ran.stdout.contains(said), "{ran:?}");
        assert!(ran.stdout.contains("sent 2 of 2 parts"), "{ran:?}");
        let file = completed_file(&api, &user, name).await;
        assert_ne!(file["id"], earlier.as_str(), "a new upload");
        let old = api.get(&format!("/v1/files/{earlier}"), token).await;
        assert_eq!(old.body["upload_status"], "aborted", "{:?}", old.body);
        let back = downloaded(&api, &user, file["id"].as_str().unwrap()).await;
        assert_eq!(sha256(&back), sha256(&data));
        assert!(machine.states().is_empty());
    }
    assert!(files(&api, &user, "uploading").await.is_empty());
}

/// Bytes read from a file that is being written are not the file: the
/// upload stops, is aborted, and leaves no state.
#[tokio::test]
async fn a_file_written_to_while_uploading_is_not_uploaded_mixed() {
    let (api, user, _, box_id, machine) = setup(true).await;
    let path = machine.write("growing.mp4", &test_bytes(15 * MIB, 75));
    let path_str = path.to_str().unwrap();
    let mut child = machine
        .command(&slow_upload(path_str, &box_id))
        .spawn()
        .unwrap();
    let state = machine_state_after(&machine, &mut child, 1).await;
    let file_id = state["file_id"].as_str().unwrap().to_owned();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b"more").unwrap();
    drop(file);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("growing.mp4: the file changed"), "{stderr}");
    assert!(machine.states().is_empty());
    let old = api
        .get(&format!("/v1/files/{file_id}"), Some(&user.access_token))
        .await;
    assert_eq!(old.body["upload_status"], "aborted", "{:?}", old.body);
    assert!(files(&api, &user, "completed").await.is_empty());
}

#[tokio::test]
async fn refusals_show_the_apis_message_and_leave_nothing_behind() {
    let (api, user, _, box_id, machine) = setup(false).await;
    let notes = machine.write("notes.txt", b"not a picture");
    let notes = notes.to_str().unwrap();

    let not_logged_in = machine.run(&["upload", notes, "--box", &box_id]).await;
    assert_eq!(not_logged_in.code, 3, "{not_logged_in:?}");
    assert!(
        not_logged_in.stderr.contains("assetbox login"),
        "{not_logged_in:?}"
    );

    machine.login(&user).await;
    // A type the API does not allow: its message, exit 5.
    let refused = machine.run(&["upload", notes, "--box", &box_id]).await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(refused.stderr.contains("notes.txt"), "{refused:?}");
    assert!(
        refused.stderr.contains("file_content_type: must be one of"),
        "{refused:?}"
    );

    // Someone else's box, and one that does not exist: not found, exit 4.
    let clip = machine.write("clip.mp4", &test_bytes(1000, 73));
    let clip = clip.to_str().unwrap();
    let other = api.new_user().await;
    let (_, foreign_box) = api.project_and_box(&other).await;
    for missing in [foreign_box.as_str(), "01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        let ran = machine.run(&["upload", clip, "--box", missing]).await;
        assert_eq!(ran.code, 4, "{ran:?}");
        assert!(ran.stderr.contains("box not found"), "{ran:?}");
    }
    let ghost = machine
        .run(&["upload", "no-such-file.mp4", "--box", &box_id])
        .await;
    assert_eq!(ghost.code, 2, "{ghost:?}");
    assert!(ghost.stderr.contains("no-such-file.mp4"), "{ghost:?}");

    // Nothing was started: no upload, no file, no state.
    for status in ["uploading", "aborted", "completed"] {
        assert!(files(&api, &user, status).await.is_empty(), "{status}");
    }
    assert!(machine.states().is_empty());

    // Several files, one refused: the others land, exit 6 names the one.
    let partial = machine
        .run(&["upload", clip, notes, "--box", &box_id])
        .await;
    assert_eq!(partial.code, 6, "{partial:?}");
    assert!(partial.stderr.contains("notes.txt"), "{partial:?}");
    assert!(
        partial.stderr.contains("1 of 2 files failed"),
        "{partial:?}"
    );
    completed_file(&api, &user, "clip.mp4").await;
    assert!(files(&api, &user, "uploading").await.is_empty());
    assert!(machine.states().is_empty());
}

#[tokio::test]
async fn ls_lists_and_export_writes_a_docx_and_tokens_refresh() {
    let (api, user, project, box_id, machine) = setup(true).await;
    let png = assetbox_e2e::media::png(16, 16, 3);
    let asset = api.small_upload(&user, &box_id, "frame.png", &png).await;
    let asset_id = asset["id"].as_str().unwrap();

    let projects = machine.run(&["ls"]).await;
    assert_eq!(projects.code, 0, "{projects:?}");
    assert!(projects.stdout.contains(&project) && projects.stdout.contains("Teaser"));
    let boxes = machine.run(&["ls", &project]).await;
    assert_eq!(boxes.code, 0, "{boxes:?}");
    assert!(boxes.stdout.contains(&box_id) && boxes.stdout.contains("Shot 1"));
    let assets = machine.run(&["ls", "--box", &box_id]).await;
    assert_eq!(assets.code, 0, "{assets:?}");
    assert!(assets.stdout.contains(asset_id) && assets.stdout.contains("IMAGE"));
    let json = machine.run(&["ls", "--box", &box_id, "--json"]).await;
    let listed: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], asset_id);
    let missing = machine.run(&["ls", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]).await;
    assert_eq!(missing.code, 4, "{missing:?}");
    assert!(missing.stderr.contains("project not found"), "{missing:?}");

    let export = machine.run(&["export", &project]).await;
    assert_eq!(export.code, 0, "{export:?}");
    let docx = std::fs::read(machine.work().join("Teaser.docx")).unwrap();
    assert!(docx.starts_with(b"PK\x03\x04"), "a zip (docx)");
    let named = machine.run(&["export", &project, "-o", "board.docx"]).await;
    assert_eq!(named.code, 0, "{named:?}");
    assert!(
        std::fs::read(machine.work().join("board.docx"))
            .unwrap()
            .starts_with(b"PK")
    );

    // A refused access token is refreshed once and saved; so is an expired one.
    let credentials = machine.config().join("credentials.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    saved["access_token"] = "not-a-token".into();
    std::fs::write(&credentials, saved.to_string()).unwrap();
    let after_401 = machine.run(&["ls"]).await;
    assert_eq!(after_401.code, 0, "{after_401:?}");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    assert_ne!(saved["access_token"], "not-a-token");
    saved["expires_at"] = 0.into();
    std::fs::write(&credentials, saved.to_string()).unwrap();
    assert_eq!(machine.run(&["ls"]).await.code, 0);
    let saved: Value = serde_json::from_slice(&std::fs::read(&credentials).unwrap()).unwrap();
    assert!(
        saved["expires_at"].as_u64().unwrap() > 0,
        "refreshed before the call"
    );

    let logout = machine.run(&["logout"]).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    assert!(!Path::new(&credentials).exists());
    let after = machine.run(&["ls"]).await;
    assert_eq!(after.code, 3, "{after:?}");
    assert!(after.stderr.contains("assetbox login"), "{after:?}");
}

#[tokio::test]
async fn help_documents_examples_and_exit_codes() {
    let machine = Machine::new();
    let help = machine.run(&["--help"]).await;
    assert_eq!(help.code, 0, "{help:?}");
    for expected in [
        "Examples:",
        "assetbox login --email",
        "assetbox upload clip.mp4",
        "assetbox ls --box",
        "assetbox export",
        "Exit codes:",
        "6    partial",
        "130  interrupted",
    ] {
        assert!(
            help.stdout.contains(expected),
            "{expected:?} in {}",
            help.stdout
        );
    }
    let upload = machine.run(&["upload", "--help"]).await;
    assert!(upload.stdout.contains("Resume:"), "{upload:?}");
    assert!(upload.stdout.contains("--limit-rate"), "{upload:?}");
    let usage = machine.run(&["upload", "x.mp4"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let zero = machine
        .run(&["upload", "x.mp4", "--box", "B", "--parallel", "0"])
        .await;
    assert_eq!(zero.code, 2, "{zero:?}");
}
