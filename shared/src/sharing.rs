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

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::config::{self, ConfigError, Settings, vars};
use crate::dynamo::{GSI1_KEYS, Listing, StoreError, Table, built, condition_held, store_error};
use crate::files_store::Refusal;
use crate::keys;
use crate::pagination::StringKey;

pub const DEFAULT_SHARE_DAYS: u32 = 7;
pub const AUTHOR_NAME_MAX_CHARS: usize = 80;
pub const COMMENT_MAX_CHARS: usize = 2000;
const TOKEN_BYTES: usize = 32;
const LINK_SK: &str = "LINK";

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

fn link_pk(hash: &str) -> String {
    format!("{}{hash}", keys::prefix::SHARE)
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
            active: !crate::upload_env::is_past(&r.expires_at),
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

fn comment_sk(id: &str) -> String {
    format!("{}{id}", keys::prefix::COMMENT)
}

impl Table {
    pub async fn create_share_link(
        &self,
        link: &ShareLinkRecord,
        expires_epoch: i64,
    ) -> Result<(), StoreError> {
        let mut item = Self::item(
            "share_link",
            link,
            &[
                (keys::PK, link_pk(&link.token_hash)),
                (keys::SK, LINK_SK.to_owned()),
                (keys::GSI1_PK, keys::project_children_pk(&link.project)),
                (keys::GSI1_SK, format!("{}{}", keys::prefix::SHARE, link.id)),
            ],
        )?;
        item.insert(
            keys::TTL.to_owned(),
            AttributeValue::N(expires_epoch.to_string()),
        );
        self.insert_new(item).await
    }

    /// The link a token hash names, whether or not it has expired.
    pub async fn get_share_link(&self, hash: &str) -> Result<Option<ShareLinkRecord>, StoreError> {
        self.get_record(link_pk(hash), LINK_SK.to_owned(), "share link")
            .await
    }

    /// A page of a project's links, newest first.
    pub async fn list_share_links(
        &self,
        project: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<ShareLinkRecord>, StoreError> {
        let query = self.gsi1_children(keys::project_children_pk(project), keys::prefix::SHARE);
        self.query_page(query, limit, after, GSI1_KEYS).await
    }

    /// One of the project's links by id.
    pub async fn find_share_link(
        &self,
        project: &str,
        link_id: &str,
    ) -> Result<Option<ShareLinkRecord>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.name())
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_names("#sk", keys::GSI1_SK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::project_children_pk(project)),
            )
            .expression_attribute_values(
                ":sk",
                AttributeValue::S(format!("{}{link_id}", keys::prefix::SHARE)),
            )
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = out.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        serde_dynamo::from_item(item)
            .map(Some)
            .map_err(|e| StoreError::Failed(format!("reading share link: {e}")))
    }

    /// Revokes a link; `false` when it was already gone.
    pub async fn delete_share_link(&self, link: &ShareLinkRecord) -> Result<bool, StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(link_pk(&link.token_hash)))
            .key(keys::SK, AttributeValue::S(LINK_SK.to_owned()))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(link.owner.clone()))
            .send()
            .await;
        condition_held(result)
    }

    /// Counts one public comment against the link's hourly allowance;
    /// `false` when the allowance is spent.
    pub async fn take_comment_allowance(
        &self,
        hash: &str,
        hour: i64,
        per_hour: u32,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(link_pk(hash)))
            .key(keys::SK, AttributeValue::S(format!("RATE#{hour}")))
            .update_expression("ADD used :one SET #ttl = :ttl, entity = :entity")
            .condition_expression("attribute_not_exists(used) OR used < :limit")
            .expression_attribute_names("#ttl", keys::TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(per_hour.to_string()))
            // Kept a day past its hour, for inspection; readers never rely on TTL.
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(((hour + 25) * 3600).to_string()),
            )
            .expression_attribute_values(":entity", AttributeValue::S("comment_rate".into()))
            .return_values(ReturnValue::None)
            .send()
            .await;
        condition_held(result)
    }

    /// Records a comment on a box, provided the box still exists.
    pub async fn create_comment(
        &self,
        comment: &CommentRecord,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let item = Self::item(
            "comment",
            comment,
            &[
                (keys::PK, keys::user_pk(&comment.owner)),
                (keys::SK, comment_sk(&comment.id)),
                (keys::GSI1_PK, keys::box_children_pk(&comment.box_id)),
                (keys::GSI1_SK, comment_sk(&comment.id)),
            ],
        )?;
        let put = Put::builder()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK);
        let box_exists = ConditionCheck::builder()
            .table_name(self.name())
            .key(keys::PK, AttributeValue::S(keys::user_pk(&comment.owner)))
            .key(keys::SK, AttributeValue::S(keys::box_sk(&comment.box_id)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK);
        self.transact(
            vec![
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build(),
                TransactWriteItem::builder()
                    .condition_check(built(box_exists.build())?)
                    .build(),
            ],
            vec![Refusal::StateChanged, Refusal::ParentGone],
        )
        .await
    }

    /// A page of a box's comments, newest first, optionally only read or
    /// only unread ones.
    pub async fn list_box_comments(
        &self,
        box_id: &str,
        is_read: Option<bool>,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<CommentRecord>, StoreError> {
        let mut query = self.gsi1_children(keys::box_children_pk(box_id), keys::prefix::COMMENT);
        if let Some(read) = is_read {
            query = query
                .filter_expression("is_read = :read")
                .expression_attribute_values(":read", AttributeValue::Bool(read));
        }
        self.query_page(query, limit, after, GSI1_KEYS).await
    }

    pub async fn set_comment_read(
        &self,
        owner: &str,
        id: &str,
        is_read: bool,
        now: &str,
    ) -> Result<Option<CommentRecord>, StoreError> {
        self.update_existing(
            keys::user_pk(owner),
            comment_sk(id),
            "comment",
            vec![
                ("is_read", AttributeValue::Bool(is_read)),
                ("updated_at", AttributeValue::S(now.to_owned())),
            ],
        )
        .await
    }

    /// Deletes every comment of a box (the box is going).
    pub async fn delete_box_comments(&self, owner: &str, box_id: &str) -> Result<(), StoreError> {
        loop {
            let page = self.list_box_comments(box_id, None, 100, None).await?;
            if page.items.is_empty() {
                return Ok(());
            }
            for comment in page.items {
                self.client()
                    .delete_item()
                    .table_name(self.name())
                    .key(keys::PK, AttributeValue::S(keys::user_pk(owner)))
                    .key(keys::SK, AttributeValue::S(comment_sk(&comment.id)))
                    .send()
                    .await
                    .map_err(store_error)?;
            }
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
