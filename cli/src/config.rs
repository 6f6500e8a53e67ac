//! Where the client keeps its state: `<config dir>/assetbox/` holds
//! `credentials.json` (tokens, mode 0600) and `uploads/` (resume state).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// The API when nothing names one: the local stack (`cargo run -p assetbox-local`).
pub const DEFAULT_API: &str = "http://127.0.0.1:3000";

#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// `$ASSETBOX_CONFIG_DIR/assetbox`, else the platform's config folder
    /// (`~/.config/assetbox` on Linux).
    pub fn from_env() -> Result<Self> {
        let base = match std::env::var_os("ASSETBOX_CONFIG_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::config_dir().ok_or_else(|| {
                CliError::usage("no config folder on this system: set ASSETBOX_CONFIG_DIR")
            })?,
        };
        Ok(Self::at(base.join("assetbox")))
    }

    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials.json")
    }

    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }
}

/// What `login` saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// The API the tokens are for (tokens of one stack mean nothing to another).
    pub api: String,
    pub email: Option<String>,
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
}

impl Credentials {
    pub fn load(paths: &Paths) -> Result<Option<Self>> {
        let path = paths.credentials();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                CliError::new(
                    crate::error::Exit::Auth,
                    format!(
                        "{} is not readable ({e}): run `assetbox login` again",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::failure(format!("{}: {e}", path.display()))),
        }
    }

    pub fn save(&self, paths: &Paths) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("credentials serialise");
        write_private(&paths.credentials(), &json)
    }

    /// Expired, or about to: refresh before the call rather than after a 401.
    pub fn is_expired(&self) -> bool {
        now_secs() + 30 >= self.expires_at
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The API's base URL without a trailing slash; http or https only.
pub fn normalise_api(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(trimmed.to_owned())
        }
        _ => Err(CliError::usage(format!(
            "--api / ASSETBOX_API must be an http(s) URL such as {DEFAULT_API}, not {raw:?}"
        ))),
    }
}

/// Replaces `path` atomically (a temporary file in the same folder, then a
/// rename) so a kill mid-write never leaves half a file; readable by the
/// owner only, in a folder only the owner can list.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| CliError::failure(format!("{}: {e}", path.display()));
    let dir = path.parent().expect("state files live in a folder");
    create_private_dir(dir).map_err(fail)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(fail)
}

/// An exclusive advisory lock beside a state file, held until dropped:
/// `None` when another process holds it (another run of the same upload).
pub fn lock_beside(path: &Path) -> Result<Option<std::fs::File>> {
    let lock = path.with_extension("lock");
    let fail = |e: std::io::Error| CliError::failure(format!("{}: {e}", lock.display()));
    create_private_dir(path.parent().expect("state files live in a folder")).map_err(fail)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Deletes a file that may already be gone.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::failure(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_are_normalised_and_checked() {
        assert_eq!(
            normalise_api("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            normalise_api("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert!(normalise_api("ftp://x").is_err());
        assert!(normalise_api("127.0.0.1:3000").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("assetbox-cli-unit-{}", std::process::id()));
        let path = dir.join("nested").join("credentials.json");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        // Only the file itself is left: no temporary files beside it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
