//! Configuration comes from environment variables that `template.yaml` sets.
//! The local stack resolves the same variables from the template and hands them
//! over as a map, so both paths read configuration through [`Settings`].

use std::collections::HashMap;

/// A source of configuration values.
pub trait Settings {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment: what a deployed Lambda reads.
pub struct ProcessEnv;

impl Settings for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Settings for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting {0}")]
    Missing(&'static str),
    #[error("setting {key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

pub fn required(settings: &dyn Settings, key: &'static str) -> Result<String, ConfigError> {
    settings
        .get(key)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(key))
}

/// A yes/no setting: `true` (any case) is yes; anything else, or unset, no.
pub fn flag(settings: &dyn Settings, key: &'static str) -> bool {
    settings
        .get(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Optional setting parsed with `FromStr`, falling back to `default` when unset.
pub fn parsed_or<T: std::str::FromStr>(
    settings: &dyn Settings,
    key: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match settings.get(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                key,
                reason: e.to_string(),
            }),
    }
}

/// Names of the environment variables, in one place so that the template,
/// the local stack and the README cannot disagree on spelling.
pub mod vars {
    /// The single DynamoDB table.
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// Key that signs pagination cursors (at least 32 bytes).
    pub const CURSOR_SECRET: &str = "CURSOR_SECRET";
    /// Cognito user pool and its public app client (auth-api).
    pub const USER_POOL_ID: &str = "USER_POOL_ID";
    pub const USER_POOL_CLIENT_ID: &str = "USER_POOL_CLIENT_ID";
    /// `true` confirms new users at registration (no e-mail verification step).
    pub const AUTO_CONFIRM_USERS: &str = "AUTO_CONFIRM_USERS";
    /// The private media bucket.
    pub const MEDIA_BUCKET: &str = "MEDIA_BUCKET";
    /// Upload limits (bytes) and the content-type allowlist (comma-separated).
    pub const MAX_UPLOAD_BYTES: &str = "MAX_UPLOAD_BYTES";
    pub const USER_QUOTA_BYTES: &str = "USER_QUOTA_BYTES";
    /// Bytes an upload that declares no size reserves of the quota until it
    /// is measured (or what is left, if less).
    pub const UNSIZED_UPLOAD_RESERVE_BYTES: &str = "UNSIZED_UPLOAD_RESERVE_BYTES";
    pub const ALLOWED_CONTENT_TYPES: &str = "ALLOWED_CONTENT_TYPES";
    /// Lifetime of presigned URLs, seconds (default 3600).
    pub const UPLOAD_URL_EXPIRY_SECONDS: &str = "UPLOAD_URL_EXPIRY_SECONDS";
    /// How many part URLs initiate returns before the client asks for more.
    pub const UPLOAD_FIRST_URL_BATCH: &str = "UPLOAD_FIRST_URL_BATCH";
    /// Open uploads expire after this many hours (default 24).
    pub const UPLOAD_EXPIRY_HOURS: &str = "UPLOAD_EXPIRY_HOURS";
    /// Optional: a CDN in front of the media bucket; asset URLs use it.
    pub const MEDIA_CDN_BASE_URL: &str = "MEDIA_CDN_BASE_URL";
    /// Cap of the small upload through the API.
    pub const SMALL_UPLOAD_MAX_BYTES: &str = "SMALL_UPLOAD_MAX_BYTES";
    /// Share links: the longest expiry an owner may ask for, in days.
    pub const SHARE_MAX_DAYS: &str = "SHARE_MAX_DAYS";
    /// Public comments accepted per share link per hour.
    pub const SHARE_COMMENTS_PER_HOUR: &str = "SHARE_COMMENTS_PER_HOUR";
    /// Imports may reach loopback and private networks (local stack only).
    pub const IMPORT_ALLOW_PRIVATE_NETWORKS: &str = "IMPORT_ALLOW_PRIVATE_NETWORKS";
    /// The import queue (catalog-api sends to it).
    pub const IMPORT_QUEUE_URL: &str = "IMPORT_QUEUE_URL";
    /// The generation poll queue (dispatch, poll and callback send to it).
    pub const GENERATION_QUEUE_URL: &str = "GENERATION_QUEUE_URL";
    /// Provider secrets' names start with this; the functions may read only these.
    pub const PROVIDER_SECRET_PREFIX: &str = "PROVIDER_SECRET_PREFIX";
    /// Key of the callback tokens (at least 32 bytes).
    pub const CALLBACK_SECRET: &str = "CALLBACK_SECRET";
    /// The HTTP API's public base URL: callback URLs point under it.
    pub const PUBLIC_API_URL: &str = "PUBLIC_API_URL";
    /// Generations one user may have running at once (default 5).
    pub const GENERATION_MAX_RUNNING: &str = "GENERATION_MAX_RUNNING";
    /// A generation not finished this long after it was recorded fails
    /// "timed out" (seconds, default 900).
    pub const GENERATION_DEADLINE_SECONDS: &str = "GENERATION_DEADLINE_SECONDS";
    /// Polls of one generation at most (default 100).
    pub const GENERATION_MAX_POLLS: &str = "GENERATION_MAX_POLLS";
    /// Seconds a provider secret is cached in a warm function (default 300).
    pub const SECRET_CACHE_SECONDS: &str = "SECRET_CACHE_SECONDS";
    /// The Cognito pool's issuer URL: tokens of the live WebSocket API must
    /// name it.
    pub const COGNITO_ISSUER: &str = "COGNITO_ISSUER";
    /// App client ids a token may be for (comma-separated).
    pub const COGNITO_AUDIENCES: &str = "COGNITO_AUDIENCES";
    /// Where the pool's public keys are (default: the issuer's
    /// `/.well-known/jwks.json`).
    pub const COGNITO_JWKS_URL: &str = "COGNITO_JWKS_URL";
    /// The live WebSocket API's management endpoint
    /// (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`).
    pub const LIVE_ENDPOINT: &str = "LIVE_ENDPOINT";
    /// The cleanup queue (the cleanup function queues its follow-ups there).
    pub const CLEANUP_QUEUE_URL: &str = "CLEANUP_QUEUE_URL";
    /// Closed file records (failed, aborted, expired) are purged this many
    /// days after they were created (default 7).
    pub const CLEANUP_PURGE_AFTER_DAYS: &str = "CLEANUP_PURGE_AFTER_DAYS";
    /// Items one cleanup step reads at most (1 to 100, default 100).
    pub const CLEANUP_PAGE_SIZE: &str = "CLEANUP_PAGE_SIZE";
    /// Seconds a cleanup step works before it leaves the rest to its
    /// follow-up (default 30).
    pub const CLEANUP_STEP_SECONDS: &str = "CLEANUP_STEP_SECONDS";
    /// A multipart upload no open record knows is aborted once this many
    /// seconds old (default 3600).
    pub const CLEANUP_ORPHAN_AFTER_SECONDS: &str = "CLEANUP_ORPHAN_AFTER_SECONDS";
    /// An asset `PENDING` or `PROCESSING` this many seconds is stuck
    /// (default 3600).
    pub const CLEANUP_STUCK_AFTER_SECONDS: &str = "CLEANUP_STUCK_AFTER_SECONDS";
    /// An object under `uploads/` that no record claims is deleted once this
    /// many seconds old (default 172800: two days).
    pub const CLEANUP_LEAKED_AFTER_SECONDS: &str = "CLEANUP_LEAKED_AFTER_SECONDS";
    /// Assets older than this many days that are neither a favourite nor a
    /// headliner are deleted (default 10; 0 turns the policy off).
    pub const RETENTION_DAYS: &str = "RETENTION_DAYS";
    /// Public base URL of the web app; share links point under it.
    pub const PUBLIC_APP_URL: &str = "PUBLIC_APP_URL";
}
