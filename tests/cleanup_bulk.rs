//! Cleanup at scale and with retention off, on a stack of their own: the
//! 1,000-upload run keeps the emulator busy (its transactions copy the
//! whole table), which would slow every test beside it.

use std::collections::HashMap;
use std::time::Duration;

use assetbox_e2e::{Client, DAY, Stack, ago, stack_with, text, within_pages};
use assetbox_shared::clock;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use reqwest::StatusCode;
use serde_json::json;

const MIB: u64 = 1024 * 1024;
/// Steps read 50 items at most, so 1,000 uploads take many steps.
const PAGE: u32 = 50;

/// No scheduled runs (each test sees only its own), 50-item pages, the
/// retention policy off, uploaded assets ingested.
fn bulk_stack() -> &'static Stack {
    stack_with(
        vec![
            ("CleanupScheduleState".into(), "DISABLED".into()),
            ("CleanupPageSize".into(), PAGE.to_string()),
            ("RetentionDays".into(), "0".into()),
        ],
        true,
    )
}

#[tokio::test]
async fn a_thousand_expired_uploads_page_through_follow_ups_and_duplicates_change_nothing() {
    let stack = bulk_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (original, _, _) = api.initiate_upload(&user, 6 * MIB, 2).await;
    // The counter as if all 1,000 were reserved, set before any of them is
    // due (other tests' runs expire what they find).
    stack.set_quota_used(&user.id, 1000 * 6 * MIB).await;
    // 999 more like it: the stored item with fresh ids, spread over the
    // due shards as the store spreads them.
    let item = stack
        .all_items_of(&user)
        .await
        .into_iter()
        .find(|i| i["sk"] == text(format!("FILE#{original}")))
        .unwrap();
    let expired_at = ago(DAY);
    let dynamodb = stack.dynamodb().await;
    let clones: Vec<WriteRequest> = (0..999)
        .map(|_| {
            let id = ulid::Ulid::new().to_string();
            let mut clone = item.clone();
            let shard = assetbox_shared::db::keys::due_shard(&id);
            for (name, value) in [
                ("id", id.clone()),
                ("sk", format!("FILE#{id}")),
                ("s3_key", format!("uploads/{}/{id}/original.mp4", user.id)),
                ("upload_id", format!("never-created-{id}")),
                ("due_pk", format!("UPLOAD#{shard}")),
                ("due_sk", format!("{expired_at}#{id}")),
                ("expires_at", expired_at.clone()),
            ] {
                clone.insert(name.to_owned(), text(value));
            }
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(clone)).build().unwrap())
                .build()
        })
        .collect();
    for batch in clones.chunks(25) {
        dynamodb
            .batch_write_item()
            .request_items(&stack.table, batch.to_vec())
            .send()
            .await
            .unwrap();
    }
    stack.expire_long_ago(&user, &original).await;

    let steps = stack.run_cleanup(&["expire-uploads"]).await;
    within_pages(&steps, PAGE);
    // More than one page per shard: the follow-ups carried the run on.
    assert!(steps.iter().any(|s| s.follow_up), "{steps:#?}");
    let statuses = |items: Vec<HashMap<String, AttributeValue>>| {
        let mut count: HashMap<String, usize> = HashMap::new();
        for item in items {
            if let Some(status) = item.get("upload_status").and_then(|v| v.as_s().ok()) {
                *count.entry(status.clone()).or_default() += 1;
            }
        }
        count
    };
    assert_eq!(
        statuses(stack.all_items_of(&user).await),
        HashMap::from([("expired".to_owned(), 1000)]),
        "{steps:#?}"
    );
    // Every reserved byte back, none twice (the counter would go negative).
    assert_eq!(stack.quota_used(&user.id).await, "0");

    // The run's first step delivered five more times, and a scheduled run
    // delivered twice: the duplicates find their records and do nothing.
    let first = steps
        .iter()
        .find(|s| s.step.after.is_none() && s.step.part == 0)
        .unwrap();
    let sqs = stack.sqs().await;
    let again = json!({ "kind": "step", "run": first.step.run, "as_of": first.step.as_of,
                        "task": "expire-uploads", "part": 0 });
    for _ in 0..5 {
        sqs.send_message()
            .queue_url(&stack.cleanup_queue_url)
            .message_body(again.to_string())
            .send()
            .await
            .unwrap();
    }
    let scheduled_time = clock::rfc3339(clock::now() - Duration::from_secs(1));
    let firing = json!({ "kind": "scheduled-run", "scheduled_time": scheduled_time,
                         "tasks": ["expire-uploads"] });
    for _ in 0..2 {
        sqs.send_message()
            .queue_url(&stack.cleanup_queue_url)
            .message_body(firing.to_string())
            .send()
            .await
            .unwrap();
    }
    let twice = stack.finished_run(&scheduled_time, 8).await;
    within_pages(&twice, PAGE);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = stack.store().await;
    assert_eq!(
        store.cleanup_steps(&first.step.run).await.unwrap(),
        stack.finished_run(&first.step.run, 8).await
    );
    assert_eq!(stack.quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn with_retention_off_old_assets_stay() {
    let stack = bulk_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (_, box_id) = api.project_and_box(&user).await;
    let asset = api.completed_asset(&user, &box_id, 1).await;
    let id = asset["id"].as_str().unwrap();
    assert!(stack.asset_made_days_ago(&user, id, 400).await);
    // The run has no retention step at all; purge's three run as usual.
    let steps = stack
        .run_cleanup_of(&["retention", "purge-files"], &["purge-files"])
        .await;
    assert!(
        steps.iter().all(|s| s.step.task.as_str() == "purge-files"),
        "{steps:#?}"
    );
    let still = api
        .get(&format!("/api/assets/{id}/"), Some(&user.access_token))
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["status"], "COMPLETED");
}
