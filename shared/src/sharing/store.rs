//! Share links and comments in the table: the link under the hash of its
//! token, comments under their owner and box, the hourly rate counter.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem,
};

use super::{CommentRecord, ShareLinkRecord};
use crate::db::keys;
use crate::db::{
    GSI1_KEYS, Listing, Refusal, StoreError, Table, built, condition_held, store_error,
};
use crate::pagination::StringKey;

const LINK_SK: &str = "LINK";

fn link_pk(hash: &str) -> String {
    format!("{}{hash}", keys::prefix::SHARE)
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
