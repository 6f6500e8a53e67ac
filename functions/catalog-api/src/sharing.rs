//! Sharing (SPEC §3.4): owners create, list and revoke a project's share
//! links; anyone with a live token sees the project's boxes in order with
//! their headliner and favourite assets (read only) and may comment on a
//! box; owners list a box's comments and mark them read or unread.
//!
//! What the public view shows: the project's name, the link's expiry, and
//! per box its id, name, position, headliner and favourites with short-lived
//! URLs, type, size in pixels, duration and prompt. Nothing else of the
//! owner's: no other assets, no generation settings, no files, no comments,
//! and no owner id in the JSON — only inside the presigned URLs, whose object
//! keys are `uploads/<owner sub>/…` (see README). Expired, revoked and unknown tokens answer the same 404.
//!
//! Abuse limit: public comments are capped per link per hour
//! (`SHARE_COMMENTS_PER_HOUR`, 30) with a conditional counter, so the cap
//! holds under concurrent posts; beyond it a 429 with `Retry-After`.

use assetbox_shared::assets::AssetRecord;
use assetbox_shared::assets::{AssetFilters, AssetScope};
use assetbox_shared::catalog::{ProjectRecord, ProjectStore};
use assetbox_shared::clock;
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, ErrorBody, found_by_id};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery};
use assetbox_shared::media::AssetType;
use assetbox_shared::pagination::{Page, PageQuery};
use assetbox_shared::sharing::{
    self, AUTHOR_NAME_MAX_CHARS, COMMENT_MAX_CHARS, CommentRecord, CommentView, DEFAULT_SHARE_DAYS,
    ShareLinkRecord, ShareLinkView,
};
use assetbox_shared::uploads::flow::is_past;
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::state::owned_project;
use crate::state::{FilesState, owned_box};

/// Pages of 200 assets the public view reads per box for its favourites.
const FAVOURITE_PAGES_PER_BOX: usize = 3;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route(
            "/api/projects/{id}/share-links",
            get(list_links).post(create_link),
        )
        .route(
            "/api/projects/{id}/share-links/{link_id}",
            axum::routing::delete(revoke_link),
        )
        .route("/api/shared/{token}", get(shared_view))
        .route(
            "/api/shared/{token}/boxes/{box_id}/comments",
            post(post_comment),
        )
        .route("/api/boxes/{id}/comments", get(list_comments))
        .route("/api/comments/{id}", patch(mark_comment))
        .with_state(state)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShareLink {
    /// Days until the link expires; 7 when not given.
    #[schema(minimum = 1, maximum = 30, default = 7)]
    pub expires_in_days: Option<u32>,
}

/// A new share link. This is the only time its token is shown: keep the URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewShareLink {
    pub id: String,
    /// The secret that opens the public view (`GET /api/shared/{token}/`).
    pub token: String,
    /// What to hand out: the web app's page for the token, or the API's
    /// public view (a path relative to the API) when no app is configured.
    #[schema(format = "uri-reference")]
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Create a share link
///
/// Anyone with the link sees the project's boxes in order with their
/// headliners and favourites (read only) and may comment on its boxes,
/// until it expires or is revoked.
#[utoipa::path(
    post, path = "/api/projects/{id}/share-links/", tag = "sharing",
    params(("id" = String, Path, description = "The project's id.")),
    request_body = CreateShareLink,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new link with its token.", body = NewShareLink),
        (status = 400, description = "`expires_in_days` is out of range, or the body is not valid JSON of this shape (send `{}` for the defaults).", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
pub async fn create_link(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateShareLink>,
) -> Result<impl IntoResponse, ApiError> {
    let max = state.sharing.max_days;
    let days = body.expires_in_days.unwrap_or(DEFAULT_SHARE_DAYS.min(max));
    if !(1..=max).contains(&days) {
        return Err(ApiError::field(
            "expires_in_days",
            format!("must be from 1 to {max}"),
        ));
    }
    let project = owned_project(&state.env.table, &caller, &id).await?;
    let now = clock::now();
    let expires = now + time::Duration::days(days as i64);
    let token = sharing::new_token();
    let link = ShareLinkRecord {
        id: validation::new_id(),
        owner: caller.user_id.clone(),
        project: project.id,
        token_hash: sharing::token_hash(&token).expect("a fresh token is well formed"),
        created_at: clock::rfc3339(now),
        expires_at: clock::rfc3339(expires),
    };
    state
        .env
        .table
        .create_share_link(&link, expires.unix_timestamp())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewShareLink {
            id: link.id,
            url: state.sharing.share_url(&token),
            token,
            expires_at: link.expires_at,
        }),
    ))
}

