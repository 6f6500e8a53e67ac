//! Scheduled cleanup end to end (SPEC §3.7): runs started on the cleanup
//! queue, worked by the cleanup function through the local stack's SQS
//! pump, against the emulator's table and bucket. Items are made old by
//! rewriting their timestamps — and the index sort keys built from them —
//! into the past: the same records, as if the time had passed.

use std::collections::HashMap;
use std::time::Duration;

use assetbox_e2e::{Client, Stack, User, stack_with};
use assetbox_shared::cleanup::StepRecord;
use assetbox_shared::clock;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;
/// This binary's page size: 1,000 uploads take many steps.
const PAGE: u32 = 50;

/// Steps read 50 items at most; a multipart upload no record knows is an
/// orphan after 5 s (an hour by default); no scheduled runs, so each test
/// sees only the runs it starts.
fn cleanup_stack() -> &'static Stack {
    stack_with(
        vec![
            ("CleanupScheduleState".into(), "DISABLED".into()),
            ("CleanupPageSize".into(), PAGE.to_string()),
            ("CleanupOrphanAfterSeconds".into(), "5".into()),
        ],
        false,
    )
}

fn ago(by: Duration) -> String {
    clock::rfc3339(clock::now() - by)
}

const DAY: Duration = Duration::from_secs(24 * 3600);

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Sets attributes of one item (it must exist).
async fn rewrite(user: &User, sk: &str, set: &[(&str, AttributeValue)]) {
    let mut update = cleanup_stack()
        .dynamodb()
        .await
        .update_item()
        .table_name(&cleanup_stack().table)
        .key("pk", text(format!("USER#{}", user.id)))
        .key("sk", text(sk))
        .condition_expression("attribute_exists(pk)");
    let mut parts = Vec::new();
    for (i, (name, value)) in set.iter().enumerate() {
        update = update
            .expression_attribute_names(format!("#a{i}"), name.split('.').next().unwrap())
            .expression_attribute_values(format!(":v{i}"), value.clone());
        match name.split_once('.') {
            Some((_, inner)) => {
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
async fn expire_long_ago(user: &User, id: &str) {
    let at = ago(DAY);
    rewrite(
        user,
        &format!("FILE#{id}"),
        &[
            ("expires_at", text(&at)),
            ("due_sk", text(format!("{at}#{id}"))),
        ],
    )
    .await;
}

/// A file record created eight days ago (past the 7-day purge age).
async fn created_long_ago(user: &User, id: &str) {
    let at = ago(8 * DAY);
    rewrite(
        user,
        &format!("FILE#{id}"),
        &[
            ("created", text(&at)),
            ("gsi2sk", text(format!("{at}#{id}"))),
        ],
    )
    .await;
}

async fn initiate(api: &Client, user: &User, size: u64, parts: u32) -> (String, String, String) {
    let reply = api
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

async fn file(api: &Client, user: &User, id: &str) -> (StatusCode, Value) {
    let reply = api
        .get(&format!("/v1/files/{id}"), Some(&user.access_token))
        .await;
    (reply.status, reply.body)
}

async fn object_exists(stack: &Stack, key: &str) -> bool {
    stack
        .s3()
        .await
        .head_object()
        .bucket(stack.bucket())
        .key(key)
        .send()
        .await
        .is_ok()
}

fn within_pages(steps: &[StepRecord]) {
    for step in steps {
        assert!(step.counts.found <= PAGE, "{step:?}");
        assert_eq!(
            step.counts.found,
            step.counts.done + step.counts.skipped + step.counts.failed
        );
    }
}

#[tokio::test]
async fn expired_uploads_give_back_their_quota_and_their_s3_side() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (multipart, _, multipart_key) = initiate(&api, &user, 10 * MIB, 2).await;
    let (young, _, young_key) = initiate(&api, &user, 6 * MIB, 2).await;
    // A single PUT whose object landed but was never ingested.
    let params = api
        .get(
            "/s3/params?filename=still.png&type=image%2Fpng&size=4096",
            token,
        )
        .await;
    assert_eq!(params.status, StatusCode::OK, "{:?}", params.body);
    let single = params.body["id"].as_str().unwrap().to_owned();
    let single_key = params.body["key"].as_str().unwrap().to_owned();
    let put = reqwest::Client::new()
        .put(params.body["url"].as_str().unwrap())
        .header("content-type", "image/png")
        .header("if-none-match", "*")
        .body(vec![7u8; 4096])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    assert_eq!(
        stack.quota_used(&user.id).await,
        (16 * MIB + 4096).to_string()
    );
    expire_long_ago(&user, &multipart).await;
    expire_long_ago(&user, &single).await;

    let steps = stack.run_cleanup(&["expire-uploads"]).await;
    within_pages(&steps);
    for id in [&multipart, &single] {
        let (_, body) = file(&api, &user, id).await;
        assert_eq!(body["upload_status"], "expired", "{body}");
    }
    assert_eq!(
        file(&api, &user, &young).await.1["upload_status"],
        "uploading"
    );
    assert_eq!(stack.quota_used(&user.id).await, (6 * MIB).to_string());
    assert_eq!(stack.open_uploads_of(&user.id).await, [young_key]);
    assert!(!object_exists(stack, &single_key).await);
    assert!(
        !stack
            .open_uploads_of(&user.id)
            .await
            .contains(&multipart_key)
    );
    // Off the due index: a second run finds nothing of theirs and changes
    // nothing; completing the expired upload is refused.
    stack.run_cleanup(&["expire-uploads"]).await;
    assert_eq!(stack.quota_used(&user.id).await, (6 * MIB).to_string());
    let complete = api
        .post(
            &format!("/v1/files/uploads/{multipart}/complete"),
            token,
            &json!({ "parts": [{ "part_number": 1, "etag": "\"x\"" }] }),
        )
        .await;
    assert_eq!(complete.status, StatusCode::CONFLICT, "{:?}", complete.body);
}

#[tokio::test]
async fn a_complete_racing_the_expiry_either_lands_or_gets_409() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let bytes = assetbox_e2e::test_bytes(1024, 3);
    let reply = api
        .post(
            "/v1/files/uploads",
            token,
            &json!({ "file_name": "take.mp4", "file_size": 1024, "file_content_type": "video/mp4",
                     "num_parts": 1, "part_size": 1024 }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let url = reply.body["presigned_urls"][0]["url"].as_str().unwrap();
    let etag = assetbox_e2e::put_to(url, bytes, &[]).await;
    expire_long_ago(&user, &id).await;
    let path = format!("/v1/files/uploads/{id}/complete");
    let body = json!({ "parts": [{ "part_number": 1, "etag": etag }] });
    let (completed, _) = tokio::join!(
        api.post(&path, token, &body),
        stack.run_cleanup(&["expire-uploads"])
    );
    let (_, after) = file(&api, &user, &id).await;
    match completed.status {
        StatusCode::OK => {
            assert_eq!(after["upload_status"], "completed");
            assert_eq!(stack.quota_used(&user.id).await, "1024");
        }
        StatusCode::CONFLICT => {
            assert_eq!(after["upload_status"], "expired");
            assert_eq!(stack.quota_used(&user.id).await, "0");
            assert!(stack.open_uploads_of(&user.id).await.is_empty());
        }
        other => panic!("complete answered {other}: {:?}", completed.body),
    }
}

/// Every item of a user's partition, page by page.
async fn all_items_of(stack: &Stack, user: &User) -> Vec<HashMap<String, AttributeValue>> {
    let dynamodb = stack.dynamodb().await;
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let out = dynamodb
            .query()
            .table_name(&stack.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", text(format!("USER#{}", user.id)))
            .set_exclusive_start_key(after)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        after = out.last_evaluated_key;
        if after.is_none() {
            return items;
        }
    }
}

#[tokio::test]
async fn a_thousand_expired_uploads_page_through_follow_ups_and_duplicates_change_nothing() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (original, _, _) = initiate(&api, &user, 6 * MIB, 2).await;
    // The counter as if all 1,000 were reserved, set before any of them is
    // due (other tests' runs expire what they find).
    stack.set_quota_used(&user.id, 1000 * 6 * MIB).await;
    // 999 more like it: the stored item with fresh ids, spread over the
    // due shards as the store spreads them.
    let item = all_items_of(stack, &user)
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
    expire_long_ago(&user, &original).await;

    let steps = stack.run_cleanup(&["expire-uploads"]).await;
    within_pages(&steps);
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
        statuses(all_items_of(stack, &user).await),
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
    within_pages(&twice);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = stack.store().await;
    assert_eq!(
        store.cleanup_steps(&first.step.run).await.unwrap(),
        stack.finished_run(&first.step.run, 8).await
    );
    assert_eq!(stack.quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn old_closed_records_are_purged_and_young_ones_kept() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let mut aborted = Vec::new();
    for _ in 0..2 {
        let (id, _, _) = initiate(&api, &user, 6 * MIB, 2).await;
        let reply = api.delete(&format!("/v1/files/uploads/{id}"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        aborted.push(id);
    }
    created_long_ago(&user, &aborted[0]).await;
    let steps = stack.run_cleanup(&["purge-files"]).await;
    within_pages(&steps);
    assert_eq!(
        file(&api, &user, &aborted[0]).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, young) = file(&api, &user, &aborted[1]).await;
    assert_eq!(
        (status, young["upload_status"].as_str()),
        (StatusCode::OK, Some("aborted"))
    );
    assert_eq!(stack.quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn orphan_multipart_uploads_are_aborted_once_old_unless_a_record_claims_them() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let s3 = stack.s3().await;
    let create = |key: String| {
        let s3 = s3.clone();
        async move {
            s3.create_multipart_upload()
                .bucket(stack.bucket())
                .key(&key)
                .send()
                .await
                .unwrap();
            key
        }
    };
    let orphan_key =
        |user: &User| format!("uploads/{}/{}/original.mp4", user.id, ulid::Ulid::new());
    let old_orphan = create(orphan_key(&user)).await;
    let (_, _, claimed) = initiate(&api, &user, 6 * MIB, 2).await;
    // Past the orphan age (5 s in this binary) for those two, not for the next.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let young_orphan = create(orphan_key(&user)).await;

    let steps = stack.run_cleanup(&["orphan-multipart"]).await;
    within_pages(&steps);
    let mut open = stack.open_uploads_of(&user.id).await;
    open.sort();
    let mut expected = vec![claimed, young_orphan];
    expected.sort();
    assert_eq!(open, expected, "the old orphan {old_orphan} goes");
}

#[tokio::test]
async fn a_generation_stuck_past_its_deadline_fails_and_frees_its_slot() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (_, box_id) = api.project_and_box(&user).await;
    let request = json!({"ai_model": stack.image_model, "prompt_text": "a lighthouse [stuck]",
                         "params": {"width": 96, "height": 80}});
    let accepted = api
        .post(&format!("/api/boxes/{box_id}/generate/"), token, &request)
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    let id = accepted.body["id"].as_str().unwrap().to_owned();
    // Its deadline passed an hour ago (as if its poll chain had died).
    let at = ago(Duration::from_secs(3600));
    rewrite(
        &user,
        &format!("ASSET#{id}"),
        &[
            ("generation.deadline", text(&at)),
            ("due_sk", text(format!("{at}#{id}"))),
        ],
    )
    .await;
    let steps = stack.run_cleanup(&["stuck-generations"]).await;
    within_pages(&steps);
    let asset = api.get(&format!("/api/assets/{id}/"), token).await;
    assert_eq!(asset.body["status"], "FAILED", "{:?}", asset.body);
    assert_eq!(asset.body["error_message"], "the generation timed out");
    let quota = stack
        .items_of(&user.id)
        .await
        .into_iter()
        .find(|i| i["sk"] == text("QUOTA"))
        .unwrap();
    assert_eq!(quota["running_generations"], AttributeValue::N("0".into()));
    let asset_item = stack
        .items_of(&user.id)
        .await
        .into_iter()
        .find(|i| i["sk"] == text(format!("ASSET#{id}")))
        .unwrap();
    assert!(!asset_item.contains_key("due_pk"), "off the due index");
}

#[tokio::test]
async fn messages_that_are_not_cleanup_s_are_dropped() {
    let stack = cleanup_stack();
    let sqs = stack.sqs().await;
    for body in ["not json", r#"{"kind":"spring-clean"}"#] {
        sqs.send_message()
            .queue_url(&stack.cleanup_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    // A run after them still works: nothing blocked the queue.
    let steps = stack.run_cleanup(&["purge-files"]).await;
    assert_eq!(steps.len(), 3);
}
