//! Ingestion end to end: objects stored through the real routes, S3's
//! notifications delivered by the local stack as real S3 sends them, the
//! assets finished by ingest-object; then the same event again, straight to
//! `Ingestor`, changes nothing.

use std::time::Duration;

use assetbox_e2e::{Client, User, media, put_to, send_signed, stack, stack_delivering_s3_events};
use assetbox_shared::uploads::flow::UploadEnv;
use ingest_object::{Ingestor, Outcome};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Polls of 100 ms before a wait gives up: generous, because the test
/// binaries share two cores and one emulator process (a wait ends as soon
/// as its condition holds).
const POLLS: usize = 600;

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
    for _ in 0..POLLS {
        let listed = api
            .get(
                &format!("/api/boxes/{box_id}/assets/"),
                Some(&user.access_token),
            )
            .await;
        let asset = listed.body["results"][0].clone();
        if !asset["status"].is_null() && asset["status"] != "PROCESSING" {
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
    let uploaded = api.small_upload(&user, &b, "portrait.jpg", &photo).await;
    assert_eq!(uploaded["status"], "PROCESSING");

    // The stack delivers the ObjectCreated event; ingest-object finishes it.
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["id"], uploaded["id"]);
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(800), json!(1200))
    );
    assert_eq!(thumbnail_size(&asset).await, (341, 512));

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
    assert_eq!(listed.body["results"][0]["id"], uploaded["id"]);
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
    api.small_upload(&user, &b, "take.mp4", &video).await;
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
    let shown = file.body["error_message"].as_str().unwrap_or_default();
    assert!(
        shown.contains("not a recognised image or video"),
        "{:?}",
        file.body
    );
    assert_eq!(stack().quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn keys_that_are_not_ours_or_not_claimed_yet() {
    let ingestor = ingestor().await;
    assert_eq!(
        ingestor.ingest("exports/u/p/x.docx", None).await,
        Outcome::Skipped("not under uploads/")
    );
    // A thumbnail's own event is not ingested (it is not an original).
    assert_eq!(
        ingestor
            .ingest("uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/thumbnail.jpg", None)
            .await,
        Outcome::Skipped("a thumbnail")
    );
    // Ours in shape, but no record (yet): retried, never deleted...
    let outcome = ingestor
        .ingest("uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/original.png", None)
        .await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
}

#[tokio::test]
async fn an_object_no_record_claims_is_deleted_once_its_event_is_old() {
    let ingestor = ingestor().await;
    let key = format!("uploads/u-orphan/{}/original.png", ulid::Ulid::new());
    stack().put_object(&key, media::png(8, 8, 1)).await;
    // Young: its record may be on its way (a small upload's follows it).
    let outcome = ingestor.ingest_event(&key, None, Some(5)).await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
    assert!(stack().object_exists(&key).await);
    // A Lambda retry a minute later: still no record, so an orphan.
    assert_eq!(
        ingestor.ingest_event(&key, None, Some(65)).await,
        Outcome::Skipped("an orphan: deleted")
    );
    assert!(!stack().object_exists(&key).await);
}

#[tokio::test]
async fn a_single_put_after_its_upload_was_aborted_is_removed() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let params = api
        .get("/s3/params?filename=late.png&type=image/png", token)
        .await;
    assert_eq!(params.status, StatusCode::OK, "{:?}", params.body);
    let id = params.body["id"].as_str().unwrap();
    let aborted = api.delete(&format!("/v1/files/uploads/{id}"), token).await;
    assert_eq!(aborted.status, StatusCode::OK, "{:?}", aborted.body);
    // The URL is still valid: the PUT lands, but no upload accounts for it.
    let mut request = reqwest::Client::new().put(params.body["url"].as_str().unwrap());
    for (k, v) in params.body["headers"].as_object().unwrap() {
        request = request.header(k, v.as_str().unwrap());
    }
    let sent = request.body(media::png(16, 16, 2)).send().await.unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    let mut removed = false;
    for _ in 0..POLLS {
        if stack().objects_of(&user.id).await.is_empty() {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed, "ingestion removed the object of a closed upload");
    assert_eq!(stack().quota_used(&user.id).await, "0");
    let file = api
        .get(&format!("/v1/files/{id}?status=aborted"), token)
        .await;
    assert_eq!(file.body["upload_status"], "aborted", "{:?}", file.body);
}

/// The width and height of an asset's thumbnail, downloaded and decoded.
async fn thumbnail_size(asset: &Value) -> (u32, u32) {
    let url = asset["thumbnail_url"].as_str().expect("a thumbnail URL");
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let decoded = image::load_from_memory(&bytes).expect("the thumbnail decodes");
    (decoded.width(), decoded.height())
}

/// Polls until `done` holds for the JSON at `path` (it is returned).
async fn eventually(api: &Client, user: &User, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..POLLS {
        let reply = api.get(path, Some(&user.access_token)).await;
        if done(&reply.body) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never reached the expected state");
}

#[tokio::test]
async fn a_20_megapixel_photo_uploaded_in_parts_completes_upright() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    // 5472×3648 (20 MP) stored landscape, EXIF orientation 6: a portrait.
    let photo = media::with_exif_orientation(&media::photo_jpeg(5472, 3648, 20), 6);
    let part = 5 * 1024 * 1024;
    assert!(
        photo.len() > part,
        "{} bytes: more than one part",
        photo.len()
    );
    let size = photo.len();
    api.upload_file(&user, Some(&b), "image/jpeg", photo, part)
        .await;

    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(3648), json!(5472))
    );
    assert_eq!(asset["size"], json!(size));
    assert_eq!(asset["content_type"], "image/jpeg");
    assert_eq!(thumbnail_size(&asset).await, (341, 512));
}

