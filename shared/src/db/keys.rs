//! The single-table design: every entity of SPEC.md, its keys and indexes, in
//! one place. `template.yaml` declares exactly these attribute names and
//! indexes (a test checks the two agree).
//!
//! Principles
//! - Owner-scoped primary keys: everything a user owns lives under
//!   `pk = USER#<sub>`. A GetItem with the caller's own partition cannot reach
//!   another owner's record, so "foreign id = unknown id" holds by construction.
//! - Every list is a Query on the table or a GSI. Nothing on a request path scans.
//! - Ids are ULIDs, so sort keys that embed them sort by creation time.
//!
//! | entity | pk | sk | gsi1 (children in order) | gsi2 (global / admin) | due (sparse, for cleanup) |
//! |---|---|---|---|---|---|
//! | project | `USER#<owner>` | `PROJECT#<id>` | | | |
//! | box | `USER#<owner>` | `BOX#<id>` | `PROJECT#<project>` / `BOX#<id>` (membership) | | |
//! | asset | `USER#<owner>` | `ASSET#<id>` | `BOX#<box>` / `ASSET#<id>` | `PROJECT#<project>` / `ASSET#<id>` | `WORK#<shard>` / `<created>#<id>` while `PENDING` or `PROCESSING`, then `RETENTION#<shard>` / `<created or finished>#<id>` while neither favourite nor headliner |
//! | upload / file | `USER#<owner>` | `FILE#<id>` | `PARENT#<type>#<parent id>` / `FILE#<id>` | `FILES#<status>` / `<created>#<id>` (admin list) | `UPLOAD#<shard>` / `<expires>#<id>` while pending or uploading |
//! | quota | `USER#<owner>` | `QUOTA` | | | |
//! | generation job | lives on its asset item (attribute `generation`) | | | | `GENERATION#<shard>` / `<deadline>#<id>` while running |
//! | idempotency key | `USER#<owner>` | `IDEMPOTENCY#<sha256(key)>` | | | TTL 24 h |
//! | share link | `SHARE#<sha256(token)>` | `LINK` | `PROJECT#<project>` / `SHARE#<id>` | | TTL `expires_at_epoch` |
//! | comment | `USER#<owner>` | `COMMENT#<id>` | `BOX#<box>` / `COMMENT#<id>` | | |
//! | comment rate bucket | `SHARE#<sha256(token)>` | `RATE#<hour>` | | | TTL |
//! | AI provider | `AI` | `PROVIDER#<id>` | | | |
//! | AI model | `AI` | `MODEL#<id>` | | | |
//! | cleanup step | `CLEANUP#<run>` | `STEP#<task>#<part>#<position>` | | | TTL 3 days |
//! | live connection | `CONNECTION#<connection id>` | `CONNECTION` | | | TTL 2 h (API Gateway's limit) |
//! | live subscription | `LIVE#<project>` | `CONNECTION#<connection id>` | | | TTL 2 h |
//!
//! - A project's box order is the list `box_order` on the project item, not a
//!   sort key: a reorder of any number of boxes is one conditional write
//!   (`box_order = :as_read`), creating or deleting a box changes the list in
//!   the same transaction as the box, and `order_index` is a box's position in
//!   it, dense by construction. Listing reads the project and BatchGets the
//!   slice of boxes a page needs.
//! - Share links are keyed by a hash of the token so the public view finds its
//!   project with one GetItem and a table dump does not leak live tokens.
//! - `due` is sparse: only items that the cleanup job must act on carry its
//!   keys, which are removed when the item leaves that state. Its partition is
//!   sharded (`<kind>#0..DUE_SHARDS`) so one hot key cannot throttle writes;
//!   cleanup queries each shard with `due_sk < now`.
//! - TTL (`expires_at_epoch`) only removes dead rows lazily; readers filter
//!   expired items themselves, as DynamoDB may keep them for days.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const DUE: &str = "due";
pub const DUE_PK: &str = "due_pk";
pub const DUE_SK: &str = "due_sk";
pub const TTL: &str = "expires_at_epoch";
/// Every item names its entity, which keeps debugging and exports readable.
pub const ENTITY: &str = "entity";

pub const DUE_SHARDS: u32 = 8;

/// Key prefixes. A value that goes into a key never contains `#` (ids are
/// ULIDs, owners are checked Cognito subjects), so prefixes cannot collide.
pub mod prefix {
    pub const USER: &str = "USER#";
    pub const PROJECT: &str = "PROJECT#";
    pub const BOX: &str = "BOX#";
    pub const ASSET: &str = "ASSET#";
    pub const FILE: &str = "FILE#";
    pub const COMMENT: &str = "COMMENT#";
    pub const SHARE: &str = "SHARE#";
    pub const PARENT: &str = "PARENT#";
    pub const FILES: &str = "FILES#";
    pub const UPLOAD: &str = "UPLOAD#";
    pub const PROVIDER: &str = "PROVIDER#";
    pub const MODEL: &str = "MODEL#";
    pub const IDEMPOTENCY: &str = "IDEMPOTENCY#";
    pub const GENERATION: &str = "GENERATION#";
    pub const CLEANUP: &str = "CLEANUP#";
    pub const RETENTION: &str = "RETENTION#";
    pub const WORK: &str = "WORK#";
    pub const STEP: &str = "STEP#";
    pub const CONNECTION: &str = "CONNECTION#";
    pub const LIVE: &str = "LIVE#";
}

