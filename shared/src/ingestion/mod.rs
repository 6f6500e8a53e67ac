//! What ingestion reads and writes (SPEC §3.6). An object is claimed by an
//! asset (small upload, import) or by a file (direct upload), found in one
//! read. Verified, it becomes `COMPLETED` with its description (a file keeps
//! the description too, for the asset it may become later); rejected, it is
//! `FAILED` with a reason and its bytes go back to the quota. Every write is
//! conditional on the state read, so a duplicate or late event changes
//! nothing.

use crate::assets::AssetRecord;
use crate::uploads::FileRecord;

mod store;

/// Who an uploaded object belongs to.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Arrived whole with its asset (small upload, import); keyed by the
    /// asset's id.
    Asset(AssetRecord),
    /// A direct upload, keyed by the file's id. `asset_id` names the asset
    /// it became, if any: that asset's state is checked by the write itself
    /// (`PROCESSING` this key), so it need not be read.
    File(FileRecord),
}

impl Claim {
    pub fn owner(&self) -> &str {
        match self {
            Self::Asset(a) => &a.owner,
            Self::File(f) => &f.owner,
        }
    }

    /// The object the claim waits for; `None` for an asset that has none
    /// yet (an import not fetched).
    pub fn s3_key(&self) -> Option<&str> {
        match self {
            Self::Asset(a) => a.s3_key.as_deref(),
            Self::File(f) => Some(&f.s3_key),
        }
    }

    /// The content type the upload declared.
    pub fn declared_type(&self) -> &str {
        match self {
            Self::Asset(a) => &a.content_type,
            Self::File(f) => &f.file_content_type,
        }
    }
}
