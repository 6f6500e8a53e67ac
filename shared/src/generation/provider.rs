//! Calls to a provider, built from its model's definition: the request
//! template filled, the key placed as the provider says, the answer read
//! through the model's pointers. The key is never logged; errors name the
//! provider and the status, not the request.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::ai::response::{Output, TaskState};
use crate::ai::template::{self, Placeholders};
use crate::ai::{
    KeyPlacement, Method, Model, Provider, QueryValues, RequestSpec, SubmitOutcome, SubmitValues,
    classify_submit,
};
use crate::secrets::SecretValue;

/// How long one provider call may take. A submit that times out has an
/// unknown outcome (never resent); 15 s is far above the providers' usual
/// sub-second create latency.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A provider's key, and the secret its callbacks are signed with.
#[derive(Clone)]
pub struct ProviderKeys {
    pub api_key: SecretValue,
    pub webhook_secret: Option<SecretValue>,
}

impl ProviderKeys {
    /// The secret's value: the key itself, or `{"api_key": …,
    /// "webhook_secret": …}`.
    pub fn parse(value: &SecretValue) -> Option<Self> {
        let raw = value.expose().trim();
        if raw.starts_with('{') {
            let parsed: Value = serde_json::from_str(raw).ok()?;
            let text = |k: &str| {
                parsed
                    .get(k)
                    .and_then(Value::as_str)
                    .map(|s| SecretValue::new(s.to_owned()))
            };
            return Some(Self {
                api_key: text("api_key")?,
                webhook_secret: text("webhook_secret"),
            });
        }
        Some(Self {
            api_key: value.clone(),
            webhook_secret: None,
        })
    }
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<u64>,
}

/// A call that got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// Nothing reached the provider (connection refused, name unknown): the
    /// request is known not to have been taken.
    NotSent(String),
    /// Sent, then lost (timeout, reset): its outcome is unknown.
    Lost(String),
    /// Our guard refused the address.
    Blocked(String),
}

impl NoAnswer {
    /// Why, whichever way it went.
    fn reason(self) -> String {
        match self {
            Self::NotSent(reason) | Self::Lost(reason) | Self::Blocked(reason) => reason,
        }
    }
}

/// A query that got no usable answer: try again later (after
/// `retry_after` seconds when the provider said so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNow {
    pub reason: String,
    pub retry_after: Option<u64>,
}

impl From<NotNow> for String {
    fn from(not_now: NotNow) -> Self {
        not_now.reason
    }
}

/// What a query says about a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReport {
    pub state: TaskState,
    pub outputs: Vec<Output>,
    pub failure: Option<String>,
    pub retry_after: Option<u64>,
    /// The answer's body (to check a task is ours when reconciling).
    pub body: Value,
}

pub struct ProviderClient {
    /// Built on first use: loading the TLS roots is a few milliseconds of
    /// cold start that the callback function, which never calls out, skips.
    http: OnceLock<reqwest::Client>,
    allow_private: bool,
    call_timeout: Duration,
}

impl ProviderClient {
    /// Provider calls go through the download guard too: an admin-set base
    /// URL must not reach the metadata service or the VPC.
    pub fn new(allow_private: bool) -> Self {
        Self {
            http: OnceLock::new(),
            allow_private,
            call_timeout: CALL_TIMEOUT,
        }
    }