/// A WebSocket connection's item (its owner and the projects it follows).
pub fn connection_pk(connection_id: &str) -> String {
    format!("{}{connection_id}", prefix::CONNECTION)
}

pub const CONNECTION_SK: &str = "CONNECTION";

/// The subscribers of a project: one item per connection following it, so
/// the push reads them with one Query.
pub fn subscribers_pk(project_id: &str) -> String {
    format!("{}{project_id}", prefix::LIVE)
}

pub fn subscriber_sk(connection_id: &str) -> String {
    format!("{}{connection_id}", prefix::CONNECTION)
}

/// The partition of the AI registry (providers and models: a few dozen
/// items, read whole).
pub const AI_PK: &str = "AI";

pub fn provider_sk(id: &str) -> String {
    format!("{}{id}", prefix::PROVIDER)
}

pub fn model_sk(id: &str) -> String {
    format!("{}{id}", prefix::MODEL)
}

/// A generation request's `Idempotency-Key`, hashed (the key is the
/// client's; the table keeps only its digest).
pub fn idempotency_sk(key_digest: &str) -> String {
    format!("{}{key_digest}", prefix::IDEMPOTENCY)
}

/// The `due` partition of running generations in one shard.
pub fn due_generation_pk(shard: u32) -> String {
    format!("{}{shard}", prefix::GENERATION)
}

/// The `due` partition of assets the retention policy may delete (neither
/// favourite nor headliner) in one shard.
pub fn due_retention_pk(shard: u32) -> String {
    format!("{}{shard}", prefix::RETENTION)
}

/// The `due` partition of assets in flight (`PENDING` or `PROCESSING`,
/// not a running generation's) in one shard.
pub fn due_work_pk(shard: u32) -> String {
    format!("{}{shard}", prefix::WORK)
}

/// An asset's `due` sort key on the retention or in-flight partition: its
/// age.
pub fn due_age_sk(since: &str, id: &str) -> String {
    format!("{since}#{id}")
}

/// The partition of one cleanup run: a record per step it took.
pub fn cleanup_run_pk(run: &str) -> String {
    format!("{}{run}", prefix::CLEANUP)
}

/// One step of a cleanup run: its task, part (a `due` shard, a status) and
/// the position it started from (a digest, `start` for the first page).
pub fn cleanup_step_sk(task: &str, part: u32, position: &str) -> String {
    format!("{}{task}#{part}#{position}", prefix::STEP)
}

/// The owner's quota counter item.
pub const QUOTA_SK: &str = "QUOTA";

pub fn box_sk(box_id: &str) -> String {
    format!("{}{box_id}", prefix::BOX)
}

pub fn asset_sk(asset_id: &str) -> String {
    format!("{}{asset_id}", prefix::ASSET)
}

/// The GSI1 partition that holds a box's children (assets, comments).
pub fn box_children_pk(box_id: &str) -> String {
    format!("{}{box_id}", prefix::BOX)
}

/// The GSI2 partition of a project's assets (the project-wide asset list).
pub fn project_assets_pk(project_id: &str) -> String {
    format!("{}{project_id}", prefix::PROJECT)
}

pub fn file_sk(file_id: &str) -> String {
    format!("{}{file_id}", prefix::FILE)
}

/// The GSI1 partition of the files attached to one parent.
pub fn parent_pk(parent_type: &str, parent_id: &str) -> String {
    format!("{}{parent_type}#{parent_id}", prefix::PARENT)
}

/// The GSI2 partition of every owner's files in one status (admin list).
pub fn files_by_status_pk(status: &str) -> String {
    format!("{}{status}", prefix::FILES)
}

/// The `due` partition of open uploads in one shard.
pub fn due_upload_pk(shard: u32) -> String {
    format!("{}{shard}", prefix::UPLOAD)
}

pub fn user_pk(owner: &str) -> String {
    format!("{}{owner}", prefix::USER)
}

pub fn project_sk(project_id: &str) -> String {
    format!("{}{project_id}", prefix::PROJECT)
}

/// The GSI1 partition that holds a project's children (boxes, share links).
pub fn project_children_pk(project_id: &str) -> String {
    format!("{}{project_id}", prefix::PROJECT)
}

/// Which `due` shard an id falls into: stable, evenly spread by the ULID's
/// random tail.
pub fn due_shard(id: &str) -> u32 {
    id.bytes()
        .rev()
        .take(4)
        .fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u32))
        % DUE_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_shards_spread_and_stay_in_range() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let shard = due_shard(&crate::validation::new_id());
            assert!(shard < DUE_SHARDS);
            seen.insert(shard);
        }
        assert_eq!(seen.len() as u32, DUE_SHARDS);
    }
}
