//! Boxes (SPEC §3.4): create, read, rename, set the headliner, move, delete
//! (with its assets), list a box's assets, and reorder a project's boxes.
//!
//! Order lives on the project (`box_order`, see `shared/src/db/keys.rs`): every
//! change is one conditional write on the list as read, retried a few times
//! when another change got there first, so `order_index` stays dense and a
//! reorder is all-or-nothing.
//!
//! Deleting a box deletes its assets inline (objects first, then records,
//! page by page) before answering; a box too large for one invocation is
//! left consistent (box gone, remaining assets still listed under it) and
//! the cleanup job is where such leftovers will be swept.

use assetbox_shared::assets::AssetView;
use assetbox_shared::catalog::{BoxRecord, BoxView};
use assetbox_shared::catalog::{NAME_MAX_CHARS, ProjectRecord, ProjectStore};
use assetbox_shared::clock;
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, ErrorBody, found_by_id};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery, created};
use assetbox_shared::pagination::{Page, PageQuery};
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::state::FilesState;
use crate::state::owned_project;

/// Attempts at an order change before answering 409.
const ORDER_ATTEMPTS: usize = 4;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/boxes", get(list_boxes).post(create_box))
        .route(
            "/api/boxes/{id}",
            get(get_box).patch(update_box).delete(delete_box),
        )
        .route("/api/boxes/{id}/assets", get(list_box_assets))
        .route("/api/projects/{id}/boxes/reorder", post(reorder_boxes))
        .with_state(state)
}

