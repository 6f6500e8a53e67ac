//! The AI registry and the rules of a generation (SPEC §3.4, §3.5):
//! providers and models are data, not code. A
//! provider says where it lives and how its key and callbacks work; a model
//! says how to ask it for a task (a request template), how to ask about the
//! task, and where its answers hold what we need (pointers). One definition
//! language covers the reference "create task / record info" protocol and
//! Replicate-style predictions (see the README's "Generation" section).
//!
//! The job of a generation lives on its asset: recorded `PENDING` before the
//! provider is called, moved on only by conditional writes ([`JobState`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::wire::wire_enum;

pub mod response;
pub mod schedule;
pub mod signing;
mod store;
pub mod template;

use response::{ResultSpec, StateSpec, is_pointer};
use signing::CallbackSigning;

/// Placeholders a submit request may name.
pub const SUBMIT_PLACEHOLDERS: &[&str] = &[
    "prompt",
    "seed",
    "params",
    "params.*",
    "parent_asset_url",
    "callback_url",
    "generation_id",
];
/// Placeholders a query (or cancel) request may name.
pub const QUERY_PLACEHOLDERS: &[&str] = &["task_id", "generation_id"];

/// Longest name of a provider or model.
pub const NAME_MAX_CHARS: usize = 100;

wire_enum! {
    /// What a model makes.
    pub enum ModelKind {
        Image = "image",
        Video = "video",
        /// A video from one of the user's images (`parent_asset`).
        Img2vid = "img2vid",
    }
}

/// How a provider's API key travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyPlacement {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `<name>: <key>` (e.g. `x-api-key`).
    Header { name: String },
    /// `?<name>=<key>`.
    Query { name: String },
}

/// An AI provider as stored (`AI` / `PROVIDER#<id>`). Its key is not here:
/// `secret_ref` names a Secrets Manager secret under the providers' prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    pub id: String,
    pub name: String,
    /// `https://…` (plain `http` only where private networks are allowed).
    pub base_url: String,
    pub auth: KeyPlacement,
    /// The secret's name or ARN. Its value is the key, or a JSON object
    /// `{"api_key": …, "webhook_secret": …}` when callbacks are signed.
    pub secret_ref: String,
    #[serde(default)]
    pub callback_signing: CallbackSigning,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// An HTTP method a provider is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

/// One call to the provider: a path under its base URL (placeholders are
/// percent-encoded into it) and, for a POST, a JSON body template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub body: Option<Value>,
}

/// Where the provider's answers hold what we need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// The task id in the submit answer.
    pub task_id: String,
    /// A status code in the body that overrides the HTTP status (the
    /// reference protocol answers HTTP 200 with `{"code": 402}`).
    #[serde(default)]
    pub code: Option<String>,
    /// The state in the query answer.
    pub state: StateSpec,
    pub results: ResultSpec,
    /// The failure message in the query answer.
    #[serde(default)]
    pub failure_message: Option<String>,
    /// The error message in a refused submit's answer.
    #[serde(default)]
    pub error_message: Option<String>,
}

/// What an admin writes to define a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The provider's id.
    pub provider: String,
    pub name: String,
    pub kind: ModelKind,
    /// JSON Schema (2020-12) of `params`.
    #[serde(default = "empty_object_schema")]
    pub params_schema: Value,
    pub submit: RequestSpec,
    pub query: RequestSpec,
    /// Stops a task at the provider (cleanup sends it when a generation
    /// times out: the provider stops spending on it). Its placeholders are
    /// the query's; any 2xx, 404 or 409 answer is taken as done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<RequestSpec>,
    pub response: ResponseSpec,
    #[serde(default = "yes")]
    pub active: bool,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

fn yes() -> bool {
    true
}

/// A model as stored (`AI` / `MODEL#<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    #[serde(flatten)]
    pub spec: ModelSpec,
    pub created_at: String,
    pub updated_at: String,
}

/// What an admin writes to define a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: String,
    pub base_url: String,
    #[serde(default = "bearer")]
    pub auth: KeyPlacement,
    pub secret_ref: String,
    #[serde(default)]
    pub callback_signing: CallbackSigning,
    #[serde(default = "yes")]
    pub active: bool,
}

