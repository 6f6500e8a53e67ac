//! What every catalog route shares: the upload environment, the cursor key,
//! the sharing and import settings, and the owned-project lookup. Its own
//! module, below the route modules, so none of them depends on another for
//! its state.

use assetbox_shared::catalog::{BoxRecord, ProjectRecord, ProjectStore};
use assetbox_shared::db::Table;
use assetbox_shared::error::{ApiError, found_by_id};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::pagination::CursorKey;
use assetbox_shared::uploads::flow::UploadEnv;

#[derive(Clone)]
pub struct FilesState {
    pub env: UploadEnv,
    pub cursors: CursorKey,
    pub sharing: assetbox_shared::sharing::SharingPolicy,
    pub imports: ImportQueue,
    /// What registry writes are checked against.
    pub registry: assetbox_shared::ai::RegistryRules,
}

/// Where import requests go.
#[derive(Clone)]
pub struct ImportQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    /// `IMPORT_ALLOW_PRIVATE_NETWORKS`, as import-url has it.
    pub allow_private: bool,
}

/// The caller's project, or 404 whether it is unknown or someone else's.
pub(crate) async fn owned_project<S: ProjectStore>(
    store: &S,
    caller: &Caller,
    id: &str,
) -> Result<ProjectRecord, ApiError> {
    found_by_id("project", id, || store.get_project(&caller.user_id, id)).await
}

/// The caller's box, or 404 whether it is unknown or someone else's.
pub(crate) async fn owned_box(
    table: &Table,
    caller: &Caller,
    id: &str,
) -> Result<BoxRecord, ApiError> {
    found_by_id("box", id, || table.get_box(&caller.user_id, id)).await
}
