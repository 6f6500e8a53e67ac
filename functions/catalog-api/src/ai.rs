//! The AI registry (SPEC §3.4, §3.5): `GET /api/ai/models/` for everyone
//! (active models: what a front end needs to render a generation form);
//! providers and models written by admins (Cognito group `admin`, 403 for
//! everyone else). Every write is validated whole — a provider's URL and
//! secret reference, a model's schema, placeholders and pointers — with a
//! 400 naming the field. DELETE deactivates: the entry disappears from
//! lists and new generations, and the generations running on it finish on
//! the definition they started with (so nothing is ever refused for them).

use assetbox_shared::ai::{Model, ModelKind, ModelSpec, Provider, ProviderSpec};
use assetbox_shared::clock;
use assetbox_shared::db::StoreError;
use assetbox_shared::db::keys;
use assetbox_shared::error::{ApiError, ErrorBody, found_by_id};
use assetbox_shared::http::caller::Caller;
use assetbox_shared::http::{ApiJson, created};
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::state::FilesState;

pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/ai/models", get(list_models).post(create_model))
        .route(
            "/api/ai/models/{id}",
            get(get_model).patch(update_model).delete(delete_model),
        )
        .route(
            "/api/ai/providers",
            get(list_providers).post(create_provider),
        )
        .route(
            "/api/ai/providers/{id}",
            get(get_provider)
                .patch(update_provider)
                .delete(delete_provider),
        )
        .with_state(state)
}

/// A model as any signed-in user sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelSummary {
    pub id: String,
    pub name: String,
    pub kind: ModelKind,
    pub provider_name: String,
    /// JSON Schema (2020-12) of the `params` a generation may pass.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub params_schema: Value,
}

/// The list replies (the registry is small: one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub results: Vec<ModelSummary>,
    /// Always `null`: the registry fits one page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A model's whole definition (admins).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelDefinition {
    pub id: String,
    #[serde(flatten)]
    pub spec: ModelSpec,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Model> for ModelDefinition {
    fn from(m: Model) -> Self {
        Self {
            id: m.id,
            spec: m.spec,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub results: Vec<Provider>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A caller in the `admin` group; anyone else is refused with 403 before
/// the body is read (so a non-admin learns nothing from validation).
pub struct Admin;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Self)
        } else {
            Err(ApiError::forbidden("only admins manage the AI registry"))
        }
    }
}

/// List the active AI models
#[utoipa::path(
    get, path = "/api/ai/models/", tag = "ai",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active models whose provider is active (admins also see inactive ones).", body = ModelList),
    )
)]
pub async fn list_models(
    State(state): State<FilesState>,
    caller: Caller,
) -> Result<Json<ModelList>, ApiError> {
    let table = &state.env.table;
    let (providers, models) = table.registry().await?;
    let results = models
        .into_iter()
        .filter_map(|m| {
            let provider = providers.iter().find(|p| p.id == m.spec.provider)?;
            let usable = m.spec.active && provider.active;
            (usable || caller.is_admin()).then(|| ModelSummary {
                id: m.id,
                name: m.spec.name,
                kind: m.spec.kind,
                provider_name: provider.name.clone(),
                params_schema: m.spec.params_schema,
            })
        })
        .collect();
    Ok(Json(ModelList {
        results,
        next_cursor: None,
    }))
}

async fn checked_model(state: &FilesState, mut spec: ModelSpec) -> Result<ModelSpec, ApiError> {
    spec.validate()?;
    let no_such = || ApiError::field("provider", "no such provider");
    if !validation::is_ulid(&spec.provider) {
        return Err(no_such());
    }
    match state.env.table.live_provider(&spec.provider).await? {
        Some(_) => Ok(spec),
        None => Err(no_such()),
    }
}

/// Deletes (deactivates) a registry entry, or 404.
async fn delete_entry(
    state: &FilesState,
    what: &str,
    id: &str,
    sk: String,
) -> Result<StatusCode, ApiError> {
    let now = clock::rfc3339(clock::now());
    let table = &state.env.table;
    found_by_id(what, id, || async {
        Ok::<_, StoreError>(table.delete_registry_entry(sk, &now).await?.then_some(()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Define a model (admins)
#[utoipa::path(
    post, path = "/api/ai/models/", tag = "ai",
    request_body = ModelSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The model.", body = ModelDefinition),
        (status = 400, description = "A field breaks its rule: a schema that does not compile, an unknown placeholder, a pointer that is not a JSON Pointer, an unknown provider.", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
    )
)]
pub async fn create_model(
    State(state): State<FilesState>,
    _admin: Admin,
    ApiJson(spec): ApiJson<ModelSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = checked_model(&state, spec).await?;
    let now = clock::rfc3339(clock::now());
    let model = Model {
        id: validation::new_id(),
        spec,
        created_at: now.clone(),
        updated_at: now,
    };
    state.env.table.insert_model(&model).await?;
    Ok(created(ModelDefinition::from(model)))
}

async fn found_model(state: &FilesState, id: &str) -> Result<Model, ApiError> {
    found_by_id("model", id, || state.env.table.live_model(id)).await
}

/// A model's definition (admins)
#[utoipa::path(
    get, path = "/api/ai/models/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The model's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The model.", body = ModelDefinition),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such model.", body = ErrorBody),
    )
)]
pub async fn get_model(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<ModelDefinition>, ApiError> {
    Ok(Json(found_model(&state, &id).await?.into()))
}

/// Top-level members of `patch` replace the record's (JSON merge of one
/// level); the result must deserialize as the spec and pass validation.
fn merged<T: serde::de::DeserializeOwned + Serialize>(
    current: &T,
    patch: Value,
) -> Result<T, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let mut whole = serde_json::to_value(current).map_err(ApiError::internal)?;
    let object = whole.as_object_mut().expect("a spec is an object");
    for (k, v) in patch {
        object.insert(k, v);
    }
    serde_path_to_error::deserialize(whole).map_err(|e| {
        let path = e.path().to_string();
        ApiError::field(
            if path == "." { "body" } else { &path },
            e.inner().to_string(),
        )
    })
}

