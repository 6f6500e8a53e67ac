//! catalog-api: projects (this slice), later boxes, assets, files, sharing,
//! comments, export and the AI registry. Routes here, rules and storage in
//! `assetbox_shared`; `main.rs` only wires AWS clients to this router.

// In dependency order: each names only those above it.
pub mod state;
pub mod files;
pub mod assets;
pub mod boxes;
pub mod import;
pub mod sharing;
pub mod upload;
pub mod ai;

use state::owned_project;

use assetbox_shared::aws;
use assetbox_shared::catalog::BoxView;
use assetbox_shared::catalog::{
    CreateProject, Project, ProjectRecord, ProjectStore, UpdateProject,
};
use assetbox_shared::clock;
use assetbox_shared::config::{self, ConfigError, Settings, vars};
use assetbox_shared::db::Table;
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, ApiQuery, created};
use assetbox_shared::pagination::{CursorKey, Page, PageQuery};
use assetbox_shared::uploads::flow::UploadEnv;
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

/// What catalog-api reads from its environment.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub table_name: String,
    pub cursor_key: CursorKey,
}

impl CatalogConfig {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        let secret = config::required(settings, vars::CURSOR_SECRET)?;
        Ok(Self {
            table_name: config::required(settings, vars::TABLE_NAME)?,
            cursor_key: CursorKey::new(secret.into_bytes()).map_err(|reason| {
                ConfigError::Invalid {
                    key: vars::CURSOR_SECRET,
                    reason,
                }
            })?,
        })
    }
}

/// The function as it runs, wired from its settings: used by `main.rs` with
/// the process environment and by the local stack with the template's.
pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    let config = CatalogConfig::from_settings(settings)?;
    let aws_state = state::FilesState {
        env: UploadEnv::from_settings(settings, sdk)?,
        cursors: config.cursor_key.clone(),
        sharing: assetbox_shared::sharing::SharingPolicy::from_settings(settings)?,
        registry: assetbox_shared::ai::RegistryRules {
            secret_prefix: config::required(settings, vars::PROVIDER_SECRET_PREFIX)?,
            allow_http: config::flag(settings, vars::IMPORT_ALLOW_PRIVATE_NETWORKS),
        },
        imports: state::ImportQueue {
            client: aws_sdk_sqs::Client::new(sdk),
            url: config::required(settings, vars::IMPORT_QUEUE_URL)?,
            allow_private: config::flag(settings, vars::IMPORT_ALLOW_PRIVATE_NETWORKS),
        },
    };
    let files = files::router(aws_state.clone())
        .merge(boxes::router(aws_state.clone()))
        .merge(assets::router(aws_state.clone()))
        .merge(upload::router(aws_state.clone()))
        .merge(sharing::router(aws_state.clone()))
        .merge(ai::router(aws_state.clone()))
        .merge(import::router(aws_state));
    Ok(router(AppState {
        store: Table::new(aws::dynamodb(sdk), config.table_name),
        cursors: config.cursor_key,
    })
    .merge(files))
}

#[derive(Clone)]
pub struct AppState<S> {
    pub store: S,
    pub cursors: CursorKey,
}

pub fn router<S: ProjectStore>(state: AppState<S>) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route(
            "/api/projects",
            get(list_projects::<S>).post(create_project::<S>),
        )
        .route(
            "/api/projects/{id}",
            get(get_project::<S>)
                .patch(update_project::<S>)
                .delete(delete_project::<S>),
        )
        .route("/api/projects/{id}/boxes", get(list_project_boxes::<S>))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        health,
        list_projects,
        create_project,
        get_project,
        update_project,
        delete_project,
        list_project_boxes,
        files::list_files,
        files::get_file,
        files::update_file,
        files::delete_file,
        files::set_parent,
        boxes::list_boxes,
        boxes::create_box,
        boxes::get_box,
        boxes::update_box,
        boxes::delete_box,
        boxes::list_box_assets,
        boxes::reorder_boxes,
        assets::list_assets,
        assets::get_asset,
        assets::update_asset,
        assets::toggle_favorite,
        assets::delete_asset,
        upload::upload_to_box,
        import::import_to_box,
        ai::list_models,
        ai::create_model,
        ai::get_model,
        ai::update_model,
        ai::delete_model,
        ai::list_providers,
        ai::create_provider,
        ai::get_provider,
        ai::update_provider,
        ai::delete_provider,
        sharing::create_link,
        sharing::list_links,
        sharing::revoke_link,
        sharing::shared_view,
        sharing::post_comment,
        sharing::list_comments,
        sharing::mark_comment
    ),
    components(schemas(
        Project,
        BoxView,
        ErrorBody,
        CreateProject,
        UpdateProject,
        assetbox_shared::uploads::FileView,
        files::UpdateFile,
        files::SetParent,
        boxes::CreateBox,
        boxes::UpdateBox,
        boxes::ReorderBoxes,
        assets::UpdateAsset,
        assetbox_shared::assets::AssetView,
        assetbox_shared::sharing::ShareLinkView,
        assetbox_shared::sharing::CommentView,
        sharing::CreateShareLink,
        sharing::NewShareLink,
        sharing::SharedProject,
        sharing::NewComment,
        sharing::MarkComment,
        import::ImportAsset,
        ai::ModelSummary,
        ai::ModelList,
        ai::ModelDefinition,
        ai::ProviderList,
        assetbox_shared::ai::ModelSpec,
        assetbox_shared::ai::ProviderSpec,
        assetbox_shared::ai::Provider
    ))
)]
pub struct CatalogApiDoc;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, examples("ok"))]
    status: &'static str,
}