/// List a project's share links
///
/// Newest first, a page at a time. Expired links stay listed (`active:
/// false`) for a while before they disappear; tokens are not shown.
// Until DynamoDB's TTL removes them.
#[utoipa::path(
    get, path = "/api/projects/{id}/share-links/", tag = "sharing",
    params(("id" = String, Path, description = "The project's id."), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of links.", body = inline(Page<ShareLinkView>)),
        (status = 400, description = "`limit` is out of range or `cursor` is not one of this list's.", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
pub async fn list_links(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<ShareLinkView>>, ApiError> {
    let project = owned_project(&state.env.table, &caller, &id).await?;
    let scope = format!("share-links?project={}", project.id);
    let paging = state.cursors.paging(&caller.user_id, scope, &page)?;
    let listing = state
        .env
        .table
        .list_share_links(&project.id, paging.limit, paging.after.clone())
        .await?;
    Ok(Json(
        paging.page(
            listing
                .items
                .into_iter()
                .filter(|l| l.owner == caller.user_id)
                .map(ShareLinkView::from)
                .collect(),
            listing.next,
        ),
    ))
}

/// Revoke a share link
///
/// Its token answers 404 from now on.
#[utoipa::path(
    delete, path = "/api/projects/{id}/share-links/{link_id}/", tag = "sharing",
    params(
        ("id" = String, Path, description = "The project's id."),
        ("link_id" = String, Path, description = "The link's id (not its token)."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No project of yours has this id, or it has no such link.", body = ErrorBody),
    )
)]
pub async fn revoke_link(
    State(state): State<FilesState>,
    caller: Caller,
    Path((id, link_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = owned_project(&state.env.table, &caller, &id).await?;
    let table = &state.env.table;
    let link = match validation::is_ulid(&link_id) {
        true => table.find_share_link(&project.id, &link_id).await?,
        false => None,
    }
    .filter(|l| l.owner == caller.user_id)
    .ok_or_else(|| ApiError::not_found("share link"))?;
    if table.delete_share_link(&link).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("share link"))
    }
}

/// The live link a token names and its project; one 404 for every reason.
async fn live_link(
    state: &FilesState,
    token: &str,
) -> Result<(String, ShareLinkRecord, ProjectRecord), ApiError> {
    let gone = || ApiError::not_found("share link");
    let hash = sharing::token_hash(token).ok_or_else(gone)?;
    let link = state
        .env
        .table
        .get_share_link(&hash)
        .await?
        .filter(|l| !is_past(&l.expires_at))
        .ok_or_else(gone)?;
    let project = state
        .env
        .table
        .get_project(&link.owner, &link.project)
        .await?
        .ok_or_else(gone)?;
    Ok((hash, link, project))
}

/// An asset as the public view shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedAsset {
    pub id: String,
    pub asset_type: AssetType,
    pub content_type: String,
    /// A short-lived download URL; `null` while the file is not stored yet.
    #[schema(required = true, format = "uri")]
    pub file_url: Option<String>,
    /// A short-lived URL of a JPEG thumbnail, once there is one.
    #[schema(required = true, format = "uri")]
    pub thumbnail_url: Option<String>,
    #[schema(required = true)]
    pub prompt_text: Option<String>,
    /// Pixels, once known.
    #[schema(required = true)]
    pub width: Option<u32>,
    #[schema(required = true)]
    pub height: Option<u32>,
    /// A video's length in milliseconds, once known.
    #[schema(required = true)]
    pub duration_ms: Option<u64>,
    pub is_favorite: bool,
}

/// A box as the public view shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedBox {
    /// The box's id (comments name it).
    pub id: String,
    pub name: String,
    /// Its position in the storyboard, from 0.
    pub order_index: u32,
    /// The asset that stands for the box, or `null`.
    #[schema(required = true)]
    pub headliner: Option<SharedAsset>,
    /// The box's favourite assets, newest first (the headliner too, when it
    /// is one).
    pub favorites: Vec<SharedAsset>,
}

