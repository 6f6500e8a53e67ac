//! Reading a provider's answers through a model's pointers (RFC 6901):
//! the task id, the state (a string or integer in the body, or the HTTP
//! status) mapped to ours, the results (URLs or base64 bodies, possibly
//! inside a JSON *string* that is decoded first, one or more) and the
//! failure message.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::wire::wire_enum;

wire_enum! {
    /// Where a provider's task is, in our words.
    pub enum TaskState {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// A JSON Pointer, checked when the model is saved.
pub type Pointer = String;

/// Whether `raw` is a JSON Pointer: empty, or `/`-separated tokens whose
/// `~` is always `~0` or `~1`.
pub fn is_pointer(raw: &str) -> bool {
    (raw.is_empty() || raw.starts_with('/'))
        && raw
            .split('~')
            .skip(1)
            .all(|rest| rest.starts_with('0') || rest.starts_with('1'))
}

/// Where the state is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// Pointer to the state in the query answer's body; absent: the state
    /// is the HTTP status (e.g. 202 running, 200 done).
    #[serde(default)]
    pub pointer: Option<Pointer>,
    /// The provider's values (strings; integers and HTTP statuses written as
    /// their decimal text) and what they mean. A value not listed counts as
    /// running: polling goes on, bounded by the deadline.
    pub values: BTreeMap<String, TaskState>,
}

/// What a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    /// A URL to download (temporary: fetched at once).
    #[default]
    Url,
    /// The bytes themselves, base64 (a `data:` URL prefix is allowed).
    Base64,
}

/// Where the results are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultSpec {
    /// Pointer to the results: a string, or an array of them.
    pub pointer: Pointer,
    /// When set, the value at `pointer` is a JSON string: it is decoded and
    /// this pointer is applied inside it (`resultJson` → `/resultUrls`).
    #[serde(default)]
    pub decode_json_string: Option<Pointer>,
    /// Applied to each element of an array of objects (`/b64_json`).
    #[serde(default)]
    pub each: Option<Pointer>,
    #[serde(default)]
    pub kind: ResultKind,
}

/// One result of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Url(String),
    Bytes(Vec<u8>),
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the provider's answer has nothing at {0}")]
    Missing(String),
    #[error("the provider's answer at {0} is not {1}")]
    Shape(String, &'static str),
}

/// The string or integer at `pointer`, as text.
pub fn text_at(body: &Value, pointer: &str) -> Result<String, Unreadable> {
    match body.pointer(pointer) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Null) | None => Err(Unreadable::Missing(pointer.to_owned())),
        Some(_) => Err(Unreadable::Shape(
            pointer.to_owned(),
            "a string or a number",
        )),
    }
}

impl StateSpec {
    /// The task's state from a query answer.
    pub fn read(&self, http_status: u16, body: &Value) -> Result<TaskState, Unreadable> {
        let raw = match &self.pointer {
            Some(pointer) => text_at(body, pointer)?,
            None => http_status.to_string(),
        };
        Ok(self.values.get(&raw).copied().unwrap_or(TaskState::Running))
    }
}

impl ResultSpec {
    /// Every result of a succeeded task, in order.
    pub fn read(&self, body: &Value) -> Result<Vec<Output>, Unreadable> {
        let mut at = body
            .pointer(&self.pointer)
            .filter(|v| !v.is_null())
            .ok_or_else(|| Unreadable::Missing(self.pointer.clone()))?
            .clone();
        if let Some(inner) = &self.decode_json_string {
            let Value::String(text) = &at else {
                return Err(Unreadable::Shape(self.pointer.clone(), "a JSON string"));
            };
            let decoded: Value = serde_json::from_str(text)
                .map_err(|_| Unreadable::Shape(self.pointer.clone(), "a JSON string"))?;
            at = decoded
                .pointer(inner)
                .filter(|v| !v.is_null())
                .ok_or_else(|| Unreadable::Missing(format!("{}{inner}", self.pointer)))?
                .clone();
        }
        let items = match at {
            Value::Array(items) => items,
            one => vec![one],
        };
        items
            .into_iter()
            .map(|item| {
                let item = match &self.each {
                    Some(each) => item
                        .pointer(each)
                        .cloned()
                        .ok_or_else(|| Unreadable::Missing(each.clone()))?,
                    None => item,
                };
                let Value::String(text) = item else {
                    return Err(Unreadable::Shape(self.pointer.clone(), "a string"));
                };
                match self.kind {
                    ResultKind::Url => Ok(Output::Url(text)),
                    ResultKind::Base64 => decode_base64(&text)
                        .map(Output::Bytes)
                        .ok_or(Unreadable::Shape(self.pointer.clone(), "base64")),
                }
            })
            .collect()
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let data = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(";base64,")?.1,
        None => text,
    };
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reference_state() -> StateSpec {
        StateSpec {
            pointer: Some("/data/state".into()),
            values: BTreeMap::from([
                ("waiting".into(), TaskState::Running),
                ("success".into(), TaskState::Succeeded),
                ("fail".into(), TaskState::Failed),
            ]),
        }
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        for ok in ["", "/", "/data/taskId", "/a~1b/~0c", "/0"] {
            assert!(is_pointer(ok), "{ok}");
        }
        for bad in ["data", "/a~2", "/a~", "#/a"] {
            assert!(!is_pointer(bad), "{bad}");
        }
    }

