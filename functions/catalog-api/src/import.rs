//! Import by URL (SPEC §3.4): `POST /api/boxes/{id}/import/ {url,
//! prompt_text?}` → 202 with a `PENDING` asset; the `import-url` function
//! fetches the object server-side (for temporary provider links) and the
//! asset moves on to `PROCESSING` or `FAILED` (see
//! `functions/import-url`). Here: validation, the record, the message.
//!
//! The URL is checked here as far as it can be without resolving it (https,
//! ≤ 2048 characters, no credentials, no private IP literal); where a name
//! points is checked by the fetcher, which is the one that resolves and
//! connects.

use assetbox_shared::assets::{AssetRecord, AssetStatus, AssetView};
use assetbox_shared::clock;
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, ErrorBody};
use assetbox_shared::http::ApiJson;
use assetbox_shared::http::caller::Caller;
use assetbox_shared::imports::{ImportRequest, URL_MAX_CHARS, check_url};
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::state::{FilesState, owned_box};
use assetbox_shared::assets::prompt_field;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/boxes/{id}/import", post(import_to_box))
        .with_state(state)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportAsset {
    /// An `https` URL of an image or video, up to 2048 characters, without
    /// credentials, on a public host.
    #[schema(
        format = "uri",
        max_length = 2048,
        examples("https://example.com/render.png")
    )]
    pub url: String,
    /// Up to 4000 characters once trimmed.
    #[schema(max_length = 4000)]
    pub prompt_text: Option<String>,
}

fn checked_url(raw: &str, allow_private: bool) -> Result<url::Url, ApiError> {
    let raw = raw.trim();
    if raw.chars().count() > URL_MAX_CHARS {
        return Err(ApiError::field(
            "url",
            format!("must be at most {URL_MAX_CHARS} characters"),
        ));
    }
    let parsed =
        url::Url::parse(raw).map_err(|_| ApiError::field("url", "is not an absolute URL"))?;
    // The same rule import-url applies (an IP-literal host must be public);
    // names are checked where they are resolved, by import-url.
    check_url(&parsed, allow_private).map_err(|b| ApiError::field("url", b.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::field("url", "must not carry credentials"));
    }
    Ok(parsed)
}

/// Import a file into a box from a URL
///
/// The server fetches the URL (meant for a provider's temporary result
/// links): the asset is `PENDING` until fetched, then `PROCESSING`, and
/// `COMPLETED` or `FAILED` with `error_message`.
#[utoipa::path(
    post, path = "/api/boxes/{id}/import/", tag = "assets",
    params(("id" = String, Path, description = "The box's id.")),
    request_body = ImportAsset,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: the new asset, `PENDING` until fetched.", body = AssetView),
        (status = 400, description = "The URL is not an allowed `https` URL, the prompt breaks its rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
        (status = 409, description = "The box changed meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn import_to_box(
    State(state): State<FilesState>,
    caller: Caller,
    Path(box_id): Path<String>,
    ApiJson(body): ApiJson<ImportAsset>,
) -> Result<impl IntoResponse, ApiError> {
    let url = checked_url(&body.url, state.imports.allow_private)?;
    let prompt_text = prompt_field(body.prompt_text.as_deref())?;
    let table = &state.env.table;
    let target = owned_box(table, &caller, &box_id).await?;
    let now = clock::rfc3339(clock::now());
    let asset = AssetRecord {
        // Type, key and size are known once the bytes are read (the
        // type shows IMAGE until then).
        status: AssetStatus::Pending,
        name: "import".into(),
        content_type: "application/octet-stream".into(),
        prompt_text,
        ..AssetRecord::in_box(
            validation::new_id(),
            &caller.user_id,
            &target.id,
            &target.project,
            &now,
        )
    };
    match table.create_pending_asset(&asset).await? {
        Ok(()) => {}
        Err(Refusal::ParentGone) => return Err(ApiError::box_gone(BoxNamed::InPath)),
        Err(_) => return Err(ApiError::conflict("the box changed meanwhile; retry")),
    }
    let message = serde_json::to_string(&ImportRequest {
        owner: asset.owner.clone(),
        asset_id: asset.id.clone(),
        url: url.to_string(),
    })
    .map_err(ApiError::internal)?;
    let sent = state
        .imports
        .client
        .send_message()
        .queue_url(&state.imports.url)
        .message_body(message)
        .send()
        .await;
    if let Err(err) = sent {
        // Nothing will fetch it: take the record back.
        table.delete_asset_records(&asset, true).await?.ok();
        return Err(ApiError::unavailable(
            aws_sdk_sqs::error::DisplayErrorContext(err),
        ));
    }
    let signer = state.env.presigner().await?;
    let view = state.env.asset_view(&signer, asset, &target.name);
    Ok((StatusCode::ACCEPTED, Json(view)))
}