fn bearer() -> KeyPlacement {
    KeyPlacement::Bearer
}

/// What registry validation needs from the deployment.
#[derive(Debug, Clone)]
pub struct RegistryRules {
    /// Every provider secret's name starts with this (the functions may
    /// read only these).
    pub secret_prefix: String,
    /// Plain `http` base URLs (the local stand-in).
    pub allow_http: bool,
}

fn checked_name(field: &str, raw: &str) -> Result<String, ApiError> {
    crate::validation::display_name(raw, NAME_MAX_CHARS).map_err(|r| ApiError::field(field, r))
}

impl ProviderSpec {
    /// The provider this spec defines.
    pub fn into_provider(self, id: String, created_at: String, updated_at: String) -> Provider {
        Provider {
            id,
            name: self.name,
            base_url: self.base_url,
            auth: self.auth,
            secret_ref: self.secret_ref,
            callback_signing: self.callback_signing,
            active: self.active,
            created_at,
            updated_at,
        }
    }

    /// The spec of a stored provider (what a PATCH is merged into).
    pub fn of(provider: &Provider) -> Self {
        Self {
            name: provider.name.clone(),
            base_url: provider.base_url.clone(),
            auth: provider.auth.clone(),
            secret_ref: provider.secret_ref.clone(),
            callback_signing: provider.callback_signing,
            active: provider.active,
        }
    }

    /// The spec, checked and normalised.
    pub fn validated(mut self, rules: &RegistryRules) -> Result<Self, ApiError> {
        self.name = checked_name("name", &self.name)?;
        let url = url::Url::parse(self.base_url.trim())
            .map_err(|_| ApiError::field("base_url", "not a URL"))?;
        let scheme_ok = url.scheme() == "https" || (rules.allow_http && url.scheme() == "http");
        if !scheme_ok || url.host().is_none() {
            return Err(ApiError::field("base_url", "must be an https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiError::field(
                "base_url",
                "must not have a query or fragment",
            ));
        }
        self.base_url = url.as_str().trim_end_matches('/').to_owned();
        match &self.auth {
            KeyPlacement::Header { name } | KeyPlacement::Query { name }
                if name.is_empty()
                    || name.len() > 64
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                return Err(ApiError::field(
                    "auth.name",
                    "letters, digits, - and _ only",
                ));
            }
            _ => {}
        }
        let secret = self.secret_ref.trim();
        let name = secret.rsplit_once(":secret:").map_or(secret, |(_, n)| n);
        if !name.starts_with(&rules.secret_prefix) || name.len() == rules.secret_prefix.len() {
            return Err(ApiError::field(
                "secret_ref",
                format!("must name a secret under {}", rules.secret_prefix),
            ));
        }
        self.secret_ref = secret.to_owned();
        Ok(self)
    }
}

impl ModelSpec {
    /// Checks what SPEC §3.5 asks of a model: its schema compiles, its
    /// templates name only placeholders we fill, its pointers are JSON
    /// Pointers. A 400 names the first offending field.
    pub fn validate(&mut self) -> Result<(), ApiError> {
        self.name = checked_name("name", &self.name)?;
        compile_schema(&self.params_schema)
            .map_err(|reason| ApiError::field("params_schema", reason))?;
        let placeholders = |field: &str, found, known| {
            template::check_names(&found, known)
                .map_err(|u| ApiError::field(field, format!("unknown placeholder {{{{{}}}}}", u.0)))
        };
        let calls = [
            ("submit", Some(&self.submit), SUBMIT_PLACEHOLDERS),
            ("query", Some(&self.query), QUERY_PLACEHOLDERS),
            ("cancel", self.cancel.as_ref(), QUERY_PLACEHOLDERS),
        ];
        for (field, spec, known) in calls {
            let Some(spec) = spec else { continue };
            if !spec.path.starts_with('/') {
                return Err(ApiError::field(
                    &format!("{field}.path"),
                    "must start with /",
                ));
            }
            placeholders(
                &format!("{field}.path"),
                template::names_in(&spec.path),
                known,
            )?;
            if let Some(body) = &spec.body {
                placeholders(&format!("{field}.body"), template::names(body), known)?;
            }
        }
        let r = &self.response;
        let pointers = [
            ("response.task_id", Some(&r.task_id)),
            ("response.code", r.code.as_ref()),
            ("response.state.pointer", r.state.pointer.as_ref()),
            ("response.results.pointer", Some(&r.results.pointer)),
            (
                "response.results.decode_json_string",
                r.results.decode_json_string.as_ref(),
            ),
            ("response.results.each", r.results.each.as_ref()),
            ("response.failure_message", r.failure_message.as_ref()),
            ("response.error_message", r.error_message.as_ref()),
        ];
        for (field, pointer) in pointers {
            if let Some(p) = pointer
                && !is_pointer(p)
            {
                return Err(ApiError::field(field, "not a JSON Pointer (RFC 6901)"));
            }
        }
        if r.state.values.is_empty() {
            return Err(ApiError::field(
                "response.state.values",
                "maps no value to a state",
            ));
        }
        Ok(())
    }
}