#[tokio::test]
async fn single_put_files_complete_on_arrival_and_become_described_assets() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let params = |name: &'static str| {
        let api = &api;
        async move {
            let params = api
                .get(&format!("/s3/params?filename={name}&type=image/png"), token)
                .await;
            assert_eq!(params.status, StatusCode::OK, "{:?}", params.body);
            params.body
        }
    };
    // The PUT as the Companion client sends it: every header it was given.
    let send = |params: Value, bytes: Vec<u8>| async move {
        let mut request = reqwest::Client::new().put(params["url"].as_str().unwrap());
        for (k, v) in params["headers"].as_object().unwrap() {
            request = request.header(k, v.as_str().unwrap());
        }
        let sent = request.body(bytes).send().await.unwrap();
        assert!(sent.status().is_success(), "{}", sent.status());
        params["id"].as_str().unwrap().to_owned()
    };
    let put_single =
        |name: &'static str, bytes: Vec<u8>| async move { send(params(name).await, bytes).await };
    // Size not declared: the quota holds nothing until the object arrives.
    let picture = media::png(300, 200, 4);
    let id = put_single("frame.png", picture.clone()).await;
    let file = eventually(
        &api,
        &user,
        &format!("/v1/files/{id}?status=completed"),
        |f| f["upload_status"] == "completed",
    )
    .await;
    assert_eq!(file["file_size"], json!(picture.len()), "{file}");
    assert_eq!(
        stack().quota_used(&user.id).await,
        picture.len().to_string()
    );
    let objects = stack().objects_of(&user.id).await;
    assert_eq!(
        objects.len(),
        2,
        "the original and its thumbnail: {objects:?}"
    );

    // Moved into a box, it is an asset already described: no second pass.
    let b = shot(&api, &user).await;
    let moved = api
        .post(
            &format!("/v1/files/{id}/set-parent"),
            token,
            &json!({ "parent_content_type": "box", "parent_object_id": b }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let listed = api.get(&format!("/api/boxes/{b}/assets/"), token).await;
    let asset = &listed.body["results"][0];
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(300), json!(200))
    );
    assert!(asset["thumbnail_url"].is_string(), "{asset}");

    // A single PUT that is not what it declared: failed, removed, freed.
    let id = put_single("fake.png", b"plain text, not a PNG".to_vec()).await;
    let file = eventually(&api, &user, &format!("/v1/files/{id}?status=failed"), |f| {
        f["upload_status"] == "failed"
    })
    .await;
    assert_eq!(file["upload_status"], "failed");
    assert_eq!(
        stack().objects_of(&user.id).await.len(),
        2,
        "only the first file's"
    );
    assert_eq!(
        stack().quota_used(&user.id).await,
        picture.len().to_string()
    );

    // Given a box before its object arrives: the arrival makes the asset,
    // finished at once, and counts it in the box.
    let waiting = params("later.png").await;
    let id = waiting["id"].as_str().unwrap().to_owned();
    let b2 = shot(&api, &user).await;
    let moved = api
        .post(
            &format!("/v1/files/{id}/set-parent"),
            token,
            &json!({ "parent_content_type": "box", "parent_object_id": b2 }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["upload_status"], "pending");
    let second = media::png(120, 90, 5);
    send(waiting, second.clone()).await;
    let asset = finished(&api, &user, &b2).await;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(120), json!(90))
    );
    assert_eq!(asset["size"], json!(second.len()));
    let counted = api.get(&format!("/api/boxes/{b2}/"), token).await;
    assert_eq!(counted.body["assets_count"], 1);
    assert_eq!(
        stack().quota_used(&user.id).await,
        (picture.len() + second.len()).to_string()
    );
}

