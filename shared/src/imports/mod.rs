//! Import by URL (SPEC §3.4): the API records a `PENDING` asset and queues
//! an [`ImportRequest`]; the `import-url` function fetches the URL into S3 and
//! moves the asset to `PROCESSING` (ingestion describes it from there) or to
//! `FAILED` with a reason. Both moves are conditional on `PENDING`, so a
//! redelivered or duplicated message changes nothing twice.

use serde::{Deserialize, Serialize};

mod store;

/// The guard every server-side fetch goes through.
pub use crate::download::{Blocked, check_url};

/// The queue message. The URL travels only here: provider links carry
/// signatures, which the table and the logs should not keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub owner: String,
    pub asset_id: String,
    pub url: String,
}

/// Longest URL accepted.
pub const URL_MAX_CHARS: usize = 2048;
