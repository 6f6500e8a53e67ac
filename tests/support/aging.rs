//! Making items old without waiting (the cleanup tests): their timestamps,
//! and the index sort keys built from them, rewritten into the past — the
//! records as time would have left them. Also the cleanup tests' other
//! shared pieces.

use std::collections::HashMap;
use std::time::Duration;

use assetbox_shared::cleanup::StepRecord;
use assetbox_shared::clock;
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::*;

pub const DAY: Duration = Duration::from_secs(24 * 3600);
const MIB: u64 = 1024 * 1024;

/// RFC 3339 of `by` ago.
pub fn ago(by: Duration) -> String {
    clock::rfc3339(clock::now() - by)
}

pub fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Every step read at most `page` items and accounts for each one.
pub fn within_pages(steps: &[StepRecord], page: u32) {
    for step in steps {
        assert!(step.counts.found <= page, "{step:?}");
        assert_eq!(
            step.counts.found,
            step.counts.done + step.counts.skipped + step.counts.failed
        );
    }
}

impl Stack {
    /// Sets attributes of one of the user's items (it must exist); a name
    /// `a.b` sets `b` inside the map `a`.
    pub async fn rewrite(&self, user: &User, sk: &str, set: &[(&str, AttributeValue)]) {
        let mut update = self
            .dynamodb()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", text(format!("USER#{}", user.id)))
            .key("sk", text(sk))
            .condition_expression("attribute_exists(pk)");
        let mut parts = Vec::new();
        for (i, (name, value)) in set.iter().enumerate() {
            let (outer, inner) = match name.split_once('.') {
                Some((outer, inner)) => (outer, Some(inner)),
                None => (*name, None),
            };
            update = update
                .expression_attribute_names(format!("#a{i}"), outer)
                .expression_attribute_values(format!(":v{i}"), value.clone());
            match inner {
                Some(inner) => {
                    update = update.expression_attribute_names(format!("#b{i}"), inner);
                    parts.push(format!("#a{i}.#b{i} = :v{i}"));
                }
                None => parts.push(format!("#a{i} = :v{i}")),
            }
        }
        update
            .update_expression(format!("SET {}", parts.join(", ")))
            .send()
            .await
            .expect("rewrite an item");
    }

    /// An open upload whose expiry passed a day ago.
    pub async fn expire_long_ago(&self, user: &User, id: &str) {
        let at = ago(DAY);
        let due = format!("{at}#{id}");
        self.rewrite(
            user,
            &format!("FILE#{id}"),
            &[("expires_at", text(&at)), ("due_sk", text(due))],
        )
        .await;
    }

    /// A file record created eight days ago (past the 7-day purge age).
    pub async fn created_long_ago(&self, user: &User, id: &str) {
        let at = ago(8 * DAY);
        let position = format!("{at}#{id}");
        self.rewrite(
            user,
            &format!("FILE#{id}"),
            &[("created", text(&at)), ("gsi2sk", text(position))],
        )
        .await;
    }

    /// An asset as if it had been made `days` ago, and its age on the
    /// retention partition too; whether it was on it.
    pub async fn asset_made_days_ago(&self, user: &User, id: &str, days: u32) -> bool {
        let at = ago(days * DAY);
        self.rewrite(user, &format!("ASSET#{id}"), &[("created_at", text(&at))])
            .await;
        let on_partition = self
            .dynamodb()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", text(format!("USER#{}", user.id)))
            .key("sk", text(format!("ASSET#{id}")))
            .update_expression("SET due_sk = :sk")
            .condition_expression("begins_with(due_pk, :retention)")
            .expression_attribute_values(":sk", text(format!("{at}#{id}")))
            .expression_attribute_values(":retention", text("RETENTION#"))
            .send()
            .await;
        match on_partition {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    /// Every item of a user's partition, page by page.
    pub async fn all_items_of(&self, user: &User) -> Vec<HashMap<String, AttributeValue>> {
        let dynamodb = self.dynamodb().await;
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let out = dynamodb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", text(format!("USER#{}", user.id)))
                .set_exclusive_start_key(after)
                .send()
                .await
                .expect("query the table");
            items.extend(out.items.unwrap_or_default());
            after = out.last_evaluated_key;
            if after.is_none() {
                return items;
            }
        }
    }
}

impl Client {
    /// A multipart `/v1/files` upload of an MP4 of `size` bytes in `parts`
    /// parts of 5 MiB, left open: its id, S3 upload id and object key.
    pub async fn initiate_upload(
        &self,
        user: &User,
        size: u64,
        parts: u32,
    ) -> (String, String, String) {
        let reply = self
            .post(
                "/v1/files/uploads",
                Some(&user.access_token),
                &json!({ "file_name": "take.mp4", "file_size": size, "file_content_type": "video/mp4",
                         "num_parts": parts, "part_size": 5 * MIB }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let field = |name: &str| reply.body[name].as_str().unwrap().to_owned();
        let key = format!("uploads/{}/{}/original.mp4", user.id, field("id"));
        (field("id"), field("upload_id"), key)
    }

    /// A small PNG uploaded into the box and ingested (the stack must
    /// deliver S3 events): the asset.
    pub async fn completed_asset(&self, user: &User, box_id: &str, seed: u8) -> Value {
        let png = media::png(64, 48, seed);
        let asset = self.small_upload(user, box_id, "frame.png", &png).await;
        let path = format!("/api/assets/{}/", asset["id"].as_str().unwrap());
        for _ in 0..300 {
            let now = self.get(&path, Some(&user.access_token)).await;
            if now.body["status"] == "COMPLETED" {
                return now.body;
            }
            assert_ne!(now.body["status"], "FAILED", "{:?}", now.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("asset never completed");
    }
}
