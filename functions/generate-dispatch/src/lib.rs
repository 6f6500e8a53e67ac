//! generate-dispatch: `POST /api/boxes/{id}/generate/` (SPEC §3.5). Checks
//! the box, the model, the parent and the parameters; records the
//! generation (`PENDING` asset, job `recorded`, a running slot, the
//! `Idempotency-Key`) before the provider hears of it; then submits once
//! ([`GenerationEnv::submit`]) and answers 202 with the asset as it stands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use assetbox_shared::ai::{
    GenerateRequest, Job, JobState, Model, ModelKind, PollMessage, check_params, compile_schema,
};
use assetbox_shared::assets::{AssetRecord, AssetStatus, AssetView, SourceType, prompt_field};
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody, found_by_id};
use assetbox_shared::generation::flow::GenerationEnv;
use assetbox_shared::generation::{KeyUse, NotRecorded};
use assetbox_shared::http::ApiJson;
use assetbox_shared::http::caller::Caller;
use assetbox_shared::media::AssetType;
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::OpenApi;

/// Longest `Idempotency-Key` accepted (the IETF draft's clients use UUIDs).
const IDEMPOTENCY_KEY_MAX: usize = 255;
/// What a 429 at the running cap asks the client to wait.
const RETRY_AFTER_SECS: u32 = 30;

/// Compiled parameter schemas by model id and version (`updated_at`): a
/// new version has a new key, so an entry is never stale.
type SchemaCache = Arc<Mutex<HashMap<(String, String), Arc<jsonschema::Validator>>>>;

#[derive(Clone)]
pub struct Dispatch {
    env: Arc<GenerationEnv>,
    schemas: SchemaCache,
}

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(GenerationEnv::from_settings(settings, sdk)?))
}

pub fn router(env: GenerationEnv) -> Router {
    let state = Dispatch {
        env: Arc::new(env),
        schemas: Arc::default(),
    };
    Router::new()
        .route("/api/boxes/{id}/generate", post(generate))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(generate),
    components(schemas(GenerateRequest, AssetView, ErrorBody))
)]
pub struct GenerateDispatchDoc;

impl Dispatch {
    fn validator(&self, model: &Model) -> Result<Arc<jsonschema::Validator>, ApiError> {
        let version = (model.id.clone(), model.updated_at.clone());
        if let Some(found) = self.schemas.lock().expect("schema cache").get(&version) {
            return Ok(found.clone());
        }
        // Checked when saved; a schema that no longer compiles is ours to fix.
        let compiled =
            Arc::new(compile_schema(&model.spec.params_schema).map_err(ApiError::internal)?);
        self.schemas
            .lock()
            .expect("schema cache")
            .insert(version, compiled.clone());
        Ok(compiled)
    }
}

/// A model usable for new generations, or 422 on `ai_model`.
async fn usable_model(env: &GenerationEnv, id: &str) -> Result<(Model, String), ApiError> {
    let table = &env.uploads.table;
    let unusable = || {
        let mut err = ApiError::field("ai_model", "no such active model");
        err.status = StatusCode::UNPROCESSABLE_ENTITY;
        err
    };
    let Some(model) = table.live_model(id).await?.filter(|m| m.spec.active) else {
        return Err(unusable());
    };
    match table.live_provider(&model.spec.provider).await? {
        Some(provider) if provider.active => {
            // Checked fresh here; the submit that follows reuses them.
            env.remember(&model, &provider);
            Ok((model, provider.name))
        }
        _ => Err(unusable()),
    }
}

fn unprocessable(field: &str, reason: &str) -> ApiError {
    let mut err = ApiError::field(field, reason);
    err.status = StatusCode::UNPROCESSABLE_ENTITY;
    err
}

/// The parent an `img2vid` model needs: the caller's `COMPLETED` image.
async fn checked_parent(
    env: &GenerationEnv,
    caller: &Caller,
    kind: ModelKind,
    parent: Option<&str>,
) -> Result<Option<AssetRecord>, ApiError> {
    match (kind, parent) {
        (ModelKind::Img2vid, None) => Err(unprocessable(
            "parent_asset",
            "an image-to-video model needs a parent image",
        )),
        (ModelKind::Img2vid, Some(id)) => {
            let found = match validation::is_ulid(id) {
                true => env.uploads.table.get_asset(&caller.user_id, id).await?,
                false => None,
            };
            match found {
                None => Err(unprocessable("parent_asset", "no such asset")),
                Some(p)
                    if p.status != AssetStatus::Completed || p.asset_type != AssetType::Image =>
                {
                    Err(unprocessable("parent_asset", "must be a COMPLETED image"))
                }
                Some(p) => Ok(Some(p)),
            }
        }
        (_, Some(_)) => Err(unprocessable(
            "parent_asset",
            "only image-to-video models take a parent",
        )),
        (_, None) => Ok(None),
    }
}