/// Check that the API is up
///
/// Public. Answers `{"status":"ok"}` whenever the API can take requests.
#[utoipa::path(
    get, path = "/api/health", tag = "health",
    responses((status = 200, description = "The API is up.", body = Health))
)]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// List your projects
///
/// Newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/projects/", tag = "projects",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of projects.", body = inline(Page<Project>)),
        (status = 400, description = "`limit` is out of range or `cursor` is not one of this list's.", body = ErrorBody),
    )
)]
async fn list_projects<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Project>>, ApiError> {
    const SCOPE: &str = "projects";
    let paging = state.cursors.paging(&caller.user_id, SCOPE, &page)?;
    let listing = state
        .store
        .list_projects(&caller.user_id, paging.limit, paging.after.clone())
        .await?;
    Ok(Json(paging.page(
        listing.items.into_iter().map(Project::from).collect(),
        listing.next,
    )))
}

/// Create a project
///
/// A new, empty project (no boxes yet).
#[utoipa::path(
    post, path = "/api/projects/", tag = "projects",
    request_body = CreateProject,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project.", body = Project),
        (status = 400, description = "The name breaks a rule, or the body is not valid JSON of this shape (`fields` names the problem).", body = ErrorBody),
    )
)]
async fn create_project<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<impl IntoResponse, ApiError> {
    let name = body.validate()?;
    let now = clock::rfc3339(clock::now());
    let record = ProjectRecord {
        id: validation::new_id(),
        owner: caller.user_id,
        name,
        boxes_count: 0,
        box_order: Vec::new(),
        created_at: now.clone(),
        updated_at: now,
    };
    state.store.insert_project(&record).await?;
    Ok(created(Project::from(record)))
}

/// Get a project
///
/// One of your projects, with its box count.
#[utoipa::path(
    get, path = "/api/projects/{id}/", tag = "projects",
    params(("id" = String, Path, description = "The project's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project.", body = Project),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
async fn get_project<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(
        owned_project(&state.store, &caller, &id).await?.into(),
    ))
}

/// Rename a project
///
/// `name` is the only field a project has to edit.
#[utoipa::path(
    patch, path = "/api/projects/{id}/", tag = "projects",
    params(("id" = String, Path, description = "The project's id.")),
    request_body = UpdateProject,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The renamed project.", body = Project),
        (status = 400, description = "No `name` given, the name breaks a rule, or the body is not valid JSON of this shape.", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
async fn update_project<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> Result<Json<Project>, ApiError> {
    if !validation::is_ulid(&id) {
        return Err(ApiError::not_found("project"));
    }
    let name = body.validate()?;
    let now = clock::rfc3339(clock::now());
    state
        .store
        .rename_project(&caller.user_id, &id, &name, &now)
        .await?
        .map(|record| Json(record.into()))
        .ok_or_else(|| ApiError::not_found("project"))
}

/// Delete an empty project
///
/// Only a project without boxes can be deleted: delete its boxes (and with
/// them their assets) first.
// Box by box, so one request never has unbounded work and nothing is orphaned.
#[utoipa::path(
    delete, path = "/api/projects/{id}/", tag = "projects",
    params(("id" = String, Path, description = "The project's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
        (status = 409, description = "The project still has boxes.", body = ErrorBody),
    )
)]
async fn delete_project<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let project = owned_project(&state.store, &caller, &id).await?;
    if project.box_order.is_empty() && state.store.delete_project(&caller.user_id, &id).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    // It has boxes (perhaps added meanwhile), or it is gone.
    match state.store.get_project(&caller.user_id, &id).await? {
        Some(p) => Err(ApiError::conflict(format!(
            "the project has {} boxes; delete them first",
            p.box_order.len()
        ))),
        None => Err(ApiError::not_found("project")),
    }
}

