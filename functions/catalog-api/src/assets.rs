//! Single-asset routes (SPEC §3.4): get, edit (`name`, `prompt_text`,
//! `is_favorite`), favourite toggle, delete. The list with every filter comes
//! next; a box's assets are listed by `GET /api/boxes/{id}/assets/`.

use assetbox_shared::assets::prompt_field;
use assetbox_shared::assets::{AssetFilters, AssetScope};
use assetbox_shared::assets::{AssetRecord, AssetStatus, AssetView};
use assetbox_shared::clock;
use assetbox_shared::error::{ApiError, ErrorBody, found_by_id};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery};
use assetbox_shared::media::AssetType;
use assetbox_shared::pagination::{Page, PageQuery};
use assetbox_shared::validation;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::state::{FilesState, owned_box};

pub const ASSET_NAME_MAX_CHARS: usize = 255;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/assets", get(list_assets))
        .route(
            "/api/assets/{id}",
            get(get_asset).patch(update_asset).delete(delete_asset),
        )
        .route("/api/assets/{id}/favorite", post(toggle_favorite))
        .with_state(state)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetsQuery {
    /// Only the assets of this box (one of yours, else 404).
    pub r#box: Option<String>,
    /// Only the assets of this project (one of yours, else 404).
    pub project: Option<String>,
    /// Only images or only videos.
    #[param(value_type = AssetType, required = false)]
    pub asset_type: Option<String>,
    /// Only favourites (`true`) or only the others (`false`).
    #[param(value_type = bool, required = false)]
    pub is_favorite: Option<String>,
    /// Only assets in this state.
    #[param(value_type = AssetStatus, required = false)]
    pub status: Option<String>,
    /// Only assets whose prompt contains this text (case-insensitive).
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// Items read for this page (see the operation's description).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page of this same list (same
    /// filters).
    pub cursor: Option<String>,
}

/// List your assets
///
/// In a box, a project or everywhere, newest first, with every filter
/// combined. Each page looks at up to `limit` assets and returns those that
/// match, so a page may hold fewer (even none) while `next_cursor` is set:
/// follow `next_cursor` until it is `null`.
#[utoipa::path(
    get, path = "/api/assets/", tag = "assets",
    params(AssetsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of assets.", body = inline(Page<AssetView>)),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid (`fields` names it).", body = ErrorBody),
        (status = 404, description = "No box (or project) of yours has the id `box` (or `project`).", body = ErrorBody),
    )
)]
// Long on purpose: scope (box, project or all) and filters are checked in
// turn, then the page is read and each box name looked up once.
pub async fn list_assets(
    State(state): State<FilesState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AssetsQuery>,
) -> Result<Json<Page<AssetView>>, ApiError> {
    let mut filters = AssetFilters::default();
    if let Some(raw) = nonempty(&query.asset_type) {
        filters.asset_type = Some(
            AssetType::parse_any_case(raw)
                .ok_or_else(|| ApiError::field("asset_type", "must be IMAGE or VIDEO"))?,
        );
    }
    if let Some(raw) = nonempty(&query.status) {
        filters.status = Some(AssetStatus::parse_any_case(raw).ok_or_else(|| {
            ApiError::field("status", "must be PENDING, PROCESSING, COMPLETED or FAILED")
        })?);
    }
    if let Some(raw) = nonempty(&query.is_favorite) {
        filters.is_favorite = Some(match raw {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(ApiError::field("is_favorite", "must be true or false")),
        });
    }
    if let Some(raw) = nonempty(&query.search) {
        if raw.chars().count() > 200 {
            return Err(ApiError::field("search", "must be at most 200 characters"));
        }
        filters.search = Some(raw.to_owned());
    }
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    };
    let table = &state.env.table;
    let (scope, scope_key) = match (nonempty(&query.r#box), nonempty(&query.project)) {
        (Some(box_id), project) => {
            let found = owned_box(table, &caller, box_id).await?;
            if project.is_some_and(|p| p != found.project) {
                // A box of another project: nothing can match both.
                return Ok(Json(Page {
                    results: vec![],
                    next_cursor: None,
                }));
            }
            (AssetScope::Box(box_id), format!("box={box_id}"))
        }
        (None, Some(project_id)) => {
            crate::state::owned_project(table, &caller, project_id).await?;
            (
                AssetScope::Project(project_id),
                format!("project={project_id}"),
            )
        }
        (None, None) => (AssetScope::Owner, String::new()),
    };
    // The cursor belongs to this scope and these filters.
    let cursor_scope = format!("assets?{scope_key}&{filters:?}");
    let paging = state.cursors.paging(&caller.user_id, cursor_scope, &page)?;
    let listing = table
        .list_assets(
            &caller.user_id,
            scope,
            &filters,
            paging.limit,
            paging.after.clone(),
        )
        .await?;
    let signer = state.env.presigner().await?;
    let mut box_names = std::collections::HashMap::new();
    let mut results = Vec::with_capacity(listing.items.len());
    for asset in listing.items {
        if !box_names.contains_key(&asset.box_id) {
            let name = table
                .get_box(&caller.user_id, &asset.box_id)
                .await?
                .map(|b| b.name)
                .unwrap_or_default();
            box_names.insert(asset.box_id.clone(), name);
        }
        let box_name = box_names[&asset.box_id].clone();
        results.push(state.env.asset_view(&signer, asset, &box_name));
    }
    Ok(Json(paging.page(results, listing.next)))
}

/// A query value with content, trimmed.
fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn owned_asset(
    state: &FilesState,
    caller: &Caller,
    id: &str,
) -> Result<AssetRecord, ApiError> {
    found_by_id("asset", id, || {
        state.env.table.get_asset(&caller.user_id, id)
    })
    .await
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
    Ok(state.env.asset_view(&signer, asset, &box_name))
}