#[tokio::test]
async fn a_webm_gets_its_duration_and_size_from_its_headers() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    let video = media::webm(640, 360, Some(2500), 200_000);
    let uploaded = api.small_upload(&user, &b, "clip.webm", &video).await;
    assert_eq!(uploaded["content_type"], "video/webm");
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(asset["duration_ms"], 2500, "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(640), json!(360))
    );
}

#[tokio::test]
async fn a_key_with_spaces_and_non_ascii_is_quarantined_not_ingested() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    // Not a key of ours (ours never come from names): S3 sends it encoded
    // (`+` for spaces, `%2B` for plus); decoded right, it is moved away.
    let key = format!("uploads/{}/Szène 1 + copie (2).jpg", user.id);
    stack().put_object(&key, media::jpeg(64, 48, 1)).await;
    let moved = format!("quarantine/{key}");
    // A move is a copy, then a delete: wait for both.
    let mut found = false;
    for _ in 0..POLLS {
        if stack().object_exists(&moved).await && stack().objects_of(&user.id).await.is_empty() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "{moved} exists and the key is gone from uploads/");
    assert!(
        stack().items_of(&user.id).await.is_empty(),
        "no record made"
    );
}

#[tokio::test]
async fn duplicate_and_racing_deliveries_finish_an_asset_once() {
    let stack = stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    let uploaded = api
        .small_upload(&user, &b, "still.png", &media::png(900, 600, 9))
        .await;
    let key = stack
        .objects_of(&user.id)
        .await
        .into_iter()
        .find(|k| k.contains("/original."))
        .expect("the original");
    let (event_key, etag) = event_of(&key).await;
    let ingestor = ingestor().await;
    // The stack's own delivery and five more copies of the event, racing.
    let outcomes =
        futures::future::join_all((0..5).map(|_| ingestor.ingest(&event_key, Some(&etag)))).await;
    let completed = outcomes
        .iter()
        .filter(|o| **o == Outcome::Completed)
        .count();
    assert!(completed <= 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Completed | Outcome::Skipped(_))),
        "{outcomes:?}"
    );
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["id"], uploaded["id"]);
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    let items = stack.items_of(&user.id).await;
    let objects = stack.objects_of(&user.id).await;
    // Twice more, late: nothing changes.
    for _ in 0..2 {
        assert!(matches!(
            ingestor.ingest(&event_key, Some(&etag)).await,
            Outcome::Skipped(_)
        ));
    }
    assert_eq!(stack.items_of(&user.id).await, items);
    assert_eq!(stack.objects_of(&user.id).await, objects);
    assert_eq!(objects.len(), 2, "one original, one thumbnail: {objects:?}");
    let box_item = api
        .get(&format!("/api/boxes/{b}/"), Some(&user.access_token))
        .await;
    assert_eq!(box_item.body["assets_count"], 1);
}

