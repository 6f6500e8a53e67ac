//! Connections and subscriptions in the table. A connection item keeps its
//! owner and the set of projects it follows; each subscription is an item
//! under the project, so the push finds a project's subscribers with one
//! Query. Both expire with the connection's two hours.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, Update,
    WriteRequest,
};

use super::MAX_SUBSCRIPTIONS;
use crate::db::keys;
use crate::db::{Refusal, StoreError, Table, built, n, s, store_error};

/// How a subscribe went.
#[derive(Debug, PartialEq, Eq)]
pub enum Subscribed {
    Yes,
    /// Not a project of the connection's owner (or no project at all).
    UnknownProject,
    TooMany,
    /// The connection is not known (closed meanwhile).
    NoConnection,
    /// A concurrent change of the connection: try again.
    Clashed,
}

/// A live connection as its item keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenConnection {
    pub owner: String,
    /// The projects it follows.
    pub projects: Vec<String>,
    /// When its events stop (epoch seconds): API Gateway's two hours, or
    /// its token's expiry if sooner.
    pub expires: i64,
}

/// One connection following a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub connection_id: String,
    pub owner: String,
}

fn connection_key(connection_id: &str) -> HashMap<String, AttributeValue> {
    Table::primary_key(
        keys::connection_pk(connection_id),
        keys::CONNECTION_SK.to_owned(),
    )
}

