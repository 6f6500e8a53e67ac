//! File metadata routes of SPEC §3.2: list, get, edit, delete, set-parent.
//! Files are the records the upload functions write; this side never touches
//! bytes, it reads records, signs download URLs and removes what a delete
//! removes.

use assetbox_shared::assets;
use assetbox_shared::clock;
use assetbox_shared::db::Listing;
use assetbox_shared::db::Refusal;
use assetbox_shared::error::{ApiError, BoxNamed, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery};
use assetbox_shared::pagination::{Page, PageQuery};

use crate::state::{FilesState, owned_box};
use assetbox_shared::uploads::flow::UploadEnv;
use assetbox_shared::uploads::{
    DESCRIPTION_MAX_CHARS, FILE_NAME_MAX_CHARS, FileRecord, FileView, PARENT_BOX, Parent,
    ParentType, UploadStatus,
};
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/v1/files", get(list_files))
        .route(
            "/v1/files/{id}",
            get(get_file).patch(update_file).delete(delete_file),
        )
        .route("/v1/files/{id}/set-parent", post(set_parent))
        .with_state(state)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    /// Only files in this state; `completed` when not given.
    #[param(value_type = UploadStatus, required = false)]
    pub status: Option<String>,
    /// The parent's type (`box` when only `parent_object_id` is given);
    /// needs `parent_object_id`.
    #[param(value_type = ParentType, required = false)]
    pub parent_content_type: Option<String>,
    /// Only files of this parent (e.g. a box id).
    pub parent_object_id: Option<String>,
    /// Items per page.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page of this same list.
    pub cursor: Option<String>,
}

async fn views(env: &UploadEnv, files: Vec<FileRecord>) -> Result<Vec<FileView>, ApiError> {
    let signer = env.presigner().await?;
    Ok(files
        .into_iter()
        .map(|f| {
            let url = env.download_url(&signer, &f);
            FileView::new(f, url)
        })
        .collect())
}

/// List your files
///
/// Newest first, a page at a time; only `completed` files unless `status`
/// asks for others. Members of the `admin` group see everyone's files.
#[utoipa::path(
    get, path = "/v1/files", tag = "files",
    params(FilesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of files.", body = inline(Page<FileView>)),
        (status = 400, description = "A filter, `limit` or `cursor` is invalid (`fields` names it).", body = ErrorBody),
        (status = 404, description = "`parent_object_id` is not one of your boxes (admins may list any).", body = ErrorBody),
    )
)]
// Long on purpose: each filter checked in turn, then one of the three
// indexes it selects (parent, admin-wide, own); the steps read top down.
pub async fn list_files(
    State(state): State<FilesState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<FilesQuery>,
) -> Result<Json<Page<FileView>>, ApiError> {
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    };
    let status = match query.status.as_deref() {
        None | Some("") => UploadStatus::Completed,
        Some(raw) => UploadStatus::parse(raw).ok_or_else(|| {
            ApiError::field(
                "status",
                "must be one of pending, uploading, completed, aborted, expired, failed",
            )
        })?,
    };
    let parent = match (&query.parent_content_type, &query.parent_object_id) {
        (None, None) => None,
        (kind, Some(id)) => Some((
            kind.clone().unwrap_or_else(|| PARENT_BOX.to_owned()),
            id.clone(),
        )),
        (Some(_), None) => {
            return Err(ApiError::field(
                "parent_object_id",
                "is required with parent_content_type",
            ));
        }
    };
    // Only an admin lists another owner's box; for anyone else a box that
    // is not theirs is a 404, like one that does not exist.
    if let (Some((kind, id)), false) = (&parent, caller.is_admin()) {
        if kind != PARENT_BOX {
            return Err(ApiError::not_found("box"));
        }
        owned_box(&state.env.table, &caller, id).await?;
    }
    // The cursor is bound to the list it came from (filters included).
    let scope = format!(
        "files:{}:{}:{}",
        caller.is_admin(),
        status.as_str(),
        parent
            .as_ref()
            .map(|(k, id)| format!("{k}#{id}"))
            .unwrap_or_default()
    );
    let paging = state.cursors.paging(&caller.user_id, scope, &page)?;
    let table = &state.env.table;
    let listing: Listing<FileRecord> = match (&parent, caller.is_admin()) {
        (Some((kind, id)), admin) => {
            let owner = (!admin).then_some(caller.user_id.as_str());
            table
                .list_files_of_parent(
                    kind,
                    id,
                    owner,
                    Some(status),
                    paging.limit,
                    paging.after.clone(),
                )
                .await?
        }
        (None, true) => {
            table
                .list_all_files(status, paging.limit, paging.after.clone())
                .await?
        }
        (None, false) => {
            table
                .list_own_files(
                    &caller.user_id,
                    Some(status),
                    paging.limit,
                    paging.after.clone(),
                )
                .await?
        }
    };
    Ok(Json(paging.page(
        views(&state.env, listing.items).await?,
        listing.next,
    )))
}