/// `sha256` of the request as it means (object members sorted), so the same
/// body in another member order is the same request.
fn request_digest(box_id: &str, request: &GenerateRequest) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut sorted: Vec<_> = m.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    sorted
                        .into_iter()
                        .map(|(k, v)| (k.clone(), canonical(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let value = serde_json::json!({"box": box_id, "request": canonical(&serde_json::to_value(request).unwrap_or_default())});
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// The API's base URL as this request reached it (`Host`, and the scheme
/// API Gateway puts in `X-Forwarded-Proto`).
fn request_base(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return None;
    }
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "http" || *p == "https")
        .unwrap_or("https");
    Some(format!("{scheme}://{host}"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX)
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                format!("1 to {IDEMPOTENCY_KEY_MAX} visible characters"),
            )
        })?;
    Ok(Some(hex::encode(Sha256::digest(key.as_bytes()))))
}

/// Generate an image or video into a box
///
/// Records the generation, submits it to the model's provider once and
/// answers at once: the asset is `PENDING`, then `PROCESSING` while the
/// provider works, then `COMPLETED` (described, with a thumbnail) or
/// `FAILED` with `error_message`. With `Idempotency-Key`, the same key and
/// body answer the same asset without a second submission.
#[utoipa::path(
    post, path = "/api/boxes/{id}/generate/", tag = "generation",
    params(
        ("id" = String, Path, description = "The box's id."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request answer the first one's asset (remembered 24 h)."),
    ),
    request_body = GenerateRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted: the generation's asset.", body = AssetView),
        (status = 400, description = "A field breaks its rule; `params` errors name the parameter's path (`params/width`).", body = ErrorBody),
        (status = 404, description = "No box of yours has this id.", body = ErrorBody),
        (status = 422, description = "No such active model; the parent is not one of your COMPLETED images; or the `Idempotency-Key` was used with another body.", body = ErrorBody),
        (status = 429, description = "You have the most generations running that are allowed; see `Retry-After`.", body = ErrorBody),
    )
)]
// Long on purpose: the checks in the order the contract gives them, then
// the record, the submit and the answer.
async fn generate(
    State(dispatch): State<Dispatch>,
    caller: Caller,
    Path(box_id): Path<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let env = &dispatch.env;
    let table = &env.uploads.table;
    let key = idempotency_key(&headers)?;
    let prompt = prompt_field(Some(&request.prompt_text))?
        .ok_or_else(|| ApiError::field("prompt_text", "must not be empty"))?;
    let target = found_by_id("box", &box_id, || table.get_box(&caller.user_id, &box_id)).await?;
    let digest = request_digest(&box_id, &request);
    let now_epoch = clock::now().unix_timestamp();
    if let Some(key) = &key
        && let Some(used) = table.key_use(&caller.user_id, key, now_epoch).await?
    {
        return replay(env, &caller, &used, &digest).await;
    }
    let (model, _provider_name) = usable_model(env, &request.ai_model).await?;
    let parent = checked_parent(
        env,
        &caller,
        model.spec.kind,
        request.parent_asset.as_deref(),
    )
    .await?;
    let params = request
        .params
        .clone()
        .unwrap_or_else(|| serde_json::json!({}));
    check_params(&*dispatch.validator(&model)?, &params)?;

    let now = clock::now();
    let deadline = now + env.limits.deadline;
    let (asset_type, source_type) = match model.spec.kind {
        ModelKind::Image => (AssetType::Image, SourceType::Generated),
        ModelKind::Video => (AssetType::Video, SourceType::Generated),
        ModelKind::Img2vid => (AssetType::Video, SourceType::Img2vid),
    };
    let asset = AssetRecord {
        status: AssetStatus::Pending,
        asset_type,
        source_type,
        name: "generation".into(),
        content_type: "application/octet-stream".into(),
        prompt_text: Some(prompt),
        ai_model: Some(model.id.clone()),
        generation: Some(Box::new(Job {
            model: model.id.clone(),
            model_name: model.spec.name.clone(),
            provider: model.spec.provider.clone(),
            kind: model.spec.kind,
            state: JobState::Recorded,
            params,
            seed: request.seed,
            parent_asset: parent.map(|p| p.id),
            task_id: None,
            submit_attempts: 0,
            polls: 0,
            submitted_at: None,
            finished_at: None,
            deadline: clock::rfc3339(deadline),
            outputs: Vec::new(),
            output_of: None,
            callback_base: request_base(&headers),
            finished_by: None,
        })),
        ..AssetRecord::in_box(
            validation::new_id(),
            &caller.user_id,
            &target.id,
            &target.project,
            &clock::rfc3339(now),
        )
    };
    let used = KeyUse {
        body_digest: digest.clone(),
        asset_id: asset.id.clone(),
    };
    let recorded = table
        .record_generation(
            &asset,
            env.limits.max_running,
            key.as_deref().map(|k| (k, &used)),
            now_epoch,
        )
        .await?;
    match recorded {
        Ok(()) => {}
        Err(NotRecorded::TooManyRunning) => {
            let err = ApiError::too_many_requests(format!(
                "you have {} generations running, the most allowed; retry when one finishes",
                env.limits.max_running
            ));
            return Ok(([(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())], err).into_response());
        }
        Err(NotRecorded::BoxGone) => return Err(ApiError::not_found("box")),
        Err(NotRecorded::KeyUsed) => {
            // A concurrent request with the same key won the race.
            let key = key.as_deref().expect("a key was given");
            let used = table
                .key_use(&caller.user_id, key, now_epoch)
                .await?
                .ok_or_else(|| ApiError::conflict("the Idempotency-Key is being used; retry"))?;
            return replay(env, &caller, &used, &digest).await;
        }
    }
    if let Err(reason) = env.submit(&asset).await {
        // The job stays as far as it got; a resubmit message picks up a
        // `recorded` one (a claimed one is never sent twice).
        tracing::warn!(
            generation = asset.id,
            reason,
            "submit step failed; queued to retry"
        );
        let retry = PollMessage::Resubmit {
            owner: asset.owner.clone(),
            generation: asset.id.clone(),
            attempt: 0,
        };
        if let Err(e) = env.send(&retry, 5).await {
            tracing::error!(
                generation = asset.id,
                error = e,
                "could not queue the resubmit"
            );
        }
    }
    answer(env, &caller, &asset.id, &target.name).await
}