fn subscription_key(project: &str, connection_id: &str) -> HashMap<String, AttributeValue> {
    Table::primary_key(
        keys::subscribers_pk(project),
        keys::subscriber_sk(connection_id),
    )
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// When an item expires (its TTL), if it says.
fn expires_of(item: &HashMap<String, AttributeValue>) -> Option<i64> {
    item.get(keys::TTL)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl Table {
    /// Records a connection its authorizer let in.
    pub async fn open_connection(
        &self,
        connection_id: &str,
        owner: &str,
        connected_at: &str,
        expires_epoch: i64,
    ) -> Result<(), StoreError> {
        let mut item = connection_key(connection_id);
        item.insert("owner".into(), s(owner));
        item.insert("connected_at".into(), s(connected_at));
        item.insert(keys::ENTITY.into(), s("connection"));
        item.insert(keys::TTL.into(), n(expires_epoch));
        self.client()
            .put_item()
            .table_name(self.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// A connection still live at `now_epoch` (TTL deletes lazily: an
    /// expired item is a closed connection).
    pub async fn connection(
        &self,
        connection_id: &str,
        now_epoch: i64,
    ) -> Result<Option<OpenConnection>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(connection_key(connection_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let expires = expires_of(&item).unwrap_or(i64::MAX);
        if expires <= now_epoch {
            return Ok(None);
        }
        let Some(owner) = text(&item, "owner") else {
            return Ok(None);
        };
        let projects = item
            .get("projects")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        Ok(Some(OpenConnection {
            owner,
            projects,
            expires,
        }))
    }

    /// Follows `project` on a connection of `owner`, in one transaction that
    /// checks the project is the owner's: another user's project and an
    /// unknown one are refused alike.
    pub async fn subscribe(
        &self,
        connection_id: &str,
        owner: &str,
        project: &str,
        expires_epoch: i64,
        now_epoch: i64,
    ) -> Result<Subscribed, StoreError> {
        let project_check = ConditionCheck::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::project_sk(project)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK);
        let follow = Update::builder()
            .table_name(self.name())
            .set_key(Some(connection_key(connection_id)))
            .update_expression("ADD projects :project")
            .condition_expression(
                "#owner = :owner AND (attribute_not_exists(projects) \
                 OR size(projects) < :max OR contains(projects, :name))",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":project", AttributeValue::Ss(vec![project.to_owned()]))
            .expression_attribute_values(":name", s(project))
            .expression_attribute_values(":max", n(MAX_SUBSCRIPTIONS));
        let mut item = subscription_key(project, connection_id);
        item.insert("owner".into(), s(owner));
        item.insert("connection_id".into(), s(connection_id));
        item.insert(keys::ENTITY.into(), s("subscription"));
        item.insert(keys::TTL.into(), n(expires_epoch));
        let put = Put::builder().table_name(self.name()).set_item(Some(item));
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(built(project_check.build())?)
                .build(),
            TransactWriteItem::builder()
                .update(built(follow.build())?)
                .build(),
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
        ];
        match self
            .transact(items, vec![Refusal::ParentGone, Refusal::StateChanged])
            .await?
        {
            Ok(()) => Ok(Subscribed::Yes),
            Err(Refusal::ParentGone) => Ok(Subscribed::UnknownProject),
            Err(_) => Ok(match self.connection(connection_id, now_epoch).await? {
                None => Subscribed::NoConnection,
                Some(open) if open.owner != owner => Subscribed::NoConnection,
                Some(open) if open.projects.len() >= MAX_SUBSCRIPTIONS => Subscribed::TooMany,
                Some(_) => Subscribed::Clashed,
            }),
        }
    }

    /// Stops following `project` (following nothing is fine); `false` when
    /// a concurrent change of the connection got in the way (try again).
    pub async fn unsubscribe(
        &self,
        connection_id: &str,
        owner: &str,
        project: &str,
        now_epoch: i64,
    ) -> Result<bool, StoreError> {
        let unfollow = Update::builder()
            .table_name(self.name())
            .set_key(Some(connection_key(connection_id)))
            .update_expression("DELETE projects :project")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":project", AttributeValue::Ss(vec![project.to_owned()]));
        let delete = Delete::builder()
            .table_name(self.name())
            .set_key(Some(subscription_key(project, connection_id)));
        let items = vec![
            TransactWriteItem::builder()
                .update(built(unfollow.build())?)
                .build(),
            TransactWriteItem::builder()
                .delete(built(delete.build())?)
                .build(),
        ];
        if self.transact(items, Vec::new()).await?.is_ok() {
            return Ok(true);
        }
        // Refused: a connection gone or not the owner's has nothing of
        // theirs to remove; one that is theirs met a concurrent change.
        Ok(self
            .connection(connection_id, now_epoch)
            .await?
            .is_none_or(|open| open.owner != owner))
    }

    /// Removes one subscription whatever its connection's item says (a
    /// push found the connection gone; a subscribe may have landed after
    /// the connection's item was read).
    pub async fn forget_subscription(
        &self,
        project: &str,
        connection_id: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.name())
            .set_key(Some(subscription_key(project, connection_id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Removes a connection and its subscriptions (it closed, or the push
    /// found it gone).
    pub async fn close_connection(&self, connection_id: &str) -> Result<(), StoreError> {
        // Expired or not, what it followed is on it.
        let Some(OpenConnection { projects, .. }) =
            self.connection(connection_id, i64::MIN).await?
        else {
            return Ok(());
        };
        let deletes = projects
            .iter()
            .map(|project| subscription_key(project, connection_id))
            .chain([connection_key(connection_id)])
            .map(|key| {
                built(DeleteRequest::builder().set_key(Some(key)).build())
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut pending = Some(deletes);
        // Unprocessed deletes are sent again a few times.
        for _ in 0..4 {
            let Some(requests) = pending.take().filter(|r| !r.is_empty()) else {
                return Ok(());
            };
            let out = self
                .client()
                .batch_write_item()
                .request_items(self.name(), requests)
                .send()
                .await
                .map_err(store_error)?;
            pending = out
                .unprocessed_items
                .and_then(|mut left| left.remove(self.name()));
        }
        match pending {
            Some(left) if !left.is_empty() => Err(StoreError::Failed(format!(
                "{} deletes of connection {connection_id} left unprocessed",
                left.len()
            ))),
            _ => Ok(()),
        }
    }

    /// The live connections following `project`.
    pub async fn subscribers(
        &self,
        project: &str,
        now_epoch: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let items = self.whole_partition(keys::subscribers_pk(project)).await?;
        Ok(items
            .into_iter()
            .filter(|item| expires_of(item).is_none_or(|at| at > now_epoch))
            .filter_map(|item| {
                Some(Subscriber {
                    connection_id: text(&item, "connection_id")?,
                    owner: text(&item, "owner")?,
                })
            })
            .collect())
    }
}