/// Get a file
///
/// One of your files, with a download URL once it is completed.
// Admins too read only their own here: single reads stay owner-scoped so
// ids never leak across owners.
#[utoipa::path(
    get, path = "/v1/files/{id}", tag = "files",
    params(("id" = String, Path, description = "The file's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file.", body = FileView),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
    )
)]
pub async fn get_file(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let file = state.env.owned_file(&caller, &id).await?;
    let mut views = views(&state.env, vec![file]).await?;
    Ok(Json(views.remove(0)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFile {
    /// Display name: 1–255 characters once trimmed, no control characters.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    /// Up to 2000 characters once trimmed (line breaks and tabs allowed);
    /// empty clears it.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Edit a file
///
/// Its display name and/or description; send at least one.
#[utoipa::path(
    patch, path = "/v1/files/{id}", tag = "files",
    params(("id" = String, Path, description = "The file's id.")),
    request_body = UpdateFile,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The edited file.", body = FileView),
        (status = 400, description = "Nothing to update, a field breaks its rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
    )
)]
pub async fn update_file(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateFile>,
) -> Result<Json<FileView>, ApiError> {
    if body.name.is_none() && body.description.is_none() {
        return Err(ApiError::bad_request(
            "nothing to update: send `name` and/or `description`",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| validation::display_name(n, FILE_NAME_MAX_CHARS))
        .transpose()
        .map_err(|r| ApiError::field("name", r))?;
    let description = body.description.as_deref().map(str::trim);
    if let Some(d) = description {
        let chars = d.chars().count();
        if chars > DESCRIPTION_MAX_CHARS {
            return Err(ApiError::field(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters (got {chars})"),
            ));
        }
        if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(ApiError::field(
                "description",
                "must not contain control characters",
            ));
        }
    }
    if !validation::is_ulid(&id) {
        return Err(ApiError::not_found("file"));
    }
    let now = clock::rfc3339(clock::now());
    let file = state
        .env
        .table
        .update_file_text(&caller.user_id, &id, name.as_deref(), description, &now)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let mut views = views(&state.env, vec![file]).await?;
    Ok(Json(views.remove(0)))
}

/// Delete a file
///
/// An open upload is aborted, a completed file's stored object is deleted,
/// and what the file held of your quota is given back. A file that became
/// an asset is deleted through its asset (`DELETE /api/assets/{id}/`).
#[utoipa::path(
    delete, path = "/v1/files/{id}", tag = "files",
    params(("id" = String, Path, description = "The file's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The file is an asset (delete the asset), or it changed meanwhile (retry).", body = ErrorBody),
    )
)]
pub async fn delete_file(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let env = &state.env;
    let mut file = env.owned_file(&caller, &id).await?;
    if let Some(asset) = &file.asset_id {
        return Err(ApiError::conflict(format!(
            "this file is asset {asset}; delete the asset instead"
        )));
    }
    if file.upload_status.is_open() {
        if let Some(upload_id) = &file.upload_id {
            env.bucket.abort(&file.s3_key, upload_id).await?;
        }
        let now = clock::rfc3339(clock::now());
        if env
            .table
            .close_upload(&file, UploadStatus::Aborted, None, &now)
            .await?
            .is_err()
        {
            return Err(ApiError::conflict("the upload changed meanwhile; retry"));
        }
        file.upload_status = UploadStatus::Aborted;
        file.reserved_bytes = 0;
    }
    if env.table.delete_file(&file).await?.is_err() {
        return Err(ApiError::conflict("the file changed meanwhile; retry"));
    }
    // The record first: a set-parent racing this delete wins, and its asset
    // keeps its object. A single PUT's object may have landed whatever the
    // status; a thumbnail exists once ingestion described the file.
    let mut objects = Vec::new();
    if file.upload_status == UploadStatus::Completed || file.upload_id.is_none() {
        objects.push(file.s3_key.as_str());
    }
    if let Some(thumbnail) = file.media.as_ref().and_then(|m| m.thumbnail_key.as_deref()) {
        objects.push(thumbnail);
    }
    for key in objects {
        if let Err(err) = env.bucket.delete(key).await {
            // The file is gone for the caller; the object is no record's
            // now. Logged with its key for the operator (or a sweep).
            tracing::error!(key, error = %err, "object of a deleted file left behind");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetParent {
    #[schema(value_type = ParentType)]
    pub parent_content_type: String,
    /// The id of one of your boxes.
    pub parent_object_id: String,
}

/// Put a file into a box
///
/// A completed file becomes an asset of the box: `COMPLETED` at once when
/// the file was already checked and described, else `PROCESSING` until it
/// is; an open upload becomes one when it completes.
#[utoipa::path(
    post, path = "/v1/files/{id}/set-parent", tag = "files",
    params(("id" = String, Path, description = "The file's id.")),
    request_body = SetParent,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file with its parent.", body = FileView),
        (status = 400, description = "`parent_content_type` is not `box`, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No file of yours has this id.", body = ErrorBody),
        (status = 409, description = "The file is already an asset, is not in a state that can take a parent (aborted, expired, failed), or changed meanwhile.", body = ErrorBody),
        (status = 422, description = "`parent_object_id` is not one of your boxes.", body = ErrorBody),
    )
)]
pub async fn set_parent(
    State(state): State<FilesState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetParent>,
) -> Result<Json<FileView>, ApiError> {
    if body.parent_content_type != PARENT_BOX {
        return Err(ApiError::field(
            "parent_content_type",
            format!("must be \"{PARENT_BOX}\""),
        ));
    }
    let env = &state.env;
    let mut file = env.owned_file(&caller, &id).await?;
    let no_such_box = || ApiError::box_gone(BoxNamed::InField("parent_object_id"));
    if !validation::is_ulid(&body.parent_object_id) {
        return Err(no_such_box());
    }
    let parent = env
        .table
        .get_box(&caller.user_id, &body.parent_object_id)
        .await?
        .ok_or_else(no_such_box)?;
    // The write is conditional on the file as read; ingestion describing it
    // just after its upload completes (the moment a client attaches it) is
    // a change to read again and build on, not the client's conflict.
    for attempt in 0..3 {
        if attempt > 0 {
            file = env.owned_file(&caller, &id).await?;
        }
        if file.asset_id.is_some() {
            return Err(ApiError::conflict("this file is already an asset of a box"));
        }
        if !matches!(
            file.upload_status,
            UploadStatus::Pending | UploadStatus::Uploading | UploadStatus::Completed
        ) {
            return Err(ApiError::conflict(format!(
                "file is {}; it cannot take a parent",
                file.upload_status.as_str()
            )));
        }
        let now = clock::rfc3339(clock::now());
        let mut after = file.clone();
        after.set_parent(Some(Parent::Box {
            id: parent.id.clone(),
            project: parent.project.clone(),
        }));
        after.updated = now.clone();
        // A file still uploading becomes its asset when it completes.
        let asset = assets::attach(&mut after, &now);
        match env
            .table
            .set_file_parent(&file, &after, asset.as_ref())
            .await?
        {
            Ok(()) => {
                let mut views = views(env, vec![after]).await?;
                return Ok(Json(views.remove(0)));
            }
            Err(Refusal::ParentGone) => return Err(no_such_box()),
            Err(_) => continue,
        }
    }
    Err(ApiError::conflict("the file kept changing; retry"))
}
