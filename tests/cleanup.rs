//! Scheduled cleanup end to end (SPEC §3.7): runs started on the cleanup
//! queue, worked by the cleanup function through the local stack's SQS
//! pump, against the emulator's table and bucket. Items are made old by
//! rewriting their timestamps — and the index sort keys built from them —
//! into the past: the same records, as if the time had passed.

use std::time::Duration;

use assetbox_e2e::{Client, Stack, User, ago, stack_with, text, within_pages};
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;
/// This binary's page size: 1,000 uploads take many steps.
const PAGE: u32 = 50;

/// Steps read 50 items at most; assets older than 10 days (the default)
/// go unless kept; a multipart upload no record knows is an
/// orphan after 20 s (an hour by default), an object no record claims is
/// leaked after 20 s (two days); no scheduled runs, so each test
/// sees only the runs it starts.
fn cleanup_stack() -> &'static Stack {
    stack_with(
        vec![
            ("CleanupScheduleState".into(), "DISABLED".into()),
            ("CleanupPageSize".into(), PAGE.to_string()),
            ("CleanupOrphanAfterSeconds".into(), "20".into()),
            ("CleanupLeakedAfterSeconds".into(), "20".into()),
        ],
        // Uploaded assets are ingested (the retention tests need COMPLETED
        // assets with thumbnails).
        true,
    )
}

async fn file(api: &Client, user: &User, id: &str) -> (StatusCode, Value) {
    let reply = api
        .get(&format!("/v1/files/{id}"), Some(&user.access_token))
        .await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn expired_uploads_give_back_their_quota_and_their_s3_side() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (multipart, _, multipart_key) = api.initiate_upload(&user, 10 * MIB, 2).await;
    let (young, _, young_key) = api.initiate_upload(&user, 6 * MIB, 2).await;
    // A single PUT whose object never arrived.
    let params = api
        .get(
            "/s3/params?filename=still.png&type=image%2Fpng&size=4096",
            token,
        )
        .await;
    assert_eq!(params.status, StatusCode::OK, "{:?}", params.body);
    let single = params.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.quota_used(&user.id).await,
        (16 * MIB + 4096).to_string()
    );
    stack.expire_long_ago(&user, &multipart).await;
    stack.expire_long_ago(&user, &single).await;

    let steps = stack.run_cleanup(&["expire-uploads"]).await;
    within_pages(&steps, PAGE);
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
    stack.expire_long_ago(&user, &id).await;
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

