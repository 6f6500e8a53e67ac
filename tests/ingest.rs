//! Ingestion end to end: objects stored through the real routes, S3's
//! notifications delivered by the local stack as real S3 sends them, the
//! assets finished by ingest-object; then the same event again, straight to
//! `Ingestor`, changes nothing.

use assetbox_e2e::{Client, User, form, media, stack, stack_delivering_s3_events};
use assetbox_shared::upload_env::UploadEnv;
use ingest_object::{Ingestor, Outcome};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn ingestor() -> Ingestor {
    let spec = stack_delivering_s3_events()
        .functions
        .iter()
        .find(|f| f.binary == "ingest-object")
        .expect("ingest-object in the template");
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

/// A box's only asset, once ingestion has finished it.
async fn finished(api: &Client, user: &User, box_id: &str) -> Value {
    for _ in 0..200 {
        let listed = api
            .get(
                &format!("/api/boxes/{box_id}/assets/"),
                Some(&user.access_token),
            )
            .await;
        let asset = listed.body["results"][0].clone();
        if asset["status"] != "PROCESSING" {
            return asset;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the asset of box {box_id} was never ingested");
}

/// The object's key and ETag as an S3 event carries them (key URL-encoded,
/// `+` for spaces).
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

#[tokio::test]
async fn an_exif_rotated_jpeg_completes_with_upright_dimensions_once() {
    stack_delivering_s3_events();
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
    assert_eq!(uploaded.body["status"], "PROCESSING");

    // The stack delivers the ObjectCreated event; ingest-object finishes it.
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["id"], uploaded.body["id"]);
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

    // The same event again, five times, and two racing: one end state.
    let original = stack()
        .objects_of(&user.id)
        .await
        .into_iter()
        .find(|k| k.contains("/original."))
        .expect("the original");
    let (event_key, etag) = event_of(&original).await;
    let ingestor = ingestor().await;
    let before = stack().items_of(&user.id).await;
    for _ in 0..5 {
        assert!(matches!(
            ingestor.ingest(&event_key, Some(&etag)).await,
            Outcome::Skipped(_)
        ));
    }
    let (one, two) = tokio::join!(
        ingestor.ingest(&event_key, Some(&etag)),
        ingestor.ingest(&event_key, Some(&etag))
    );
    assert!(matches!(one, Outcome::Skipped(_)) && matches!(two, Outcome::Skipped(_)));
    assert_eq!(stack().items_of(&user.id).await, before);
    let listed = api
        .get(&format!("/api/assets/?box={b}&status=COMPLETED"), token)
        .await;
    assert_eq!(listed.body["results"][0]["id"], uploaded.body["id"]);
}

#[tokio::test]
async fn an_mp4_gets_its_duration_and_size_from_its_headers() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    // 50 frames at 25 fps; the writer puts `moov` after `mdat`, so finding
    // it means walking past the media by box headers.
    let video = media::mp4(50, 7);
    let (content_type, body) = form(&[("file", Some("take.mp4"), &video)]);
    let uploaded = api
        .send(
            Method::POST,
            &format!("/api/boxes/{b}/upload/"),
            Some(&user.access_token),
            Some((&content_type, body)),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{:?}", uploaded.body);
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(asset["asset_type"], "VIDEO");
    assert_eq!(asset["duration_ms"], 2000, "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(64), json!(48))
    );
    assert_eq!(
        asset["thumbnail_url"],
        Value::Null,
        "no video thumbnails yet"
    );
}

#[tokio::test]
async fn a_direct_upload_that_is_not_what_it_declared_fails_and_frees_its_quota() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let b = shot(&api, &user).await;
    let bytes = b"not a picture at all, just text".to_vec();
    let file_id = api.upload_into_box(&user, &b, "image/png", bytes).await;

    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["status"], "FAILED", "{asset}");
    let reason = asset["error_message"].as_str().unwrap();
    assert!(
        reason.contains("not a recognised image or video"),
        "{reason}"
    );
    assert!(
        stack().objects_of(&user.id).await.is_empty(),
        "object removed"
    );
    let file = api
        .get(&format!("/v1/files/{file_id}?status=failed"), token)
        .await;
    assert_eq!(file.body["upload_status"], "failed", "{:?}", file.body);
    assert_eq!(stack().quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn keys_that_are_not_ours_or_not_claimed_yet() {
    let ingestor = ingestor().await;
    assert_eq!(
        ingestor.ingest("exports/u/p/x.docx", None).await,
        Outcome::Skipped("not an uploaded original")
    );
    // A thumbnail's own event is not ingested (it is not an original).
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