/// A compiled parameter schema (draft 2020-12 unless it says otherwise;
/// no remote or file `$ref`s are fetched).
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err("must be a JSON Schema object".into());
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("does not compile: {e}"))
}

/// `params` checked against the model's schema; a 400 names the first
/// offending path (`params/width`).
pub fn check_params(validator: &jsonschema::Validator, params: &Value) -> Result<(), ApiError> {
    match validator.iter_errors(params).next() {
        None => Ok(()),
        Some(error) => {
            let path = error.instance_path().to_string();
            Err(ApiError::field(&format!("params{path}"), error.to_string()))
        }
    }
}

/// What the placeholders of one generation stand for.
pub struct SubmitValues<'a> {
    pub prompt: &'a str,
    pub seed: Option<i64>,
    pub params: &'a Value,
    pub parent_asset_url: Option<String>,
    /// `None` (member left out) when no callback URL is known: polling only.
    pub callback_url: Option<String>,
    pub generation_id: &'a str,
}

impl template::Placeholders for SubmitValues<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        match name {
            "prompt" => Some(Value::String(self.prompt.to_owned())),
            "seed" => self.seed.map(Value::from),
            "params" => Some(self.params.clone()),
            "parent_asset_url" => self.parent_asset_url.clone().map(Value::String),
            "callback_url" => self.callback_url.clone().map(Value::String),
            "generation_id" => Some(Value::String(self.generation_id.to_owned())),
            other => {
                let path = other.strip_prefix("params.")?;
                let pointer: String = path.split('.').map(|s| format!("/{s}")).collect();
                self.params.pointer(&pointer).cloned()
            }
        }
    }
}

/// What the placeholders of a query stand for.
pub struct QueryValues<'a> {
    pub task_id: &'a str,
    pub generation_id: &'a str,
}

impl template::Placeholders for QueryValues<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        match name {
            "task_id" => Some(Value::String(self.task_id.to_owned())),
            "generation_id" => Some(Value::String(self.generation_id.to_owned())),
            _ => None,
        }
    }
}

wire_enum! {
    /// Where a generation's job is. Every move is a conditional write from
    /// the state read, so a duplicate or late message changes nothing.
    pub enum JobState {
        /// Recorded, provider not called yet (or refused without queueing
        /// it: a resubmit is scheduled).
        Recorded = "recorded",
        /// The submit is being sent. Never sent again from here: a crash
        /// leaves it to the deadline.
        Submitting = "submitting",
        /// The provider took it: task id known, polling.
        Submitted = "submitted",
        /// The submit's outcome is unknown (timeout, 5xx, reply lost): never
        /// resubmitted; a callback can reconcile it, else the deadline fails it.
        Unconfirmed = "unconfirmed",
        /// Succeeded at the provider; its results are being stored.
        Storing = "storing",
        /// Results stored (ingestion finishes each asset).
        Stored = "stored",
        Failed = "failed",
    }
}

wire_enum! {
    /// What made us ask the provider the answer that finished a job.
    pub enum FinishedBy {
        /// A scheduled poll.
        Poll = "poll",
        /// A provider's callback (its wake-up).
        Callback = "callback",
    }
}

impl JobState {
    /// Still holding one of the owner's running-generation slots.
    pub fn is_running(self) -> bool {
        !matches!(self, Self::Stored | Self::Failed)
    }
}

