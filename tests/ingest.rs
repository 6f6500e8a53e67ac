//! Ingestion's core against the emulator: objects stored through the real
//! routes, then handed to `Ingestor` as an S3 event would name them (the S3
//! entry point and local delivery join with the rest of the ingestion work).

use assetbox_e2e::{Client, User, form, media, stack};
use assetbox_shared::upload_env::UploadEnv;
use ingest_object::{Ingestor, Outcome};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn ingestor() -> Ingestor {
    let spec = stack()
        .functions
        .iter()
        .find(|f| f.binary == "catalog-api")
        .expect("catalog-api in the template");
    Ingestor {
        env: UploadEnv::from_settings(&spec.environment, &stack().sdk().await)
            .expect("upload settings"),
    }
}

async fn shot(api: &Client, user: &User) -> String {
    let token = Some(user.access_token.as_str());
    let p = api
        .post("/api/projects/", token, &json!({ "name": "Ingest" }))
        .await;
    let b = api
        .post(
            "/api/boxes/",
            token,
            &json!({ "project": p.body["id"], "name": "Shot" }),
        )
        .await;
    b.body["id"].as_str().unwrap().to_owned()
}

/// The asset's object key and ETag, as an S3 event would carry them
/// (key URL-encoded, `+` for spaces).
async fn event_of(key: &str) -> (String, String) {
    let head = stack()
        .s3()
        .await
        .head_object()
        .bucket(stack().bucket())
        .key(key)
        .send()
        .await
        .expect("object");
    let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
    (encoded, head.e_tag().unwrap_or_default().to_owned())
}

async fn only_original(user: &User) -> String {
    let keys = stack().objects_of(&user.id).await;
    let originals: Vec<&String> = keys.iter().filter(|k| k.contains("/original.")).collect();
    assert_eq!(originals.len(), 1, "{keys:?}");
    originals[0].clone()
}

#[tokio::test]
async fn an_exif_rotated_jpeg_completes_with_upright_dimensions_once() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let b = shot(&api, &user).await;
    let photo = media::with_exif_orientation(&media::jpeg(1200, 800, 3), 6);
    let (content_type, body) = form(&[("file", Some("portrait.jpg"), &photo)]);
    let uploaded = api
        .send(
            Method::POST,
            &format!("/api/boxes/{b}/upload/"),
            token,
            Some((&content_type, body)),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{:?}", uploaded.body);
    let id = uploaded.body["id"].as_str().unwrap().to_owned();
    let key = only_original(&user).await;
    let (event_key, etag) = event_of(&key).await;

    let ingestor = ingestor().await;
    assert_eq!(
        ingestor.ingest(&event_key, Some(&etag)).await,
        Outcome::Completed
    );
    let asset = api.get(&format!("/api/assets/{id}/"), token).await.body;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(800), json!(1200))
    );
    let thumbnail = reqwest::get(asset["thumbnail_url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let decoded = image::load_from_memory(&thumbnail).expect("the thumbnail decodes");
    assert_eq!((decoded.width(), decoded.height()), (341, 512));

    // The same event twice and five times more, and two racing: one end state.
    let before = stack().items_of(&user.id).await;
    for _ in 0..5 {
        assert!(matches!(
            ingestor.ingest(&event_key, Some(&etag)).await,
            Outcome::Skipped(_)
        ));
    }
    let (a, b2) = tokio::join!(
        ingestor.ingest(&event_key, Some(&etag)),
        ingestor.ingest(&event_key, Some(&etag))
    );
    assert!(matches!(a, Outcome::Skipped(_)) && matches!(b2, Outcome::Skipped(_)));
    assert_eq!(stack().items_of(&user.id).await, before);
    let listed = api
        .get(&format!("/api/assets/?box={b}&status=COMPLETED"), token)
        .await;
    assert_eq!(listed.body["results"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_direct_upload_that_is_not_what_it_declared_fails_and_frees_its_quota() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let b = shot(&api, &user).await;
    let bytes = b"not a picture at all, just text".to_vec();
    let file_id = api.upload_into_box(&user, &b, "image/png", bytes).await;
    let file_id = file_id.as_str();
    let key = only_original(&user).await;
    let (event_key, etag) = event_of(&key).await;

    let outcome = ingestor().await.ingest(&event_key, Some(&etag)).await;
    let Outcome::Rejected(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("not a recognised image or video"),
        "{reason}"
    );
    let assets = api.get(&format!("/api/boxes/{b}/assets/"), token).await;
    let asset: &Value = &assets.body["results"][0];
    assert_eq!(asset["status"], "FAILED");
    assert_eq!(asset["error_message"], reason.as_str());
    assert!(
        stack().objects_of(&user.id).await.is_empty(),
        "object removed"
    );
    let file = api
        .get(&format!("/v1/files/{file_id}?status=failed"), token)
        .await;
    assert_eq!(file.body["upload_status"], "failed", "{:?}", file.body);
    let quota = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("QUOTA"))
        .and_then(|q| q.get("used_bytes").and_then(|n| n.as_n().ok()).cloned());
    assert_eq!(quota.as_deref(), Some("0"));
}

#[tokio::test]
async fn keys_that_are_not_ours_or_not_claimed_yet() {
    let ingestor = ingestor().await;
    assert_eq!(
        ingestor.ingest("exports/u/p/x.docx", None).await,
        Outcome::Skipped("not an uploaded original")
    );
    assert_eq!(
        ingestor
            .ingest("uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/thumbnail.jpg", None)
            .await,
        Outcome::Skipped("not an uploaded original")
    );
    // Ours in shape, but no record (yet): retried, never deleted.
    let outcome = ingestor
        .ingest("uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/original.png", None)
        .await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
}
