//! Direct uploads end to end: the local API Gateway, the four upload
//! functions and catalog-api's file routes, DynamoDB and S3 in the emulator,
//! and a plain HTTP client doing the PUTs to the presigned URLs.
//!
//! The emulator does not check signatures, expiry, signed lengths or
//! checksums. Where a test relies on those, it checks our side instead: that
//! the URL signs what it must (the signature itself is checked against the S3
//! documentation's example and aws-sigv4 in `shared/src/s3/presign.rs`).

use std::collections::HashMap;

use assetbox_e2e::{
    Client, Reply, User, put_to, send_signed, stack, test_bytes, unsigned, xml_value,
};
use aws_sdk_dynamodb::types::AttributeValue;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

fn enc(raw: &str) -> String {
    utf8_percent_encode(raw, NON_ALPHANUMERIC).to_string()
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

struct Upload {
    id: String,
    upload_id: String,
    body: Value,
}

async fn initiate(api: &Client, user: &User, body: Value) -> Reply {
    api.post("/v1/files/uploads", Some(&user.access_token), &body)
        .await
}

fn plan(name: &str, size: u64, parts: u32, part_size: u64) -> Value {
    json!({
        "file_name": name,
        "file_size": size,
        "file_content_type": "video/mp4",
        "num_parts": parts,
        "part_size": part_size,
    })
}

async fn start(api: &Client, user: &User, body: Value) -> Upload {
    let reply = initiate(api, user, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    Upload {
        id: reply.body["id"].as_str().unwrap().to_owned(),
        upload_id: reply.body["upload_id"].as_str().unwrap().to_owned(),
        body: reply.body,
    }
}

fn url_of(body: &Value, part: u32) -> String {
    body["presigned_urls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["part_number"] == part)
        .and_then(|u| u["url"].as_str())
        .unwrap_or_else(|| panic!("no URL for part {part} in {body}"))
        .to_owned()
}

/// Cuts `data` into parts of `part_size` and PUTs part `n` (1-based).
async fn put_part(url: &str, data: &[u8], part_size: u64, n: u32) -> String {
    let from = (n as u64 - 1) * part_size;
    let to = (from + part_size).min(data.len() as u64);
    put_to(url, data[from as usize..to as usize].to_vec(), &[]).await
}

async fn complete(api: &Client, user: &User, id: &str, parts: &[(u32, String)]) -> Reply {
    let parts: Vec<Value> = parts
        .iter()
        .map(|(n, etag)| json!({ "part_number": n, "etag": etag }))
        .collect();
    api.post(
        &format!("/v1/files/uploads/{id}/complete"),
        Some(&user.access_token),
        &json!({ "parts": parts }),
    )
    .await
}

async fn object_bytes(key: &str) -> Option<Vec<u8>> {
    let s3 = stack().s3().await;
    let out = s3
        .get_object()
        .bucket(stack().bucket())
        .key(key)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn quota_used(user: &User) -> u64 {
    stack()
        .items_of(&user.id)
        .await
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("QUOTA"))
        .and_then(|i| i.get("used_bytes"))
        .and_then(|v| v.as_n().ok())
        .map(|n| n.parse().unwrap())
        .unwrap_or(0)
}

fn key_of(user: &User, id: &str, ext: &str) -> String {
    format!("uploads/{}/{id}/original.{ext}", user.id)
}

#[tokio::test]
async fn twelve_mib_in_three_parts_round_trips_byte_for_byte() {
    let api = Client::new();
    let user = api.new_user().await;
    let data = test_bytes(12 * MIB as usize, 1);
    let part_size = 5 * MIB;
    let upload = start(
        &api,
        &user,
        plan("Szene 1 – Köln.mp4", 12 * MIB, 3, part_size),
    )
    .await;
    assert_eq!(upload.body["upload_status"], "uploading");
    assert_eq!(upload.body["expires_in"], 3600);
    assert_eq!(upload.body["presigned_urls"].as_array().unwrap().len(), 3);
    assert_eq!(upload.body["next_parts_url"], Value::Null);

    // What the emulator does not enforce, checked on our side: each URL signs
    // a length (the value is only in the canonical request; the presigner's
    // unit tests check it), expires in an hour, and names this upload.
    for n in 1..=3 {
        let q = query_of(&url_of(&upload.body, n));
        assert_eq!(q["X-Amz-SignedHeaders"], "content-length;host");
        assert_eq!(q["X-Amz-Expires"], "3600");
        assert_eq!(q["partNumber"], n.to_string());
        assert_eq!(q["uploadId"], upload.upload_id);
        assert_eq!(q["X-Amz-Signature"].len(), 64);
    }

    let mut parts = Vec::new();
    for n in 1..=3 {
        parts.push((
            n,
            put_part(&url_of(&upload.body, n), &data, part_size, n).await,
        ));
    }
    let done = complete(&api, &user, &upload.id, &parts).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["upload_status"], "completed");
    assert_eq!(done.body["file_size"], 12 * MIB);
    assert_eq!(done.body["file_name"], "Szene 1 – Köln.mp4");
    assert_eq!(done.body["created_by"], user.id.as_str());

    let key = key_of(&user, &upload.id, "mp4");
    assert!(object_bytes(&key).await.unwrap() == data, "object differs");

    // The record says completed; the download URL saves under the real name.
    let got = api
        .get(
            &format!("/v1/files/{}", upload.id),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["upload_status"], "completed");
    let url = got.body["url"].as_str().unwrap();
    let q = query_of(url);
    assert_eq!(
        q["response-content-disposition"],
        "attachment; filename=\"Szene 1 _ K_ln.mp4\"; filename*=UTF-8''Szene%201%20%E2%80%93%20K%C3%B6ln.mp4"
    );
    let downloaded = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert!(downloaded.as_ref() == data.as_slice());

    // Completing again: same answer, still one record, one object.
    let again = complete(&api, &user, &upload.id, &parts).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["id"], done.body["id"]);
    assert_eq!(again.body["upload_status"], "completed");
    let files: Vec<_> = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "file")
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(stack().objects_of(&user.id).await, vec![key]);
    assert!(stack().open_uploads_of(&user.id).await.is_empty());
    assert_eq!(quota_used(&user).await, 12 * MIB);

    // It is listed, editable, and deleting it frees object and quota.
    let list = api.get("/v1/files/", Some(&user.access_token)).await;
    assert_eq!(list.body["results"].as_array().unwrap().len(), 1);
    let edited = api
        .patch(
            &format!("/v1/files/{}/", upload.id),
            Some(&user.access_token),
            &json!({ "name": "Final cut", "description": "v2" }),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(edited.body["name"], "Final cut");
    assert_eq!(edited.body["file_name"], "Szene 1 – Köln.mp4");
    let deleted = api
        .delete(
            &format!("/v1/files/{}", upload.id),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(stack().objects_of(&user.id).await.is_empty());
    assert_eq!(quota_used(&user).await, 0);
    let gone = api
        .get(
            &format!("/v1/files/{}", upload.id),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resume_lists_held_parts_and_signs_the_rest_on_demand() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let data = test_bytes(12 * MIB as usize, 2);
    let upload = start(&api, &user, plan("resume.mp4", 12 * MIB, 3, 5 * MIB)).await;
    let etag1 = put_part(&url_of(&upload.body, 1), &data, 5 * MIB, 1).await;

    // "Page reload": the client only knows the file id.
    let held = api
        .get(
            &format!("/v1/files/uploads/{}/uploaded-parts", upload.id),
            token,
        )
        .await;
    assert_eq!(held.status, StatusCode::OK, "{:?}", held.body);
    let parts = held.body["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["part_number"], 1);
    assert_eq!(parts[0]["etag"], etag1.as_str());
    assert_eq!(parts[0]["size"], 5 * MIB);

    let fresh = api
        .get(
            &format!("/v1/files/uploads/{}/parts?part_numbers=2,3", upload.id),
            token,
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{:?}", fresh.body);
    // A rename while the upload runs survives completing it.
    let renamed = api
        .patch(
            &format!("/v1/files/{}", upload.id),
            token,
            &json!({ "name": "Take 2" }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    let etag2 = put_part(&url_of(&fresh.body, 2), &data, 5 * MIB, 2).await;
    let etag3 = put_part(&url_of(&fresh.body, 3), &data, 5 * MIB, 3).await;
    let done = complete(
        &api,
        &user,
        &upload.id,
        &[(1, etag1), (2, etag2), (3, etag3)],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert!(
        object_bytes(&key_of(&user, &upload.id, "mp4"))
            .await
            .unwrap()
            == data
    );
    let file = api.get(&format!("/v1/files/{}", upload.id), token).await;
    assert_eq!(file.body["name"], "Take 2");
    assert_eq!(file.body["upload_status"], "completed");
}

#[tokio::test]
async fn abort_releases_everything_and_is_idempotent() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let data = test_bytes(12 * MIB as usize, 3);
    let upload = start(&api, &user, plan("abort.mp4", 12 * MIB, 3, 5 * MIB)).await;
    let etag1 = put_part(&url_of(&upload.body, 1), &data, 5 * MIB, 1).await;
    assert_eq!(quota_used(&user).await, 12 * MIB);
    assert_eq!(stack().open_uploads_of(&user.id).await.len(), 1);

    let path = format!("/v1/files/uploads/{}", upload.id);
    let aborted = api.delete(&path, token).await;
    assert_eq!(aborted.status, StatusCode::OK, "{:?}", aborted.body);
    assert_eq!(aborted.body["upload_status"], "aborted");
    assert!(stack().open_uploads_of(&user.id).await.is_empty());
    assert_eq!(quota_used(&user).await, 0);

    let twice = api.delete(&format!("{path}/"), token).await;
    assert_eq!(twice.status, StatusCode::OK);
    assert_eq!(twice.body["upload_status"], "aborted");
    assert_eq!(quota_used(&user).await, 0, "released once only");

    let late = complete(&api, &user, &upload.id, &[(1, etag1)]).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{:?}", late.body);
    let sign = api
        .get(&format!("{path}/parts?part_numbers=2"), token)
        .await;
    assert_eq!(sign.status, StatusCode::CONFLICT);
    let status = api
        .get(&format!("/v1/files/{}?status=aborted", upload.id), token)
        .await;
    assert_eq!(status.body["upload_status"], "aborted");
    let listed = api.get("/v1/files?status=aborted", token).await;
    assert_eq!(listed.body["results"].as_array().unwrap().len(), 1);
    let completed = api.get("/v1/files", token).await;
    assert_eq!(completed.body["results"], json!([]));
}

#[tokio::test]
async fn ten_thousand_parts_are_signed_lazily() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let part_size = 5 * MIB;
    let size = 9_999 * part_size + 1;
    let started = initiate(&api, &user, plan("long take.mp4", size, 10_000, part_size)).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let urls = started.body["presigned_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 100, "first batch only");
    assert!(started.body.to_string().len() < 200_000);
    let id = started.body["id"].as_str().unwrap();
    let next = started.body["next_parts_url"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "/v1/files/uploads/{id}/parts?part_numbers=101-200&grant="
        )),
        "{next}"
    );
    let more = api.get(next, token).await;
    assert_eq!(more.status, StatusCode::OK, "{:?}", more.body);
    assert_eq!(more.body["presigned_urls"].as_array().unwrap().len(), 100);
    assert_eq!(unsigned(&Value::String(url_of(&more.body, 101))), {
        // Without the grant the record is read: the same request is signed.
        let plain = api
            .get(
                &format!("/v1/files/uploads/{id}/parts?part_numbers=101"),
                token,
            )
            .await;
        unsigned(&Value::String(url_of(&plain.body, 101)))
    });
    // A grant is bound to its owner and its upload: anyone else's use of it,
    // or a tampered one, falls back to the record and its ownership check.
    let grant = next.split("grant=").nth(1).unwrap();
    let stranger = api.new_user().await;
    let stolen = api
        .get(
            &format!("/v1/files/uploads/{id}/parts?part_numbers=1&grant={grant}"),
            Some(&stranger.access_token),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let other_id = ulid::Ulid::new().to_string();
    let elsewhere = api
        .get(
            &format!("/v1/files/uploads/{other_id}/parts?part_numbers=1&grant={grant}"),
            token,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    let tampered = api
        .get(
            &format!("/v1/files/uploads/{id}/parts?part_numbers=1&grant=x{grant}"),
            token,
        )
        .await;
    assert_eq!(tampered.status, StatusCode::OK, "falls back to the record");
    // The last part signs its own (1-byte) length.
    let last = api
        .get(
            &format!("/v1/files/uploads/{id}/parts?part_numbers=10000"),
            token,
        )
        .await;
    let url = url_of(&last.body, 10_000);
    assert!(url.contains("partNumber=10000"));
    // Signed lengths are in the signed headers; the length values are in the
    // canonical request, checked by the presigner's unit tests.
    assert_eq!(query_of(&url)["X-Amz-SignedHeaders"], "content-length;host");
    let too_many = api
        .get(
            &format!("/v1/files/uploads/{id}/parts?part_numbers=1-501"),
            token,
        )
        .await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    let beyond = api
        .get(
            &format!("/v1/files/uploads/{id}/parts?part_numbers=10001"),
            token,
        )
        .await;
    assert_eq!(beyond.status, StatusCode::BAD_REQUEST);
    assert!(beyond.field_error("part_numbers").is_some());
}

#[tokio::test]
async fn companion_flow_in_uppys_request_order() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let data = test_bytes(11 * MIB as usize, 4);

    // createMultipartUpload
    let created = api
        .post(
            "/s3/multipart",
            token,
            &json!({ "filename": "Ünïcödé clip (1).mp4", "type": "video/mp4", "metadata": { "name": "Ünïcödé clip (1).mp4", "type": "video/mp4" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let upload_id = created.body["uploadId"].as_str().unwrap().to_owned();
    assert_eq!(created.body["bucket"], stack().bucket());
    assert!(key.starts_with(&format!("uploads/{}/", user.id)));
    let (uid, k) = (enc(&upload_id), enc(&key));

    // signPart for each part, PUT
    let mut etags = Vec::new();
    for n in 1..=3u32 {
        let signed = api
            .get(&format!("/s3/multipart/{uid}/{n}?key={k}"), token)
            .await;
        assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
        assert_eq!(signed.body["expires"], 3600);
        let url = signed.body["url"].as_str().unwrap();
        etags.push(put_part(url, &data, 5 * MIB, n).await);
    }
    // The batch route (third-party clients) signs several at once.
    let batch = api
        .get(
            &format!("/s3/multipart/{uid}/batch?key={k}&partNumbers=1,2"),
            token,
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
    assert!(batch.body["presignedUrls"]["2"].as_str().is_some());

    // listParts: a bare array.
    let listed = api
        .get(&format!("/s3/multipart/{uid}?key={k}"), token)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let listed = listed.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2]["PartNumber"], 3);
    assert_eq!(listed[2]["ETag"], etags[2].as_str());
    assert_eq!(listed[2]["Size"], MIB);

    // completeMultipartUpload
    let parts: Vec<Value> = listed
        .iter()
        .map(|p| json!({ "PartNumber": p["PartNumber"], "ETag": p["ETag"] }))
        .collect();
    let done = api
        .post(
            &format!("/s3/multipart/{uid}/complete?key={k}"),
            token,
            &json!({ "parts": parts }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["key"], key.as_str());
    assert!(
        done.body["location"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
    assert!(object_bytes(&key).await.unwrap() == data);

    // A Companion upload is a file like any other; its size was measured.
    let id = key.split('/').nth(2).unwrap();
    let file = api.get(&format!("/v1/files/{id}"), token).await;
    assert_eq!(file.body["upload_status"], "completed");
    assert_eq!(file.body["file_size"], 11 * MIB);
    assert_eq!(file.body["file_name"], "Ünïcödé clip (1).mp4");
    assert_eq!(quota_used(&user).await, 11 * MIB);

    // abortMultipartUpload on a fresh upload answers {}.
    let other = api
        .post(
            "/s3/multipart",
            token,
            &json!({ "filename": "b.mp4", "type": "video/mp4" }),
        )
        .await;
    let (k2, u2) = (
        enc(other.body["key"].as_str().unwrap()),
        enc(other.body["uploadId"].as_str().unwrap()),
    );
    let aborted = api
        .delete(&format!("/s3/multipart/{u2}?key={k2}"), token)
        .await;
    assert_eq!(aborted.status, StatusCode::OK);
    assert_eq!(aborted.body, json!({}));

    // 4xx carry a top-level `message` for Uppy.
    let missing = api.get(&format!("/s3/multipart/{uid}/1"), token).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body["message"].as_str().is_some(),
        "{:?}",
        missing.body
    );
}

#[tokio::test]
async fn companion_single_put_signs_type_and_length() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let png = test_bytes(4096, 5);
    let params = api
        .get(
            "/s3/params?filename=still%20%C3%A9t%C3%A9.png&type=image%2Fpng&metadata%5Bname%5D=still&size=4096",
            token,
        )
        .await;
    assert_eq!(params.status, StatusCode::OK, "{:?}", params.body);
    assert_eq!(params.body["method"], "PUT");
    assert_eq!(
        params.body["headers"],
        json!({ "content-type": "image/png", "if-none-match": "*" })
    );
    let url = params.body["url"].as_str().unwrap();
    assert_eq!(
        query_of(url)["X-Amz-SignedHeaders"],
        "content-length;content-type;host;if-none-match"
    );
    let put = || {
        reqwest::Client::new()
            .put(url)
            .header("content-type", "image/png")
            .header("if-none-match", "*")
            .body(png.clone())
            .send()
    };
    assert!(put().await.unwrap().status().is_success());
    // The URL is good for one object: sent again, S3 refuses to replace it
    // (the signature binds the header; the emulator checks the condition).
    assert_eq!(
        put().await.unwrap().status(),
        StatusCode::PRECONDITION_FAILED
    );
    let key = params.body["key"].as_str().unwrap();
    assert!(object_bytes(key).await.unwrap() == png);
    let id = params.body["id"].as_str().unwrap();
    let file = api.get(&format!("/v1/files/{id}"), token).await;
    assert_eq!(
        file.body["upload_status"], "pending",
        "ingestion finishes it"
    );
    assert_eq!(quota_used(&user).await, 4096);

    // Aborting a single PUT removes what landed and gives the quota back.
    let aborted = api.delete(&format!("/v1/files/uploads/{id}"), token).await;
    assert_eq!(aborted.status, StatusCode::OK, "{:?}", aborted.body);
    assert!(object_bytes(key).await.is_none());
    assert_eq!(quota_used(&user).await, 0);

    let exe = api
        .get(
            "/s3/params?filename=setup.exe&type=application%2Fx-msdownload",
            token,
        )
        .await;
    assert_eq!(exe.status, StatusCode::BAD_REQUEST);
    assert!(exe.body["message"].as_str().is_some());
}

/// Every rule of initiate: the exact status and field, and nothing written
/// to the table or left open in S3.
#[tokio::test]
async fn bad_initiates_change_nothing() {
    let api = Client::new();
    let user = api.new_user().await;
    let with = |patch: Value| {
        let mut body = plan("clip.mp4", 12 * MIB, 3, 5 * MIB);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with(json!({ "file_size": 65u64 << 30, "num_parts": 13000, "part_size": 6 * MIB })),
            400,
            "num_parts",
        ),
        (
            with(json!({ "file_size": 65u64 << 30, "num_parts": 8320, "part_size": 8 * MIB })),
            413,
            "file_size",
        ),
        (with(json!({ "num_parts": 0 })), 400, "num_parts"),
        (with(json!({ "num_parts": 10001 })), 400, "num_parts"),
        (with(json!({ "part_size": 4 * MIB })), 400, "part_size"),
        (with(json!({ "num_parts": 4 })), 400, "num_parts"),
        (with(json!({ "num_parts": 2 })), 400, "num_parts"),
        (with(json!({ "file_size": 0 })), 400, "file_size"),
        (with(json!({ "file_size": -5 })), 400, "file_size"),
        (
            with(json!({ "file_content_type": "application/x-msdownload" })),
            400,
            "file_content_type",
        ),
        (with(json!({ "file_name": "" })), 400, "file_name"),
        (
            with(json!({ "file_name": "x".repeat(256) })),
            400,
            "file_name",
        ),
        (
            with(json!({ "file_name": "../../etc/passwd" })),
            400,
            "file_name",
        ),
        (
            with(json!({ "file_name": "a\u{0000}b.mp4" })),
            400,
            "file_name",
        ),
        (with(json!({ "colour": "red" })), 400, "colour"),
        (
            with(
                json!({ "parent_content_type": "box", "parent_object_id": ulid::Ulid::new().to_string() }),
            ),
            422,
            "parent_object_id",
        ),
        (
            with(json!({ "parent_content_type": "box", "parent_object_id": "not-an-id" })),
            422,
            "parent_object_id",
        ),
        (
            with(
                json!({ "parent_content_type": "project", "parent_object_id": ulid::Ulid::new().to_string() }),
            ),
            400,
            "parent_content_type",
        ),
        (
            with(json!({ "checksum_algorithm": "SHA256", "part_checksums": ["short"] })),
            400,
            "part_checksums[0]",
        ),
        (
            with(json!({ "checksum_algorithm": "MD5" })),
            400,
            "checksum_algorithm",
        ),
        (
            with(json!({ "checksum_algorithm": "SHA256", "checksum_type": "FULL_OBJECT" })),
            400,
            "checksum_type",
        ),
    ];
    for (body, status, field) in cases {
        let reply = initiate(&api, &user, body.clone()).await;
        assert_eq!(reply.status.as_u16(), status, "{body} → {:?}", reply.body);
        assert!(
            reply.field_error(field).is_some(),
            "{body}: expected a reason for {field}, got {:?}",
            reply.body
        );
    }
    assert!(
        stack().items_of(&user.id).await.is_empty(),
        "nothing written"
    );
    assert!(
        stack().open_uploads_of(&user.id).await.is_empty(),
        "no S3 upload left"
    );
    let plain = api
        .send(
            reqwest::Method::POST,
            "/v1/files/uploads",
            Some(&user.access_token),
            Some(("text/plain", b"hello".to_vec())),
        )
        .await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let anonymous = api
        .post("/v1/files/uploads", None, &plan("a.mp4", 10, 1, 10))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_etag_and_missing_part_name_the_part() {
    let api = Client::new();
    let user = api.new_user().await;
    let data = test_bytes(12 * MIB as usize, 6);
    let upload = start(&api, &user, plan("etag.mp4", 12 * MIB, 3, 5 * MIB)).await;
    let mut parts = Vec::new();
    for n in 1..=2 {
        parts.push((
            n,
            put_part(&url_of(&upload.body, n), &data, 5 * MIB, n).await,
        ));
    }
    // Part 3 never uploaded.
    let missing = complete(
        &api,
        &user,
        &upload.id,
        &[parts[0].clone(), parts[1].clone(), (3, "\"0123\"".into())],
    )
    .await;
    assert_eq!(
        missing.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        missing.body
    );
    assert!(
        missing
            .field_error("parts[2]")
            .unwrap()
            .contains("part 3 was never uploaded")
    );
    let etag3 = put_part(&url_of(&upload.body, 3), &data, 5 * MIB, 3).await;
    // Wrong ETag for part 2.
    let wrong = complete(
        &api,
        &user,
        &upload.id,
        &[
            parts[0].clone(),
            (2, "\"deadbeefdeadbeefdeadbeefdeadbeef\"".into()),
            (3, etag3.clone()),
        ],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{:?}", wrong.body);
    assert!(
        wrong
            .field_error("parts[1]")
            .unwrap()
            .contains("part 2: ETag")
    );
    // Left out of the list, out of order.
    let short = complete(
        &api,
        &user,
        &upload.id,
        &[parts[0].clone(), (3, etag3.clone())],
    )
    .await;
    assert!(
        short
            .field_error("parts")
            .unwrap()
            .contains("part 2 is missing")
    );
    let order = complete(
        &api,
        &user,
        &upload.id,
        &[parts[1].clone(), parts[0].clone(), (3, etag3.clone())],
    )
    .await;
    assert_eq!(order.status, StatusCode::BAD_REQUEST);
    // None of that changed anything; the right list still completes.
    let file = api
        .get(
            &format!("/v1/files/{}", upload.id),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(file.body["upload_status"], "uploading");
    assert!(stack().objects_of(&user.id).await.is_empty());
    let ok = complete(
        &api,
        &user,
        &upload.id,
        &[parts[0].clone(), parts[1].clone(), (3, etag3)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
}

#[tokio::test]
async fn ten_concurrent_completes_end_with_one_object_and_one_record() {
    let api = Client::new();
    let user = api.new_user().await;
    let data = test_bytes(11 * MIB as usize, 7);
    let upload = start(&api, &user, plan("race.mp4", 11 * MIB, 3, 5 * MIB)).await;
    let mut parts = Vec::new();
    for n in 1..=3 {
        parts.push((
            n,
            put_part(&url_of(&upload.body, n), &data, 5 * MIB, n).await,
        ));
    }
    let replies =
        futures::future::join_all((0..10).map(|_| complete(&api, &user, &upload.id, &parts))).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["id"], upload.id.as_str());
        assert_eq!(reply.body["upload_status"], "completed");
    }
    let files: Vec<_> = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "file")
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(stack().objects_of(&user.id).await.len(), 1);
    assert!(
        object_bytes(&key_of(&user, &upload.id, "mp4"))
            .await
            .unwrap()
            == data
    );
    assert_eq!(quota_used(&user).await, 11 * MIB, "settled once");
}

#[tokio::test]
async fn parallel_initiates_never_overshoot_the_quota() {
    let api = Client::new();
    let user = api.new_user().await;
    // The test stack's quota is 100 GiB; 20 uploads of 10 GiB each.
    let size = 10u64 << 30;
    let part_size = 8 * MIB;
    let parts = size.div_ceil(part_size) as u32;
    let replies = futures::future::join_all((0..20).map(|i| {
        initiate(
            &api,
            &user,
            plan(&format!("big-{i}.mp4"), size, parts, part_size),
        )
    }))
    .await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = replies
        .iter()
        .filter(|r| r.status != StatusCode::CREATED)
        .collect();
    assert_eq!(accepted, 10, "exactly the quota's worth");
    for r in &refused {
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "quota_exceeded");
    }
    assert_eq!(quota_used(&user).await, 100u64 << 30);
    let files = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "file")
        .count();
    assert_eq!(files, 10);
    assert_eq!(
        stack().open_uploads_of(&user.id).await.len(),
        10,
        "refused ones aborted"
    );

    // Aborting one frees room for exactly one more.
    let id = replies
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let aborted = api
        .delete(&format!("/v1/files/uploads/{id}"), Some(&user.access_token))
        .await;
    assert_eq!(aborted.status, StatusCode::OK);
    let again = initiate(&api, &user, plan("again.mp4", size, parts, part_size)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    let over = initiate(&api, &user, plan("over.mp4", 1, 1, 1)).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A second user sees none of the first user's uploads or files, on any
/// route of either contract, and changes nothing by trying.
#[tokio::test]
async fn another_users_uploads_are_invisible() {
    let api = Client::new();
    let owner = api.new_user().await;
    let other = api.new_user().await;
    let t = Some(other.access_token.as_str());
    let data = test_bytes(6 * MIB as usize, 8);
    let upload = start(&api, &owner, plan("mine.mp4", 6 * MIB, 2, 5 * MIB)).await;
    let etag1 = put_part(&url_of(&upload.body, 1), &data, 5 * MIB, 1).await;
    let id = &upload.id;
    let key = enc(&key_of(&owner, id, "mp4"));
    let uid = enc(&upload.upload_id);
    let before = stack().items_of(&owner.id).await;

    let attempts = vec![
        api.get(&format!("/v1/files/{id}"), t).await,
        api.patch(&format!("/v1/files/{id}"), t, &json!({ "name": "x" })).await,
        api.delete(&format!("/v1/files/{id}"), t).await,
        api.post(&format!("/v1/files/{id}/set-parent"), t, &json!({ "parent_content_type": "box", "parent_object_id": ulid::Ulid::new().to_string() })).await,
        api.get(&format!("/v1/files/uploads/{id}/parts?part_numbers=1"), t).await,
        api.get(&format!("/v1/files/uploads/{id}/uploaded-parts"), t).await,
        api.post(&format!("/v1/files/uploads/{id}/complete"), t, &json!({ "parts": [{ "part_number": 1, "etag": etag1 }] })).await,
        api.delete(&format!("/v1/files/uploads/{id}"), t).await,
        api.get(&format!("/s3/multipart/{uid}/1?key={key}"), t).await,
        api.get(&format!("/s3/multipart/{uid}/batch?key={key}&partNumbers=1"), t).await,
        api.get(&format!("/s3/multipart/{uid}?key={key}"), t).await,
        api.post(&format!("/s3/multipart/{uid}/complete?key={key}"), t, &json!({ "parts": [{ "PartNumber": 1, "ETag": etag1 }] })).await,
        api.delete(&format!("/s3/multipart/{uid}?key={key}"), t).await,
    ];
    for (i, reply) in attempts.iter().enumerate() {
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "attempt {i}: {:?}",
            reply.body
        );
    }
    // Unknown ids look the same.
    let unknown = ulid::Ulid::new().to_string();
    let reply = api
        .get(&format!("/v1/files/{unknown}"), Some(&owner.access_token))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(attempts[0].body, reply.body);
    // Nothing changed.
    assert_eq!(stack().items_of(&owner.id).await, before);
    assert!(stack().items_of(&other.id).await.is_empty());
    assert_eq!(stack().open_uploads_of(&owner.id).await.len(), 1);
    let other_list = api.get("/v1/files?status=uploading", t).await;
    assert_eq!(other_list.body["results"], json!([]));
}

/// Seeds a box straight into the table (box routes come with the catalog issue).
async fn seed_box(user: &User) -> (String, String) {
    let (box_id, project) = (ulid::Ulid::new().to_string(), ulid::Ulid::new().to_string());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    stack()
        .dynamodb()
        .await
        .put_item()
        .table_name(&stack().table)
        .item("pk", s(&format!("USER#{}", user.id)))
        .item("sk", s(&format!("BOX#{box_id}")))
        .item("gsi1pk", s(&format!("PROJECT#{project}")))
        .item("gsi1sk", s(&format!("BOX#000000#{box_id}")))
        .item("entity", s("box"))
        .item("id", s(&box_id))
        .item("owner", s(&user.id))
        .item("project", s(&project))
        .item("name", s("Shot 1"))
        .item("order_index", AttributeValue::N("0".into()))
        .item("headliner_asset", AttributeValue::Null(true))
        .item("assets_count", AttributeValue::N("0".into()))
        .item("created_at", s("2026-11-23T00:00:00Z"))
        .item("updated_at", s("2026-11-23T00:00:00Z"))
        .send()
        .await
        .expect("seed box");
    (box_id, project)
}

#[tokio::test]
async fn completing_into_a_box_records_a_processing_asset() {
    let api = Client::new();
    let user = api.new_user().await;
    let stranger = api.new_user().await;
    let (box_id, project) = seed_box(&user).await;
    let (foreign_box, _) = seed_box(&stranger).await;

    let mut body = plan("still.png", 3000, 1, 3000);
    body["file_content_type"] = json!("image/png");
    body["parent_content_type"] = json!("box");
    body["parent_object_id"] = json!(foreign_box);
    let refused = initiate(&api, &user, body.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert!(stack().open_uploads_of(&user.id).await.is_empty());

    body["parent_object_id"] = json!(box_id);
    let upload = start(&api, &user, body).await;
    let etag = put_to(&url_of(&upload.body, 1), test_bytes(3000, 9), &[]).await;
    let done = complete(&api, &user, &upload.id, &[(1, etag)]).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["parent_content_type"], "box");
    assert_eq!(done.body["parent_object_id"], box_id.as_str());
    let asset_id = done.body["asset_id"].as_str().expect("names its asset");
    let made = api
        .get(
            &format!("/api/assets/{asset_id}/"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    assert_eq!(made.body["box"], box_id.as_str());

    let items = stack().items_of(&user.id).await;
    let assets: Vec<_> = items
        .iter()
        .filter(|i| i["entity"].as_s().unwrap() == "asset")
        .collect();
    assert_eq!(assets.len(), 1);
    let asset = assets[0];
    assert_eq!(asset["status"].as_s().unwrap(), "PROCESSING");
    assert_eq!(asset["asset_type"].as_s().unwrap(), "IMAGE");
    assert_eq!(asset["box"].as_s().unwrap(), &box_id);
    assert_eq!(asset["project"].as_s().unwrap(), &project);
    assert_eq!(asset["gsi1pk"].as_s().unwrap(), &format!("BOX#{box_id}"));
    let the_box = items
        .iter()
        .find(|i| i["entity"].as_s().unwrap() == "box")
        .unwrap();
    assert_eq!(the_box["assets_count"].as_n().unwrap(), "1");

    // Listed under its parent; a second complete adds no second asset.
    let listed = api
        .get(
            &format!("/v1/files?parent_content_type=box&parent_object_id={box_id}"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(listed.body["results"].as_array().unwrap().len(), 1);
    let again = complete(&api, &user, &upload.id, &[(1, "x".into())]).await;
    assert_eq!(again.status, StatusCode::OK);
    let assets = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "asset")
        .count();
    assert_eq!(assets, 1);

    // set-parent moves a completed, unattached file into a box as an asset.
    let loose = start(&api, &user, plan("loose.mp4", 10, 1, 10)).await;
    let etag = put_to(&url_of(&loose.body, 1), test_bytes(10, 10), &[]).await;
    complete(&api, &user, &loose.id, &[(1, etag)]).await;
    let moved = api
        .post(
            &format!("/v1/files/{}/set-parent/", loose.id),
            Some(&user.access_token),
            &json!({ "parent_content_type": "box", "parent_object_id": box_id }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let again = api
        .post(
            &format!("/v1/files/{}/set-parent", loose.id),
            Some(&user.access_token),
            &json!({ "parent_content_type": "box", "parent_object_id": box_id }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let foreign = api
        .post(
            &format!("/v1/files/{}/set-parent", upload.id),
            Some(&user.access_token),
            &json!({ "parent_content_type": "box", "parent_object_id": foreign_box }),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Open uploads are findable by the cleanup job through the sparse `due`
/// index (no Scan), keyed by expiry; they leave it when they close.
#[tokio::test]
async fn open_uploads_are_on_the_due_index_until_closed() {
    let api = Client::new();
    let user = api.new_user().await;
    let upload = start(&api, &user, plan("due.mp4", 10, 1, 10)).await;
    let expires = upload.body["upload_expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let on_index = |id: String| async move {
        let db = stack().dynamodb().await;
        let mut found = Vec::new();
        for shard in 0..8 {
            let out = db
                .query()
                .table_name(&stack().table)
                .index_name("due")
                .key_condition_expression("due_pk = :pk AND due_sk < :before")
                .expression_attribute_values(":pk", AttributeValue::S(format!("UPLOAD#{shard}")))
                .expression_attribute_values(":before", AttributeValue::S("9999".into()))
                .send()
                .await
                .unwrap();
            found.extend(
                out.items()
                    .iter()
                    // KEYS_ONLY: the cleanup job reads the item it names.
                    .filter(|i| i["sk"].as_s().unwrap() == &format!("FILE#{id}"))
                    .map(|i| i["due_sk"].as_s().unwrap().clone()),
            );
        }
        found
    };
    assert_eq!(
        on_index(upload.id.clone()).await,
        vec![format!("{expires}#{}", upload.id)]
    );
    // 24 h ahead by default.
    let created = api
        .get(
            &format!("/v1/files/{}", upload.id),
            Some(&user.access_token),
        )
        .await;
    let created = created.body["created"].as_str().unwrap();
    let at = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    // Both are stamped in the same request, a few milliseconds apart at most.
    let ahead = at(&expires) - at(created);
    assert!(
        (ahead - time::Duration::hours(24)).abs() < time::Duration::seconds(5),
        "{ahead}"
    );
    api.delete(
        &format!("/v1/files/uploads/{}", upload.id),
        Some(&user.access_token),
    )
    .await;
    assert!(on_index(upload.id.clone()).await.is_empty());
}

/// ListParts answers at most 1000 parts a page; resume must see them all.
#[tokio::test]
async fn listing_joins_every_page_of_parts() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let created = api
        .post(
            "/s3/multipart",
            token,
            &json!({ "filename": "many.mp4", "type": "video/mp4" }),
        )
        .await;
    let (k, uid) = (
        enc(created.body["key"].as_str().unwrap()),
        enc(created.body["uploadId"].as_str().unwrap()),
    );
    let total = 1005u32;
    let mut urls = Vec::new();
    for range in ["1-500", "501-1000", "1001-1005"] {
        let batch = api
            .get(
                &format!("/s3/multipart/{uid}/batch?key={k}&partNumbers={range}"),
                token,
            )
            .await;
        assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
        for (n, url) in batch.body["presignedUrls"].as_object().unwrap() {
            urls.push((n.parse::<u32>().unwrap(), url.as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(urls.len(), total as usize);
    // Tiny parts: S3 refuses them only at complete, which this test never calls.
    futures::future::join_all(urls.chunks(50).map(|chunk| async move {
        for (n, url) in chunk {
            put_to(url, vec![*n as u8; 3], &[]).await;
        }
    }))
    .await;
    let listed = api
        .get(&format!("/s3/multipart/{uid}?key={k}"), token)
        .await;
    let numbers: Vec<u64> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PartNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=total as u64).collect::<Vec<_>>());
}

/// Per-part checksums: each URL signs its part's x-amz-checksum-sha256, so
/// S3 refuses a part whose bytes do not match (the emulator does not check;
/// we check the URL) and completes with the checksums.
#[tokio::test]
async fn checksummed_parts_sign_their_checksum() {
    use base64::Engine;
    let api = Client::new();
    let user = api.new_user().await;
    let data = test_bytes(6 * MIB as usize, 11);
    let parts = [&data[..5 * MIB as usize], &data[5 * MIB as usize..]];
    let sha = |b: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(b))
    };
    let sums: Vec<String> = parts.iter().map(|p| sha(p)).collect();
    let mut body = plan("sum.mp4", 6 * MIB, 2, 5 * MIB);
    body["checksum_algorithm"] = json!("SHA256");
    body["part_checksums"] = json!([sums[0]]);
    let upload = start(&api, &user, body).await;
    // Only part 1's checksum was given: only part 1 is signed up front.
    assert_eq!(upload.body["presigned_urls"].as_array().unwrap().len(), 1);
    let url1 = url_of(&upload.body, 1);
    assert_eq!(
        query_of(&url1)["X-Amz-SignedHeaders"],
        "content-length;host;x-amz-checksum-sha256"
    );
    let without = api
        .get(
            &format!("/v1/files/uploads/{}/parts?part_numbers=2", upload.id),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(
        without.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        without.body
    );
    let signed = api
        .get(
            &format!(
                "/v1/files/uploads/{}/parts?part_numbers=2&checksums={}",
                upload.id,
                enc(&sums[1])
            ),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    let url2 = url_of(&signed.body, 2);
    let e1 = put_to(
        &url1,
        parts[0].to_vec(),
        &[("x-amz-checksum-sha256", &sums[0])],
    )
    .await;
    let e2 = put_to(
        &url2,
        parts[1].to_vec(),
        &[("x-amz-checksum-sha256", &sums[1])],
    )
    .await;
    // A whole-file checksum needs a FULL_OBJECT upload (SHA-256 is composite).
    let whole = api
        .post(
            &format!("/v1/files/uploads/{}/complete", upload.id),
            Some(&user.access_token),
            &json!({ "parts": [
                { "part_number": 1, "etag": e1, "checksum": sums[0] },
                { "part_number": 2, "etag": e2, "checksum": sums[1] },
            ], "checksum": sha(&data) }),
        )
        .await;
    assert_eq!(whole.status, StatusCode::BAD_REQUEST, "{:?}", whole.body);
    assert!(whole.field_error("checksum").is_some());
    let done = api
        .post(
            &format!("/v1/files/uploads/{}/complete", upload.id),
            Some(&user.access_token),
            &json!({ "parts": [
                { "part_number": 1, "etag": e1, "checksum": sums[0] },
                { "part_number": 2, "etag": e2, "checksum": sums[1] },
            ] }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert!(
        object_bytes(&key_of(&user, &upload.id, "mp4"))
            .await
            .unwrap()
            == data
    );
}

/// `GET /v1/files`: own files only; members of `admin` see everyone's. A
/// file deleted while its upload is open is aborted in S3 and frees quota.
#[tokio::test]
async fn admins_list_every_owners_files() {
    let api = Client::new();
    let (ana, bo) = (api.new_user().await, api.new_user().await);
    for (user, name) in [(&ana, "ana.mp4"), (&bo, "bo.mp4")] {
        let upload = start(&api, user, plan(name, 10, 1, 10)).await;
        let etag = put_to(&url_of(&upload.body, 1), test_bytes(10, 12), &[]).await;
        let done = complete(&api, user, &upload.id, &[(1, etag)]).await;
        assert_eq!(done.status, StatusCode::OK);
    }
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["file_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let own = api.get("/v1/files", Some(&ana.access_token)).await;
    assert_eq!(names(&own), vec!["ana.mp4"]);

    let mut claims = stack().access_claims(&format!("admin-{}", ulid::Ulid::new()));
    claims["cognito:groups"] = json!(["admin"]);
    let admin = stack().mint_token(&claims);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/files?limit=200&cursor={}", enc(c)),
            None => "/v1/files?limit=200".to_owned(),
        };
        let page = api.get(&path, Some(&admin)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(names(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(seen.contains(&"ana.mp4".to_owned()) && seen.contains(&"bo.mp4".to_owned()));

    // Cognito group names may hold commas and brackets, never spaces: a
    // group *named* like a list that holds admin is not the admin group.
    for groups in [
        json!(["x,admin"]),
        json!(["[admin]"]),
        json!(["[admin", "x]"]),
    ] {
        let mut claims = stack().access_claims(&format!("user-{}", ulid::Ulid::new()));
        claims["cognito:groups"] = groups.clone();
        let token = stack().mint_token(&claims);
        let page = api.get("/v1/files?limit=200", Some(&token)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        assert!(
            names(&page).is_empty(),
            "{groups} listed {:?}",
            names(&page)
        );
    }

    // Deleting an open upload: aborted in S3, quota back, record gone.
    let open = start(&api, &ana, plan("open.mp4", 12 * MIB, 3, 5 * MIB)).await;
    assert_eq!(quota_used(&ana).await, 10 + 12 * MIB);
    let deleted = api
        .delete(&format!("/v1/files/{}", open.id), Some(&ana.access_token))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(stack().open_uploads_of(&ana.id).await.is_empty());
    assert_eq!(quota_used(&ana).await, 10);
}

/// Ingestion's writes are conditional on the file as it read it: a
/// set-parent landing between its read and its write refuses that write
/// (no stale state is written over the move), and ingestion, reading again,
/// fails the asset the move made rather than leaving it `PROCESSING`.
#[tokio::test]
async fn ingestion_racing_a_set_parent_fails_the_new_asset_too() {
    use assetbox_shared::db::Refusal;
    use assetbox_shared::media::Description;
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let (box_id, _) = seed_box(&user).await;
    let text = b"text posing as a PNG".to_vec();
    let file_id = api
        .upload_file(&user, None, "image/png", text.clone(), text.len())
        .await;
    let spec = stack()
        .functions
        .iter()
        .find(|f| f.binary == "ingest-object")
        .expect("ingest-object in the template");
    let ingestor = ingest_object::Ingestor::from_settings(&spec.environment, &stack().sdk().await)
        .expect("settings");
    let table = &ingestor.env.table;
    // What ingestion read before the move.
    let stale = table.claim_of(&user.id, &file_id).await.unwrap().unwrap();

    let moved = api
        .post(
            &format!("/v1/files/{file_id}/set-parent"),
            token,
            &json!({ "parent_content_type": "box", "parent_object_id": box_id }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let before = stack().items_of(&user.id).await;
    let now = "2026-11-24T00:00:00Z";
    let described = Description {
        content_type: "image/png".into(),
        size: text.len() as u64,
        ..Description::default()
    };
    assert_eq!(
        table.fail_ingest(&stale, "stale", now).await.unwrap(),
        Err(Refusal::StateChanged)
    );
    assert_eq!(
        table
            .complete_ingest(&stale, &described, u64::MAX, false, now)
            .await
            .unwrap(),
        Err(Refusal::StateChanged)
    );
    assert_eq!(stack().items_of(&user.id).await, before, "nothing written");

    // The event itself: the content is refused; file and new asset fail.
    let outcome = ingestor.ingest(&key_of(&user, &file_id, "png"), None).await;
    assert!(
        matches!(&outcome, ingest_object::Outcome::Rejected(r) if r.contains("not a recognised")),
        "{outcome:?}"
    );
    let assets: Vec<_> = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["sk"].as_s().is_ok_and(|sk| sk.starts_with("ASSET#")))
        .collect();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["status"], AttributeValue::S("FAILED".into()));
    let file = api
        .get(&format!("/v1/files/{file_id}?status=failed"), token)
        .await;
    assert_eq!(file.body["upload_status"], "failed", "{:?}", file.body);
    assert_eq!(quota_used(&user).await, 0);
    assert!(
        object_bytes(&key_of(&user, &file_id, "png"))
            .await
            .is_none()
    );
}

// ---------------------------------------------------------------- Uppy 6

fn file_items(items: &[HashMap<String, AttributeValue>]) -> usize {
    items
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("FILE#"))
        })
        .count()
}

#[tokio::test]
async fn uppy6_sign_flow_in_uppys_request_order() {
    let api = Client::new();
    let user = api.new_user().await;
    let data = test_bytes(11 * MIB as usize, 61);

    // createMultipartUpload: our key, not the proposed one; type from the name.
    let created = api
        .sign(
            &user,
            json!({ "method": "POST", "key": "0b8e5d0a-3c1f-4e0b-9a51-2f3c4d5e6f70-Szène 1.mp4" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let (owner, id) = assetbox_shared::uploads::parse_object_key(&key).expect("our key");
    assert_eq!(owner, user.id);
    assert_eq!(key, key_of(&user, id, "mp4"));
    assert_eq!(created.body["headers"]["content-type"], "video/mp4");
    let disposition = created.body["headers"]["content-disposition"]
        .as_str()
        .unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''Sz%C3%A8ne%201.mp4"),
        "{disposition}"
    );
    let query = query_of(created.body["url"].as_str().unwrap());
    assert!(query.contains_key("uploads"));
    assert_eq!(
        query["X-Amz-SignedHeaders"],
        "content-disposition;content-type;host"
    );
    let file = api
        .get(&format!("/v1/files/{id}"), Some(&user.access_token))
        .await;
    assert_eq!(file.body["upload_status"], "uploading");
    assert_eq!(file.body["file_name"], "Szène 1.mp4");

    // The browser creates the S3 upload itself.
    let (status, xml) = send_signed(&created.body, "POST", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let upload_id = xml_value(&xml, "UploadId");

    // An upload id S3 does not know for this key is nobody's.
    let bogus = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": key, "uploadId": "not-an-upload", "partNumber": 1 }),
        )
        .await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND, "{:?}", bogus.body);
    assert!(bogus.body["message"].is_string(), "{:?}", bogus.body);

    // listParts first (a resume finds nothing yet): binds the upload id.
    let list = api
        .sign(
            &user,
            json!({ "method": "GET", "key": key, "uploadId": upload_id }),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert!(list.body.get("key").is_none());
    let (status, listed) = send_signed(&list.body, "GET", vec![]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(!listed.contains("<Part>"), "{listed}");

    // uploadPart for each part, then completeMultipartUpload, all with S3.
    let mut parts = String::new();
    for n in 1..=3u32 {
        let signed = api
            .sign(
                &user,
                json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": n }),
            )
            .await;
        assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
        let q = query_of(signed.body["url"].as_str().unwrap());
        assert_eq!(q["partNumber"], n.to_string());
        assert_eq!(q["uploadId"], upload_id);
        let etag = put_part(signed.body["url"].as_str().unwrap(), &data, 5 * MIB, n).await;
        parts.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    // Another S3 upload for the same key is not this file's.
    let second = send_signed(&created.body, "POST", vec![]).await;
    let second_id = xml_value(&second.1, "UploadId");
    let foreign = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": key, "uploadId": second_id, "partNumber": 1 }),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{:?}", foreign.body);

    let complete = api
        .sign(
            &user,
            json!({ "method": "POST", "key": key, "uploadId": upload_id }),
        )
        .await;
    assert_eq!(complete.status, StatusCode::OK, "{:?}", complete.body);
    let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>").into_bytes();
    let (status, done) = send_signed(&complete.body, "POST", body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(object_bytes(&key).await.unwrap() == data);

    // Completion is the object's (ingestion finishes it), not a call's.
    let recorded = complete_call(&api, &user, id).await;
    assert_eq!(recorded.status, StatusCode::CONFLICT, "{:?}", recorded.body);

    // Another user names the same key and upload: 404, like an unknown one.
    let other = api.new_user().await;
    for request in [
        json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 1 }),
        json!({ "method": "GET", "key": key, "uploadId": upload_id }),
        json!({ "method": "POST", "key": key, "uploadId": upload_id }),
        json!({ "method": "DELETE", "key": key, "uploadId": upload_id }),
        json!({ "method": "DELETE", "key": key }),
        json!({ "method": "GET", "key": key_of(&user, &ulid::Ulid::new().to_string(), "mp4"), "uploadId": upload_id }),
    ] {
        let reply = api.sign(&other, request.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{request}: {:?}",
            reply.body
        );
    }
    assert!(stack().items_of(&other.id).await.is_empty());
}

async fn complete_call(api: &Client, user: &User, id: &str) -> Reply {
    complete(api, user, id, &[(1, "\"x\"".to_owned())]).await
}

#[tokio::test]
async fn uppy6_single_put_signs_our_key_and_type() {
    let api = Client::new();
    let user = api.new_user().await;
    let signed = api.sign(
        &user,
        json!({ "method": "PUT", "key": "0b8e5d0a-3c1f-4e0b-9a51-2f3c4d5e6f70-frame.png", "contentType": "image/png" }),
    )
    .await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    let key = signed.body["key"].as_str().unwrap();
    let (_, id) = assetbox_shared::uploads::parse_object_key(key).unwrap();
    assert_eq!(key, key_of(&user, id, "png"));
    assert_eq!(
        signed.body["headers"],
        json!({ "content-type": "image/png", "if-none-match": "*" })
    );
    let q = query_of(signed.body["url"].as_str().unwrap());
    assert_eq!(q["X-Amz-SignedHeaders"], "content-type;host;if-none-match");
    let file = api
        .get(&format!("/v1/files/{id}"), Some(&user.access_token))
        .await;
    assert_eq!(file.body["upload_status"], "pending");
    assert_eq!(file.body["file_name"], "frame.png");
    let png = assetbox_e2e::media::png(8, 8, 1);
    let (status, _) = send_signed(&signed.body, "PUT", png.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(object_bytes(key).await.unwrap() == png);
    // The URL stores one object only.
    let (again, _) = send_signed(&signed.body, "PUT", png).await;
    assert_eq!(again, StatusCode::PRECONDITION_FAILED);
    // No type given: the name's extension says it; an octet-stream says nothing.
    let guessed = api.sign(&user,
        json!({ "method": "PUT", "key": "clip.webm", "contentType": "application/octet-stream" }),
    )
    .await;
    assert_eq!(guessed.status, StatusCode::OK, "{:?}", guessed.body);
    assert_eq!(guessed.body["headers"]["content-type"], "video/webm");
}

#[tokio::test]
async fn uppy6_requests_we_do_not_sign_change_nothing() {
    let api = Client::new();
    let user = api.new_user().await;
    let files_upload = start(&api, &user, plan("other route.mp4", 6 * MIB, 2, 5 * MIB)).await;
    let files_key = key_of(&user, &files_upload.id, "mp4");
    let before = stack().items_of(&user.id).await;
    let cases = [
        (
            json!({ "method": "HEAD", "key": "a.png" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "GET", "key": "a.png" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "POST", "key": "README" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "POST", "key": "notes.txt" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": "a.png", "contentType": "text/html" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": "a/", "contentType": "image/png" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": "a.png", "bucket": "elsewhere" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": "a.png", "expiresIn": 0 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": files_key, "uploadId": files_upload.upload_id, "partNumber": 10001 }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "method": "PUT", "key": "uploads/someone/else.png", "uploadId": "u", "partNumber": 1 }),
            StatusCode::NOT_FOUND,
        ),
        // Started through /v1/files: its own routes complete it.
        (
            json!({ "method": "POST", "key": files_key, "uploadId": files_upload.upload_id }),
            StatusCode::CONFLICT,
        ),
    ];
    for (request, status) in cases {
        let reply = api.sign(&user, request.clone()).await;
        assert_eq!(reply.status, status, "{request}: {:?}", reply.body);
        assert!(
            reply.body["message"].is_string(),
            "{request}: {:?}",
            reply.body
        );
    }
    let not_json = api
        .send(
            reqwest::Method::POST,
            "/s3/sign",
            Some(&user.access_token),
            Some(("text/plain", b"{}".to_vec())),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(stack().items_of(&user.id).await, before);
    assert_eq!(file_items(&before), 1);
}

#[tokio::test]
async fn uppy6_abort_closes_the_upload_and_the_browser_aborts_in_s3() {
    let api = Client::new();
    let user = api.new_user().await;
    let t = Some(user.access_token.as_str());

    // A multipart upload with one part, aborted.
    let (key, upload_id) = api.start_signed_multipart(&user, "a.mp4").await;
    let (_, id) = assetbox_shared::uploads::parse_object_key(&key).unwrap();
    let id = id.to_owned();
    let part = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 1 }),
        )
        .await;
    put_to(part.body["url"].as_str().unwrap(), test_bytes(1024, 3), &[]).await;
    let abort = json!({ "method": "DELETE", "key": key, "uploadId": upload_id });
    let signed = api.sign(&user, abort.clone()).await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    let file = api.get(&format!("/v1/files/{id}"), t).await;
    assert_eq!(file.body["upload_status"], "aborted");
    let (status, _) = send_signed(&signed.body, "DELETE", vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Signing it again answers the same; nothing more is signed for it.
    assert_eq!(api.sign(&user, abort).await.status, StatusCode::OK);
    let late = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": key, "uploadId": upload_id, "partNumber": 2 }),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{:?}", late.body);

    // A single PUT is aborted by deleting its object.
    let put = api
        .sign(
            &user,
            json!({ "method": "PUT", "key": "b.png", "contentType": "image/png" }),
        )
        .await;
    let put_key = put.body["key"].as_str().unwrap().to_owned();
    let (_, put_id) = assetbox_shared::uploads::parse_object_key(&put_key).unwrap();
    let delete = api
        .sign(&user, json!({ "method": "DELETE", "key": put_key }))
        .await;
    assert_eq!(delete.status, StatusCode::OK, "{:?}", delete.body);
    assert!(!query_of(delete.body["url"].as_str().unwrap()).contains_key("uploadId"));
    let file = api.get(&format!("/v1/files/{put_id}"), t).await;
    assert_eq!(file.body["upload_status"], "aborted");
    // A multipart upload is not aborted by DeleteObject.
    let other = api
        .sign(&user, json!({ "method": "POST", "key": "c.mp4" }))
        .await;
    let refused = api
        .sign(
            &user,
            json!({ "method": "DELETE", "key": other.body["key"] }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    // The aborted uploads gave their reservations back; the open c.mp4,
    // of unknown size, holds the stack's 1 MiB unsized reserve.
    assert_eq!(quota_used(&user).await, MIB);
}

#[tokio::test]
async fn uppy6_signing_stops_once_the_quota_is_used_up() {
    let api = Client::new();
    let user = api.new_user().await;
    // The stack's quota (UserQuotaBytes) is 100 GiB: all of it used.
    stack().set_quota_used(&user.id, 100u64 << 30).await;
    let before = stack().items_of(&user.id).await;
    for request in [
        json!({ "method": "PUT", "key": "a.png", "contentType": "image/png" }),
        json!({ "method": "POST", "key": "a.mp4" }),
    ] {
        let reply = api.sign(&user, request.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{request}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "quota_exceeded");
    }
    assert_eq!(stack().items_of(&user.id).await, before);
}

/// Listing another owner's box must not leak anything: not its files, and
/// not a cursor (which carries the owner's keys) that says there are some.
#[tokio::test]
async fn another_owners_box_lists_as_not_found_and_cursors_show_no_keys() {
    let api = Client::new();
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    let (box_id, _) = seed_box(&alice).await;
    for seed in 0..2 {
        let bytes = test_bytes(1024, 90 + seed);
        api.upload_file(&alice, Some(&box_id), "video/mp4", bytes, 1024)
            .await;
    }
    let listing = format!("/v1/files?parent_object_id={box_id}&limit=1");
    let mine = api.get(&listing, Some(&alice.access_token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body["results"].as_array().unwrap().len(), 1);
    let cursor = mine.body["next_cursor"].as_str().expect("a second page");
    // Opaque: nothing of the key it carries shows, base64-decoded or not
    // (each `.`-separated part, should a cursor have parts).
    let decoded: String = cursor
        .split('.')
        .filter_map(|part| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).ok()
        })
        .map(|raw| String::from_utf8_lossy(&raw).into_owned())
        .collect();
    for secret in [alice.id.as_str(), "USER#", "FILE#", box_id.as_str()] {
        assert!(
            !cursor.contains(secret) && !decoded.contains(secret),
            "{secret} in {cursor}"
        );
    }
    let next = api
        .get(
            &format!("{listing}&cursor={cursor}"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(
        next.body["results"].as_array().unwrap().len(),
        1,
        "{:?}",
        next.body
    );

    for path in [
        listing.clone(),
        format!("/v1/files?parent_content_type=box&parent_object_id={box_id}"),
    ] {
        let theirs = api.get(&path, Some(&bob.access_token)).await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{path}: {:?}",
            theirs.body
        );
        assert!(
            theirs.body.get("next_cursor").is_none(),
            "{:?}",
            theirs.body
        );
    }
    // Alice's cursor is nobody else's either.
    let stolen = api
        .get(
            &format!("{listing}&cursor={cursor}"),
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{:?}", stolen.body);
}

/// Uploads that declare no size (Companion multipart without
/// `metadata.size`, `/s3/params` without a size, Uppy 6's `/s3/sign`)
/// reserve what they may bring in — 1 MiB in the tests' stack, or what is
/// left — and are refused once nothing is: counted bytes never exceed the
/// quota, whatever a client declares. Measured at completion beyond the
/// quota, the upload fails and gives its reservation back.
#[tokio::test]
async fn uploads_without_a_size_reserve_quota_and_stop_when_it_is_full() {
    const QUOTA: u64 = 100 << 30;
    let api = Client::new();
    let user = api.new_user().await;
    let t = Some(user.access_token.as_str());
    stack().set_quota_used(&user.id, QUOTA - 3 * MIB / 2).await;

    let first = api
        .post(
            "/s3/multipart",
            t,
            &json!({ "filename": "a.mp4", "type": "video/mp4" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(quota_used(&user).await, QUOTA - MIB / 2, "1 MiB reserved");
    let second = api.get("/s3/params?filename=b.png&type=image/png", t).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(quota_used(&user).await, QUOTA, "what was left is reserved");

    let before = stack().items_of(&user.id).await;
    let refused = [
        api.post(
            "/s3/multipart",
            t,
            &json!({ "filename": "c.mp4", "type": "video/mp4" }),
        )
        .await,
        api.get("/s3/params?filename=c.png&type=image/png", t).await,
        api.sign(&user, json!({ "method": "POST", "key": "c.mp4" }))
            .await,
        api.sign(
            &user,
            json!({ "method": "PUT", "key": "c.png", "contentType": "image/png" }),
        )
        .await,
    ];
    for reply in refused {
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "quota_exceeded");
    }
    assert_eq!(stack().items_of(&user.id).await, before, "nothing written");

    // The first upload brings 6 MiB, 5 more than it reserved: nothing is
    // left for them, so completing it fails it and gives the 1 MiB back.
    let key = first.body["key"].as_str().unwrap().to_owned();
    let (k, u) = (enc(&key), enc(first.body["uploadId"].as_str().unwrap()));
    let data = test_bytes(6 * MIB as usize, 12);
    let mut parts = Vec::new();
    for n in 1..=2u32 {
        let signed = api.get(&format!("/s3/multipart/{u}/{n}?key={k}"), t).await;
        let etag = put_part(signed.body["url"].as_str().unwrap(), &data, 5 * MIB, n).await;
        parts.push(json!({ "PartNumber": n, "ETag": etag }));
    }
    let done = api
        .post(
            &format!("/s3/multipart/{u}/complete?key={k}"),
            t,
            &json!({ "parts": parts }),
        )
        .await;
    assert_eq!(
        done.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{:?}",
        done.body
    );
    assert_eq!(
        quota_used(&user).await,
        QUOTA - MIB,
        "its reservation is back"
    );
    assert!(object_bytes(&key).await.is_none(), "the object is deleted");
    let id = key.split('/').nth(2).unwrap();
    let file = api.get(&format!("/v1/files/{id}"), t).await;
    assert_eq!(file.body["upload_status"], "failed");
    let reason = file.body["error_message"].as_str().unwrap_or_default();
    assert!(reason.contains("quota"), "{:?}", file.body);
}

/// Query parameters are checked like JSON fields: Uppy's `metadata[…]`
/// pass, anything else is a 400 naming it (and nothing is written).
#[tokio::test]
async fn unknown_query_parameters_are_refused_and_write_nothing() {
    let api = Client::new();
    let user = api.new_user().await;
    let t = Some(user.access_token.as_str());
    let uppy = api
        .get(
            "/s3/params?filename=a.png&type=image/png&metadata[name]=a.png&metadata[relativePath]=null",
            t,
        )
        .await;
    assert_eq!(uppy.status, StatusCode::OK, "{:?}", uppy.body);
    let before = stack().items_of(&user.id).await;
    for path in [
        "/s3/params?filename=b.png&type=image/png&sizee=10",
        "/v1/files?state=failed",
        "/api/projects/?page=2",
    ] {
        let reply = api.get(path, t).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            reply.body
        );
        let fields = reply.body["error"]["fields"].as_object().cloned();
        assert!(
            fields.is_some_and(|f| f.values().any(|v| v == "is not an accepted field")),
            "{path}: {:?}",
            reply.body
        );
    }
    assert_eq!(stack().items_of(&user.id).await, before);
}
