//! generation-callback: `POST /api/ai/callbacks/{generation}?owner=&token=`
//! (public; SPEC §3.5 "a callback is a wake-up, not the truth"). The token
//! must be the one we put in that generation's callback URL; where the
//! provider signs callbacks, the signature and its timestamp (5 minutes'
//! tolerance) must hold and the task named must be the job's. Anything else
//! is a 401 and changes nothing. Then one wake-up message is queued — the
//! poll function asks the provider and runs the same completion path as
//! polling — and the provider gets its 2xx at once (its timeout is ~15 s).
//! Duplicate and late callbacks queue a wake-up that finds nothing to do.

use std::sync::Arc;

use assetbox_shared::ai::response::text_at;
use assetbox_shared::ai::signing::{self, CallbackSigning, Refused};
use assetbox_shared::ai::{JobState, PollMessage};
use assetbox_shared::clock;
use assetbox_shared::config::{ConfigError, Settings};
use assetbox_shared::error::{ApiError, ErrorBody};
use assetbox_shared::generation::flow::GenerationEnv;
use assetbox_shared::http::ApiQuery;
use assetbox_shared::validation;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

pub fn app(settings: &dyn Settings, sdk: &aws_config::SdkConfig) -> Result<Router, ConfigError> {
    Ok(router(GenerationEnv::from_settings(settings, sdk)?))
}

pub fn router(env: GenerationEnv) -> Router {
    Router::new()
        .route("/api/ai/callbacks/{generation}", post(callback))
        .with_state(Arc::new(env))
}

#[derive(OpenApi)]
#[openapi(paths(callback), components(schemas(CallbackAccepted, ErrorBody)))]
pub struct GenerationCallbackDoc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The owner the callback URL was made for.
    owner: Option<String>,
    /// The token the callback URL was made with.
    token: Option<String>,
}

/// What the provider is answered.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CallbackAccepted {
    /// Always `true`: the state is asked of the provider, not taken from here.
    received: bool,
}

fn refused(why: Refused) -> ApiError {
    tracing::info!(reason = %why, "callback refused");
    ApiError::unauthorized(why.to_string())
}

/// A provider's callback
///
/// Public, for providers. Checks the URL's token and, where the provider
/// signs callbacks, the signature and its timestamp; then asks the
/// provider for the state (the body is not trusted).
#[utoipa::path(
    post, path = "/api/ai/callbacks/{generation}", tag = "generation",
    params(("generation" = String, Path, description = "The generation's asset id."), CallbackQuery),
    request_body(content = Object, description = "The provider's callback body (the same as its query answer)."),
    responses(
        (status = 202, description = "Received: the generation will ask the provider.", body = CallbackAccepted),
        (status = 400, description = "The query string is malformed (e.g. `owner` given twice).", body = ErrorBody),
        (status = 401, description = "The token, the signature or its timestamp does not hold.", body = ErrorBody),
        (status = 404, description = "`generation` is not a generation id.", body = ErrorBody),
    )
)]
// Long on purpose: each check in turn, each refusal the same 401.
async fn callback(
    State(env): State<Arc<GenerationEnv>>,
    Path(generation): Path<String>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CallbackAccepted>), ApiError> {
    // Not an id we ever make: no such generation (as every route answers a
    // malformed id), before any secret is used.
    if !validation::is_ulid(&generation) {
        return Err(ApiError::not_found("generation"));
    }
    let (Some(owner), Some(token)) = (query.owner, query.token) else {
        return Err(refused(Refused::Token));
    };
    signing::check_token(&env.callback_secret, &owner, &generation, &token).map_err(refused)?;
    let accepted = (
        StatusCode::ACCEPTED,
        Json(CallbackAccepted { received: true }),
    );
    let Some(asset) = env.uploads.table.get_asset(&owner, &generation).await? else {
        return Ok(accepted); // deleted since: a late callback
    };
    let Some(job) = asset.generation.as_ref() else {
        return Err(refused(Refused::Token));
    };
    let Some((model, provider)) = env.definition(job).await.map_err(ApiError::unavailable)? else {
        return Ok(accepted);
    };
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let named_task = text_at(&payload, &model.spec.response.task_id).ok();
    if provider.callback_signing != CallbackSigning::None {
        let keys = env
            .keys_of(&provider)
            .await
            .map_err(ApiError::unavailable)?;
        let Some(secret) = keys.webhook_secret else {
            tracing::error!(
                provider = provider.name,
                "signed callbacks but no webhook_secret"
            );
            return Err(refused(Refused::Signature));
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match provider.callback_signing {
            CallbackSigning::ReferenceHmac => signing::verify_reference(
                secret.expose().as_bytes(),
                named_task.as_deref().unwrap_or_default(),
                header("x-webhook-timestamp"),
                header("x-webhook-signature"),
                clock::now().unix_timestamp(),
            ),
            CallbackSigning::StandardWebhooks => {
                signing::verify_standard(secret.expose(), &body, &headers)
            }
            CallbackSigning::None => Ok(()),
        }
        .map_err(refused)?;
    }
    if let (Some(known), Some(named)) = (&job.task_id, &named_task)
        && known != named
    {
        return Err(refused(Refused::Token));
    }
    if !job.state.is_running() || job.state == JobState::Recorded {
        return Ok(accepted); // finished already (or not submitted yet)
    }
    let wake = PollMessage::Wake {
        owner,
        generation,
        task_id: named_task,
    };
    env.send(&wake, 0).await.map_err(ApiError::unavailable)?;
    Ok(accepted)
}