#[tokio::test]
async fn old_closed_records_are_purged_and_young_ones_kept() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let mut aborted = Vec::new();
    for _ in 0..2 {
        let (id, _, _) = api.initiate_upload(&user, 6 * MIB, 2).await;
        let reply = api.delete(&format!("/v1/files/uploads/{id}"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        aborted.push(id);
    }
    stack.created_long_ago(&user, &aborted[0]).await;
    let steps = stack.run_cleanup(&["purge-files"]).await;
    within_pages(&steps, PAGE);
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
async fn old_orphan_uploads_and_leaked_objects_go_unless_claimed_or_young() {
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
    let our_key = |leaf: &str| format!("uploads/{}/{}/{leaf}", user.id, ulid::Ulid::new());
    let old_orphan = create(our_key("original.mp4")).await;
    let (_, _, claimed) = api.initiate_upload(&user, 6 * MIB, 2).await;
    // Objects: one no record claims, and an asset's (and its thumbnail).
    let leaked = our_key("original.png");
    stack.put_object(&leaked, vec![1; 64]).await;
    let (_, box_id) = api.project_and_box(&user).await;
    let kept = api.completed_asset(&user, &box_id, 7).await;
    let kept_keys = object_keys(stack, &user, kept["id"].as_str().unwrap()).await;
    assert_eq!(kept_keys.len(), 2);
    // Past the orphan and leak ages (20 s in this binary) for those, not for
    // the next two (unless the run took 20 s to start).
    tokio::time::sleep(Duration::from_secs(21)).await;
    let young_orphan = create(our_key("original.mp4")).await;
    let young_leaked = our_key("original.png");
    stack.put_object(&young_leaked, vec![3; 64]).await;

    let steps = stack
        .run_cleanup(&["orphan-multipart", "leaked-objects"])
        .await;
    within_pages(&steps, PAGE);
    let mut open = stack.open_uploads_of(&user.id).await;
    open.sort();
    let mut expected = vec![claimed, young_orphan];
    expected.sort();
    assert_eq!(open, expected, "the old orphan {old_orphan} goes");
    assert!(!stack.object_exists(&leaked).await);
    for key in kept_keys.iter().chain([&young_leaked]) {
        assert!(stack.object_exists(key).await, "{key}");
    }
    let leaked_done: u32 = steps
        .iter()
        .filter(|s| s.step.task.as_str() == "leaked-objects")
        .map(|s| s.counts.done)
        .sum();
    assert!(leaked_done >= 1, "{steps:#?}");
}

/// A generation of `model` on `prompt` (which sticks) submitted to the
/// stand-in, then made to have passed its deadline an hour ago, as if its
/// poll chain had died; cleanup's `stuck-generations` run over it. Returns
/// the owner and the generation.
async fn timed_out_generation(
    stack: &Stack,
    api: &Client,
    model: &str,
    prompt: &str,
) -> (User, String) {
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (_, box_id) = api.project_and_box(&user).await;
    let request = json!({"ai_model": model, "prompt_text": prompt});
    let accepted = api
        .post(&format!("/api/boxes/{box_id}/generate/"), token, &request)
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    let id = accepted.body["id"].as_str().unwrap().to_owned();
    // Submitted: the provider has a task to cancel.
    let mut waited = 0;
    while stack.standin_stats(prompt).await["created"] != 1 {
        waited += 1;
        assert!(waited < 100, "the stand-in never got the task");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at = ago(Duration::from_secs(3600));
    stack
        .rewrite(
            &user,
            &format!("ASSET#{id}"),
            &[
                ("generation.deadline", text(&at)),
                ("due_sk", text(format!("{at}#{id}"))),
            ],
        )
        .await;
    let steps = stack.run_cleanup(&["stuck-generations"]).await;
    within_pages(&steps, PAGE);
    (user, id)
}

#[tokio::test]
async fn a_generation_stuck_past_its_deadline_fails_and_frees_its_slot() {
    let stack = cleanup_stack();
    let api = Client::new();
    // The reference protocol has no cancel call: nothing is sent.
    let prompt = format!("a lighthouse [stuck] {}", ulid::Ulid::new());
    let (user, id) = timed_out_generation(stack, &api, &stack.image_model, &prompt).await;
    let token = Some(user.access_token.as_str());
    let asset = api.get(&format!("/api/assets/{id}/"), token).await;
    assert_eq!(asset.body["status"], "FAILED", "{:?}", asset.body);
    assert_eq!(asset.body["error_message"], "the generation timed out");
    assert_eq!(stack.standin_stats(&prompt).await["cancels"], 0);
    let items = stack.items_of(&user.id).await;
    let quota = items.iter().find(|i| i["sk"] == text("QUOTA")).unwrap();
    assert_eq!(quota["running_generations"], AttributeValue::N("0".into()));
    let asset_item = items
        .iter()
        .find(|i| i["sk"] == text(format!("ASSET#{id}")))
        .unwrap();
    // Off the generations' due partition, on the retention one.
    let due = asset_item["due_pk"].as_s().unwrap();
    assert!(due.starts_with("RETENTION#"), "{due}");
}

#[tokio::test]
async fn a_timed_out_generation_is_cancelled_where_its_model_has_a_cancel_call() {
    let stack = cleanup_stack();
    let api = Client::new();
    let model = stack.register_predictions_model(&api).await;
    let prompt = format!("a harbour [stuck] {}", ulid::Ulid::new());
    let (user, id) = timed_out_generation(stack, &api, &model, &prompt).await;
    let asset = api
        .get(&format!("/api/assets/{id}/"), Some(&user.access_token))
        .await;
    assert_eq!(asset.body["error_message"], "the generation timed out");
    let stats = stack.standin_stats(&prompt).await;
    assert_eq!(stats["cancels"], 1, "{stats}");
    // A second run finds nothing due: no second cancel.
    stack.run_cleanup(&["stuck-generations"]).await;
    assert_eq!(stack.standin_stats(&prompt).await["cancels"], 1);
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

/// The stored keys of an asset (its object and thumbnail).
async fn object_keys(stack: &Stack, user: &User, id: &str) -> Vec<String> {
    let item = stack
        .items_of(&user.id)
        .await
        .into_iter()
        .find(|i| i["sk"] == text(format!("ASSET#{id}")))
        .unwrap();
    ["s3_key", "thumbnail_key"]
        .iter()
        .filter_map(|k| item.get(*k)?.as_s().ok().cloned())
        .filter(|k| !k.is_empty())
        .collect()
}

async fn assets_count(api: &Client, user: &User, box_id: &str) -> u64 {
    let b = api
        .get(&format!("/api/boxes/{box_id}/"), Some(&user.access_token))
        .await;
    b.body["assets_count"].as_u64().unwrap()
}

#[tokio::test]
async fn retention_deletes_old_assets_nobody_kept_and_nothing_else() {
    let stack = cleanup_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (_, box_id) = api.project_and_box(&user).await;
    let mut assets = Vec::new();
    for seed in 0..5 {
        assets.push(api.completed_asset(&user, &box_id, seed).await);
    }
    let id = |i: usize| assets[i]["id"].as_str().unwrap().to_owned();
    // 0: old, not kept. 1: old favourite. 2: old headliner. 3: young.
    // 4: old, favourited and unfavourited again (back on the partition).
    let favorite = |i: usize, to: bool| {
        let path = format!("/api/assets/{}/favorite/", id(i));
        let api = &api;
        async move {
            let reply = api.post(&path, token, &json!({ "is_favorite": to })).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        }
    };
    favorite(1, true).await;
    favorite(4, true).await;
    favorite(4, false).await;
    let headliner = api
        .patch(
            &format!("/api/boxes/{box_id}/"),
            token,
            &json!({ "headliner_asset": id(2) }),
        )
        .await;
    assert_eq!(headliner.status, StatusCode::OK, "{:?}", headliner.body);
    // Kept ones are off the retention partition; the rest are on it.
    let mut on_partition = Vec::new();
    for i in [0, 1, 2, 4] {
        on_partition.push(stack.asset_made_days_ago(&user, &id(i), 11).await);
    }
    assert_eq!(on_partition, [true, false, false, true]);
    assert!(stack.asset_made_days_ago(&user, &id(3), 9).await);
    let retired_keys = [
        object_keys(stack, &user, &id(0)).await,
        object_keys(stack, &user, &id(4)).await,
    ]
    .concat();
    assert_eq!(retired_keys.len(), 4, "objects and thumbnails");
    let size = |i: usize| assets[i]["size"].as_u64().unwrap();
    let used_before: u64 = stack.quota_used(&user.id).await.parse().unwrap();

    let steps = stack.run_cleanup(&["retention"]).await;
    within_pages(&steps, PAGE);
    for i in [0, 4] {
        let gone = api.get(&format!("/api/assets/{}/", id(i)), token).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "asset {i}");
    }
    for i in [1, 2, 3] {
        let kept = api.get(&format!("/api/assets/{}/", id(i)), token).await;
        assert_eq!(kept.status, StatusCode::OK, "asset {i}");
    }
    for key in &retired_keys {
        assert!(!stack.object_exists(key).await, "{key}");
    }
    assert!(
        stack
            .object_exists(&object_keys(stack, &user, &id(1)).await[0])
            .await
    );
    assert_eq!(assets_count(&api, &user, &box_id).await, 3);
    assert_eq!(
        stack.quota_used(&user.id).await,
        (used_before - size(0) - size(4)).to_string()
    );
    // Nothing more on a second run.
    stack.run_cleanup(&["retention"]).await;
    assert_eq!(assets_count(&api, &user, &box_id).await, 3);
}

#[tokio::test]
async fn a_user_keeping_or_deleting_an_asset_as_retention_runs_wins() {
    let stack = cleanup_stack();
    let (api, user, box_id, ids) = user_with_assets(10..13).await;
    let token = Some(user.access_token.as_str());
    for id in &ids {
        assert!(stack.asset_made_days_ago(&user, id, 11).await);
    }
    let used_before: u64 = stack.quota_used(&user.id).await.parse().unwrap();
    let favorite_path = format!("/api/assets/{}/favorite/", ids[0]);
    let box_path = format!("/api/boxes/{box_id}/");
    let delete_path = format!("/api/assets/{}/", ids[2]);
    let favorite_body = json!({ "is_favorite": true });
    let headliner_body = json!({ "headliner_asset": ids[1] });
    let (favorite, headliner, deleted, _) = tokio::join!(
        api.post(&favorite_path, token, &favorite_body),
        api.patch(&box_path, token, &headliner_body),
        api.delete(&delete_path, token),
        stack.run_cleanup(&["retention"]),
    );
    let exists = |id: &str| {
        let path = format!("/api/assets/{id}/");
        let api = &api;
        async move { api.get(&path, token).await.status == StatusCode::OK }
    };
    // Kept if the user's write landed first, else gone and the write found
    // nothing (404, or a headliner refused as not this box's asset).
    assert_eq!(
        favorite.status == StatusCode::OK,
        exists(&ids[0]).await,
        "{:?}",
        favorite.body
    );
    assert_eq!(
        headliner.status == StatusCode::OK,
        exists(&ids[1]).await,
        "{:?}",
        headliner.body
    );
    assert!(!exists(&ids[2]).await);
    assert!(
        [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&deleted.status),
        "{:?}",
        deleted.body
    );
    // Each asset gone is counted out once, whoever deleted it.
    let mut left = 0;
    let mut freed = 0;
    for id in &ids {
        if exists(id).await {
            left += 1;
        } else {
            freed += 1;
        }
    }
    assert_eq!(assets_count(&api, &user, &box_id).await, left);
    let per_asset = used_before / 3;
    assert_eq!(
        stack.quota_used(&user.id).await,
        (used_before - freed * per_asset).to_string()
    );
}

/// A new user with a box of completed assets (one per seed): the client,
/// the user, the box and the assets' ids.
async fn user_with_assets(seeds: std::ops::Range<u8>) -> (Client, User, String, Vec<String>) {
    let api = Client::new();
    let user = api.new_user().await;
    let (_, box_id) = api.project_and_box(&user).await;
    let mut ids = Vec::new();
    for seed in seeds {
        let asset = api.completed_asset(&user, &box_id, seed).await;
        ids.push(asset["id"].as_str().unwrap().to_owned());
    }
    (api, user, box_id, ids)
}

/// A completed asset rewritten as if it had been in flight (`status`) for
/// two hours: on the in-flight partition, aged.
async fn in_flight_for_hours(stack: &Stack, user: &User, id: &str, status: &str) {
    let at = ago(Duration::from_secs(2 * 3600));
    let shard = assetbox_shared::db::keys::due_shard(id);
    stack
        .rewrite(
            user,
            &format!("ASSET#{id}"),
            &[
                ("status", text(status)),
                ("created_at", text(&at)),
                ("due_pk", text(format!("WORK#{shard}"))),
                ("due_sk", text(format!("{at}#{id}"))),
            ],
        )
        .await;
}

#[tokio::test]
async fn stuck_imports_fail_and_stuck_ingestions_run_again_once_then_fail() {
    let stack = cleanup_stack();
    let (api, user, _, ids) = user_with_assets(20..24).await;
    let token = Some(user.access_token.as_str());
    // 0: an import that never fetched. 1: an ingestion whose event was
    // lost. 2: one already announced again, two hours ago. 3: one whose
    // object is gone.
    in_flight_for_hours(stack, &user, &ids[0], "PENDING").await;
    in_flight_for_hours(stack, &user, &ids[1], "PROCESSING").await;
    in_flight_for_hours(stack, &user, &ids[2], "PROCESSING").await;
    let earlier = ago(Duration::from_secs(2 * 3600));
    stack
        .rewrite(
            &user,
            &format!("ASSET#{}", ids[2]),
            &[("ingest_retried_at", text(&earlier))],
        )
        .await;
    in_flight_for_hours(stack, &user, &ids[3], "PROCESSING").await;
    let gone = object_keys(stack, &user, &ids[3]).await;
    stack
        .s3()
        .await
        .delete_object()
        .bucket(stack.bucket())
        .key(&gone[0])
        .send()
        .await
        .unwrap();
    let used_before: u64 = stack.quota_used(&user.id).await.parse().unwrap();
    let held = |items: &[std::collections::HashMap<String, AttributeValue>], i: usize| -> u64 {
        items
            .iter()
            .find(|item| item["sk"] == text(format!("ASSET#{}", ids[i])))
            .and_then(|item| item["quota_bytes"].as_n().ok()?.parse().ok())
            .unwrap()
    };
    let before = stack.items_of(&user.id).await;
    let released = held(&before, 2) + held(&before, 3);
    assert!(released > 0);

    let steps = stack.run_cleanup(&["stuck-work"]).await;
    within_pages(&steps, PAGE);
    let asset = |i: usize| {
        let path = format!("/api/assets/{}/", ids[i]);
        let api = &api;
        async move { api.get(&path, token).await.body }
    };
    let first = asset(0).await;
    assert_eq!(
        (first["status"].as_str(), first["error_message"].as_str()),
        (Some("FAILED"), Some("the import did not finish in time"))
    );
    for i in [2, 3] {
        let failed = asset(i).await;
        assert_eq!(
            (failed["status"].as_str(), failed["error_message"].as_str()),
            (Some("FAILED"), Some("the file could not be processed")),
            "asset {i}"
        );
    }
    // Announced again, ingestion finished it.
    let mut again = Value::Null;
    for _ in 0..300 {
        again = asset(1).await;
        if again["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(again["status"], "COMPLETED", "{again}");
    let items = stack.items_of(&user.id).await;
    let item = |i: usize| {
        items
            .iter()
            .find(|item| item["sk"] == text(format!("ASSET#{}", ids[i])))
            .unwrap()
    };
    assert!(item(1).contains_key("ingest_retried_at"));
    for i in 0..4 {
        let due = item(i)["due_pk"].as_s().unwrap();
        assert!(due.starts_with("RETENTION#"), "asset {i}: {due}");
    }
    // The two that failed gave their bytes back.
    assert_eq!(
        stack.quota_used(&user.id).await,
        (used_before - released).to_string()
    );
}