/// The generation job on its asset item (attribute `generation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub model: String,
    pub model_name: String,
    pub provider: String,
    pub kind: ModelKind,
    pub state: JobState,
    pub params: Value,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub parent_asset: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    /// Submits sent (a refused-but-not-queued one counts).
    #[serde(default)]
    pub submit_attempts: u32,
    /// Polls made (the next poll message carries this number).
    #[serde(default)]
    pub polls: u32,
    #[serde(default)]
    pub submitted_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// RFC 3339: past it, a running job fails "timed out".
    pub deadline: String,
    /// The assets its outputs became, fixed when it succeeds (the first is
    /// the generation's own asset).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// On an extra output's asset: the generation (asset) it came from.
    #[serde(default)]
    pub output_of: Option<String>,
    /// The API's base URL as the request reached it (callbacks go there
    /// unless `PUBLIC_API_URL` says otherwise).
    #[serde(default)]
    pub callback_base: Option<String>,
    /// Set when it succeeded at the provider.
    #[serde(default)]
    pub finished_by: Option<FinishedBy>,
}

/// What the asset JSON shows of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub state: JobState,
    /// Submits sent to the provider (1 unless it was refused and retried).
    pub attempts: u32,
    /// Polls rescheduled so far (a job done at its first poll shows 0).
    pub polls: u32,
    pub submitted_at: Option<String>,
    pub finished_at: Option<String>,
    pub deadline: String,
    /// For an extra output, the generation's own asset.
    pub output_of: Option<String>,
    /// Whether a callback or a scheduled poll learned of its success.
    pub finished_by: Option<FinishedBy>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        Self {
            state: job.state,
            attempts: job.submit_attempts,
            polls: job.polls,
            submitted_at: job.submitted_at.clone(),
            finished_at: job.finished_at.clone(),
            deadline: job.deadline.clone(),
            output_of: job.output_of.clone(),
            finished_by: job.finished_by,
        }
    }
}

/// The request body of `POST /api/boxes/{id}/generate/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// The model's id (`GET /api/ai/models/`).
    pub ai_model: String,
    pub prompt_text: String,
    /// Parameters, checked against the model's `params_schema`.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub params: Option<Value>,
    #[serde(default)]
    pub seed: Option<i64>,
    /// A `COMPLETED` image of the caller's (required by `img2vid` models).
    #[serde(default)]
    pub parent_asset: Option<String>,
}

/// A poll-queue message: what to do next about one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PollMessage {
    /// Send the submit again (the last one was refused without queueing).
    Resubmit {
        owner: String,
        generation: String,
        attempt: u32,
    },
    /// The `poll`-th scheduled poll: ignored unless it is the job's next.
    Poll {
        owner: String,
        generation: String,
        poll: u32,
    },
    /// A callback arrived: ask the provider now (schedules nothing more).
    /// `task_id` is the task the callback named (reconciles a lost reply).
    Wake {
        owner: String,
        generation: String,
        #[serde(default)]
        task_id: Option<String>,
    },
}

impl PollMessage {
    pub fn generation(&self) -> (&str, &str) {
        match self {
            Self::Resubmit {
                owner, generation, ..
            }
            | Self::Poll {
                owner, generation, ..
            }
            | Self::Wake {
                owner, generation, ..
            } => (owner, generation),
        }
    }
}

/// The HTTP statuses (or body codes) that mean "refused, not queued: try
/// again later" — the only refusals a submit is retried after.
pub const RETRYABLE_CODES: &[u16] = &[429, 455];

/// What a submit's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Taken: the task id.
    Accepted(String),
    /// Refused without queueing (429, 455, a refused connection).
    RetryLater {
        reason: String,
        retry_after: Option<u64>,
    },
    /// Refused for good (401 key, 402 credits, 422 input…): the reason.
    Refused(String),
    /// Sent, but whether it was taken is unknown: never resubmitted.
    Unknown(String),
}

