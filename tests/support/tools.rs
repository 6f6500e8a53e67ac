//! Foreign tools the tests run (npm packages, Python packages), installed by
//! the tests themselves from their pinned manifests, so a fresh machine with
//! only Rust, Python 3 and Node/npm runs every test.
//!
//! Each install is keyed by a hash of its manifest, written as a stamp file
//! once the install has finished: a missing or different stamp (a changed
//! lock, an interrupted install) means install again. Installs run under an
//! exclusive lock file, so test binaries that start at once install once and
//! the others wait and reuse it. They install in place rather than renaming a
//! staged copy into position: a venv's scripts carry their absolute path in
//! their `#!` line, so a moved venv would not run them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

const STAMP: &str = ".assetbox-install-stamp";

/// Runs `npm ci --no-audit --no-fund` in `dir` (which holds `package.json`
/// and `package-lock.json`) unless `dir/node_modules` was installed from
/// this very lock file. Returns `dir/node_modules/.bin`.
pub fn npm_ci(dir: &Path) -> PathBuf {
    let lock = dir.join("package-lock.json");
    let node_modules = dir.join("node_modules");
    let bin = node_modules.join(".bin");
    let hash = file_hash(&lock);
    install_once(
        &node_modules,
        &dir.join(".node_modules.lock"),
        &hash,
        || {
            eprintln!("tools: npm ci in {} …", dir.display());
            // npm ci removes node_modules itself and installs the lock exactly.
            run(Command::new(npm())
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir));
        },
    );
    bin
}

/// A virtualenv `.venv` beside `requirements` with those requirements
/// installed (`python3 -m venv`, then `pip install -r`), unless it was made
/// from this very file. Returns the venv's `bin` directory. `$PYTHON` names
/// another base interpreter.
pub fn python_venv(requirements: &Path) -> PathBuf {
    let dir = requirements
        .parent()
        .expect("the requirements file lies in a folder");
    let venv = dir.join(".venv");
    let hash = file_hash(requirements);
    install_once(&venv, &dir.join(".venv.lock"), &hash, || {
        eprintln!("tools: making {} …", venv.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        std::fs::remove_dir_all(&venv).ok();
        run(Command::new(&python).args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "-r",
            ])
            .arg(requirements));
    });
    venv.join("bin")
}

/// Runs `install` unless `target` holds a stamp of `hash`; the stamp is
/// written last, so only a finished install counts.
fn install_once(target: &Path, lock_path: &Path, hash: &str, install: impl FnOnce()) {
    let stamp = target.join(STAMP);
    let current = || std::fs::read_to_string(&stamp).ok().as_deref() == Some(hash);
    if current() {
        return;
    }
    let lock = File::create(lock_path)
        .unwrap_or_else(|e| panic!("creating the lock file {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    // Someone else may have installed it while we waited for the lock.
    if !current() {
        std::fs::remove_file(&stamp).ok();
        install();
        std::fs::write(&stamp, hash).unwrap_or_else(|e| panic!("writing {}: {e}", stamp.display()));
    }
    // The lock is released when `lock` is dropped (or the process exits).
}

fn file_hash(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    format!("{:x}", Sha256::digest(bytes))
}

fn npm() -> String {
    std::env::var("NPM").unwrap_or_else(|_| "npm".into())
}

/// Runs a tool to completion and returns what it printed (stdout, then
/// stderr); a failure panics with all of it.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let printed = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{printed}",
        out.status
    );
    printed
}

/// Debian's Chromium (`$CHROMIUM` names another binary), installed with
/// apt-get (as root, or through `sudo -n`) when it is missing.
pub fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.exists() {
        return path;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    eprintln!("tools: installing Debian's chromium (first run only)…");
    let installed = apt(&["install", "-y", "-q", "chromium"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        // A fresh machine may have no package lists yet.
        run(&mut apt(&["update", "-q"]));
        run(&mut apt(&["install", "-y", "-q", "chromium"]));
    }
    assert!(
        path.exists(),
        "apt-get installed chromium, but {} is missing",
        path.display()
    );
    path
}