/// An import stores its object, then records it: an event that arrives in
/// between is retried (the record will name this key), never skipped.
#[tokio::test]
async fn an_import_whose_object_lands_before_its_record_is_retried() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    // A source that accepts connections and never answers: the import
    // stays PENDING while the test runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let imported = api
        .post(
            &format!("/api/boxes/{b}/import/"),
            Some(&user.access_token),
            &json!({ "url": format!("https://127.0.0.1:{port}/still.png") }),
        )
        .await;
    assert_eq!(imported.status, StatusCode::ACCEPTED, "{:?}", imported.body);
    assert_eq!(imported.body["status"], "PENDING");
    let key = format!(
        "uploads/{}/{}/original.png",
        user.id,
        imported.body["id"].as_str().unwrap()
    );
    stack().put_object(&key, media::png(32, 32, 3)).await;
    let outcome = ingestor().await.ingest(&key, None).await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
    let listed = api
        .get(&format!("/api/boxes/{b}/assets/"), Some(&user.access_token))
        .await;
    assert_eq!(listed.body["results"][0]["status"], "PENDING");
}

/// A box-less file moved into a box while ingestion runs: whichever of the
/// two writes first (before ingestion reads, between its read and its
/// write, or after it finished), the asset ends `COMPLETED` and described,
/// exactly once. Delays vary to land the move at different points.
#[tokio::test]
async fn a_file_moved_into_a_box_while_it_is_ingested_ends_described_once() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let photo = media::photo_jpeg(3264, 2448, 8);
    for delay_ms in [0, 150, 400, 900] {
        let b = shot(&api, &user).await;
        let file_id = api
            .upload_file(&user, None, "image/jpeg", photo.clone(), photo.len())
            .await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let moved = api
            .post(
                &format!("/v1/files/{file_id}/set-parent"),
                token,
                &json!({ "parent_content_type": "box", "parent_object_id": b }),
            )
            .await;
        assert_eq!(
            moved.status,
            StatusCode::OK,
            "{delay_ms} ms: {:?}",
            moved.body
        );
        let asset = finished(&api, &user, &b).await;
        assert_eq!(asset["status"], "COMPLETED", "{delay_ms} ms: {asset}");
        assert_eq!(
            (asset["width"].clone(), asset["height"].clone()),
            (json!(3264), json!(2448)),
            "{delay_ms} ms"
        );
        assert!(asset["thumbnail_url"].is_string(), "{delay_ms} ms: {asset}");
        let listed = api.get(&format!("/api/boxes/{b}/"), token).await;
        assert_eq!(listed.body["assets_count"], 1, "{delay_ms} ms");
    }
    let objects = stack().objects_of(&user.id).await;
    assert_eq!(objects.len(), 8, "4 originals, 4 thumbnails: {objects:?}");
    assert_eq!(
        stack().quota_used(&user.id).await,
        (4 * photo.len()).to_string()
    );
}

/// A client attaches a direct upload to a box the moment it completes,
/// while ingestion describes it: a small video is described within a few
/// milliseconds, so the two writes meet. The move reads the file again
/// instead of answering 409, and the asset ends described.
#[tokio::test]
async fn attaching_a_file_right_after_its_upload_completes_is_never_a_conflict() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    for round in 0..8u64 {
        let video = media::webm(640, 360, Some(1000 + round), 2048);
        let b = shot(&api, &user).await;
        let file_id = api
            .upload_file(&user, None, "video/webm", video.clone(), video.len())
            .await;
        let moved = api
            .post(
                &format!("/v1/files/{file_id}/set-parent"),
                token,
                &json!({ "parent_content_type": "box", "parent_object_id": b }),
            )
            .await;
        assert_eq!(
            moved.status,
            StatusCode::OK,
            "round {round}: {:?}",
            moved.body
        );
        let asset = finished(&api, &user, &b).await;
        assert_eq!(asset["status"], "COMPLETED", "round {round}: {asset}");
        assert_eq!(asset["duration_ms"], 1000 + round, "round {round}: {asset}");
    }
}

