//! The web console and the public share page (`console/`), served as the
//! static files they are when deployed, plus the `config.json` a deployment
//! writes beside them: the API and live URLs are configuration, not code.

use std::path::PathBuf;

use axum::Json;
use axum::routing::get;
use serde::Serialize;
use tower_http::services::{ServeDir, ServeFile};

/// The folder of the console's static files.
pub fn files_dir() -> PathBuf {
    crate::project_root().join("console")
}

/// What the console reads at start (`config.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleConfig {
    pub api_url: String,
    /// The live WebSocket API; without it the console polls.
    pub live_url: Option<String>,
}

/// `/` the console, `/shared/<token>` the share page, `/config.json`.
pub fn router(config: ConsoleConfig) -> axum::Router {
    let dir = files_dir();
    axum::Router::new()
        .route("/config.json", get(move || async move { Json(config) }))
        // A share link is `<app>/shared/<token>`: one page reads the token
        // from its path (a static host rewrites these paths the same way).
        .nest_service("/shared", ServeFile::new(dir.join("share.html")))
        .fallback_service(ServeDir::new(dir))
}
