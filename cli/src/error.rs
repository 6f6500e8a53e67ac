//! What can go wrong, as the person at the terminal needs it: a message
//! (the API's own words where it gave some) and a documented exit code.

use std::fmt;

use reqwest::StatusCode;
use serde_json::Value;

/// The exit codes `--help` documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// Network, server (5xx), storage, anything unexpected.
    Failure = 1,
    /// Bad arguments or a file that cannot be read (clap uses 2 too).
    Usage = 2,
    /// Not logged in, or the login or session was refused.
    Auth = 3,
    /// No project, box or upload of the caller's has that id.
    NotFound = 4,
    /// The API refused the request (validation, type, size, quota, state).
    Refused = 5,
    /// Some of several files failed.
    Partial = 6,
    /// Ctrl-C: what finished is kept for resume.
    Interrupted = 130,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    /// The API's HTTP status, when the error is its reply.
    pub status: Option<u16>,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            status: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Exit::Failure, message)
    }

    pub fn not_logged_in() -> Self {
        Self::new(
            Exit::Auth,
            "not logged in: run `assetbox login` first (see `assetbox login --help`)",
        )
    }

    /// A transport error, without the URL: presigned URLs carry their
    /// signature in the query string, and errors end up in logs.
    pub fn network(what: &str, err: reqwest::Error) -> Self {
        let err = err.without_url();
        let mut message = format!("{what}: {err}");
        // reqwest's Display stops at the outermost error; the cause
        // (connection refused, certificate, timeout) is what helps.
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self::failure(message)
    }

    /// The same error with what the user can do about it.
    pub fn note(mut self, note: &str) -> Self {
        self.message = format!("{}{note}", self.message);
        self
    }

    /// The same error about a named thing (a file, a project).
    pub fn about(mut self, subject: &str) -> Self {
        self.message = format!("{subject}: {}", self.message);
        self
    }
}

/// An error reply of the API: `{"error": {code, message, fields}}` from our
/// functions, `{"message": ...}` from the gateway (401) and Companion routes.
pub fn api_error(status: StatusCode, body: &[u8]) -> CliError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let detail = json.get("error").unwrap_or(&json);
    let mut message = detail
        .get("message")
        .or_else(|| json.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the API answered {status}"));
    let fields = detail.get("fields").and_then(Value::as_object);
    if let Some(fields) = fields {
        let reasons: Vec<String> = fields
            .iter()
            .map(|(field, reason)| format!("{field}: {}", reason.as_str().unwrap_or("invalid")))
            .collect();
        if !reasons.is_empty() {
            message = format!("{message} ({})", reasons.join("; "));
        }
    }
    // The box of an upload is checked as a field (422): to the user it is a
    // box that does not exist, like a 404.
    let names_missing_box = status == StatusCode::UNPROCESSABLE_ENTITY
        && fields.is_some_and(|f| f.contains_key("parent_object_id"));
    let exit = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Exit::Auth,
        StatusCode::NOT_FOUND => Exit::NotFound,
        _ if names_missing_box => Exit::NotFound,
        StatusCode::TOO_MANY_REQUESTS => Exit::Failure,
        s if s.is_client_error() => Exit::Refused,
        _ => Exit::Failure,
    };
    CliError {
        status: Some(status.as_u16()),
        ..CliError::new(exit, message)
    }
}

/// An S3 error reply (XML `<Code>` and `<Message>`), for a part PUT or a
/// download; never the URL.
pub fn storage_error(status: StatusCode, body: &str) -> CliError {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = body.find(&open)? + open.len();
        let to = from + body[from..].find("</")?;
        Some(body[from..to].to_owned())
    };
    let message = match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("storage answered {status}: {code}: {message}"),
        (Some(code), None) => format!("storage answered {status}: {code}"),
        _ => format!("storage answered {status}"),
    };
    CliError::failure(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_the_message_and_name_each_field() {
        let body = br#"{"error":{"code":"validation_failed","message":"invalid fields: file_content_type","fields":{"file_content_type":"not an allowed type"}}}"#;
        let err = api_error(StatusCode::BAD_REQUEST, body);
        assert_eq!(err.exit, Exit::Refused);
        assert_eq!(
            err.message,
            "invalid fields: file_content_type (file_content_type: not an allowed type)"
        );
    }

    #[test]
    fn statuses_map_to_the_documented_codes() {
        let plain = br#"{"error":{"code":"x","message":"m"}}"#;
        let code = |s: u16| api_error(StatusCode::from_u16(s).unwrap(), plain).exit;
        assert_eq!(code(401), Exit::Auth);
        assert_eq!(code(403), Exit::Auth);
        assert_eq!(code(404), Exit::NotFound);
        assert_eq!(code(409), Exit::Refused);
        assert_eq!(code(413), Exit::Refused);
        assert_eq!(code(422), Exit::Refused);
        assert_eq!(code(429), Exit::Failure);
        assert_eq!(code(503), Exit::Failure);
        let missing_box = br#"{"error":{"code":"validation_failed","message":"invalid fields: parent_object_id","fields":{"parent_object_id":"no such box"}}}"#;
        assert_eq!(
            api_error(StatusCode::UNPROCESSABLE_ENTITY, missing_box).exit,
            Exit::NotFound
        );
    }

    #[test]
    fn gateway_and_unreadable_bodies_still_say_something() {
        let err = api_error(StatusCode::UNAUTHORIZED, br#"{"message":"Unauthorized"}"#);
        assert_eq!(
            (err.exit, err.message.as_str()),
            (Exit::Auth, "Unauthorized")
        );
        let err = api_error(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(err.message, "the API answered 502 Bad Gateway");
    }

    #[test]
    fn storage_errors_show_code_and_message_only() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><Key>k</Key></Error>";
        let err = storage_error(StatusCode::FORBIDDEN, xml);
        assert_eq!(
            err.message,
            "storage answered 403 Forbidden: AccessDenied: Request has expired"
        );
    }
}
