//! AI generation end to end (SPEC §3.5): the real routes, the real
//! generation functions fed by the local stack's SQS pump, the stand-in
//! provider over real HTTP (misbehaving on request through prompt
//! markers), results stored in the emulator's S3 and finished by ingestion.
//! The stand-in counts what it received and created per prompt, which is
//! how "never submitted twice" is proven.

use std::time::Duration;

use assetbox_e2e::{Client, User, stack, stack_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Generations in this binary give up after 20 s (the default is 15 min), so
/// the deadline tests end quickly; the stand-in finishes a task in ~1 s.
fn generation_stack() -> &'static assetbox_e2e::Stack {
    stack_with(
        vec![("GenerationDeadlineSeconds".into(), "20".into())],
        true,
    )
}

/// 100 ms polls before a wait gives up (the binaries share two cores).
const POLLS: usize = 600;

/// `POST /api/boxes/{id}/generate/`, with an `Idempotency-Key` when given.
async fn generate(
    user: &User,
    box_id: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/boxes/{box_id}/generate/", stack().api))
        .bearer_auth(&user.access_token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

fn image_request(prompt: &str) -> Value {
    json!({"ai_model": stack().image_model, "prompt_text": prompt, "params": {"width": 96, "height": 80}, "seed": 7})
}

/// A prompt no other test uses (the stand-in counts per prompt).
fn unique(prompt: &str) -> String {
    format!("{prompt} #{}", ulid::Ulid::new())
}

/// Polls an asset until `done` holds.
async fn eventually(api: &Client, user: &User, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/assets/{id}/");
    for _ in 0..POLLS {
        let reply = api.get(&path, Some(&user.access_token)).await;
        if done(&reply.body) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = api.get(&path, Some(&user.access_token)).await;
    panic!(
        "asset {id} never reached the expected state: {:?}",
        last.body
    );
}

fn settled(asset: &Value) -> bool {
    matches!(asset["status"].as_str(), Some("COMPLETED" | "FAILED"))
}

/// This binary's stack, a new user and a box of theirs.
async fn fresh_box() -> (Client, User, String) {
    generation_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (_, box_id) = api.project_and_box(&user).await;
    (api, user, box_id)
}

/// What one settled generation left behind.
struct Settled {
    api: Client,
    user: User,
    box_id: String,
    /// The asset once it is `COMPLETED` or `FAILED`.
    done: Value,
}

/// A fresh user and box, one generation of `prompt` (the image model) in
/// it, and its asset once settled.
async fn generate_until_settled(prompt: &str) -> Settled {
    let (api, user, box_id) = fresh_box().await;
    let (status, accepted) = generate(&user, &box_id, &image_request(prompt), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = eventually(&api, &user, accepted["id"].as_str().unwrap(), settled).await;
    Settled {
        api,
        user,
        box_id,
        done,
    }
}

/// What the stand-in received and created for a prompt.
async fn standin_counts(prompt: &str) -> (u64, u64) {
    let stats = stack().standin_stats(prompt).await;
    (
        stats["received"].as_u64().unwrap(),
        stats["created"].as_u64().unwrap(),
    )
}

async fn box_assets_count(api: &Client, user: &User, box_id: &str) -> u64 {
    api.get(&format!("/api/boxes/{box_id}/"), Some(&user.access_token))
        .await
        .body["assets_count"]
        .as_u64()
        .unwrap()
}

fn admin_token() -> String {
    stack().admin_token()
}

#[tokio::test]
async fn text_to_image_completes_with_dimensions_a_thumbnail_and_its_generation() {
    let (api, user, box_id) = fresh_box().await;
    let prompt = unique("a red fox in snow");
    let (status, accepted) = generate(&user, &box_id, &image_request(&prompt), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["source_type"], "GENERATED");
    assert!(
        matches!(accepted["status"].as_str(), Some("PENDING" | "PROCESSING")),
        "{accepted}"
    );
    assert_eq!(accepted["ai_model"], stack().image_model);
    assert_eq!(accepted["ai_model_name"], "Stand-in image");
    assert_eq!(
        accepted["generation_config"],
        json!({"width": 96, "height": 80})
    );
    assert_eq!(accepted["seed"], 7);
    let id = accepted["id"].as_str().unwrap();
    let done = eventually(&api, &user, id, settled).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(
        (done["width"].as_u64(), done["height"].as_u64()),
        (Some(96), Some(80))
    );
    assert_eq!(done["content_type"], "image/png");
    assert!(done["thumbnail_url"].is_string(), "{done}");
    assert_eq!(done["generation"]["state"], "stored");
    assert_eq!(done["generation"]["attempts"], 1);
    // The callback path: its wake-up learned the result, not the schedule.
    assert_eq!(done["generation"]["finished_by"], "callback", "{done}");
    assert!(done["generation"]["submitted_at"].is_string());
    assert!(done["generation"]["finished_at"].is_string());
    // Our copy, not the provider's link.
    assert!(
        done["file_url"]
            .as_str()
            .unwrap()
            .starts_with(&stack().emulator),
        "{done}"
    );
    assert_eq!(standin_counts(&prompt).await, (1, 1));
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 1);
}

#[tokio::test]
async fn image_to_video_from_a_completed_image_makes_a_video_with_its_duration() {
    let (api, user, box_id) = fresh_box().await;
    let (_, image) = generate(
        &user,
        &box_id,
        &image_request(&unique("a lighthouse")),
        None,
    )
    .await;
    let image = eventually(&api, &user, image["id"].as_str().unwrap(), settled).await;
    assert_eq!(image["status"], "COMPLETED");
    let request = json!({"ai_model": stack().video_model, "prompt_text": "waves roll in",
                         "parent_asset": image["id"], "params": {"duration": 3}});
    let (status, accepted) = generate(&user, &box_id, &request, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["source_type"], "IMG2VID");
    assert_eq!(accepted["asset_type"], "VIDEO");
    assert_eq!(accepted["parent_asset"], image["id"]);
    let video = eventually(&api, &user, accepted["id"].as_str().unwrap(), settled).await;
    assert_eq!(video["status"], "COMPLETED", "{video}");
    assert_eq!(video["content_type"], "video/mp4");
    assert_eq!(video["duration_ms"], 3000, "{video}");

    // img2vid needs a parent that is the caller's completed image.
    let no_parent = json!({"ai_model": stack().video_model, "prompt_text": "x"});
    let (status, err) = generate(&user, &box_id, &no_parent, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let video_parent =
        json!({"ai_model": stack().video_model, "prompt_text": "x", "parent_asset": video["id"]});
    let (status, _) = generate(&user, &box_id, &video_parent, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let other = api.new_user().await;
    let (_, other_box) = api.project_and_box(&other).await;
    let foreign_parent =
        json!({"ai_model": stack().video_model, "prompt_text": "x", "parent_asset": image["id"]});
    let (status, _) = generate(&other, &other_box, &foreign_parent, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The registry's second shape (Replicate-style predictions, Standard
/// Webhooks), registered through the admin API, with two outputs.
#[tokio::test]
async fn a_predictions_shaped_model_with_two_outputs_makes_two_assets() {
    generation_stack();
    let api = Client::new();
    let model = stack().register_predictions_model(&api).await;

    let user = api.new_user().await;
    let listed = api.get("/api/ai/models/", Some(&user.access_token)).await;
    let names: Vec<&str> = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Predictions image (two outputs)"),
        "{names:?}"
    );
    let (_, box_id) = api.project_and_box(&user).await;
    let prompt = unique("two foxes");
    let request = json!({"ai_model": model, "prompt_text": prompt, "params": {"width": 32}});
    let (status, accepted) = generate(&user, &box_id, &request, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let first = eventually(&api, &user, accepted["id"].as_str().unwrap(), settled).await;
    assert_eq!(first["status"], "COMPLETED", "{first}");
    let listed = api
        .get(
            &format!("/api/boxes/{box_id}/assets/"),
            Some(&user.access_token),
        )
        .await;
    let assets = listed.body["results"].as_array().unwrap().clone();
    assert_eq!(assets.len(), 2, "{assets:?}");
    let mut sizes = 0;
    for asset in &assets {
        let done = eventually(&api, &user, asset["id"].as_str().unwrap(), settled).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
        assert_eq!(done["width"], 32);
        sizes += done["size"].as_u64().unwrap();
    }
    let extra = assets.iter().find(|a| a["id"] != first["id"]).unwrap();
    assert_eq!(extra["generation"]["output_of"], first["id"]);
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 2);
    // Both counted against the quota.
    assert!(sizes > 0);
    assert_eq!(stack().quota_used(&user.id).await, sizes.to_string());
    assert_eq!(standin_counts(&prompt).await, (1, 1));
}

#[tokio::test]
async fn without_callbacks_polling_alone_finishes_the_job() {
    let prompt = unique("a quiet lake [no-callback]");
    let Settled { done, .. } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["generation"]["finished_by"], "poll", "{done}");
}

#[tokio::test]
async fn definite_refusals_fail_with_the_reason_and_are_not_retried() {
    let (api, user, box_id) = fresh_box().await;
    for (marker, words) in [
        ("[refuse:402]", "insufficient credits"),
        ("[refuse:422]", "parameters"),
    ] {
        let prompt = unique(&format!("a cat {marker}"));
        let (status, accepted) = generate(&user, &box_id, &image_request(&prompt), None).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let done = eventually(&api, &user, accepted["id"].as_str().unwrap(), settled).await;
        assert_eq!(done["status"], "FAILED", "{done}");
        let reason = done["error_message"].as_str().unwrap();
        assert!(reason.contains(words), "{reason}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            standin_counts(&prompt).await,
            (1, 0),
            "{marker}: sent once, nothing created"
        );
    }
}

#[tokio::test]
async fn a_429_at_submit_is_retried_and_submitted_exactly_once() {
    let prompt = unique("a busy day [busy:1]");
    let Settled { done, .. } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["generation"]["attempts"], 2);
    assert_eq!(
        standin_counts(&prompt).await,
        (2, 1),
        "one refusal, one task"
    );
}

/// A job is on the `due` index (`GENERATION#<shard>`) from the moment it
/// is recorded — before any submit succeeds, so a crash mid-submit is still
/// found at its deadline — and off it once it ends. One that the provider
/// keeps refusing (429) is not tried again past its deadline.
#[tokio::test]
async fn a_refused_job_is_due_from_its_record_and_not_retried_past_its_deadline() {
    let (api, user, box_id) = fresh_box().await;
    let prompt = unique("always busy [busy:99]");
    let (status, accepted) = generate(&user, &box_id, &image_request(&prompt), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["generation"]["state"], "recorded", "{accepted}");
    let due_of =
        |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
            items
                .into_iter()
                .find(|i| i["sk"].as_s().is_ok_and(|sk| sk.ends_with(id)))
                .and_then(|i| i.get("due_pk").and_then(|v| v.as_s().ok()).cloned())
        };
    let due = due_of(stack().items_of(&user.id).await);
    assert!(
        due.as_deref().is_some_and(|d| d.starts_with("GENERATION#")),
        "{due:?}"
    );
    let done = eventually(&api, &user, id, settled).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{done}"
    );
    // Off the generations' partition, on the retention one by its age.
    let due = due_of(stack().items_of(&user.id).await);
    assert!(
        due.as_deref().is_some_and(|d| d.starts_with("RETENTION#")),
        "{due:?}"
    );
    // Tried at 0, 5 and 15 s; the next, at 35 s, is past the 20 s deadline.
    let (received, created) = standin_counts(&prompt).await;
    assert_eq!((received, created), (3, 0));
}

#[tokio::test]
async fn a_lost_submit_reply_is_reconciled_by_its_callback_and_never_resubmitted() {
    let prompt = unique("a storm [lost-reply]");
    let Settled { done, .. } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(standin_counts(&prompt).await, (1, 1));
}

#[tokio::test]
async fn a_lost_reply_without_callbacks_fails_at_the_deadline_unresent() {
    let prompt = unique("a storm [lost-reply] [no-callback]");
    let Settled { done, .. } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{done}"
    );
    assert_eq!(standin_counts(&prompt).await, (1, 1), "never resubmitted");
}

#[tokio::test]
async fn a_stuck_job_fails_at_its_deadline() {
    let prompt = unique("forever [stuck]");
    let Settled { done, .. } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{done}"
    );
    assert_eq!(done["generation"]["state"], "failed");
}

