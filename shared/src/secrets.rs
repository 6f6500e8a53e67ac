//! Secrets Manager values through an in-process cache: a warm function asks
//! AWS once per secret per TTL, not once per request. Values are wrapped so
//! that no `Debug` or log line can print them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A secret's value; `{:?}` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(…)")
    }
}

/// Why a secret could not be read (never its value).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} not found or not readable")]
    Unavailable(String),
    #[error("secret {0} has no string value")]
    NotText(String),
}

pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    values: Mutex<HashMap<String, (Instant, SecretValue)>>,
}

impl SecretCache {
    pub fn new(sdk: &aws_config::SdkConfig, ttl: Duration) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
            ttl,
            values: Mutex::new(HashMap::new()),
        }
    }

    /// The secret's string value, from the cache while it is fresh.
    pub async fn get(&self, name: &str) -> Result<SecretValue, SecretError> {
        if let Some((at, value)) = self.values.lock().expect("cache lock").get(name)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                // The SDK error names the secret and the cause, not the value.
                tracing::warn!(secret = name, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "secret unreadable");
                SecretError::Unavailable(name.to_owned())
            })?;
        let value = SecretValue(
            out.secret_string
                .ok_or_else(|| SecretError::NotText(name.to_owned()))?,
        );
        self.values
            .lock()
            .expect("cache lock")
            .insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_do_not_print() {
        let value = SecretValue("sk-live-123".into());
        assert!(!format!("{value:?}").contains("sk-live"));
        assert_eq!(value.expose(), "sk-live-123");
    }
}
