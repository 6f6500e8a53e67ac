//! Ingestion's writes: the claim read in one BatchGet, then one conditional
//! transaction that completes or fails it.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};

use super::Claim;
use crate::assets::{self, AssetRecord, AssetStatus};
use crate::db::keys;
use crate::db::{Refusal, StoreError, Table, built, n, n_or_null, s, s_or_null, store_error};
use crate::media::Description;
use crate::uploads::{FileRecord, UploadStatus};

fn update_item(update: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

impl Table {
    /// The asset or file an object's id names, in one strongly consistent
    /// BatchGetItem (the key does not say which of the two it is).
    pub async fn claim_of(&self, owner: &str, id: &str) -> Result<Option<Claim>, StoreError> {
        let pk = keys::user_pk(owner);
        let wanted = built(
            KeysAndAttributes::builder()
                .keys(Self::primary_key(pk.clone(), keys::asset_sk(id)))
                .keys(Self::primary_key(pk, keys::file_sk(id)))
                .consistent_read(true)
                .build(),
        )?;
        let out = self
            .client()
            .batch_get_item()
            .request_items(self.name(), wanted)
            .send()
            .await
            .map_err(store_error)?;
        if out
            .unprocessed_keys()
            .is_some_and(|unprocessed| !unprocessed.is_empty())
        {
            return Err(StoreError::Unavailable("reads throttled".into()));
        }
        let items = out
            .responses
            .and_then(|mut r| r.remove(self.name()))
            .unwrap_or_default();
        let mut claim = None;
        for item in items {
            let sk = match item.get(keys::SK) {
                Some(AttributeValue::S(sk)) => sk.clone(),
                _ => continue,
            };
            let read = |what| {
                move |e: serde_dynamo::Error| StoreError::Failed(format!("reading {what}: {e}"))
            };
            if sk.starts_with(keys::prefix::ASSET) {
                return Ok(Some(Claim::Asset(
                    serde_dynamo::from_item(item).map_err(read("asset"))?,
                )));
            }
            if sk.starts_with(keys::prefix::FILE) {
                claim = Some(Claim::File(
                    serde_dynamo::from_item(item).map_err(read("file"))?,
                ));
            }
        }
        Ok(claim)
    }

    /// An update that takes an asset out of flight (completed or failed)
    /// while it is still `PROCESSING` this object: it moves from the
    /// in-flight partition onto the retention one (its SET clause names
    /// [`Table::ONTO_DUE`]).
    fn finishing_asset(&self, owner: &str, asset_id: &str, key: &str, now: &str) -> UpdateBuilder {
        let update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(owner)))
            .key(keys::SK, s(keys::asset_sk(asset_id)))
            .condition_expression("#status = :processing AND s3_key = :key")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", s(AssetStatus::Processing.as_str()))
            .expression_attribute_values(":key", s(key));
        Table::onto_due(update, keys::due_retention_pk, asset_id, now)
    }

    /// `PROCESSING` → `COMPLETED` with the description.
    fn complete_asset(
        &self,
        owner: &str,
        asset_id: &str,
        key: &str,
        d: &Description,
        now: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self
            .finishing_asset(owner, asset_id, key, now)
            .update_expression(format!(
                "SET #status = :completed, content_type = :ct, #size = :size, width = :w, \
                 height = :h, duration_ms = :d, thumbnail_key = :t, checksum = :sum, \
                 updated_at = :now, {}",
                Table::ONTO_DUE
            ))
            .expression_attribute_names("#size", "size")
            .expression_attribute_values(":completed", s(AssetStatus::Completed.as_str()))
            .expression_attribute_values(":ct", s(&d.content_type))
            .expression_attribute_values(":size", n(d.size))
            .expression_attribute_values(":w", n_or_null(d.width.map(u64::from)))
            .expression_attribute_values(":h", n_or_null(d.height.map(u64::from)))
            .expression_attribute_values(":d", n_or_null(d.duration_ms))
            .expression_attribute_values(":t", s_or_null(d.thumbnail_key.as_deref()))
            .expression_attribute_values(":sum", s_or_null(d.checksum.as_deref()))
            .expression_attribute_values(":now", s(now));
        Ok(update_item(built(update.build())?))
    }

    /// An update of a file in the state it was read: same status, not yet
    /// described, same asset (none, or the one read) and same parent.
    fn file_as_read(&self, file: &FileRecord) -> UpdateBuilder {
        let same_asset = match &file.asset_id {
            Some(_) => "asset_id = :asset",
            None => "(attribute_not_exists(asset_id) OR asset_id = :null)",
        };
        let mut update = Update::builder()
            .table_name(self.name())
            .key(keys::PK, s(keys::user_pk(&file.owner)))
            .key(keys::SK, s(keys::file_sk(&file.id)))
            .condition_expression(format!(
                "upload_status = :read_status AND (attribute_not_exists(media) OR media = :null) \
                 AND {same_asset} AND {}",
                Self::same_parent(file)
            ))
            .expression_attribute_values(":read_status", s(file.upload_status.as_str()))
            .expression_attribute_values(":null", AttributeValue::Null(true));
        if let Some(asset) = &file.asset_id {
            update = update.expression_attribute_values(":asset", s(asset));
        }
        if let Some(parent) = &file.parent_object_id {
            update = update.expression_attribute_values(":read_parent", s(parent));
        }
        update
    }

    /// The claim's object verified: the asset `COMPLETED` with the
    /// description. A file records the description too; a file its object
    /// completes (a single PUT, or a multipart upload the browser completed
    /// with S3) completes now, its bytes measured against `quota`, and
    /// becomes an asset `COMPLETED` at once if it already has a box — unless
    /// `detach` (its box is gone): then it completes as a plain file.
    /// `StateChanged` when the claim is no longer in the state read,
    /// `QuotaExceeded`, or `ParentGone` (the box went meanwhile).
    pub async fn complete_ingest(
        &self,
        claim: &Claim,
        description: &Description,
        quota: u64,
        detach: bool,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let file = match claim {
            Claim::Asset(asset) => {
                let Some(key) = asset.s3_key.as_deref() else {
                    // No object recorded yet: not the state this write is for.
                    return Ok(Err(Refusal::StateChanged));
                };
                let item = self.complete_asset(&asset.owner, &asset.id, key, description, now)?;
                return self.transact(vec![item], vec![Refusal::StateChanged]).await;
            }
            Claim::File(file) => file,
        };
        let media = built(serde_dynamo::to_attribute_value(description))?;
        let mut expression = String::from("SET media = :media, updated = :now");
        let mut update = self
            .file_as_read(file)
            .expression_attribute_values(":media", media)
            .expression_attribute_values(":now", s(now));
        let mut items = Vec::new();
        let mut meanings = Vec::new();
        let mut new_asset = None;
        if file.completes_on_arrival() {
            (update, new_asset) =
                complete_on_arrival(file, description, detach, now, update, &mut expression);
        }
        items.push(update_item(built(
            update.update_expression(expression).build(),
        )?));
        meanings.push(Refusal::StateChanged);
        let delta = description.size as i128 - file.reserved_bytes as i128;
        if file.completes_on_arrival() && delta != 0 {
            items.push(self.quota_change(&file.owner, delta, quota)?);
            meanings.push(Refusal::QuotaExceeded);
        }
        if let Some(asset_id) = &file.asset_id {
            items.push(self.complete_asset(
                &file.owner,
                asset_id,
                &file.s3_key,
                description,
                now,
            )?);
            meanings.push(Refusal::StateChanged);
        }
        if let Some(asset) = &new_asset {
            self.add_asset(asset, &mut items, &mut meanings)?;
        }
        self.transact(items, meanings).await
    }

    /// The claim's object rejected: the asset (if any) `FAILED` with the
    /// reason, a file `failed`, and the bytes either held go back to the
    /// quota, in one transaction.
    pub async fn fail_ingest(
        &self,
        claim: &Claim,
        reason: &str,
        now: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let fail_asset = |owner: &str, asset_id: &str, key: &str| -> Result<_, StoreError> {
            let update = self
                .finishing_asset(owner, asset_id, key, now)
                .update_expression(format!(
                    "SET #status = :failed, error_message = :reason, quota_bytes = :zero, \
                     updated_at = :now, {}",
                    Table::ONTO_DUE
                ))
                .expression_attribute_values(":failed", s(AssetStatus::Failed.as_str()))
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":now", s(now));
            Ok(update_item(built(update.build())?))
        };
        let (mut items, released) = match claim {
            Claim::Asset(asset) => {
                let Some(key) = asset.s3_key.as_deref() else {
                    return Ok(Err(Refusal::StateChanged));
                };
                (
                    vec![fail_asset(&asset.owner, &asset.id, key)?],
                    asset.quota_bytes,
                )
            }
            Claim::File(file) => {
                let update = self
                    .file_as_read(file)
                    .update_expression(
                        "SET upload_status = :failed, reserved_bytes = :zero, updated = :now, \
                         #g2 = :g2, error_message = :reason REMOVE #duepk, #duesk",
                    )
                    .expression_attribute_names("#g2", keys::GSI2_PK)
                    .expression_attribute_names("#duepk", keys::DUE_PK)
                    .expression_attribute_names("#duesk", keys::DUE_SK)
                    .expression_attribute_values(":failed", s(UploadStatus::Failed.as_str()))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":reason", s(reason))
                    .expression_attribute_values(":now", s(now))
                    .expression_attribute_values(
                        ":g2",
                        s(keys::files_by_status_pk(UploadStatus::Failed.as_str())),
                    );
                let mut items = vec![update_item(built(update.build())?)];
                if let Some(asset_id) = &file.asset_id {
                    items.push(fail_asset(&file.owner, asset_id, &file.s3_key)?);
                }
                (items, file.reserved_bytes)
            }
        };
        if released > 0 {
            items.push(self.quota_change(claim.owner(), -(released as i128), 0)?);
        }
        let meanings = items.iter().map(|_| Refusal::StateChanged).collect();
        self.transact(items, meanings).await
    }
}