/// Classifies a submit's answer by its code (the body's when the model
/// names one, else the HTTP status).
pub fn classify_submit(
    spec: &ResponseSpec,
    http_status: u16,
    body: &Value,
    retry_after: Option<u64>,
) -> SubmitOutcome {
    let code = spec
        .code
        .as_deref()
        .and_then(|p| body.pointer(p))
        .and_then(Value::as_u64)
        .map(|c| c as u16)
        .unwrap_or(http_status);
    let message = || {
        spec.error_message
            .as_deref()
            .and_then(|p| body.pointer(p))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(300).collect::<String>())
            .filter(|m| !m.trim().is_empty())
    };
    let effective = if (200..300).contains(&http_status) {
        code
    } else {
        http_status.max(code)
    };
    match effective {
        200..=299 => match response::text_at(body, &spec.task_id) {
            Ok(task) if !task.is_empty() => SubmitOutcome::Accepted(task),
            _ => SubmitOutcome::Unknown("the provider's answer names no task".into()),
        },
        c if RETRYABLE_CODES.contains(&c) => SubmitOutcome::RetryLater {
            reason: message().unwrap_or_else(|| format!("the provider is busy ({c})")),
            retry_after,
        },
        c @ (408 | 500..=599) if c != 501 && c != 505 => {
            SubmitOutcome::Unknown(format!("the provider answered {c}"))
        }
        c => SubmitOutcome::Refused(refusal_reason(c, message())),
    }
}

/// A refusal in words a user can act on.
fn refusal_reason(code: u16, message: Option<String>) -> String {
    let what = match code {
        401 | 403 => "the provider refused our API key",
        402 => "the provider account has insufficient credits",
        422 | 400 => "the provider refused the request's parameters",
        433 => "the provider key is over its usage cap",
        451 => "the provider could not fetch the input image",
        501 => "the generation failed at the provider",
        505 => "the provider has disabled this feature",
        _ => "the provider refused the request",
    };
    match message {
        Some(m) => format!("{what} ({code}: {m})"),
        None => format!("{what} ({code})"),
    }
}