/// One page of a project's boxes in order. The cursor is the position in
/// the order, sealed to the caller and the project.
pub async fn box_page<S: ProjectStore>(
    store: &S,
    cursors: &assetbox_shared::pagination::CursorKey,
    caller: &Caller,
    project: &ProjectRecord,
    page: &PageQuery,
) -> Result<Page<BoxView>, ApiError> {
    let scope = format!("boxes?project={}", project.id);
    let paged = cursors.offset_page(
        &caller.user_id,
        &scope,
        page.cursor.as_deref(),
        &project.box_order,
        page.limit()? as usize,
    )?;
    let boxes = store.get_boxes(&caller.user_id, paged.ids).await?;
    Ok(Page {
        results: boxes
            .into_iter()
            .map(|b| BoxView::new(b, project))
            .collect(),
        next_cursor: paged.next_cursor,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoxesQuery {
    /// The id of the project whose boxes to list.
    #[param(required = true, min_length = 1)]
    pub project: Option<String>,
    /// Items per page.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page of this same list.
    pub cursor: Option<String>,
}

/// List a project's boxes
///
/// In storyboard order, a page at a time.
#[utoipa::path(
    get, path = "/api/boxes/", tag = "boxes",
    params(BoxesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of boxes.", body = inline(Page<BoxView>)),
        (status = 400, description = "`project` is missing, `limit` is out of range or `cursor` is not one of this list's.", body = ErrorBody),
        (status = 404, description = "No project of yours has the id `project`.", body = ErrorBody),
    )
)]
pub async fn list_boxes(
    State(state): State<FilesState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<BoxesQuery>,
) -> Result<Json<Page<BoxView>>, ApiError> {
    let project_id = query
        .project
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::field("project", "is required: boxes are listed per project"))?;
    let project = owned_project(&state.env.table, &caller, project_id).await?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(
        box_page(&state.env.table, &state.cursors, &caller, &project, &page).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBox {
    /// The id of one of your projects.
    pub project: String,
    /// 1–200 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Where to insert it, from 0 (first) to the project's box count (the
    /// end, also the default).
    pub order_index: Option<u32>,
}

/// Runs an order change on a fresh read of the project until it applies.
async fn change_order<F, Fut>(
    state: &FilesState,
    caller: &Caller,
    project_id: &str,
    mut attempt: F,
) -> Result<ProjectRecord, ApiError>
where
    F: FnMut(ProjectRecord) -> Fut,
    Fut: Future<Output = Result<Result<ProjectRecord, Refusal>, ApiError>>,
{
    for _ in 0..ORDER_ATTEMPTS {
        let project = owned_project(&state.env.table, caller, project_id).await?;
        match attempt(project).await? {
            Ok(after) => return Ok(after),
            Err(_) => continue,
        }
    }
    Err(ApiError::conflict(
        "the project's boxes changed meanwhile; reload and retry",
    ))
}

/// Create a box
///
/// A new, empty box (shot) in one of your projects, at the end of its
/// storyboard or at `order_index`.
#[utoipa::path(
    post, path = "/api/boxes/", tag = "boxes",
    request_body = CreateBox,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new box.", body = BoxView),
        (status = 400, description = "The name or `order_index` breaks a rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No project of yours has the id `project`.", body = ErrorBody),
        (status = 409, description = "The project already holds 1000 boxes (`too_many_boxes`), or its boxes kept changing meanwhile; reload and retry.", body = ErrorBody),
    )
)]
pub async fn create_box(
    State(state): State<FilesState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBox>,
) -> Result<impl IntoResponse, ApiError> {
    let name = validation::display_name(&body.name, NAME_MAX_CHARS)
        .map_err(|r| ApiError::field("name", r))?;
    let now = clock::rfc3339(clock::now());
    let record = BoxRecord {
        id: validation::new_id(),
        owner: caller.user_id.clone(),
        project: body.project.clone(),
        name,
        headliner_asset: None,
        assets_count: 0,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    let project = change_order(&state, &caller, &body.project, |project| {
        let record = record.clone();
        let table = state.env.table.clone();
        async move {
            let len = project.box_order.len();
            if len >= assetbox_shared::catalog::MAX_BOXES {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "too_many_boxes",
                    format!(
                        "the project has {len} boxes, the most a project may hold; delete some first"
                    ),
                ));
            }
            let at = body.order_index.map(|i| i as usize).unwrap_or(len);
            if at > len {
                return Err(ApiError::field(
                    "order_index",
                    format!("must be 0 to {len} (the project has {len} boxes)"),
                ));
            }
            let mut order = project.box_order.clone();
            order.insert(at, record.id.clone());
            Ok(table
                .create_box(&project, &record, &order)
                .await?
                .map(|()| ProjectRecord {
                    box_order: order,
                    ..project
                }))
        }
    })
    .await?;
    Ok(created(BoxView::new(record, &project)))
}

/// The caller's box and its project, or 404.
async fn owned_box(
    state: &FilesState,
    caller: &Caller,
    id: &str,
) -> Result<(BoxRecord, ProjectRecord), ApiError> {
    let found = crate::state::owned_box(&state.env.table, caller, id).await?;
    let project = state
        .env
        .table
        .get_project(&caller.user_id, &found.project)
        .await?
        .ok_or_else(|| ApiError::not_found("box"))?;
    Ok((found, project))
}