/// Change a model (admins)
///
/// The members given replace the model's; the result is validated whole.
#[utoipa::path(
    patch, path = "/api/ai/models/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The model's id.")),
    request_body(content = Object, description = "Members of the model definition to replace."),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The model.", body = ModelDefinition),
        (status = 400, description = "The result breaks a rule (the field is named).", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such model.", body = ErrorBody),
        (status = 409, description = "Changed meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn update_model(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<ModelDefinition>, ApiError> {
    let current = found_model(&state, &id).await?;
    let spec = checked_model(&state, merged(&current.spec, patch)?).await?;
    let read_at = current.updated_at.clone();
    let model = Model {
        spec,
        updated_at: clock::rfc3339(clock::now()),
        ..current
    };
    if !state.env.table.replace_model(&model, &read_at).await? {
        return Err(ApiError::conflict("the model changed meanwhile; retry"));
    }
    Ok(Json(model.into()))
}

/// Delete a model (admins)
///
/// Deactivates it: it leaves the lists and takes no new generations; the
/// generations running on it finish.
#[utoipa::path(
    delete, path = "/api/ai/models/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The model's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such model.", body = ErrorBody),
    )
)]
pub async fn delete_model(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_entry(&state, "model", &id, keys::model_sk(&id)).await
}

/// List the providers (admins)
#[utoipa::path(
    get, path = "/api/ai/providers/", tag = "ai",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every provider (the secret's reference, never its value).", body = ProviderList),
        (status = 403, description = "Not an admin.", body = ErrorBody),
    )
)]
pub async fn list_providers(
    State(state): State<FilesState>,
    _admin: Admin,
) -> Result<Json<ProviderList>, ApiError> {
    Ok(Json(ProviderList {
        results: state.env.table.list_providers().await?,
        next_cursor: None,
    }))
}

/// Add a provider (admins)
///
/// Its API key stays in Secrets Manager: `secret_ref` names a secret under
/// the deployment's provider prefix.
#[utoipa::path(
    post, path = "/api/ai/providers/", tag = "ai",
    request_body = ProviderSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The provider.", body = Provider),
        (status = 400, description = "A field breaks its rule (an https base URL, a secret under the prefix).", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
    )
)]
pub async fn create_provider(
    State(state): State<FilesState>,
    _admin: Admin,
    ApiJson(spec): ApiJson<ProviderSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = spec.validated(&state.registry)?;
    let now = clock::rfc3339(clock::now());
    let provider = spec.into_provider(validation::new_id(), now.clone(), now);
    state.env.table.insert_provider(&provider).await?;
    Ok(created(provider))
}

async fn found_provider(state: &FilesState, id: &str) -> Result<Provider, ApiError> {
    found_by_id("provider", id, || state.env.table.live_provider(id)).await
}

/// A provider (admins)
#[utoipa::path(
    get, path = "/api/ai/providers/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The provider's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The provider.", body = Provider),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such provider.", body = ErrorBody),
    )
)]
pub async fn get_provider(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Provider>, ApiError> {
    Ok(Json(found_provider(&state, &id).await?))
}

/// Change a provider (admins)
#[utoipa::path(
    patch, path = "/api/ai/providers/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The provider's id.")),
    request_body(content = Object, description = "Members of the provider to replace."),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The provider.", body = Provider),
        (status = 400, description = "The result breaks a rule (the field is named).", body = ErrorBody),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such provider.", body = ErrorBody),
        (status = 409, description = "Changed meanwhile; retry.", body = ErrorBody),
    )
)]
pub async fn update_provider(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<Provider>, ApiError> {
    let current = found_provider(&state, &id).await?;
    let spec = merged(&ProviderSpec::of(&current), patch)?.validated(&state.registry)?;
    let provider = spec.into_provider(current.id, current.created_at, clock::rfc3339(clock::now()));
    if !state
        .env
        .table
        .replace_provider(&provider, &current.updated_at)
        .await?
    {
        return Err(ApiError::conflict("the provider changed meanwhile; retry"));
    }
    Ok(Json(provider))
}

/// Delete a provider (admins)
///
/// Deactivates it and so its models; running generations finish.
#[utoipa::path(
    delete, path = "/api/ai/providers/{id}/", tag = "ai",
    params(("id" = String, Path, description = "The provider's id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an admin.", body = ErrorBody),
        (status = 404, description = "No such provider.", body = ErrorBody),
    )
)]
pub async fn delete_provider(
    State(state): State<FilesState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_entry(&state, "provider", &id, keys::provider_sk(&id)).await
}
