//! Live status (issue 16): which changes of an asset are pushed to the
//! browsers subscribed to its project, and what the pushed event says.
//! Connections and subscriptions are items of the table (`store.rs`); the
//! stream of the table tells the push function what changed, so no writer
//! knows about any of this.

use serde::{Deserialize, Serialize};

use crate::assets::{AssetRecord, AssetStatus};
use crate::media::AssetType;

mod store;

pub use store::{OpenConnection, Subscribed, Subscriber};

/// API Gateway closes a WebSocket connection after two hours; its items
/// expire then too.
pub const CONNECTION_LIFETIME_SECS: i64 = 2 * 3600;
/// Projects one connection may follow at once (its subscriptions and the
/// connection fit one BatchWriteItem when it goes).
pub const MAX_SUBSCRIPTIONS: usize = 20;

/// What a subscriber receives when an asset of the project changes.
/// Delivery is at least once and may reorder: `version` grows with every
/// change of the asset (compare as strings), so a client keeps the event
/// with the greatest version per `asset_id` and drops the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub asset_id: String,
    pub project: String,
    #[serde(rename = "box")]
    pub box_id: String,
    pub status: AssetStatus,
    pub asset_type: AssetType,
    pub name: String,
    /// Why it failed, when it did.
    pub error_message: Option<String>,
    /// A thumbnail exists (fetch the asset for its URL).
    pub has_thumbnail: bool,
    pub is_favorite: bool,
    /// What an `asset_changed` changed (empty for the other kinds).
    pub changed: Vec<String>,
    /// The stream's sequence number of the write, 40 digits wide.
    pub version: String,
    pub updated_at: String,
}

crate::wire::wire_enum! {
    /// What happened to the asset.
    pub enum EventKind {
        Created = "asset_created",
        Changed = "asset_changed",
        Deleted = "asset_deleted",
    }
}

/// The fields whose change a subscriber is told about.
fn changed_fields(old: &AssetRecord, new: &AssetRecord) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            changed.push(name.to_owned());
        }
    };
    check("status", old.status != new.status);
    check("error_message", old.error_message != new.error_message);
    check("thumbnail", old.thumbnail_key != new.thumbnail_key);
    check("name", old.name != new.name);
    check("box", old.box_id != new.box_id);
    check("is_favorite", old.is_favorite != new.is_favorite);
    check(
        "media",
        (old.width, old.height, old.duration_ms) != (new.width, new.height, new.duration_ms),
    );
    changed
}

/// A stream sequence number as a version that compares as a string:
/// sequence numbers are decimal and up to 40 digits long.
pub fn version_of(sequence_number: &str) -> String {
    format!("{sequence_number:0>40}")
}

/// The event a write of an asset item makes, if any: created, deleted, or
/// changed in a field a subscriber sees (moves on the cleanup index, the
/// quota and the like are not news).
pub fn event_of(
    old: Option<&AssetRecord>,
    new: Option<&AssetRecord>,
    version: String,
) -> Option<LiveEvent> {
    let (kind, asset, changed) = match (old, new) {
        (None, Some(new)) => (EventKind::Created, new, Vec::new()),
        (Some(old), None) => (EventKind::Deleted, old, Vec::new()),
        (Some(old), Some(new)) => {
            let changed = changed_fields(old, new);
            if changed.is_empty() {
                return None;
            }
            (EventKind::Changed, new, changed)
        }
        (None, None) => return None,
    };
    Some(LiveEvent {
        kind,
        asset_id: asset.id.clone(),
        project: asset.project.clone(),
        box_id: asset.box_id.clone(),
        status: asset.status,
        asset_type: asset.asset_type,
        name: asset.name.clone(),
        error_message: asset.error_message.clone(),
        has_thumbnail: asset.thumbnail_key.is_some(),
        is_favorite: asset.is_favorite,
        changed,
        version,
        updated_at: asset.updated_at.clone(),
    })
}

/// What a client sends on the socket (`action` picks the route).
#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionRequest {
    pub project: String,
}

/// What the socket answers a subscribe or unsubscribe with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// An HTTP-like status of a refusal (400, 404, 409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Reply {
    pub fn done(kind: &str, project: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            project: Some(project.to_owned()),
            status: None,
            message: None,
        }
    }

    pub fn refused(status: u16, project: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            kind: "error".to_owned(),
            project: project.map(str::to_owned),
            status: Some(status),
            message: Some(message.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> AssetRecord {
        AssetRecord::in_box("A1".into(), "owner-1", "B1", "P1", "2026-12-06T10:00:00Z")
    }

    #[test]
    fn created_changed_and_deleted_assets_make_events_and_bookkeeping_does_not() {
        let old = asset();
        let created = event_of(None, Some(&old), version_of("17")).unwrap();
        assert_eq!(created.kind, EventKind::Created);
        assert_eq!(created.version, format!("{}17", "0".repeat(38)));
        let mut done = old.clone();
        done.status = AssetStatus::Completed;
        done.thumbnail_key = Some("uploads/o/a/thumb.webp".into());
        let changed = event_of(Some(&old), Some(&done), version_of("18")).unwrap();
        assert_eq!(changed.kind, EventKind::Changed);
        assert_eq!(changed.changed, vec!["status", "thumbnail"]);
        assert!(changed.has_thumbnail);
        // Only the quota share moved: nothing to tell.
        let mut bookkeeping = done.clone();
        bookkeeping.quota_bytes = 99;
        assert_eq!(
            event_of(Some(&done), Some(&bookkeeping), version_of("19")),
            None
        );
        let deleted = event_of(Some(&done), None, version_of("20")).unwrap();
        assert_eq!(deleted.kind, EventKind::Deleted);
        assert_eq!(deleted.status, AssetStatus::Completed);
    }

    #[test]
    fn versions_of_growing_sequence_numbers_grow_as_strings() {
        let (small, large) = (version_of("999"), version_of("1000"));
        assert!(small < large);
        assert_eq!(large.len(), 40);
    }
}