/// List a project's boxes
///
/// In storyboard order (`order_index` 0, 1, …), a page at a time. The same
/// list as `GET /api/boxes/?project={id}`.
#[utoipa::path(
    get, path = "/api/projects/{id}/boxes/", tag = "projects",
    params(("id" = String, Path, description = "The project's id."), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of boxes.", body = inline(Page<BoxView>)),
        (status = 400, description = "`limit` is out of range or `cursor` is not one of this list's.", body = ErrorBody),
        (status = 404, description = "No project of yours has this id.", body = ErrorBody),
    )
)]
async fn list_project_boxes<S: ProjectStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<BoxView>>, ApiError> {
    let project = owned_project(&state.store, &caller, &id).await?;
    Ok(Json(
        boxes::box_page(&state.store, &state.cursors, &caller, &project, &page).await?,
    ))
}

#[cfg(test)]
mod tests {
    //! Handler tests from the API Gateway events in `events/`, through
    //! lambda_http's own adapter (`assetbox_shared::http::invoke`, the path a
    //! Lambda invocation takes), with the in-memory store: no emulator, no network.

    use assetbox_shared::catalog::memory::MemoryStore;
    use serde_json::Value;

    use super::*;

    /// The `sub` of the sample events.
    const SAMPLE_SUB: &str = "11111111-2222-3333-4444-555555555555";

    fn state(store: MemoryStore) -> AppState<MemoryStore> {
        AppState {
            store,
            cursors: CursorKey::new(vec![42u8; 32]).unwrap(),
        }
    }

    async fn invoke(store: &MemoryStore, event: &str) -> (u16, Value) {
        let service = assetbox_shared::http::service(router(state(store.clone())));
        let event = serde_json::from_str(event).expect("sample event");
        let response = assetbox_shared::http::invoke(&service, event, "test")
            .await
            .expect("handler");
        let response = serde_json::to_value(response).unwrap();
        let body = response["body"]
            .as_str()
            .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        (response["statusCode"].as_u64().unwrap() as u16, body)
    }

    async fn seed(store: &MemoryStore, owner: &str, name: &str) -> ProjectRecord {
        let record = ProjectRecord {
            id: validation::new_id(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            boxes_count: 0,
            box_order: Vec::new(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        store.insert_project(&record).await.unwrap();
        record
    }

    #[tokio::test]
    async fn create_from_sample_event() {
        let store = MemoryStore::default();
        let (status, body) = invoke(
            &store,
            include_str!("../../../events/catalog-api/create-project.json"),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], "Teaser");
        let stored = store
            .get_project(SAMPLE_SUB, body["id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.unwrap().name, "Teaser");
    }

    #[tokio::test]
    async fn event_without_authorizer_claims_is_refused_and_writes_nothing() {
        let store = MemoryStore::default();
        let (status, body) = invoke(
            &store,
            include_str!("../../../events/catalog-api/create-project-no-claims.json"),
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "unauthorized");
        let listing = store.list_projects(SAMPLE_SUB, 10, None).await.unwrap();
        assert!(listing.items.is_empty());
    }

    #[tokio::test]
    async fn list_from_sample_event_shows_only_the_callers_projects() {
        let store = MemoryStore::default();
        for name in ["a", "b", "c"] {
            seed(&store, SAMPLE_SUB, name).await;
        }
        seed(&store, "someone-else", "theirs").await;
        // The sample asks for `/api/projects/?limit=2`.
        let (status, body) = invoke(
            &store,
            include_str!("../../../events/catalog-api/list-projects.json"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let names: Vec<_> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].clone())
            .collect();
        assert_eq!(names, vec!["c", "b"]);
        assert!(body["next_cursor"].is_string());
    }

    #[tokio::test]
    async fn health_is_public() {
        let (status, body) = invoke(
            &MemoryStore::default(),
            include_str!("../../../events/catalog-api/health.json"),
        )
        .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    }
}
