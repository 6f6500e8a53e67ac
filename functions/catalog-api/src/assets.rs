//! Single-asset routes (SPEC §3.4): get, edit (`name`, `prompt_text`,
//! `is_favorite`), favourite toggle, delete. The list with every filter comes
//! next; a box's assets are listed by `GET /api/boxes/{id}/assets/`.

use assetbox_shared::assets::{AssetRecord, AssetView};
use assetbox_shared::caller::Caller;
use assetbox_shared::clock;
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::http::ApiJson;
use assetbox_shared::validation;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::files::FilesState;

pub const PROMPT_MAX_CHARS: usize = 4000;
pub const ASSET_NAME_MAX_CHARS: usize = 255;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route(
            "/api/assets/{id}",
            get(get_asset).patch(update_asset).delete(delete_asset),
        )
        .route("/api/assets/{id}/favorite", post(toggle_favorite))
        .with_state(state)
}

async fn owned_asset(
    state: &FilesState,
    caller: &Caller,
    id: &str,
) -> Result<AssetRecord, ApiError> {
    if !validation::is_ulid(id) {
        return Err(ApiError::not_found("asset"));
    }
    state
        .env
        .table
        .get_asset(&caller.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("asset"))
}

/// The view with its box's name and a short-lived file URL.
async fn view(state: &FilesState, asset: AssetRecord) -> Result<AssetView, ApiError> {
    let box_name = state
        .env
        .table
        .get_box(&asset.owner, &asset.box_id)
        .await?
        .map(|b| b.name)
        .unwrap_or_default();
    let signer = state.env.presigner().await?;
    let url = state.env.object_url(&signer, &asset.s3_key, &asset.name);
    Ok(AssetView::new(asset, &box_name, Some(url)))
}

#[utoipa::path(
    get, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AssetView), (status = 404, body = ErrorBody))
)]
pub async fn get_asset(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, ApiError> {
    let asset = owned_asset(&state, &caller, &id).await?;
    Ok(Json(view(&state, asset).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAsset {
    pub is_favorite: Option<bool>,
    /// Up to 4000 characters; empty clears it.
    pub prompt_text: Option<String>,
    /// 1–255 characters.
    pub name: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path)),
    request_body = UpdateAsset,
    security(("bearer" = [])),
    responses((status = 200, body = AssetView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn update_asset(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAsset>,
) -> Result<Json<AssetView>, ApiError> {
    let mut fields = Vec::new();
    if let Some(name) = &body.name {
        let name = validation::display_name(name, ASSET_NAME_MAX_CHARS)
            .map_err(|r| ApiError::field("name", r))?;
        fields.push(("name", AttributeValue::S(name)));
    }
    if let Some(prompt) = &body.prompt_text {
        let prompt = prompt.trim();
        let chars = prompt.chars().count();
        if chars > PROMPT_MAX_CHARS {
            return Err(ApiError::field(
                "prompt_text",
                format!("must be at most {PROMPT_MAX_CHARS} characters (got {chars})"),
            ));
        }
        fields.push((
            "prompt_text",
            if prompt.is_empty() {
                AttributeValue::Null(true)
            } else {
                AttributeValue::S(prompt.to_owned())
            },
        ));
    }
    if let Some(favorite) = body.is_favorite {
        fields.push(("is_favorite", AttributeValue::Bool(favorite)));
    }
    if fields.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to update: send `is_favorite`, `prompt_text` and/or `name`",
        ));
    }
    if !validation::is_ulid(&id) {
        return Err(ApiError::not_found("asset"));
    }
    fields.push((
        "updated_at",
        AttributeValue::S(clock::rfc3339(clock::now())),
    ));
    let asset = state
        .env
        .table
        .update_asset(&caller.user_id, &id, fields)
        .await?
        .ok_or_else(|| ApiError::not_found("asset"))?;
    Ok(Json(view(&state, asset).await?))
}

/// Flip `is_favorite`. Each call flips once: the write is conditional on the
/// value read, and a lost race is retried on a fresh read.
#[utoipa::path(
    post, path = "/api/assets/{id}/favorite/", tag = "assets",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AssetView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
pub async fn toggle_favorite(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, ApiError> {
    for _ in 0..4 {
        let asset = owned_asset(&state, &caller, &id).await?;
        let now = clock::rfc3339(clock::now());
        if let Some(updated) = state
            .env
            .table
            .set_favorite(&asset, !asset.is_favorite, &now)
            .await?
        {
            return Ok(Json(view(&state, updated).await?));
        }
    }
    Err(ApiError::conflict("the asset changed meanwhile; retry"))
}

/// Delete an asset with its object (and the file it came from). A headliner
/// that was this asset is cleared first.
#[utoipa::path(
    delete, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody))
)]
pub async fn delete_asset(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let asset = owned_asset(&state, &caller, &id).await?;
    let table = &state.env.table;
    if let Some(b) = table.get_box(&caller.user_id, &asset.box_id).await?
        && b.headliner_asset.as_deref() == Some(asset.id.as_str())
    {
        let now = clock::rfc3339(clock::now());
        table
            .update_box(&caller.user_id, &b.id, None, Some(None), &now)
            .await?;
    }
    state.env.bucket.delete(&asset.s3_key).await?;
    let in_box = table
        .get_box(&caller.user_id, &asset.box_id)
        .await?
        .is_some();
    table.delete_asset_records(&asset, in_box).await?.ok();
    Ok(StatusCode::NO_CONTENT)
}
