//! The AWS emulator: moto's server, installed on first use into a virtualenv
//! inside the project folder and run on loopback. See local/requirements.txt
//! for the pinned version and why.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

pub struct Emulator {
    child: Child,
    /// Held open: moto_runner.py saves its state (with a data directory)
    /// and exits when it closes.
    stdin: Option<ChildStdin>,
    pub endpoint: String,
    /// moto's bundled Cognito signing keys (its JWKS route fails in server mode).
    pub cognito_keys_dir: PathBuf,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Emulator {
    /// Stops moto the way that lets it save its state first: its stdin
    /// closes and it gets `patience` to finish writing.
    pub async fn stop(&mut self, patience: Duration) -> anyhow::Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(patience, self.child.wait()).await {
            Ok(status) => match status? {
                status if status.success() => Ok(()),
                status => bail!("the emulator stopped with {status}"),
            },
            Err(_) => bail!("the emulator took longer than {patience:?} to stop"),
        }
    }
}

const REQUIREMENTS: &str = include_str!("../requirements.txt");
const STAMP: &str = "assetbox-requirements.txt";

/// The venv's interpreter, installing the venv first if it is missing or was
/// made from other requirements. Installs go to a temporary folder that is
/// renamed into place, so a concurrent or interrupted install never leaves a
/// half-made venv behind.
pub async fn ensure_venv(local_dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = local_dir.join(".venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join(STAMP);
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(REQUIREMENTS) {
        return Ok(python);
    }
    let staging = local_dir.join(format!(".venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let base_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "local stack: installing the AWS emulator into {} (first run only)…",
        venv.display()
    );
    run(Command::new(&base_python)
        .arg("-m")
        .arg("venv")
        .arg(&staging))
    .await
    .with_context(|| format!("creating a virtualenv with {base_python}"))?;
    run(Command::new(staging.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
        ])
        .arg(local_dir.join("requirements.txt")))
    .await
    .context("installing the emulator with pip")?;
    std::fs::write(staging.join(STAMP), REQUIREMENTS)?;
    if venv.exists()
        && !(python.exists()
            && std::fs::read_to_string(&stamp).ok().as_deref() == Some(REQUIREMENTS))
    {
        std::fs::remove_dir_all(&venv).ok();
    }
    match std::fs::rename(&staging, &venv) {
        Ok(()) => {}
        // Another process finished first; its venv is as good as ours.
        Err(_) if python.exists() => {
            std::fs::remove_dir_all(&staging).ok();
        }
        Err(e) => return Err(e).context("moving the virtualenv into place"),
    }
    Ok(python)
}

async fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.as_std().get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Ready {
    cognito_keys: PathBuf,
}

/// Starts moto on `127.0.0.1:port` and waits until it answers. With a
/// `state_file`, moto starts from the state saved there (if any) and keeps
/// saving to it: every 30 s after a change, and when it stops.
pub async fn start(
    local_dir: &Path,
    port: u16,
    state_file: Option<&Path>,
) -> anyhow::Result<Emulator> {
    // moto's threaded server waits for ever for a server that could not
    // bind: say so at once, before anything is installed or started.
    ensure_free(port, "--emulator-port")?;
    let python = ensure_venv(local_dir).await?;
    let mut command = Command::new(python);
    command
        .arg(local_dir.join("moto_runner.py"))
        .arg("127.0.0.1")
        .arg(port.to_string());
    if let Some(file) = state_file {
        command.arg(file);
    }
    let mut child = command
        // moto stamps S3 events with local time and no zone; real S3 sends
        // UTC, and ingestion reads an event's age from it.
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting moto")?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    // Loading a large saved state takes a while (about a second per GiB).
    let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
        .await
        .context("moto did not start within 300 s")??
        .context("moto exited before it was ready (is the port free?)")?;
    let ready: Ready = serde_json::from_str(&line)
        .with_context(|| format!("unexpected line from moto: {line}"))?;
    // Keep draining stdout so moto never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Emulator {
        child,
        stdin: Some(stdin),
        endpoint: format!("http://127.0.0.1:{port}"),
        cognito_keys_dir: ready.cognito_keys,
    })
}

/// Fails with the reason when `127.0.0.1:port` cannot be bound (the same
/// reuse rules as the servers that will bind it).
pub fn ensure_free(port: u16, option: &str) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) => {
            bail!("127.0.0.1:{port} is not available ({e}); free it or pass another {option}")
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
