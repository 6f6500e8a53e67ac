//! The resume state of one upload: `<config>/assetbox/uploads/<key>.json`,
//! rewritten (atomically) after every finished part, so a kill loses at
//! most the parts in flight. The key names the file as it is (canonical
//! path, size, modification time) and where it goes (API, box): a file
//! changed since is a new upload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::checksum::Checksum;
use crate::config::{Paths, write_private};
use crate::error::Result;

const VERSION: u32 = 1;

/// What makes two runs the same upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub api: String,
    pub path: PathBuf,
    pub size: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (u64, u32),
    pub box_id: String,
}

impl Identity {
    pub fn key(&self) -> String {
        let mut sha = sha2::Sha256::new();
        for part in [
            self.api.as_bytes(),
            self.path.as_os_str().as_encoded_bytes(),
            self.size.to_string().as_bytes(),
            format!("{}.{:09}", self.mtime.0, self.mtime.1).as_bytes(),
            self.box_id.as_bytes(),
        ] {
            // Length-prefixed, so no two different identities hash alike.
            sha.update((part.len() as u64).to_be_bytes());
            sha.update(part);
        }
        hex::encode(&sha.finalize()[..16])
    }

    pub fn state_path(&self, paths: &Paths) -> PathBuf {
        paths.uploads().join(format!("{}.json", self.key()))
    }

    /// Whether the file is no longer the one named (written to, replaced,
    /// gone).
    pub fn changed(&self) -> bool {
        std::fs::metadata(&self.path)
            .map(|m| m.len() != self.size || stamp(&m) != self.mtime)
            .unwrap_or(true)
    }
}

/// Modification time as the key reads it: seconds and nanoseconds.
pub fn stamp(meta: &std::fs::Metadata) -> (u64, u32) {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()))
}

/// A part S3 holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub api: String,
    /// For a person reading the folder; the key is what matches.
    pub path: PathBuf,
    pub box_id: String,
    pub file_id: String,
    pub file_name: String,
    pub size: u64,
    pub part_size: u64,
    pub num_parts: u32,
    pub checksum: Option<Checksum>,
    /// The signing grant of `next_parts_url`: signing with it needs no
    /// record read. Useless without the user's token.
    pub grant: Option<String>,
    pub parts: BTreeMap<u32, DonePart>,
}

impl State {
    pub fn new(identity: &Identity, file_id: String, file_name: String) -> Self {
        Self {
            version: VERSION,
            api: identity.api.clone(),
            path: identity.path.clone(),
            box_id: identity.box_id.clone(),
            file_id,
            file_name,
            size: identity.size,
            part_size: 0,
            num_parts: 0,
            checksum: None,
            grant: None,
            parts: BTreeMap::new(),
        }
    }

    /// The saved state, or `None` when there is none or it is not one this
    /// version reads (then the upload starts again; the old one expires).
    pub fn load(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice::<Self>(&bytes)
            .ok()
            .filter(|s| s.version == VERSION && s.num_parts > 0)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_private(
            path,
            &serde_json::to_vec_pretty(self).expect("state serialises"),
        )
    }
}

/// The state of an upload in progress, saved as each part finishes.
pub struct Journal {
    path: PathBuf,
    state: tokio::sync::Mutex<State>,
}

impl Journal {
    pub fn new(path: PathBuf, state: State) -> Self {
        Self {
            path,
            state: tokio::sync::Mutex::new(state),
        }
    }

    pub async fn record(&self, part: u32, done: DonePart) -> Result<()> {
        let mut state = self.state.lock().await;
        state.parts.insert(part, done);
        state.save(&self.path)
    }

    pub fn into_state(self) -> State {
        self.state.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            api: "http://127.0.0.1:3000".into(),
            path: "/data/clip.mp4".into(),
            size: 42,
            mtime: (1_700_000_000, 5),
            box_id: "01BOX".into(),
        }
    }

    #[test]
    fn the_key_changes_with_anything_that_makes_another_upload() {
        let base = identity().key();
        assert_eq!(base.len(), 32);
        assert_eq!(base, identity().key());
        let changes: [fn(&mut Identity); 5] = [
            |i| i.api.push('/'),
            |i| i.path.push("x"),
            |i| i.size += 1,
            |i| i.mtime.1 += 1,
            |i| i.box_id.push('2'),
        ];
        for change in changes {
            let mut other = identity();
            change(&mut other);
            assert_ne!(other.key(), base);
        }
    }

    #[test]
    fn state_round_trips_and_other_versions_are_ignored() {
        let dir = std::env::temp_dir().join(format!("assetbox-cli-state-{}", std::process::id()));
        let path = dir.join("s.json");
        let mut state = State::new(&identity(), "01FILE".into(), "clip.mp4".into());
        state.num_parts = 3;
        state.parts.insert(
            2,
            DonePart {
                etag: "\"e\"".into(),
                checksum: None,
            },
        );
        state.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!(back.parts, state.parts);
        state.version = 99;
        state.save(&path).unwrap();
        assert!(State::load(&path).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