    /// The same client with another limit per call (tests of timeouts).
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = limit;
        self
    }

    /// The guarded client (results are downloaded with it too).
    pub fn http(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let built = crate::download::guarded_client(self.allow_private, "assetbox-generation/1")
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        Ok(self.http.get_or_init(|| built))
    }

    async fn call(
        &self,
        provider: &Provider,
        keys: &ProviderKeys,
        spec: &RequestSpec,
        values: &dyn Placeholders,
    ) -> Result<Answer, NoAnswer> {
        let path = template::fill_text(&spec.path, values, |v| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        });
        let mut url = reqwest::Url::parse(&format!("{}{path}", provider.base_url))
            .map_err(|_| NoAnswer::Blocked("the provider's URL is not valid".into()))?;
        // The resolver guards names; an IP literal never reaches it.
        crate::download::check_url(&url, self.allow_private)
            .map_err(|b| NoAnswer::Blocked(format!("{}: {b}", provider.name)))?;
        let key = keys.api_key.expose();
        if let KeyPlacement::Query { name } = &provider.auth {
            url.query_pairs_mut().append_pair(name, key);
        }
        let http = self.http().map_err(NoAnswer::NotSent)?;
        let mut request = match spec.method {
            Method::Get => http.get(url),
            Method::Post => http.post(url),
        }
        .timeout(self.call_timeout);
        request = match &provider.auth {
            KeyPlacement::Bearer => request.bearer_auth(key),
            KeyPlacement::Header { name } => request.header(name.as_str(), key),
            KeyPlacement::Query { .. } => request,
        };
        if let Some(body) = &spec.body {
            request = request.json(&template::fill(body, values).unwrap_or(Value::Null));
        }
        let response = request
            .send()
            .await
            .map_err(|e| classify(&provider.name, &e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        // Provider answers are small JSON; a body that is not JSON is Null.
        let bytes = response.bytes().await.map_err(|e| {
            NoAnswer::Lost(format!("{}: the answer was cut off ({e})", provider.name))
        })?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// Sends a generation's submit once and says what came of it.
    pub async fn submit(
        &self,
        provider: &Provider,
        model: &Model,
        keys: &ProviderKeys,
        values: &SubmitValues<'_>,
    ) -> SubmitOutcome {
        match self.call(provider, keys, &model.spec.submit, values).await {
            Ok(answer) => classify_submit(
                &model.spec.response,
                answer.status,
                &answer.body,
                answer.retry_after,
            ),
            Err(NoAnswer::NotSent(reason)) => SubmitOutcome::RetryLater {
                reason,
                retry_after: None,
            },
            Err(NoAnswer::Lost(reason)) => SubmitOutcome::Unknown(reason),
            Err(NoAnswer::Blocked(reason)) => SubmitOutcome::Refused(reason),
        }
    }

    /// Asks the provider where a task is. `Err`: try later.
    pub async fn query(
        &self,
        provider: &Provider,
        model: &Model,
        keys: &ProviderKeys,
        task_id: &str,
        generation_id: &str,
    ) -> Result<TaskReport, NotNow> {
        let values = QueryValues {
            task_id,
            generation_id,
        };
        let answer = self
            .call(provider, keys, &model.spec.query, &values)
            .await
            .map_err(|e| NotNow {
                reason: e.reason(),
                retry_after: None,
            })?;
        let spec = &model.spec.response;
        if answer.status == 429 || answer.status >= 500 {
            return Err(NotNow {
                reason: format!("{} answered {}", provider.name, answer.status),
                retry_after: answer.retry_after,
            });
        }
        let state = spec
            .state
            .read(answer.status, &answer.body)
            .map_err(|e| NotNow {
                reason: format!("{}: {e}", provider.name),
                retry_after: None,
            })?;
        let outputs = match state {
            TaskState::Succeeded => spec.results.read(&answer.body).map_err(|e| e.to_string()),
            _ => Ok(Vec::new()),
        };
        let failure = spec
            .failure_message
            .as_deref()
            .and_then(|p| answer.body.pointer(p))
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
            .map(|m| m.chars().take(300).collect());
        let (state, outputs, failure) = match outputs {
            Ok(outputs) => (state, outputs, failure),
            // Succeeded but unreadable: a failure we can explain.
            Err(reason) => (
                TaskState::Failed,
                Vec::new(),
                Some(format!(
                    "the provider's result could not be read ({reason})"
                )),
            ),
        };
        Ok(TaskReport {
            state,
            outputs,
            failure,
            retry_after: answer.retry_after,
            body: answer.body,
        })
    }

    /// Asks the provider to stop a task, where the model has a cancel call
    /// (`Ok(false)`: it has none). A task the provider no longer knows or
    /// has already finished (404, 409) counts as stopped.
    pub async fn cancel(
        &self,
        provider: &Provider,
        model: &Model,
        keys: &ProviderKeys,
        task_id: &str,
        generation_id: &str,
    ) -> Result<bool, String> {
        let Some(spec) = &model.spec.cancel else {
            return Ok(false);
        };
        let values = QueryValues {
            task_id,
            generation_id,
        };
        let answer = self
            .call(provider, keys, spec, &values)
            .await
            .map_err(NoAnswer::reason)?;
        match answer.status {
            200..=299 | 404 | 409 => Ok(true),
            status => Err(format!("{} answered {status} to a cancel", provider.name)),
        }
    }
}

/// Stops the tasks of generations that timed out at their providers, for
/// cleanup (which otherwise never calls a provider).
pub struct TaskCanceller {
    secrets: crate::secrets::SecretCache,
    client: ProviderClient,
}

impl TaskCanceller {
    pub fn new(sdk: &aws_config::SdkConfig, allow_private: bool) -> Self {
        Self {
            // A run cancels few tasks; a key read once per run is plenty.
            secrets: crate::secrets::SecretCache::new(sdk, Duration::from_secs(300)),
            client: ProviderClient::new(allow_private),
        }
    }

    /// Cancels the job's task where its model (deleted ones too) has a
    /// cancel call: `Ok(false)` when there is nothing to cancel or no call.
    pub async fn cancel(
        &self,
        table: &crate::db::Table,
        job: &crate::ai::Job,
        generation_id: &str,
    ) -> Result<bool, String> {
        let Some(task_id) = job.task_id.as_deref() else {
            return Ok(false);
        };
        let (model, provider) = tokio::try_join!(
            table.get_model(&job.model),
            table.get_provider(&job.provider)
        )
        .map_err(|e| e.to_string())?;
        let (Some((model, _)), Some((provider, _))) = (model, provider) else {
            return Ok(false);
        };
        if model.spec.cancel.is_none() {
            return Ok(false);
        }
        let secret = self
            .secrets
            .get(&provider.secret_ref)
            .await
            .map_err(|e| e.to_string())?;
        let keys = ProviderKeys::parse(&secret)
            .ok_or_else(|| format!("the secret of provider {} has no api_key", provider.name))?;
        self.client
            .cancel(&provider, &model, &keys, task_id, generation_id)
            .await
    }
}

fn classify(provider: &str, err: &reqwest::Error) -> NoAnswer {
    if let Some(blocked) = crate::download::blocked_cause(err) {
        return NoAnswer::Blocked(format!("{provider}: {blocked}"));
    }
    // A refused or unresolvable connection sent nothing.
    if err.is_connect() && !err.is_timeout() {
        return NoAnswer::NotSent(format!("{provider} could not be reached"));
    }
    if err.is_timeout() {
        return NoAnswer::Lost(format!("{provider} did not answer in time"));
    }
    NoAnswer::Lost(format!("{provider}: the connection was lost"))
}

/// Whether a provider's answer about a task mentions our callback path for
/// `generation` (providers echo the request, callback URL included, at any
/// depth and sometimes inside a JSON string): how a task named by a
/// callback is proven ours when the submit's reply was lost.
pub fn echoes_generation(body: &Value, generation: &str) -> bool {
    let needle = format!("/api/ai/callbacks/{generation}");
    fn walk(v: &Value, needle: &str) -> bool {
        match v {
            Value::String(s) => {
                s.contains(needle)
                    || (s.trim_start().starts_with('{')
                        && serde_json::from_str::<Value>(s).is_ok_and(|inner| walk(&inner, needle)))
            }
            Value::Array(items) => items.iter().any(|i| walk(i, needle)),
            Value::Object(m) => m.values().any(|i| walk(i, needle)),
            _ => false,
        }
    }
    walk(body, &needle)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_a_plain_value_or_json() {
        let plain = ProviderKeys::parse(&SecretValue::new("sk-1".into())).unwrap();
        assert_eq!(plain.api_key.expose(), "sk-1");
        assert!(plain.webhook_secret.is_none());
        let both = ProviderKeys::parse(&SecretValue::new(
            r#"{"api_key":"sk-2","webhook_secret":"whsec_abc"}"#.into(),
        ))
        .unwrap();
        assert_eq!(both.api_key.expose(), "sk-2");
        assert_eq!(both.webhook_secret.unwrap().expose(), "whsec_abc");
        assert!(ProviderKeys::parse(&SecretValue::new(r#"{"key":"x"}"#.into())).is_none());
    }

    #[test]
    fn echoes_are_found_inside_json_strings() {
        let kie = json!({"data": {"param": "{\"callBackUrl\":\"https://api/api/ai/callbacks/G1?token=t\"}"}});
        assert!(echoes_generation(&kie, "G1"));
        assert!(!echoes_generation(&kie, "G2"));
        let replicate = json!({"webhook": "https://api/api/ai/callbacks/G1?token=t"});
        assert!(echoes_generation(&replicate, "G1"));
    }
}
