//! Every `events/` sample of the upload functions and the file routes, run
//! through its function as Lambda runs it (no local gateway: the sample's
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

/// Real-S3-shaped events: originals no record claims (yet) ask for a retry,
/// as they must (the record of a small upload follows its object); a
/// thumbnail's event is not ingested.
#[tokio::test]
async fn ingest_samples_retry_unclaimed_originals_and_skip_thumbnails() {
    for sample in ["put.json", "complete-multipart.json"] {
        let result = invoke_s3_sample("ingest-object", sample).await;
        let err = result.expect_err(sample);
        assert!(err.contains("to retry: uploads/"), "{sample}: {err}");
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
    let s3 = stack.s3().await;
    let key = "uploads/11111111-2222-3333-4444-555555555555/Szène 1 + copie (2).jpg";
    s3.put_object()
        .bucket(stack.bucket())
        .key(key)
        .body(b"whatever someone put there".to_vec().into())
        .send()
        .await
        .expect("put");
    for _ in 0..2 {
        assert_eq!(
            invoke_s3_sample("ingest-object", "put-foreign-key.json").await,
            Ok(())
        );
    }
    let exists = |key: String| {
        let s3 = s3.clone();
        async move {
            s3.head_object()
                .bucket(stack.bucket())
                .key(key)
                .send()
                .await
                .is_ok()
        }
    };
    assert!(exists(format!("quarantine/{key}")).await);
    assert!(!exists(key.to_owned()).await);
}
