//! Every `events/` sample of every function (uploads, the file routes, the
//! catalog, the registry, generation, ingestion, import, cleanup), run through its
//! function as Lambda runs it (no local gateway: the sample's
//! claims are what the function trusts), against the emulator.
//!
//! The samples name a user and ids that do not exist in the emulator, so the
//! routes that look an upload, project or box up answer 404: that proves the sample routes
//! to its handler and that an unknown id is refused like a foreign one.

use assetbox_e2e::{invoke_s3_sample, invoke_sample, invoke_sqs_sample};
use serde_json::Value;

#[tokio::test]
async fn initiate_samples() {
    let (status, body) = invoke_sample("upload-initiate", "initiate.json").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["presigned_urls"].as_array().unwrap().len(), 3);
    assert_eq!(body["upload_status"], "uploading");

    let (status, body) = invoke_sample("upload-initiate", "initiate-bad-parts.json").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["fields"]["num_parts"].as_str().is_some());

    let (status, body) = invoke_sample("upload-initiate", "companion-create.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["uploadId"].as_str().is_some());

    let (status, body) = invoke_sample("upload-initiate", "companion-params.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "PUT");

    // Uppy 6: our key, not the proposed one.
    let (status, body) = invoke_sample("upload-sign", "create-multipart.json").await;
    assert_eq!(status, 200, "{body}");
    let key = body["key"].as_str().unwrap();
    assert!(
        key.starts_with("uploads/11111111-2222-3333-4444-555555555555/"),
        "{key}"
    );
    assert!(key.ends_with("/original.mp4"), "{key}");
}

#[tokio::test]
async fn samples_for_unknown_uploads_are_404() {
    let cases = [
        ("upload-parts", "sign-parts.json"),
        ("upload-parts", "uploaded-parts.json"),
        ("upload-parts", "companion-sign-part.json"),
        ("upload-parts", "companion-list-parts.json"),
        ("upload-complete", "complete.json"),
        ("upload-complete", "companion-complete.json"),
        ("upload-abort", "abort.json"),
        ("upload-abort", "companion-abort.json"),
        ("upload-sign", "sign-part.json"),
        ("catalog-api", "get-file.json"),
        ("catalog-api", "create-box.json"),
        ("catalog-api", "list-boxes.json"),
        ("catalog-api", "reorder-boxes.json"),
        ("catalog-api", "update-box.json"),
        ("catalog-api", "small-upload.json"),
        ("catalog-api", "import.json"),
        ("catalog-api", "create-share-link.json"),
        // Public routes: no claims, and an unknown token is a 404.
        ("catalog-api", "shared-view.json"),
        ("catalog-api", "shared-comment.json"),
        ("project-export", "export.json"),
        ("generate-dispatch", "generate.json"),
    ];
    for (function, sample) in cases {
        let (status, body) = invoke_sample(function, sample).await;
        assert_eq!(status, 404, "{function}/{sample}: {body}");
        assert_eq!(
            body["error"]["code"], "not_found",
            "{function}/{sample}: {body}"
        );
        if sample.starts_with("companion") {
            // Uppy shows the top-level message.
            assert!(body["message"].as_str().is_some(), "{sample}: {body}");
        }
    }
}

#[tokio::test]
async fn list_files_sample() {
    let (status, body) = invoke_sample("catalog-api", "list-files.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["results"].is_array());
    assert_eq!(body["next_cursor"], Value::Null);
}

/// An import for an asset that does not exist (deleted meanwhile) and a
/// message that is no import request: both are done with, none retried.
#[tokio::test]
async fn import_sample_retries_nothing_it_cannot_act_on() {
    let retry = invoke_sqs_sample("import-url", "import.json").await;
    assert_eq!(retry, Vec::<String>::new());
}

/// Real-S3-shaped events, dated (like any replayed sample) well over a
/// minute ago: originals no record claims by then are orphans and deleted
/// (a fresh event for one is retried instead: `tests/ingest.rs`); a
/// thumbnail's event is not ingested.
#[tokio::test]
async fn ingest_samples_delete_long_unclaimed_originals_and_skip_thumbnails() {
    let stack = assetbox_e2e::stack();
    for sample in ["put.json", "complete-multipart.json"] {
        let text = std::fs::read_to_string(format!(
            "{}/../events/ingest-object/{sample}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let key = event["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        stack
            .put_object(&key, b"no record claims this".to_vec())
            .await;
        assert_eq!(invoke_s3_sample("ingest-object", sample).await, Ok(()));
        assert!(!stack.object_exists(&key).await, "{sample}: {key} deleted");
    }
    assert_eq!(
        invoke_s3_sample("ingest-object", "put-thumbnail.json").await,
        Ok(())
    );
}

/// A key S3 sends URL-encoded (`+` for spaces, `%2B` for a plus, UTF-8
/// escapes): decoded exactly, the object it names — none of ours — is moved
/// to `quarantine/` under its real name. Run twice: the second changes nothing.
#[tokio::test]
async fn ingest_sample_with_an_encoded_foreign_key_quarantines_the_object() {
    let stack = assetbox_e2e::stack();
    let key = "uploads/11111111-2222-3333-4444-555555555555/Szène 1 + copie (2).jpg";
    stack
        .put_object(key, b"whatever someone put there".to_vec())
        .await;
    for _ in 0..2 {
        assert_eq!(
            invoke_s3_sample("ingest-object", "put-foreign-key.json").await,
            Ok(())
        );
    }
    assert!(stack.object_exists(&format!("quarantine/{key}")).await);
    assert!(!stack.object_exists(key).await);
}

/// The registry's list is for every signed-in user; its writes are for
/// admins only (the sample's caller is in `editors`).
#[tokio::test]
async fn registry_samples() {
    let (status, body) = invoke_sample("catalog-api", "list-models.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["results"].is_array());
    let (status, body) = invoke_sample("catalog-api", "create-model-not-admin.json").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
}

/// A callback whose token was not made by us (signed headers or not) is
/// refused before anything is read or queued.
#[tokio::test]
async fn a_callback_sample_with_a_foreign_token_is_401() {
    let (status, body) = invoke_sample("generation-callback", "callback.json").await;
    assert_eq!(status, 401, "{body}");
}

/// Polls and a wake-up for a generation that does not exist (deleted
/// meanwhile), and a message that is none of ours: all done with, none
/// retried.
#[tokio::test]
async fn poll_samples_retry_nothing_they_cannot_act_on() {
    let retry = invoke_sqs_sample("generation-poll", "polls.json").await;
    assert_eq!(retry, Vec::<String>::new());
}

/// The scheduler's message starts a run named by its time, which the
/// stack's cleanup queue carries through every step; a follow-up step
/// (another page of a shard) then works from its position and records
/// itself under the same run. Neither is retried.
#[tokio::test]
async fn cleanup_samples_start_a_run_and_carry_it_on() {
    use assetbox_shared::cleanup::{HOURLY, StepState, first_steps};
    let stack = assetbox_e2e::stack();
    let run = "2026-12-01T10:00:00Z";
    let retry = invoke_sqs_sample("cleanup", "scheduled-run.json").await;
    assert_eq!(retry, Vec::<String>::new());
    let first = first_steps(run, run, HOURLY, assetbox_shared::db::keys::DUE_SHARDS).len();
    let steps = stack.finished_run(run, first).await;
    assert!(steps.iter().all(|s| s.step.as_of == run));

    let retry = invoke_sqs_sample("cleanup", "follow-up.json").await;
    assert_eq!(retry, Vec::<String>::new());
    let store = stack.store().await;
    let after = store.cleanup_steps(run).await.unwrap();
    assert_eq!(after.len(), steps.len() + 1);
    let follow_up = after
        .iter()
        .find(|s| s.step.after.is_some() && s.step.part == 3)
        .expect("the follow-up's record");
    assert_eq!(follow_up.state, StepState::Done);
    // Delivered again (same message id: a redelivery), it has nothing left.
    let retry = invoke_sqs_sample("cleanup", "follow-up.json").await;
    assert_eq!(retry, Vec::<String>::new());
    assert_eq!(store.cleanup_steps(run).await.unwrap().len(), after.len());
}

/// The live API's samples: a forged token is denied; a connection of a
/// user who owns no such project is refused that project (404) and, once
/// gone, told to connect again (410); a stream record of a project nobody
/// follows is done with, not retried.
#[tokio::test]
async fn live_samples() {
    use assetbox_e2e::invoke_live_sample;
    let denied = invoke_live_sample("live-authorizer", "connect.json").await;
    assert_eq!(
        denied["policyDocument"]["Statement"][0]["Effect"], "Deny",
        "{denied}"
    );

    let connected = invoke_live_sample("live-api", "connect.json").await;
    assert_eq!(connected["statusCode"], 200, "{connected}");
    let reply = |answer: &Value| -> Value {
        serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON reply")
    };
    let refused = invoke_live_sample("live-api", "subscribe.json").await;
    assert_eq!(reply(&refused)["status"], 404, "{refused}");
    let gone = invoke_live_sample("live-api", "disconnect.json").await;
    assert_eq!(gone["statusCode"], 200);
    let after = invoke_live_sample("live-api", "subscribe.json").await;
    assert_eq!(reply(&after)["status"], 410, "{after}");

    let pushed = invoke_live_sample("status-push", "stream.json").await;
    assert_eq!(
        pushed["batchItemFailures"],
        serde_json::json!([]),
        "{pushed}"
    );
}