/// A shared project, read only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedProject {
    pub name: String,
    /// When the link stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// How many boxes the project has (the pages together).
    pub boxes_count: u32,
    /// A page of its boxes, in storyboard order.
    pub boxes: Vec<SharedBox>,
    /// Pass as `?cursor=` for the next page of boxes; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// View a shared project
///
/// Public (the token is the key): the project's boxes in storyboard order,
/// a page at a time (20 unless `limit` says otherwise, at most 50), with
/// their headliners and favourites only.
// Work per call is bounded by the page, not the project: one BatchGet of
// the page's boxes and, per box, at most FAVOURITE_PAGES_PER_BOX queries
// of its assets (favourites among its 600 newest), 8 boxes at a time.
#[utoipa::path(
    get, path = "/api/shared/{token}/", tag = "sharing",
    params(("token" = String, Path, description = "The token of a share link."), SharedPageQuery),
    responses(
        (status = 200, description = "A page of the shared project.", body = SharedProject),
        (status = 400, description = "`limit` is out of range or `cursor` is not one of this view's.", body = ErrorBody),
        (status = 404, description = "The token is unknown, expired or revoked (they look the same).", body = ErrorBody),
    )
)]
// Long on purpose: the whole public read path in the order it runs (link,
// page of boxes, headliners and favourites in bounded parallel reads), so
// its bounds per call can be checked in one place.
pub async fn shared_view(
    State(state): State<FilesState>,
    Path(token): Path<String>,
    ApiQuery(page): ApiQuery<SharedPageQuery>,
) -> Result<Json<SharedProject>, ApiError> {
    use futures_util::{StreamExt, TryStreamExt};
    use std::collections::HashMap;
    let limit = page.limit()?;
    let (hash, link, project) = live_link(&state, &token).await?;
    let table = &state.env.table;
    let owner = &link.owner;
    // Cursors are bound to the link (its hash), not to a caller.
    let (reader, scope) = (format!("share:{hash}"), "shared");
    let paged = state.cursors.offset_page(
        &reader,
        scope,
        page.cursor.as_deref(),
        &project.box_order,
        limit,
    )?;
    let boxes = table.get_boxes(owner, paged.ids).await?;

    // Collected first: a lazy map over `boxes` inside a handler's future
    // trips the Send check (rust-lang/rust#102211).
    let reads: Vec<_> = boxes
        .iter()
        .map(|b| box_favourites(table, owner, b.id.clone()))
        .collect();
    let favourites: HashMap<String, Vec<AssetRecord>> = futures_util::stream::iter(reads)
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let reads: Vec<_> = boxes
        .iter()
        .map(|b| {
            let known = b.headliner_asset.as_ref().and_then(|id| {
                favourites
                    .get(&b.id)
                    .and_then(|f| f.iter().find(|a| &a.id == id))
                    .cloned()
            });
            box_headliner(table, owner, b.id.clone(), b.headliner_asset.clone(), known)
        })
        .collect();
    let headliners: HashMap<String, Option<AssetRecord>> = futures_util::stream::iter(reads)
        .buffer_unordered(8)
        .try_collect()
        .await?;

    let signer = state.env.presigner().await?;
    let shared = |a: &AssetRecord| {
        let view = state.env.asset_view(&signer, a.clone(), "");
        SharedAsset {
            id: view.id,
            asset_type: view.asset_type,
            content_type: view.content_type,
            file_url: view.file_url,
            thumbnail_url: view.thumbnail_url,
            prompt_text: view.prompt_text,
            width: view.width,
            height: view.height,
            duration_ms: view.duration_ms,
            is_favorite: view.is_favorite,
        }
    };
    let shown = boxes
        .iter()
        .map(|b| SharedBox {
            id: b.id.clone(),
            name: b.name.clone(),
            order_index: project
                .box_order
                .iter()
                .position(|id| *id == b.id)
                .unwrap_or_default() as u32,
            headliner: headliners.get(&b.id).and_then(Option::as_ref).map(&shared),
            favorites: favourites
                .get(&b.id)
                .map(|f| f.iter().map(&shared).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok(Json(SharedProject {
        name: project.name,
        expires_at: link.expires_at,
        boxes_count: project.box_order.len() as u32,
        boxes: shown,
        next_cursor: paged.next_cursor,
    }))
}

/// A box's favourites, newest first, among its newest assets.
async fn box_favourites(
    table: &assetbox_shared::db::Table,
    owner: &str,
    box_id: String,
) -> Result<(String, Vec<AssetRecord>), ApiError> {
    let favourites_only = AssetFilters {
        is_favorite: Some(true),
        ..AssetFilters::default()
    };
    let mut found: Vec<AssetRecord> = Vec::new();
    let mut after = None;
    for _ in 0..FAVOURITE_PAGES_PER_BOX {
        let page = table
            .list_assets(
                owner,
                AssetScope::Box(&box_id),
                &favourites_only,
                200,
                after,
            )
            .await?;
        found.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    Ok((box_id, found))
}

/// A box's headliner: the favourite already read, else one read.
async fn box_headliner(
    table: &assetbox_shared::db::Table,
    owner: &str,
    box_id: String,
    headliner: Option<String>,
    known: Option<AssetRecord>,
) -> Result<(String, Option<AssetRecord>), ApiError> {
    let asset = match (known, headliner) {
        (Some(asset), _) => Some(asset),
        (None, Some(id)) => table.get_asset(owner, &id).await?,
        (None, None) => None,
    };
    Ok((box_id, asset))
}

/// `?limit=&cursor=` of the public view: pages of at most 50 boxes, as each
/// box costs a few queries.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SharedPageQuery {
    /// Boxes per page.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 50, default = 20)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, as it was.
    pub cursor: Option<String>,
}

impl SharedPageQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.as_deref() {
            None | Some("") => Ok(20),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=50).contains(&n) => Ok(n),
                _ => Err(ApiError::field(
                    "limit",
                    "must be a whole number from 1 to 50",
                )),
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The commenter's name: 1–80 characters once trimmed, no control
    /// characters.
    #[schema(min_length = 1, max_length = 80, pattern = r"\S")]
    pub author_name: String,
    /// 1–2000 characters once trimmed; line breaks and tabs allowed.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub text: String,
}

fn comment_text(raw: &str) -> Result<String, String> {
    validation::multiline_text(raw, COMMENT_MAX_CHARS)?.ok_or_else(|| "must not be empty".into())
}

/// Comment on a shared box
///
/// Public (the token is the key). A link takes a limited number of comments
/// an hour (30 unless configured otherwise); beyond it the reply is 429
/// with `Retry-After`.
#[utoipa::path(
    post, path = "/api/shared/{token}/boxes/{box_id}/comments/", tag = "sharing",
    params(
        ("token" = String, Path, description = "The token of a share link."),
        ("box_id" = String, Path, description = "The id of a box of the shared project."),
    ),
    request_body = NewComment,
    responses(
        (status = 201, description = "The new comment.", body = CommentView),
        (status = 400, description = "A field breaks its rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "The token is unknown, expired or revoked, or the box is not in the shared project.", body = ErrorBody),
        (status = 409, description = "The box changed meanwhile; retry.", body = ErrorBody),
        (status = 429, description = "The link's comments for this hour are used up.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds until the next hour, when the link takes comments again."))),
    )
)]
pub async fn post_comment(
    State(state): State<FilesState>,
    Path((token, box_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<axum::response::Response, ApiError> {
    let author_name = validation::display_name(&body.author_name, AUTHOR_NAME_MAX_CHARS)
        .map_err(|r| ApiError::field("author_name", r))?;
    let text = comment_text(&body.text).map_err(|r| ApiError::field("text", r))?;
    let (hash, link, project) = live_link(&state, &token).await?;
    if !project.box_order.contains(&box_id) {
        return Err(ApiError::not_found("box"));
    }
    let now = clock::now();
    let hour = now.unix_timestamp().div_euclid(3600);
    if !state
        .env
        .table
        .take_comment_allowance(&hash, hour, state.sharing.comments_per_hour)
        .await?
    {
        let retry_after = (hour + 1) * 3600 - now.unix_timestamp();
        let mut response = ApiError::too_many_requests(format!(
            "this link takes at most {} comments an hour; try again later",
            state.sharing.comments_per_hour
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        return Ok(response);
    }
    let stamp = clock::rfc3339(now);
    let comment = CommentRecord {
        id: validation::new_id(),
        owner: link.owner,
        box_id,
        project: project.id,
        link_id: link.id,
        author_name,
        text,
        is_read: false,
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    match state.env.table.create_comment(&comment).await? {
        Ok(()) => Ok((StatusCode::CREATED, Json(CommentView::from(comment))).into_response()),
        Err(Refusal::ParentGone) => Err(ApiError::box_gone(BoxNamed::InPath)),
        Err(_) => Err(ApiError::conflict("the box changed meanwhile; retry")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CommentsQuery {
    /// Only read (`true`) or only unread (`false`) comments.
    #[param(value_type = bool, required = false)]
    pub is_read: Option<String>,
    /// Items per page.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page of this same list.
    pub cursor: Option<String>,
}

/// List a box's comments
///
/// The comments left through its project's share links, newest first.
#[utoipa::path(
    get, path = "/api/boxes/{id}/comments/", tag = "sharing",
    params(("id" = String, Path, description = "The box's id."), CommentsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of comments.", body = inline(Page<CommentView>)),
        (status = 400, description = "`is_read`, `limit` or `cursor` is invalid.", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
    )
)]
pub async fn list_comments(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<CommentsQuery>,
) -> Result<Json<Page<CommentView>>, ApiError> {
    let is_read = match query.is_read.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => return Err(ApiError::field("is_read", "must be true or false")),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let table = &state.env.table;
    let found = owned_box(table, &caller, &id).await?;
    let scope = format!("comments?box={}&is_read={is_read:?}", found.id);
    let paging = state.cursors.paging(&caller.user_id, scope, &page)?;
    let listing = table
        .list_box_comments(&found.id, is_read, paging.limit, paging.after.clone())
        .await?;
    Ok(Json(
        paging.page(
            listing
                .items
                .into_iter()
                .filter(|c| c.owner == caller.user_id)
                .map(CommentView::from)
                .collect(),
            listing.next,
        ),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkComment {
    pub is_read: bool,
}

/// Mark a comment read or unread
///
/// A comment on one of your boxes.
#[utoipa::path(
    patch, path = "/api/comments/{id}/", tag = "sharing",
    params(("id" = String, Path, description = "The comment's id.")),
    request_body = MarkComment,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The comment.", body = CommentView),
        (status = 400, description = "The body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No comment on your boxes has this id.", body = ErrorBody),
    )
)]
pub async fn mark_comment(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MarkComment>,
) -> Result<Json<CommentView>, ApiError> {
    let now = clock::rfc3339(clock::now());
    found_by_id("comment", &id, || {
        state
            .env
            .table
            .set_comment_read(&caller.user_id, &id, body.is_read, &now)
    })
    .await
    .map(|c| Json(CommentView::from(c)))
}