/// Errors by field when the registry holds an unusable definition.
pub fn describe_fields(fields: &BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The reference protocol, as the local stack registers it.
    pub(crate) fn reference_model() -> ModelSpec {
        serde_json::from_value(json!({
            "provider": "P1",
            "name": "Stand-in image",
            "kind": "image",
            "params_schema": {
                "type": "object",
                "properties": {"width": {"type": "integer", "minimum": 64, "maximum": 2048}},
                "additionalProperties": false
            },
            "submit": {"method": "POST", "path": "/api/v1/jobs/createTask",
                       "body": {"model": "standin-image", "callBackUrl": "{{callback_url}}",
                                "input": {"prompt": "{{prompt}}", "seed": "{{seed}}", "width": "{{params.width}}"}}},
            "query": {"method": "GET", "path": "/api/v1/jobs/recordInfo?taskId={{task_id}}"},
            "response": {
                "task_id": "/data/taskId", "code": "/code", "error_message": "/msg",
                "state": {"pointer": "/data/state", "values": {"waiting": "running", "success": "succeeded", "fail": "failed"}},
                "results": {"pointer": "/data/resultJson", "decode_json_string": "/resultUrls"},
                "failure_message": "/data/failMsg"
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_reference_model_validates_and_bad_parts_are_named() {
        let mut model = reference_model();
        assert_eq!(model.validate().map_err(|e| e.fields), Ok(()));
        let field_of =
            |mut m: ModelSpec| m.validate().unwrap_err().fields.into_keys().next().unwrap();
        let mut m = reference_model();
        m.params_schema = json!({"type": "no-such-type"});
        assert_eq!(field_of(m), "params_schema");
        let mut m = reference_model();
        m.submit.body = Some(json!({"p": "{{promt}}"}));
        assert_eq!(field_of(m), "submit.body");
        let mut m = reference_model();
        m.query.path = "/q?id={{prompt}}".into();
        assert_eq!(field_of(m), "query.path");
        let mut m = reference_model();
        m.response.results.decode_json_string = Some("resultUrls".into());
        assert_eq!(field_of(m), "response.results.decode_json_string");
        let mut m = reference_model();
        m.cancel = Some(RequestSpec {
            method: Method::Post,
            path: "/cancel/{{prompt}}".into(),
            body: None,
        });
        assert_eq!(field_of(m), "cancel.path");
    }

    #[test]
    fn params_are_checked_against_the_schema_by_path() {
        let validator = compile_schema(&reference_model().params_schema).unwrap();
        assert!(check_params(&validator, &json!({"width": 640})).is_ok());
        let err = check_params(&validator, &json!({"width": 10})).unwrap_err();
        assert_eq!(err.fields.keys().next().unwrap(), "params/width");
        let err = check_params(&validator, &json!({"colour": 1})).unwrap_err();
        assert_eq!(err.fields.keys().next().unwrap(), "params");
    }

    #[test]
    fn a_remote_ref_is_not_fetched() {
        let schema = json!({"$ref": "https://example.com/schema.json"});
        assert!(compile_schema(&schema).is_err());
    }

    #[test]
    fn submit_values_fill_the_reference_template() {
        let params = json!({"width": 640});
        let values = SubmitValues {
            prompt: "a fox",
            seed: None,
            params: &params,
            parent_asset_url: None,
            callback_url: Some("https://api/cb?token=t".into()),
            generation_id: "G1",
        };
        let body =
            template::fill(reference_model().submit.body.as_ref().unwrap(), &values).unwrap();
        assert_eq!(
            body,
            json!({"model": "standin-image", "callBackUrl": "https://api/cb?token=t",
                   "input": {"prompt": "a fox", "width": 640}})
        );
    }

    #[test]
    fn submit_answers_are_classified_by_body_code_then_status() {
        let spec = reference_model().response;
        let ok = json!({"code": 200, "data": {"taskId": "t-1"}});
        assert_eq!(
            classify_submit(&spec, 200, &ok, None),
            SubmitOutcome::Accepted("t-1".into())
        );
        let credits = json!({"code": 402, "msg": "Insufficient credits"});
        assert!(matches!(classify_submit(&spec, 200, &credits, None),
            SubmitOutcome::Refused(r) if r.contains("insufficient credits") && r.contains("402")));
        let busy = json!({"code": 429, "msg": "slow down"});
        assert!(matches!(
            classify_submit(&spec, 200, &busy, Some(7)),
            SubmitOutcome::RetryLater {
                retry_after: Some(7),
                ..
            }
        ));
        assert!(matches!(
            classify_submit(&spec, 455, &Value::Null, None),
            SubmitOutcome::RetryLater { .. }
        ));
        assert!(matches!(
            classify_submit(&spec, 502, &Value::Null, None),
            SubmitOutcome::Unknown(_)
        ));
        assert!(matches!(
            classify_submit(&spec, 200, &json!({"code": 200}), None),
            SubmitOutcome::Unknown(_)
        ));
        assert!(matches!(classify_submit(&spec, 401, &Value::Null, None),
            SubmitOutcome::Refused(r) if r.contains("API key")));
    }

    #[test]
    fn providers_need_https_and_a_secret_under_the_prefix() {
        let rules = RegistryRules {
            secret_prefix: "assetbox/providers/".into(),
            allow_http: false,
        };
        let spec = |url: &str, secret: &str| ProviderSpec {
            name: "Kie".into(),
            base_url: url.into(),
            auth: KeyPlacement::Bearer,
            secret_ref: secret.into(),
            callback_signing: CallbackSigning::ReferenceHmac,
            active: true,
        };
        let ok = spec("https://api.kie.ai/", "assetbox/providers/kie")
            .validated(&rules)
            .unwrap();
        assert_eq!(ok.base_url, "https://api.kie.ai");
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:assetbox/providers/kie-AbC";
        assert!(spec("https://api.kie.ai", arn).validated(&rules).is_ok());
        for (url, secret, field) in [
            ("http://api.kie.ai", "assetbox/providers/kie", "base_url"),
            (
                "https://api.kie.ai?x=1",
                "assetbox/providers/kie",
                "base_url",
            ),
            ("https://api.kie.ai", "prod/db-password", "secret_ref"),
            ("https://api.kie.ai", "assetbox/providers/", "secret_ref"),
        ] {
            let err = spec(url, secret).validated(&rules).unwrap_err();
            assert!(
                err.fields.contains_key(field),
                "{url} {secret}: {:?}",
                err.fields
            );
        }
    }
}