type UpdateBuilder = aws_sdk_dynamodb::types::builders::UpdateBuilder;

/// What a file that its object completes (a single PUT, a multipart upload
/// the browser completed) adds to its update: completed, measured, off the
/// `due` index, and attached to its box — or detached from a gone one.
fn complete_on_arrival(
    file: &FileRecord,
    description: &Description,
    detach: bool,
    now: &str,
    mut update: UpdateBuilder,
    expression: &mut String,
) -> (UpdateBuilder, Option<AssetRecord>) {
    let mut new_asset = None;
    expression.push_str(
        ", upload_status = :done, file_size = :size, reserved_bytes = :size, \
         etag = :etag, #g2 = :g2",
    );
    update = update
        .expression_attribute_names("#g2", keys::GSI2_PK)
        .expression_attribute_names("#duepk", keys::DUE_PK)
        .expression_attribute_names("#duesk", keys::DUE_SK)
        .expression_attribute_values(":done", s(UploadStatus::Completed.as_str()))
        .expression_attribute_values(":size", n(description.size))
        .expression_attribute_values(":etag", s(&description.etag))
        .expression_attribute_values(
            ":g2",
            s(keys::files_by_status_pk(UploadStatus::Completed.as_str())),
        );
    if detach {
        expression.push_str(
            ", parent_content_type = :null, parent_object_id = :null, \
                 parent_project = :null",
        );
        update = update
            .expression_attribute_names("#g1pk", keys::GSI1_PK)
            .expression_attribute_names("#g1sk", keys::GSI1_SK);
    } else {
        // The file as this write leaves it: completed, measured, described.
        let mut arrived = file.clone();
        arrived.upload_status = UploadStatus::Completed;
        arrived.file_size = description.size;
        arrived.media = Some(description.clone());
        if let Some(asset) = assets::attach(&mut arrived, now) {
            expression.push_str(", asset_id = :new_asset");
            update = update.expression_attribute_values(":new_asset", s(&asset.id));
            new_asset = Some(asset);
        }
    }
    expression.push_str(" REMOVE #duepk, #duesk");
    if detach {
        // Off the gone box's list too.
        expression.push_str(", #g1pk, #g1sk");
    }
    (update, new_asset)
}
