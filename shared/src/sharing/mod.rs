//! Share links and public comments (SPEC §3.4 "Sharing").
//!
//! - A link's token is 32 random bytes (base64url), shown once at creation.
//!   The table keeps only its SHA-256 (`pk = SHARE#<hash>`), so the public
//!   view finds the link with one GetItem and a table dump leaks no live
//!   token. Revoking deletes the item: expired, revoked and unknown tokens
//!   all end in the same "no such link" and cannot be told apart.
//! - Public comments are limited per link per hour with a counter item
//!   (`SHARE#<hash>` / `RATE#<hour>`), incremented conditionally, so the
//!   limit holds under concurrent posts; it expires by TTL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::config::{self, ConfigError, Settings, vars};

mod store;

pub const DEFAULT_SHARE_DAYS: u32 = 7;
pub const AUTHOR_NAME_MAX_CHARS: usize = 80;
pub const COMMENT_MAX_CHARS: usize = 2000;
const TOKEN_BYTES: usize = 32;

/// Sharing limits, from the function's environment.
#[derive(Debug, Clone)]
pub struct SharingPolicy {
    /// The longest expiry an owner may ask for (`SHARE_MAX_DAYS`, 30).
    pub max_days: u32,
    /// Public comments per link per hour (`SHARE_COMMENTS_PER_HOUR`, 30).
    pub comments_per_hour: u32,
    /// Where the web app shows a shared project (`PUBLIC_APP_URL`); without
    /// it, links point at the API's public view.
    pub app_url: Option<String>,
}

impl SharingPolicy {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        let policy = Self {
            max_days: config::parsed_or(settings, vars::SHARE_MAX_DAYS, 30u32)?,
            comments_per_hour: config::parsed_or(settings, vars::SHARE_COMMENTS_PER_HOUR, 30u32)?,
            app_url: settings
                .get(vars::PUBLIC_APP_URL)
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
        };
        if !(1..=3650).contains(&policy.max_days) {
            return Err(ConfigError::Invalid {
                key: vars::SHARE_MAX_DAYS,
                reason: "must be 1..=3650".into(),
            });
        }
        Ok(policy)
    }

    /// What the owner hands out for a token.
    pub fn share_url(&self, token: &str) -> String {
        match &self.app_url {
            Some(app) => format!("{app}/shared/{token}"),
            None => format!("/api/shared/{token}/"),
        }
    }
}

/// A new random token (what the owner hands out).
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; TOKEN_BYTES]>())
}

/// The stored form of a token; `None` for anything that cannot be a token,
/// which the caller answers exactly like an unknown one.
pub fn token_hash(token: &str) -> Option<String> {
    let decoded = URL_SAFE_NO_PAD.decode(token).ok()?;
    (decoded.len() == TOKEN_BYTES).then(|| hex::encode(Sha256::digest(token.as_bytes())))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareLinkRecord {
    pub id: String,
    pub owner: String,
    pub project: String,
    pub token_hash: String,
    pub created_at: String,
    pub expires_at: String,
}

/// A link as its owner sees it (the token itself is only shown at creation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShareLinkView {
    pub id: String,
    /// The id of the shared project.
    pub project: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// `false` once `expires_at` has passed.
    pub active: bool,
}

impl From<ShareLinkRecord> for ShareLinkView {
    fn from(r: ShareLinkRecord) -> Self {
        Self {
            active: !crate::uploads::flow::is_past(&r.expires_at),
            id: r.id,
            project: r.project,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommentRecord {
    pub id: String,
    pub owner: String,
    #[serde(rename = "box")]
    pub box_id: String,
    pub project: String,
    /// The share link it came through.
    pub link_id: String,
    pub author_name: String,
    pub text: String,
    pub is_read: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A comment left on a box through a share link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommentView {
    pub id: String,
    /// The id of the box it is about.
    #[serde(rename = "box")]
    pub box_id: String,
    /// The name the commenter gave.
    pub author_name: String,
    pub text: String,
    /// Whether the owner marked it read.
    pub is_read: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<CommentRecord> for CommentView {
    fn from(r: CommentRecord) -> Self {
        Self {
            id: r.id,
            box_id: r.box_id,
            author_name: r.author_name,
            text: r.text,
            is_read: r.is_read,
            created_at: r.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_only_when_well_formed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let hash = token_hash(&a).unwrap();
        assert_eq!(hash.len(), 64);
        assert_eq!(token_hash(&a), Some(hash));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash("short"), None);
        assert_eq!(token_hash(&format!("{a}A")), None);
        assert_eq!(token_hash(&a.replace(|_: char| true, "!")), None);
    }
}