/// Uppy 6 completes a multipart upload with S3 itself and declares no size:
/// it reserved a fixed amount at the start, and ingestion measures the
/// object against the quota. Beyond it, the object is deleted, the file is
/// `failed` with the reason and its reservation is given back.
#[tokio::test]
async fn a_browser_completed_upload_beyond_the_quota_is_refused_by_ingestion() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    // Larger than the 1 MiB an unsized upload reserves in the tests' stack.
    let video = media::webm(320, 240, Some(1000), 3 << 20);
    let (key, upload_id) = api.start_signed_multipart(&user, "late.webm").await;
    let (_, id) = assetbox_shared::uploads::parse_object_key(&key).unwrap();
    let id = id.to_owned();
    let part = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 1 }),
        )
        .await;
    let etag = put_to(part.body["url"].as_str().unwrap(), video.clone(), &[]).await;
    // Meanwhile other uploads filled the quota (the stack's is 100 GiB): of
    // what this file needs beyond its 1 MiB reservation, a byte is missing.
    let used = (100u64 << 30) - (video.len() as u64 - (1 << 20)) + 1;
    stack().set_quota_used(&user.id, used).await;
    let complete = api
        .sign(
            &user,
            json!({ "method": "POST", "key": key, "uploadId": upload_id }),
        )
        .await;
    let parts = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let (status, reply) = send_signed(&complete.body, "POST", parts.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    wait_for_file(&api, &user, &id, "failed").await;
    // The reason is recorded on the file (its JSON carries none).
    let items = stack().items_of(&user.id).await;
    let reason = items
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()) == Some(&format!("FILE#{id}")))
        .and_then(|i| i.get("error_message"))
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    assert!(reason.contains("quota"), "{reason:?}");
    assert!(!stack().object_exists(&key).await, "the object is deleted");
    // Its reservation is given back; nothing else moved.
    assert_eq!(
        stack().quota_used(&user.id).await,
        (used - (1 << 20)).to_string()
    );
}

/// The file once its `upload_status` is `status` (within a minute).
async fn wait_for_file(api: &Client, user: &User, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let file = api
            .get(&format!("/v1/files/{id}"), Some(&user.access_token))
            .await;
        if file.body["upload_status"] == status {
            return file.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "file {id} never became {status}: {:?}",
            file.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A decompression bomb: a PNG of a few hundred bytes that declares
/// 19000×19000 (about 1 GB of pixels). Ingestion refuses to decode it before
/// allocating anything and completes the asset with its size and no
/// thumbnail, instead of running out of memory (then DLQ, asset stuck
/// `PROCESSING`).
#[tokio::test]
async fn an_image_declaring_a_gigabyte_of_pixels_completes_without_a_thumbnail() {
    stack_delivering_s3_events();
    let api = Client::new();
    let user = api.new_user().await;
    let b = shot(&api, &user).await;
    let bomb = media::png_declaring(19_000, 19_000);
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    api.small_upload(&user, &b, "bomb.png", &bomb).await;
    let asset = finished(&api, &user, &b).await;
    assert_eq!(asset["status"], "COMPLETED", "{asset}");
    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(19_000), json!(19_000)),
        "{asset}"
    );
    assert!(asset["thumbnail_url"].is_null(), "{asset}");
    let objects = stack().objects_of(&user.id).await;
    assert_eq!(objects.len(), 1, "the original only: {objects:?}");
}