    #[test]
    fn states_map_from_strings_integers_and_http_statuses() {
        let body = json!({"data": {"state": "success"}});
        assert_eq!(reference_state().read(200, &body), Ok(TaskState::Succeeded));
        let unknown = json!({"data": {"state": "warming-up"}});
        assert_eq!(
            reference_state().read(200, &unknown),
            Ok(TaskState::Running)
        );
        assert!(reference_state().read(200, &json!({})).is_err());
        // Veo's successFlag: 0 running, 1 done, 2/3 failed.
        let veo = StateSpec {
            pointer: Some("/data/successFlag".into()),
            values: BTreeMap::from([
                ("1".into(), TaskState::Succeeded),
                ("2".into(), TaskState::Failed),
                ("3".into(), TaskState::Failed),
            ]),
        };
        assert_eq!(
            veo.read(200, &json!({"data": {"successFlag": 3}})),
            Ok(TaskState::Failed)
        );
        assert_eq!(
            veo.read(200, &json!({"data": {"successFlag": 0}})),
            Ok(TaskState::Running)
        );
        // Stability's video: the HTTP status is the state.
        let by_status = StateSpec {
            pointer: None,
            values: BTreeMap::from([("200".into(), TaskState::Succeeded)]),
        };
        assert_eq!(by_status.read(202, &Value::Null), Ok(TaskState::Running));
        assert_eq!(by_status.read(200, &Value::Null), Ok(TaskState::Succeeded));
    }

    #[test]
    fn results_inside_a_json_string_are_decoded_first() {
        let spec = ResultSpec {
            pointer: "/data/resultJson".into(),
            decode_json_string: Some("/resultUrls".into()),
            each: None,
            kind: ResultKind::Url,
        };
        let body = json!({"data": {"resultJson": "{\"resultUrls\":[\"https://a/1.png\",\"https://a/2.png\"]}"}});
        assert_eq!(
            spec.read(&body).unwrap(),
            vec![
                Output::Url("https://a/1.png".into()),
                Output::Url("https://a/2.png".into())
            ]
        );
        let not_json = json!({"data": {"resultJson": "{oops"}});
        assert!(matches!(spec.read(&not_json), Err(Unreadable::Shape(..))));
        let empty = json!({"data": {"resultJson": "{}"}});
        assert!(matches!(spec.read(&empty), Err(Unreadable::Missing(_))));
    }

    #[test]
    fn results_may_be_one_url_an_array_or_base64_objects() {
        let one = ResultSpec {
            pointer: "/output".into(),
            decode_json_string: None,
            each: None,
            kind: ResultKind::Url,
        };
        assert_eq!(
            one.read(&json!({"output": "https://r/x.mp4"})).unwrap(),
            vec![Output::Url("https://r/x.mp4".into())]
        );
        let images = ResultSpec {
            pointer: "/data".into(),
            decode_json_string: None,
            each: Some("/b64_json".into()),
            kind: ResultKind::Base64,
        };
        let body =
            json!({"data": [{"b64_json": "aGk="}, {"b64_json": "data:image/png;base64,eW8="}]});
        assert_eq!(
            images.read(&body).unwrap(),
            vec![Output::Bytes(b"hi".to_vec()), Output::Bytes(b"yo".to_vec())]
        );
        assert!(images.read(&json!({"data": [{"b64_json": "!!"}]})).is_err());
    }
}