/// The asset a used `Idempotency-Key` stands for, or 422 for another body.
async fn replay(
    env: &GenerationEnv,
    caller: &Caller,
    used: &KeyUse,
    digest: &str,
) -> Result<Response, ApiError> {
    if used.body_digest != digest {
        return Err(unprocessable(
            "Idempotency-Key",
            "was used with another request body",
        ));
    }
    let asset = env
        .uploads
        .table
        .get_asset(&caller.user_id, &used.asset_id)
        .await?
        .ok_or_else(|| ApiError::conflict("the generation of this Idempotency-Key was deleted"))?;
    let box_name = env
        .uploads
        .table
        .get_box(&caller.user_id, &asset.box_id)
        .await?
        .map(|b| b.name)
        .unwrap_or_default();
    answer(env, caller, &asset.id, &box_name).await
}

async fn answer(
    env: &GenerationEnv,
    caller: &Caller,
    id: &str,
    box_name: &str,
) -> Result<Response, ApiError> {
    let asset = env
        .uploads
        .table
        .get_asset(&caller.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("asset"))?;
    let signer = env.uploads.presigner().await?;
    let view = env.uploads.asset_view(&signer, asset, box_name);
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_member_order_but_not_values() {
        let a: GenerateRequest = serde_json::from_value(serde_json::json!({
            "ai_model": "M", "prompt_text": "p", "params": {"w": 1, "h": 2}}))
        .unwrap();
        let b: GenerateRequest = serde_json::from_value(serde_json::json!({
            "params": {"h": 2, "w": 1}, "prompt_text": "p", "ai_model": "M"}))
        .unwrap();
        let c: GenerateRequest = serde_json::from_value(serde_json::json!({
            "ai_model": "M", "prompt_text": "p", "params": {"w": 1, "h": 3}}))
        .unwrap();
        assert_eq!(request_digest("B", &a), request_digest("B", &b));
        assert_ne!(request_digest("B", &a), request_digest("B", &c));
        assert_ne!(request_digest("B", &a), request_digest("B2", &a));
    }
}