/// Get a box
///
/// One of your boxes, with its position and headliner.
#[utoipa::path(
    get, path = "/api/boxes/{id}/", tag = "boxes",
    params(("id" = String, Path, description = "The box's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The box.", body = BoxView),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
    )
)]
pub async fn get_box(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BoxView>, ApiError> {
    let (found, project) = owned_box(&state, &caller, &id).await?;
    Ok(Json(BoxView::new(found, &project)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBox {
    /// The new name: 1–200 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// The id of an asset of this box to make its headliner, or `null` to
    /// clear it.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "given")]
    pub headliner_asset: Option<serde_json::Value>,
    /// Move the box to this position, from 0 to the project's box count
    /// less one.
    pub order_index: Option<u32>,
}

/// Any value the body gives, `null` included: serde reads a `null` `Option`
/// as absent, and `null` here means "clear the headliner".
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Edit a box
///
/// Rename it, set or clear its headliner, or move it; send at least one
/// field.
#[utoipa::path(
    patch, path = "/api/boxes/{id}/", tag = "boxes",
    params(("id" = String, Path, description = "The box's id.")),
    request_body = UpdateBox,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited box.", body = BoxView),
        (status = 400, description = "Nothing to update, a field breaks its rule (e.g. `headliner_asset` is not an asset of this box), or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
        (status = 409, description = "The project's boxes kept changing meanwhile; reload and retry.", body = ErrorBody),
    )
)]
pub async fn update_box(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBox>,
) -> Result<Json<BoxView>, ApiError> {
    if body.name.is_none() && body.headliner_asset.is_none() && body.order_index.is_none() {
        return Err(ApiError::bad_request(
            "nothing to update: send `name`, `headliner_asset` and/or `order_index`",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| validation::display_name(n, NAME_MAX_CHARS))
        .transpose()
        .map_err(|r| ApiError::field("name", r))?;
    let (found, mut project) = owned_box(&state, &caller, &id).await?;
    let headliner = headliner_of(&state, &caller, &found, body.headliner_asset).await?;
    if let Some(to) = body.order_index {
        project = move_box(&state, &caller, &found, to).await?;
    }
    let updated = write_box_fields(&state, &caller, found, name, headliner).await?;
    Ok(Json(BoxView::new(updated, &project)))
}

/// The `headliner_asset` asked for: unchanged (`None`), cleared
/// (`Some(None)`) or one of this box's assets.
async fn headliner_of(
    state: &FilesState,
    caller: &Caller,
    found: &BoxRecord,
    asked: Option<serde_json::Value>,
) -> Result<Option<Option<String>>, ApiError> {
    match asked {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(serde_json::Value::String(asset_id)) => {
            let not_here = || ApiError::field("headliner_asset", "must be an asset of this box");
            if !validation::is_ulid(&asset_id) {
                return Err(not_here());
            }
            let asset = state
                .env
                .table
                .get_asset(&caller.user_id, &asset_id)
                .await?
                .filter(|a| a.box_id == found.id)
                .ok_or_else(not_here)?;
            Ok(Some(Some(asset.id)))
        }
        Some(_) => Err(ApiError::field(
            "headliner_asset",
            "must be an asset id or null",
        )),
    }
}

/// Moves the box to position `to` of its project's order.
async fn move_box(
    state: &FilesState,
    caller: &Caller,
    found: &BoxRecord,
    to: u32,
) -> Result<ProjectRecord, ApiError> {
    let box_id = found.id.clone();
    change_order(state, caller, &found.project, |project| {
        let table = state.env.table.clone();
        let box_id = box_id.clone();
        async move {
            let len = project.box_order.len();
            if to as usize >= len {
                return Err(ApiError::field(
                    "order_index",
                    format!(
                        "must be 0 to {} (the project has {len} boxes)",
                        len.saturating_sub(1)
                    ),
                ));
            }
            let mut order = project.box_order.clone();
            order.retain(|b| *b != box_id);
            order.insert(to as usize, box_id);
            let now = clock::rfc3339(clock::now());
            Ok(table
                .reorder_boxes(&project, &order, &now)
                .await?
                .map(|()| ProjectRecord {
                    box_order: order,
                    ..project
                }))
        }
    })
    .await
}

/// Writes the new name and headliner, if any; the box as it is then.
async fn write_box_fields(
    state: &FilesState,
    caller: &Caller,
    found: BoxRecord,
    name: Option<String>,
    headliner: Option<Option<String>>,
) -> Result<BoxRecord, ApiError> {
    let now = clock::rfc3339(clock::now());
    if let Some(Some(asset_id)) = &headliner {
        // Set together with a check that the asset is still this box's: a
        // delete racing it cannot leave the box pointing at nothing.
        return match state
            .env
            .table
            .set_headliner(&caller.user_id, &found.id, asset_id, name.as_deref(), &now)
            .await?
        {
            Ok(()) => {
                follow_headliner(
                    state,
                    caller,
                    found.headliner_asset.as_deref(),
                    Some(asset_id),
                )
                .await;
                Ok(BoxRecord {
                    name: name.unwrap_or(found.name),
                    headliner_asset: Some(asset_id.clone()),
                    updated_at: now,
                    ..found
                })
            }
            Err(Refusal::ParentGone) => Err(ApiError::box_gone(BoxNamed::InPath)),
            Err(_) => Err(ApiError::field(
                "headliner_asset",
                "must be an asset of this box",
            )),
        };
    }
    if name.is_none() && headliner.is_none() {
        return Ok(found);
    }
    let before = found.headliner_asset.clone();
    let updated = state
        .env
        .table
        .update_box(
            &caller.user_id,
            &found.id,
            name.as_deref(),
            headliner.as_ref().map(|h| h.as_deref()),
            &now,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("box"))?;
    if headliner.is_some() {
        follow_headliner(state, caller, before.as_deref(), None).await;
    }
    Ok(updated)
}

/// Moves retention entries after a box's headliner changed from `before`
/// to `after`: the new headliner is kept, the one it replaced is not
/// (unless a favourite). The change stands either way — the retention
/// delete checks the box itself — so failures are logged, not answered.
async fn follow_headliner(
    state: &FilesState,
    caller: &Caller,
    before: Option<&str>,
    after: Option<&str>,
) {
    let table = &state.env.table;
    if let Some(kept) = after
        && let Err(e) = table.retention_off(&caller.user_id, kept).await
    {
        tracing::warn!(asset = kept, error = %e, "retention entry not removed");
    }
    let Some(freed) = before.filter(|b| Some(*b) != after) else {
        return;
    };
    let result = match table.get_asset(&caller.user_id, freed).await {
        Ok(Some(asset)) => table.retention_on(&asset).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(asset = freed, error = %e, "retention entry not restored");
    }
}

/// Times a box delete looks again for assets the box index has not shown
/// yet (waiting 0.1, 0.2, … s: 2.1 s in all).
const INDEX_WAITS: u32 = 6;

/// Delete a box
///
/// With its assets, their stored files and its comments.
#[utoipa::path(
    delete, path = "/api/boxes/{id}/", tag = "boxes",
    params(("id" = String, Path, description = "The box's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
        (status = 409, description = "The box or one of its assets kept changing meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn delete_box(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (found, _) = owned_box(&state, &caller, &id).await?;
    // The box as deleted: each attempt reads it again, as its delete is
    // conditional on the asset count read.
    // The box as last read, and whether an attempt found it changed (its
    // delete is conditional on the asset count read): only then read again.
    let gone = std::sync::Mutex::new((found.clone(), false));
    change_order(&state, &caller, &found.project, |project| {
        let table = state.env.table.clone();
        let (caller, gone, id) = (&caller, &gone, &id);
        async move {
            let (last, stale) = gone.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let current = match stale {
                true => found_by_id("box", id, || table.get_box(&caller.user_id, id)).await?,
                false => last,
            };
            let order: Vec<String> = project
                .box_order
                .iter()
                .filter(|b| **b != current.id)
                .cloned()
                .collect();
            let now = clock::rfc3339(clock::now());
            let deleted = table.delete_box(&project, &current, &order, &now).await?;
            *gone.lock().unwrap_or_else(|p| p.into_inner()) = (current, deleted.is_err());
            Ok(deleted.map(|()| project))
        }
    })
    .await?;
    let (gone, _) = gone.into_inner().unwrap_or_else(|p| p.into_inner());
    // The box is gone, and with it the chance to add assets; now the ones it
    // held: objects first, then records. They are found through the box
    // index, which lags the table, so an asset added just before may not be
    // listed yet: the count the box held says how many to wait for (a few
    // seconds at most; what is still missing then is logged for cleanup).
    let mut left = gone.assets_count;
    let mut waits = 0;
    loop {
        let page = state.env.table.list_box_assets(&gone.id, 100, None).await?;
        if page.items.is_empty() {
            if left == 0 || waits == INDEX_WAITS {
                break;
            }
            waits += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100 * waits as u64)).await;
            continue;
        }
        for asset in page.items {
            if crate::assets::delete_asset_fully(&state, asset, false).await? {
                left = left.saturating_sub(1);
            }
        }
    }
    if left > 0 {
        tracing::warn!(box_id = %gone.id, left, "assets of a deleted box not indexed yet");
    }
    state
        .env
        .table
        .delete_box_comments(&caller.user_id, &found.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List a box's assets
///
/// Newest first, a page at a time, with short-lived file URLs.
#[utoipa::path(
    get, path = "/api/boxes/{id}/assets/", tag = "boxes",
    params(("id" = String, Path, description = "The box's id."), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of assets.", body = inline(Page<AssetView>)),
        (status = 400, description = "`limit` is out of range or `cursor` is not one of this list's.", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
    )
)]
pub async fn list_box_assets(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<AssetView>>, ApiError> {
    let (found, _) = owned_box(&state, &caller, &id).await?;
    let scope = format!("assets?box={}", found.id);
    let paging = state.cursors.paging(&caller.user_id, scope, &page)?;
    let listing = state
        .env
        .table
        .list_box_assets(&found.id, paging.limit, paging.after.clone())
        .await?;
    let signer = state.env.presigner().await?;
    Ok(Json(
        paging.page(
            listing
                .items
                .into_iter()
                .map(|a| state.env.asset_view(&signer, a, &found.name))
                .collect(),
            listing.next,
        ),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderBoxes {
    /// Every box id of the project, each once, in the new order.
    pub box_ids: Vec<String>,
}

/// Reorder a project's boxes
///
/// All at once: the list must name every box of the project exactly once.
#[utoipa::path(
    post, path = "/api/projects/{id}/boxes/reorder/", tag = "boxes",
    params(("id" = String, Path, description = "The project's id.")),
    request_body = ReorderBoxes,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project's boxes in their new order (the first 200).", body = inline(Page<BoxView>)),
        (status = 400, description = "`box_ids` is not exactly the project's boxes, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
        (status = 409, description = "The boxes changed since they were read; reload and retry.", body = ErrorBody),
    )
)]
pub async fn reorder_boxes(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReorderBoxes>,
) -> Result<Json<Page<BoxView>>, ApiError> {
    let project = owned_project(&state.env.table, &caller, &id).await?;
    let mut given = body.box_ids.clone();
    given.sort();
    let mut current = project.box_order.clone();
    current.sort();
    if given != current {
        return Err(ApiError::field(
            "box_ids",
            format!(
                "must list each of the project's {} boxes exactly once",
                current.len()
            ),
        ));
    }
    let now = clock::rfc3339(clock::now());
    if state
        .env
        .table
        .reorder_boxes(&project, &body.box_ids, &now)
        .await?
        .is_err()
    {
        // Built on the list as read: a concurrent change makes it stale.
        return Err(ApiError::conflict(
            "the project's boxes changed meanwhile; reload and retry",
        ));
    }
    let project = ProjectRecord {
        box_order: body.box_ids,
        ..project
    };
    let page = PageQuery {
        limit: Some("200".into()),
        cursor: None,
    };
    Ok(Json(
        box_page(&state.env.table, &state.cursors, &caller, &project, &page).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_headliner_clears_and_an_absent_one_keeps() {
        let body: UpdateBox =
            assetbox_shared::http::parse_json(br#"{"headliner_asset":null}"#).unwrap();
        assert_eq!(body.headliner_asset, Some(serde_json::Value::Null));
        let body: UpdateBox = assetbox_shared::http::parse_json(br#"{"name":"a"}"#).unwrap();
        assert_eq!(body.headliner_asset, None);
    }
}