#[tokio::test]
async fn failures_expired_and_non_media_results_fail_with_their_reasons() {
    let (api, user, box_id) = fresh_box().await;
    for (marker, words) in [
        ("[fail:content policy]", "content policy"),
        ("[expired]", "410"),
        ("[not-media]", "not an allowed image or video"),
    ] {
        let prompt = unique(&format!("a tree {marker}"));
        let (_, accepted) = generate(&user, &box_id, &image_request(&prompt), None).await;
        let done = eventually(&api, &user, accepted["id"].as_str().unwrap(), settled).await;
        assert_eq!(done["status"], "FAILED", "{marker}: {done}");
        let reason = done["error_message"].as_str().unwrap();
        assert!(reason.contains(words), "{marker}: {reason}");
    }
    // Nothing of theirs is held against the quota or left in the bucket.
    assert_eq!(stack().quota_used(&user.id).await, "0");
    assert!(stack().objects_of(&user.id).await.is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_answers_the_same_asset_without_a_second_submission() {
    let (api, user, box_id) = fresh_box().await;
    let prompt = unique("one fox only");
    let body = image_request(&prompt);
    let key = ulid::Ulid::new().to_string();
    let (first_status, first) = generate(&user, &box_id, &body, Some(&key)).await;
    assert_eq!(first_status, StatusCode::ACCEPTED, "{first}");
    let (again_status, again) = generate(&user, &box_id, &body, Some(&key)).await;
    assert_eq!(again_status, StatusCode::ACCEPTED);
    assert_eq!(again["id"], first["id"]);
    // The same body with its members in another order is the same request.
    let reordered = json!({"seed": 7, "params": {"height": 80, "width": 96}, "prompt_text": prompt, "ai_model": stack().image_model});
    let (_, same) = generate(&user, &box_id, &reordered, Some(&key)).await;
    assert_eq!(same["id"], first["id"]);
    let mut other = body.clone();
    other["seed"] = json!(8);
    let (status, err) = generate(&user, &box_id, &other, Some(&key)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // Five at once with a fresh key: one asset, one submission.
    let prompt5 = unique("five at once");
    let body5 = image_request(&prompt5);
    let key5 = ulid::Ulid::new().to_string();
    let replies =
        futures::future::join_all((0..5).map(|_| generate(&user, &box_id, &body5, Some(&key5))))
            .await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    eventually(&api, &user, ids.first().unwrap(), settled).await;
    eventually(&api, &user, first["id"].as_str().unwrap(), settled).await;
    assert_eq!(standin_counts(&prompt5).await, (1, 1));
    assert_eq!(standin_counts(&prompt).await, (1, 1));
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 2);
}

#[tokio::test]
async fn duplicate_and_late_callbacks_change_nothing_twice() {
    let prompt = unique("an echo [callbacks:5] [late-callback]");
    let Settled {
        api,
        user,
        box_id,
        done,
    } = generate_until_settled(&prompt).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    // Past the late callback.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = api
        .get(
            &format!("/api/assets/{}/", done["id"].as_str().unwrap()),
            Some(&user.access_token),
        )
        .await
        .body;
    assert_eq!(
        after["updated_at"], done["updated_at"],
        "nothing moved after it finished"
    );
    let objects = stack().objects_of(&user.id).await;
    let originals: Vec<_> = objects
        .iter()
        .filter(|k| k.contains("/original."))
        .collect();
    assert_eq!(originals.len(), 1, "{objects:?}");
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 1);
    assert_eq!(
        stack().quota_used(&user.id).await,
        after["size"].as_u64().unwrap().to_string()
    );
}

/// A callback URL as the stand-in gets it, from the job's submit.
fn callback_url(owner: &str, generation: &str, token: &str) -> String {
    format!(
        "{}/api/ai/callbacks/{generation}?owner={owner}&token={token}",
        stack().api
    )
}

#[tokio::test]
async fn forged_unsigned_stale_and_foreign_callbacks_are_refused() {
    let (api, user, box_id) = fresh_box().await;
    let (_, a) = generate(
        &user,
        &box_id,
        &image_request(&unique("callback target [stuck] [no-callback]")),
        None,
    )
    .await;
    let (_, b) = generate(
        &user,
        &box_id,
        &image_request(&unique("another [stuck] [no-callback]")),
        None,
    )
    .await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let env = stack()
        .functions
        .iter()
        .find(|f| f.binary == "generation-callback")
        .unwrap()
        .environment
        .clone();
    let secret = env["CALLBACK_SECRET"].as_bytes().to_vec();
    let token_a = assetbox_shared::ai::signing::callback_token(&secret, &user.id, a_id);
    let before = eventually(&api, &user, a_id, |v| v["status"] == "PROCESSING").await;
    let task = "task-unknown";
    let body = json!({"code": 200, "data": {"taskId": task, "state": "success"}}).to_string();
    let http = reqwest::Client::new();
    let post = |url: String, headers: Vec<(&'static str, String)>| {
        let mut request = http
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send()
    };
    let now = assetbox_e2e::now_secs().to_string();
    // No token, a forged token, another generation's token.
    for url in [
        format!("{}/api/ai/callbacks/{a_id}", stack().api),
        callback_url(&user.id, a_id, "00112233445566778899aabbccddeeff"),
        callback_url(&user.id, b_id, &token_a),
    ] {
        let reply = post(url.clone(), vec![]).await.unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{url}");
    }
    // Not a generation id at all.
    let reply = post(callback_url(&user.id, "not-a-generation", &token_a), vec![])
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    // The right token but no signature, a wrong one, a stale one.
    let url = callback_url(&user.id, a_id, &token_a);
    let reply = post(url.clone(), vec![]).await.unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "unsigned");
    let wrong = assetbox_shared::ai::signing::reference_signature(b"not the key", task, &now);
    let reply = post(
        url.clone(),
        vec![
            ("x-webhook-timestamp", now.clone()),
            ("x-webhook-signature", wrong),
        ],
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "wrongly signed");
    let stale_ts = (assetbox_e2e::now_secs() - 3600).to_string();
    let key = webhook_key().await;
    let stale = assetbox_shared::ai::signing::reference_signature(key.as_bytes(), task, &stale_ts);
    let reply = post(
        url.clone(),
        vec![
            ("x-webhook-timestamp", stale_ts),
            ("x-webhook-signature", stale),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        reply.status(),
        StatusCode::UNAUTHORIZED,
        "replayed too late"
    );
    // Rightly signed, but for a task that is not this job's.
    let signed = assetbox_shared::ai::signing::reference_signature(key.as_bytes(), task, &now);
    let reply = post(
        url,
        vec![
            ("x-webhook-timestamp", now.clone()),
            ("x-webhook-signature", signed),
        ],
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "another task");
    let after = api
        .get(&format!("/api/assets/{a_id}/"), Some(&user.access_token))
        .await
        .body;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updated_at"], before["updated_at"], "nothing changed");
}

/// The stand-in's reference-protocol webhook key, as its secret holds it.
async fn webhook_key() -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&stack().sdk().await);
    let value = secrets
        .get_secret_value()
        .secret_id(format!(
            "{}standin",
            assetbox_local::registry::secret_prefix(&stack().stack_name)
        ))
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    serde_json::from_str::<Value>(&value).unwrap()["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn bad_requests_get_a_4xx_naming_the_field_and_change_nothing() {
    let (api, user, box_id) = fresh_box().await;
    let mut bad_params = image_request("x");
    bad_params["params"] = json!({"width": 10});
    let (status, err) = generate(&user, &box_id, &bad_params, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"]["fields"]["params/width"].is_string(), "{err}");
    bad_params["params"] = json!({"colour": "red"});
    let (status, _) = generate(&user, &box_id, &bad_params, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = generate(
        &user,
        &box_id,
        &json!({"ai_model": stack().image_model, "prompt_text": "  "}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = generate(
        &user,
        &box_id,
        &json!({"ai_model": ulid::Ulid::new().to_string(), "prompt_text": "x"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = generate(
        &user,
        &ulid::Ulid::new().to_string(),
        &image_request("x"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another user's box is unknown.
    let other = api.new_user().await;
    let (status, _) = generate(&other, &box_id, &image_request("x"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 0);
}

#[tokio::test]
async fn the_running_cap_answers_429_with_retry_after() {
    let (api, user, box_id) = fresh_box().await;
    for i in 0..5 {
        let (status, body) = generate(
            &user,
            &box_id,
            &image_request(&unique(&format!("slot {i} [stuck] [no-callback]"))),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let reply = reqwest::Client::new()
        .post(format!("{}/api/boxes/{box_id}/generate/", stack().api))
        .bearer_auth(&user.access_token)
        .json(&image_request("one too many"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers().get("retry-after").is_some());
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 5);
}

#[tokio::test]
async fn the_registry_is_for_admins_validated_and_never_shows_a_secret() {
    generation_stack();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let listed = api.get("/api/ai/models/", token).await;
    assert_eq!(listed.status, StatusCode::OK);
    let image = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == stack().image_model)
        .cloned()
        .unwrap();
    assert_eq!(image["kind"], "image");
    assert_eq!(image["provider_name"], "Stand-in (reference protocol)");
    assert!(image["params_schema"]["properties"]["width"].is_object());
    assert!(
        image.get("submit").is_none(),
        "users see no request templates"
    );
    for (path, body) in [
        ("/api/ai/providers/", json!({})),
        ("/api/ai/models/", json!({})),
    ] {
        assert_eq!(
            api.post(path, token, &body).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            api.get(path.trim_end_matches('/'), token).await.status,
            if path.contains("models") {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        );
    }
    let model_path = format!("/api/ai/models/{}/", stack().image_model);
    assert_eq!(
        api.patch(&model_path, token, &json!({"name": "mine"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.delete(&model_path, token).await.status,
        StatusCode::FORBIDDEN
    );

    let admin = admin_token();
    let admin = Some(admin.as_str());
    let current = api.get(&model_path, admin).await;
    assert_eq!(current.status, StatusCode::OK, "{:?}", current.body);
    let mut spec = current.body.clone();
    for k in ["id", "created_at", "updated_at"] {
        spec.as_object_mut().unwrap().remove(k);
    }
    let cases = [
        (
            "/params_schema",
            json!({"type": "no-such-type"}),
            "params_schema",
        ),
        (
            "/submit/body/input/prompt",
            json!("{{promt}}"),
            "submit.body",
        ),
        (
            "/response/task_id",
            json!("data/taskId"),
            "response.task_id",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut broken = spec.clone();
        *broken.pointer_mut(pointer).unwrap() = value;
        let reply = api.post("/api/ai/models/", admin, &broken).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{field}: {:?}",
            reply.body
        );
        assert!(
            reply.field_error(field).is_some(),
            "{field}: {:?}",
            reply.body
        );
    }
    let providers = api.get("/api/ai/providers/", admin).await;
    assert_eq!(providers.status, StatusCode::OK);
    let text = providers.body.to_string();
    assert!(
        text.contains("/providers/standin"),
        "the reference is shown: {text}"
    );
    let secret = webhook_key().await;
    assert!(!text.contains(&secret), "never the secret");
    let bad =
        json!({"name": "x", "base_url": "https://x.example", "secret_ref": "prod/db-password"});
    let reply = api.post("/api/ai/providers/", admin, &bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.field_error("secret_ref").is_some());

    // Delete deactivates: gone from lists and new generations.
    let mut copy = spec.clone();
    copy["name"] = json!("to be deleted");
    let created = api.post("/api/ai/models/", admin, &copy).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/ai/models/{id}/"), admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/api/ai/models/{id}/"), admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (_, box_id) = api.project_and_box(&user).await;
    let (status, _) = generate(
        &user,
        &box_id,
        &json!({"ai_model": id, "prompt_text": "x"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A result URL at a private address is refused when private networks are
/// not allowed: the same guard as import, in the shared download code.
#[tokio::test]
async fn results_at_private_addresses_are_refused_without_private_networks() {
    generation_stack();
    let sdk = stack().sdk().await;
    let bucket = assetbox_shared::s3::Bucket::new(
        assetbox_local::s3_client(&sdk),
        stack().bucket().to_owned(),
    );
    let http = assetbox_shared::download::guarded_client(false, "test").unwrap();
    struct Any;
    impl assetbox_shared::download::Placement for Any {
        fn sniff(&self, _: &[u8]) -> Result<&'static str, String> {
            Ok("image/png")
        }
        fn key_and_name(&self, _: &'static str) -> (String, String) {
            ("uploads/x/y/original.png".into(), "x.png".into())
        }
    }
    let limits = assetbox_shared::download::Limits {
        max_bytes: 1 << 20,
        room: 1 << 20,
        quota_bytes: 1 << 20,
    };
    for url in [
        format!(
            "{}/files/anything",
            stack().standin_url.replace("http://", "https://")
        ),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://localhost/x.png".to_owned(),
    ] {
        let err =
            assetbox_shared::download::fetch_into_bucket(&http, false, &bucket, &url, limits, &Any)
                .await
                .unwrap_err();
        assert!(
            matches!(&err, assetbox_shared::download::FetchError::Permanent(r) if r.contains("private network")),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn another_user_sees_none_of_it() {
    let (api, user, box_id) = fresh_box().await;
    let (_, accepted) = generate(&user, &box_id, &image_request(&unique("mine")), None).await;
    let id = accepted["id"].as_str().unwrap();
    eventually(&api, &user, id, settled).await;
    let other = api.new_user().await;
    let (status, _) = generate(&other, &box_id, &image_request("theirs"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.get(&format!("/api/assets/{id}/"), Some(&other.access_token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A callback for the first user's generation with the other's name in it.
    let secret = stack()
        .functions
        .iter()
        .find(|f| f.binary == "generation-callback")
        .unwrap()
        .environment["CALLBACK_SECRET"]
        .clone();
    let token = assetbox_shared::ai::signing::callback_token(secret.as_bytes(), &user.id, id);
    let reply = reqwest::Client::new()
        .post(callback_url(&other.id, id, &token))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(box_assets_count(&api, &user, &box_id).await, 1);
}