/// Get an asset
///
/// One of your assets, with short-lived file URLs.
#[utoipa::path(
    get, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path, description = "The asset's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The asset.", body = AssetView),
        (status = 404, description = "No asset of yours has this id.", body = ErrorBody),
    )
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
    /// Up to 4000 characters once trimmed (line breaks and tabs allowed);
    /// empty clears it.
    #[schema(max_length = 4000)]
    pub prompt_text: Option<String>,
    /// 1–255 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
}

/// Edit an asset
///
/// Its favourite flag, prompt and/or name; send at least one.
#[utoipa::path(
    patch, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path, description = "The asset's id.")),
    request_body = UpdateAsset,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited asset.", body = AssetView),
        (status = 400, description = "Nothing to update, a field breaks its rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No asset of yours has this id.", body = ErrorBody),
    )
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
        let prompt = prompt_field(Some(prompt))?;
        let (text, search) = match prompt {
            None => (AttributeValue::Null(true), AttributeValue::Null(true)),
            // A lower-cased copy makes `search` case-insensitive.
            Some(p) => {
                let lower = p.to_lowercase();
                (AttributeValue::S(p), AttributeValue::S(lower))
            }
        };
        fields.push(("prompt_text", text));
        fields.push(("prompt_search", search));
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
    if body.is_favorite.is_some() {
        follow_favorite(&state, &asset).await;
    }
    Ok(Json(view(&state, asset).await?))
}

/// `POST /api/assets/{id}/favorite/`: an explicit value, or none to toggle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FavoriteBody {
    /// The flag to set; setting the value it has changes nothing. Absent
    /// (or no body at all), the flag is toggled.
    pub is_favorite: Option<bool>,
}

/// Toggle (or set) an asset's favourite flag
///
/// Without a body (or with `{}`), each call flips `is_favorite` once, also
/// when calls race. With `{"is_favorite": true|false}` it sets that value
/// (repeating it changes nothing). Any other body is refused.
// The write is conditional on the value read; a lost race is retried on a
// fresh read.
#[utoipa::path(
    post, path = "/api/assets/{id}/favorite/", tag = "assets",
    params(("id" = String, Path, description = "The asset's id.")),
    request_body(content = Option<FavoriteBody>, description = "Optional: the value to set instead of toggling."),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The asset with its new flag.", body = AssetView),
        (status = 400, description = "A body that is not `{\"is_favorite\": true|false}`.", body = ErrorBody),
        (status = 404, description = "No asset of yours has this id.", body = ErrorBody),
        (status = 409, description = "The asset kept changing meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn toggle_favorite(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<AssetView>, ApiError> {
    let wanted = assetbox_shared::http::optional_json::<FavoriteBody>(&headers, &body)?
        .and_then(|b| b.is_favorite);
    for _ in 0..4 {
        let asset = owned_asset(&state, &caller, &id).await?;
        let to = wanted.unwrap_or(!asset.is_favorite);
        if to == asset.is_favorite {
            return Ok(Json(view(&state, asset).await?));
        }
        let now = clock::rfc3339(clock::now());
        if let Some(updated) = state.env.table.set_favorite(&asset, to, &now).await? {
            follow_favorite(&state, &updated).await;
            return Ok(Json(view(&state, updated).await?));
        }
    }
    Err(ApiError::conflict("the asset changed meanwhile; retry"))
}

/// Moves the asset's retention entry after its favourite flag changed.
/// The change itself stands either way: a failure here only leaves a kept
/// asset for the retention task to read and skip (or a freed one to wait
/// for the next write), so it is logged, not answered.
async fn follow_favorite(state: &FilesState, asset: &AssetRecord) {
    if let Err(e) = state.env.table.follow_favorite(asset).await {
        tracing::warn!(asset = asset.id, error = %e, "retention entry not moved");
    }
}

/// Delete an asset
///
/// With its stored file (and the uploaded file it came from). A box whose
/// headliner it was has none afterwards.
#[utoipa::path(
    delete, path = "/api/assets/{id}/", tag = "assets",
    params(("id" = String, Path, description = "The asset's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No asset of yours has this id.", body = ErrorBody),
        (status = 409, description = "The asset kept changing meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn delete_asset(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let asset = owned_asset(&state, &caller, &id).await?;
    let parent = state
        .env
        .table
        .get_box(&caller.user_id, &asset.box_id)
        .await?;
    // Gone either way: deleted now or by a racing call.
    delete_asset_fully(&state, asset, parent.is_some()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an asset's objects, then its records; when the asset changed
/// between the read and the delete (an import finished, bringing an object
/// and bytes) or its box made it the headliner meanwhile, reads it again and
/// repeats, so nothing is left behind and no headliner names it. `false`
/// when another call deleted it first.
pub(crate) async fn delete_asset_fully(
    state: &FilesState,
    mut asset: AssetRecord,
    count_in_box: bool,
) -> Result<bool, ApiError> {
    let table = &state.env.table;
    for _ in 0..4 {
        if count_in_box {
            // The box's headliner goes with it, if still this asset (one
            // set meanwhile to another stays); the record delete below is
            // conditional on it being gone, so a PATCH racing this is seen.
            let now = clock::rfc3339(clock::now());
            table
                .clear_headliner_if(&asset.owner, &asset.box_id, &asset.id, &now)
                .await?;
        }
        state.env.delete_asset_objects(&asset).await?;
        if table
            .delete_asset_records(&asset, count_in_box)
            .await?
            .is_ok()
        {
            return Ok(true);
        }
        match table.get_asset(&asset.owner, &asset.id).await? {
            Some(fresh) => asset = fresh,
            None => return Ok(false),
        }
    }
    Err(ApiError::conflict("the asset keeps changing; retry"))
}
