//! project-export: `GET /api/projects/{id}/export/?format=docx` builds a
//! storyboard of the project (one row per box in order: shot name,
//! headliner thumbnail, prompt, model), stores it in S3 under
//! `exports/<owner>/<project>/<export id>.docx` and answers a short-lived
//! download URL.
//!
//! Its own function, so the image decoder and the .docx writer stay out of
//! catalog-api (cold start, memory) and its role alone may write `exports/`.
//!
//! The picture is the headliner's thumbnail when ingestion made one, else the
//! headliner image itself scaled down here; a video without a thumbnail, a
//! box without a headliner or an unreadable image get a note in its place,
//! so every box has its row. Pictures are fetched a few at a time.

pub mod storyboard;

use assetbox_shared::assets::AssetRecord;
use assetbox_shared::catalog::ProjectStore;
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody, found_by_id};
use assetbox_shared::http::ApiQuery;
use assetbox_shared::http::caller::Caller;
use assetbox_shared::media::AssetType;
use assetbox_shared::s3::presign::attachment_disposition;
use assetbox_shared::uploads::flow::UploadEnv;
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use storyboard::{Picture, Row};
use utoipa::{IntoParams, OpenApi, ToSchema};

pub const DOCX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
/// Originals above this are not downloaded for a thumbnail.
const SOURCE_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// Pictures fetched and scaled at once: two decodes at their memory cap
/// (see `storyboard`) and two sources fit the function's 1024 MB.
const PICTURE_CONCURRENCY: usize = 2;

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(UploadEnv::from_settings(settings, sdk)?))
}

pub fn router(env: UploadEnv) -> Router {
    Router::new()
        .route("/api/projects/{id}/export", get(export_project))
        .with_state(env)
}

#[derive(OpenApi)]
#[openapi(
    paths(export_project),
    components(schemas(ExportReady, ExportFormat, ErrorBody))
)]
pub struct ProjectExportDoc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The document's format; `docx` is the only one (and the default).
    #[param(value_type = ExportFormat, required = false)]
    pub format: Option<String>,
}

/// The formats of an export.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Docx,
}

/// A storyboard ready to download.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportReady {
    /// A short-lived download URL of the document.
    #[schema(format = "uri")]
    pub url: String,
    /// What it saves as: `<project name> storyboard.docx`.
    pub file_name: String,
    #[schema(value_type = ExportFormat)]
    pub format: String,
    /// Bytes.
    pub size: u64,
    /// Rows in the storyboard (one per box).
    pub boxes: usize,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// The picture cell of one box.
async fn picture(env: &UploadEnv, headliner: Option<AssetRecord>) -> Picture {
    let Some(asset) = headliner else {
        return Picture::Note("no headliner".into());
    };
    let source = match (&asset.thumbnail_key, asset.asset_type) {
        (Some(key), _) => key.clone(),
        (None, AssetType::Image) => match &asset.s3_key {
            Some(key) => key.clone(),
            None => return Picture::Note("picture unavailable".into()),
        },
        (None, AssetType::Video) => return Picture::Note("video (no thumbnail yet)".into()),
    };
    let bytes = match env.bucket.get(&source, SOURCE_MAX_BYTES).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Picture::Note("picture unavailable".into()),
        Err(err) => {
            tracing::warn!(key = %source, error = %err, "export picture not fetched");
            return Picture::Note("picture unavailable".into());
        }
    };
    // Decoding is CPU-bound: off the async workers.
    match tokio::task::spawn_blocking(move || storyboard::thumbnail(&bytes)).await {
        Ok(Some(t)) => Picture::Image(t),
        _ => Picture::Note("picture unavailable".into()),
    }
}

/// A file name that is safe in a header and on any file system.
fn export_file_name(project_name: &str) -> String {
    let cleaned: String = project_name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '-',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("{} storyboard.docx", cleaned.trim())
}

/// Export a project's storyboard
///
/// A Word document (.docx) with one row per box in storyboard order: the
/// shot's name, its headliner's picture, prompt and model.
#[utoipa::path(
    get, path = "/api/projects/{id}/export/", tag = "projects",
    params(("id" = String, Path, description = "The project's id."), ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where to download the document.", body = ExportReady),
        (status = 400, description = "`format` is not `docx`.", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
pub async fn export_project(
    State(env): State<UploadEnv>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportReady>, ApiError> {
    match query.format.as_deref().map(str::trim) {
        None | Some("") | Some("docx") => {}
        Some(_) => return Err(ApiError::field("format", "must be docx")),
    }
    let table = &env.table;
    let project = found_by_id("project", &id, || table.get_project(&caller.user_id, &id)).await?;
    let boxes = table.get_boxes(&caller.user_id, &project.box_order).await?;
    let mut headliners = Vec::with_capacity(boxes.len());
    for b in &boxes {
        headliners.push(match &b.headliner_asset {
            Some(asset) => table.get_asset(&caller.user_id, asset).await?,
            None => None,
        });
    }
    let pictures: Vec<Picture> = futures_util::stream::iter(headliners.iter().cloned())
        .map(|h| picture(&env, h))
        .buffered(PICTURE_CONCURRENCY)
        .collect()
        .await;
    let rows: Vec<Row> = boxes
        .iter()
        .zip(headliners)
        .zip(pictures)
        .map(|((b, headliner), picture)| Row {
            name: b.name.clone(),
            picture,
            prompt: headliner.as_ref().and_then(|a| a.prompt_text.clone()),
            model: headliner.and_then(|a| a.ai_model),
        })
        .collect();
    let title = format!("{} — storyboard", project.name);
    let document = tokio::task::spawn_blocking(move || storyboard::build(&title, &rows))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;

    let file_name = export_file_name(&project.name);
    let key = format!(
        "exports/{}/{}/{}.docx",
        caller.user_id,
        project.id,
        validation::new_id()
    );
    let size = document.len() as u64;
    env.bucket
        .put(
            &key,
            document,
            DOCX_CONTENT_TYPE,
            Some(attachment_disposition(&file_name)),
        )
        .await?;
    let signer = env.presigner().await?;
    tracing::info!(project = %project.id, boxes = boxes.len(), size, at = %clock::rfc3339(clock::now()), "storyboard exported");
    Ok(Json(ExportReady {
        url: env.object_url(&signer, &key, &file_name),
        file_name,
        format: "docx".into(),
        size,
        boxes: boxes.len(),
        expires_in: env.url_expiry().as_secs(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(export_file_name("Film"), "Film storyboard.docx");
        assert_eq!(
            export_file_name("a/b\\c:\"d\"\n"),
            "a-b-c--d- storyboard.docx"
        );
    }
}
