//! The catalog end to end, as the issue tells it: a project with 3 boxes,
//! reorder, 25 assets seeded through the small-upload route with real
//! PNG/JPEG/MP4 bytes, every filter and their combinations, pagination,
//! favourites, headliners, a share link with its public view and comments,
//! revocation and expiry, and the .docx storyboard. Then bad input and a
//! second user on every route.

use std::collections::{BTreeSet, HashMap};
use std::io::{Cursor, Read};

use assetbox_e2e::{Client, Reply, User, form, media, stack, unsigned};
use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

async fn project(api: &Client, user: &User, name: &str) -> String {
    let reply = api
        .post(
            "/api/projects/",
            Some(&user.access_token),
            &json!({ "name": name }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn new_box(api: &Client, user: &User, project: &str, name: &str) -> String {
    let reply = api
        .post(
            "/api/boxes/",
            Some(&user.access_token),
            &json!({ "project": project, "name": name }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn upload(
    api: &Client,
    user: &User,
    box_id: &str,
    fields: &[(&str, Option<&str>, &[u8])],
) -> Reply {
    let (content_type, body) = form(fields);
    api.send(
        Method::POST,
        &format!("/api/boxes/{box_id}/upload/"),
        Some(&user.access_token),
        Some((&content_type, body)),
    )
    .await
}

async fn download(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.expect("GET presigned URL");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.bytes().await.unwrap().to_vec()
}

/// Every id a list returns, page by page (`limit` small to exercise cursors).
async fn all_ids(api: &Client, user: &User, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/assets/?{query}&limit=4");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = api.get(&path, Some(&user.access_token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        let page = reply.body["results"].as_array().unwrap();
        assert!(page.len() <= 4);
        ids.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match reply.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
    panic!("{query}: the cursor never ended");
}

#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    box_index: usize,
    video: bool,
    favorite: bool,
    prompt: String,
    bytes: Vec<u8>,
    content_type: &'static str,
}

const PROMPTS: [&str; 4] = [
    "A red FOX at dawn",
    "castle in fog",
    "fox cub in snow",
    "neon city street",
];

fn docx_part(docx: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(docx)).expect("a zip archive");
    let mut text = String::new();
    archive
        .by_name(name)
        .expect("part present")
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[tokio::test]
async fn storyboard_from_upload_to_share_and_export() {
    let api = Client::new();
    let user = api.new_user().await;
    let stranger = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Film").await;
    let boxes = [
        new_box(&api, &user, &p, "S1 Opening").await,
        new_box(&api, &user, &p, "S2 Chase").await,
        new_box(&api, &user, &p, "S3 Ending").await,
    ];

    // Reorder: S3, S1, S2.
    let reordered = api
        .post(
            &format!("/api/projects/{p}/boxes/reorder/"),
            token,
            &json!({ "box_ids": [boxes[2], boxes[0], boxes[1]] }),
        )
        .await;
    assert_eq!(reordered.status, StatusCode::OK, "{:?}", reordered.body);
    let listed = api.get(&format!("/api/projects/{p}/boxes/"), token).await;
    let names: Vec<&str> = listed.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["S3 Ending", "S1 Opening", "S2 Chase"]);

    // 25 assets through the small-upload route.
    let mut seeded: Vec<Seeded> = Vec::new();
    for i in 0..25usize {
        let (bytes, content_type, video) = match i % 5 {
            4 => (media::mp4(10 + i as u32, i as u8), "video/mp4", true),
            0 | 2 => (media::png(64 + i as u32, 48, i as u8), "image/png", false),
            _ => (media::jpeg(64, 48 + i as u32, i as u8), "image/jpeg", false),
        };
        let favorite = i % 3 == 0;
        let prompt = format!("{} #{i}", PROMPTS[i % 4]);
        let box_index = i % 3;
        let favorite_text = favorite.to_string();
        // The name says nothing true about the type: the bytes decide.
        let reply = upload(
            &api,
            &user,
            &boxes[box_index],
            &[
                ("file", Some(&format!("take {i}.dat")), &bytes),
                ("prompt_text", None, prompt.as_bytes()),
                ("is_favorite", None, favorite_text.as_bytes()),
                ("ai_model", None, b"flux-pro"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{i}: {:?}", reply.body);
        let a = &reply.body;
        assert_eq!(a["content_type"], content_type);
        assert_eq!(a["asset_type"], if video { "VIDEO" } else { "IMAGE" });
        assert_eq!(a["status"], "PROCESSING");
        assert_eq!(a["source_type"], "UPLOADED");
        assert_eq!(a["size"], bytes.len());
        assert_eq!(a["box"], boxes[box_index].as_str());
        assert_eq!(a["is_favorite"], favorite);
        assert_eq!(a["prompt_text"], prompt.as_str());
        assert_eq!(a["ai_model"], "flux-pro");
        seeded.push(Seeded {
            id: a["id"].as_str().unwrap().to_owned(),
            box_index,
            video,
            favorite,
            prompt,
            bytes,
            content_type,
        });
    }
    // The stored object is exactly what was sent, for each type.
    for s in [&seeded[0], &seeded[1], &seeded[4]] {
        let got = api.get(&format!("/api/assets/{}/", s.id), token).await;
        let bytes = download(got.body["file_url"].as_str().unwrap()).await;
        assert_eq!(bytes, s.bytes, "{}", s.content_type);
    }
    let project_now = api.get(&format!("/api/projects/{p}/"), token).await;
    assert_eq!(project_now.body["boxes_count"], 3);
    for (i, b) in boxes.iter().enumerate() {
        let got = api.get(&format!("/api/boxes/{b}/"), token).await;
        let expected = seeded.iter().filter(|s| s.box_index == i).count();
        assert_eq!(got.body["assets_count"], expected, "box {i}");
    }

    // Favourite toggle: a non-favourite becomes one, once per call.
    let flipped = seeded.iter().position(|s| !s.favorite).unwrap();
    let toggled = api
        .post(
            &format!("/api/assets/{}/favorite/", seeded[flipped].id),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(toggled.status, StatusCode::OK, "{:?}", toggled.body);
    assert_eq!(toggled.body["is_favorite"], true);
    // An explicit value is set, not toggled: repeating it changes nothing.
    let favorite_path = format!("/api/assets/{}/favorite/", seeded[flipped].id);
    for _ in 0..2 {
        let set = api
            .post(&favorite_path, token, &json!({ "is_favorite": true }))
            .await;
        assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
        assert_eq!(set.body["is_favorite"], true);
    }
    // A body that is not that is refused, never ignored.
    for bad in [json!({ "favorite": false }), json!({ "is_favorite": "no" })] {
        let refused = api.post(&favorite_path, token, &bad).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            refused.body
        );
    }
    let text = api
        .send(
            reqwest::Method::POST,
            &favorite_path,
            token,
            Some(("text/plain", b"true".to_vec())),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let now = api
        .get(&format!("/api/assets/{}/", seeded[flipped].id), token)
        .await;
    assert_eq!(
        now.body["is_favorite"], true,
        "refused bodies changed nothing"
    );
    seeded[flipped].favorite = true;

    // Unknown query parameters are refused like unknown JSON fields (a
    // misspelt filter would otherwise list everything).
    for query in [
        "favorite=1",
        "is_favorite=true&sort=name",
        "project={p}&boxes=1",
    ] {
        let query = query.replace("{p}", &p);
        let reply = api.get(&format!("/api/assets/?{query}"), token).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            reply.body
        );
        assert!(
            reply.body["error"]["fields"]
                .as_object()
                .is_some_and(|f| f.values().any(|v| v == "is not an accepted field")),
            "{query}: {:?}",
            reply.body
        );
    }

    // Every filter, alone and combined, paged four at a time.
    type Check = (String, Box<dyn Fn(&Seeded) -> bool>);
    let b = |i: usize| boxes[i].clone();
    let checks: Vec<Check> = vec![
        (format!("project={p}"), Box::new(|_| true)),
        (format!("box={}", b(0)), Box::new(|s| s.box_index == 0)),
        (
            format!("project={p}&asset_type=VIDEO"),
            Box::new(|s| s.video),
        ),
        (
            format!("project={p}&asset_type=image"),
            Box::new(|s| !s.video),
        ),
        (
            format!("project={p}&is_favorite=true"),
            Box::new(|s| s.favorite),
        ),
        (
            format!("project={p}&is_favorite=false"),
            Box::new(|s| !s.favorite),
        ),
        (format!("project={p}&status=PROCESSING"), Box::new(|_| true)),
        (format!("project={p}&status=COMPLETED"), Box::new(|_| false)),
        (
            format!("project={p}&search=FOX"),
            Box::new(|s| s.prompt.to_lowercase().contains("fox")),
        ),
        (
            format!("project={p}&asset_type=IMAGE&is_favorite=true"),
            Box::new(|s| !s.video && s.favorite),
        ),
        (
            format!("box={}&search=fox", b(1)),
            Box::new(|s| s.box_index == 1 && s.prompt.to_lowercase().contains("fox")),
        ),
        (
            format!("box={}&asset_type=VIDEO&is_favorite=false", b(2)),
            Box::new(|s| s.box_index == 2 && s.video && !s.favorite),
        ),
        (
            format!("project={p}&search=castle&status=PROCESSING&asset_type=IMAGE"),
            Box::new(|s| s.prompt.contains("castle") && !s.video),
        ),
        (
            format!("box={}&project={p}&is_favorite=true&search=%23", b(0)),
            Box::new(|s| s.box_index == 0 && s.favorite),
        ),
        ("asset_type=VIDEO".to_owned(), Box::new(|s| s.video)),
    ];
    for (query, keep) in &checks {
        let ids = all_ids(&api, &user, query).await;
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{query}: duplicates across pages");
        let mut newest_first = ids.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids, newest_first, "{query}: newest first");
        let expected: BTreeSet<&String> =
            seeded.iter().filter(|s| keep(s)).map(|s| &s.id).collect();
        assert_eq!(unique, expected, "{query}");
    }

    // Headliners: S1 a PNG, S2 a JPEG, S3 none. Foreign assets are refused.
    let headliner_of = |i: usize, ct: &str| {
        seeded
            .iter()
            .find(|s| s.box_index == i && s.content_type == ct)
            .unwrap()
            .clone()
    };
    let h0 = headliner_of(0, "image/png");
    let h1 = headliner_of(1, "image/jpeg");
    for (i, h) in [(0, &h0), (1, &h1)] {
        let set = api
            .patch(
                &format!("/api/boxes/{}/", boxes[i]),
                token,
                &json!({ "headliner_asset": h.id }),
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
        assert_eq!(set.body["headliner_asset"], h.id.as_str());
    }
    let other_box = api
        .patch(
            &format!("/api/boxes/{}/", boxes[2]),
            token,
            &json!({ "headliner_asset": h0.id }),
        )
        .await;
    assert_eq!(
        other_box.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        other_box.body
    );
    let sp = project(&api, &stranger, "Theirs").await;
    let sb = new_box(&api, &stranger, &sp, "Theirs").await;
    let theirs = upload(
        &api,
        &stranger,
        &sb,
        &[("file", Some("x.png"), &media::png(8, 8, 1))],
    )
    .await;
    let foreign = api
        .patch(
            &format!("/api/boxes/{}/", boxes[2]),
            token,
            &json!({ "headliner_asset": theirs.body["id"] }),
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        foreign.body
    );
    let s3 = api.get(&format!("/api/boxes/{}/", boxes[2]), token).await;
    assert_eq!(s3.body["headliner_asset"], Value::Null);

    // Share link → public view: boxes in order, headliners and favourites only.
    let link = api
        .post(
            &format!("/api/projects/{p}/share-links/"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{:?}", link.body);
    let share_token = link.body["token"].as_str().unwrap().to_owned();
    assert!(link.body["url"].as_str().unwrap().contains(&share_token));
    let expires = time::OffsetDateTime::parse(
        link.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_hours();
    assert!(
        (7 * 24 - 1..=7 * 24).contains(&days),
        "default 7 days, got {days} h"
    );

    let public = api.get(&format!("/api/shared/{share_token}/"), None).await;
    assert_eq!(public.status, StatusCode::OK, "{:?}", public.body);
    assert_eq!(public.body["name"], "Film");
    let shared_boxes = public.body["boxes"].as_array().unwrap();
    let order: Vec<&str> = shared_boxes
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["S3 Ending", "S1 Opening", "S2 Chase"]);
    let expected_headliner: HashMap<&str, Option<&str>> = HashMap::from([
        (boxes[0].as_str(), Some(h0.id.as_str())),
        (boxes[1].as_str(), Some(h1.id.as_str())),
        (boxes[2].as_str(), None),
    ]);
    let mut shown: BTreeSet<String> = BTreeSet::new();
    for (position, sb) in shared_boxes.iter().enumerate() {
        assert_eq!(sb["order_index"], position);
        let id = sb["id"].as_str().unwrap();
        let box_index = boxes.iter().position(|b| b == id).unwrap();
        assert_eq!(sb["headliner"]["id"].as_str(), expected_headliner[id]);
        let favourites: BTreeSet<&str> = sb["favorites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        let expected: BTreeSet<&str> = seeded
            .iter()
            .filter(|s| s.box_index == box_index && s.favorite)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(favourites, expected, "favourites of box {box_index}");
        shown.extend(favourites.iter().map(|s| s.to_string()));
        shown.extend(expected_headliner[id].map(str::to_owned));
    }
    assert_eq!(public.body["boxes_count"], 3);
    assert_eq!(public.body["next_cursor"], Value::Null, "one page of 3");
    // Paged: the same boxes, in order, two at a time; a cursor is this
    // view's only, and a page is at most 50 boxes.
    let first = api
        .get(&format!("/api/shared/{share_token}/?limit=2"), None)
        .await;
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = api
        .get(
            &format!("/api/shared/{share_token}/?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second.body["next_cursor"], Value::Null);
    let paged: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|p| p.body["boxes"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        unsigned(&Value::Array(paged)),
        unsigned(&Value::Array(shared_boxes.clone())),
        "pages add up to the whole view"
    );
    for bad in ["limit=51", "limit=0", "cursor=bm90LWEtY3Vyc29y", "page=2"] {
        let refused = api
            .get(&format!("/api/shared/{share_token}/?{bad}"), None)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            refused.body
        );
    }
    let text = public.body.to_string();
    for s in &seeded {
        assert_eq!(
            text.contains(&s.id),
            shown.contains(&s.id),
            "asset {}",
            s.id
        );
    }
    // Object keys (`uploads/<owner>/…`) sit inside the presigned URLs; the
    // rest of the view names nothing of the owner's.
    let mut without_urls = public.body.clone();
    fn drop_urls(asset: &mut Value) {
        if let Some(a) = asset.as_object_mut() {
            a.remove("file_url");
            a.remove("thumbnail_url");
        }
    }
    for sb in without_urls["boxes"].as_array_mut().unwrap() {
        drop_urls(&mut sb["headliner"]);
        sb["favorites"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(drop_urls);
    }
    assert!(
        !without_urls.to_string().contains(&user.id),
        "the owner's id is not shown"
    );
    let headliner_url = shared_boxes[1]["headliner"]["file_url"].as_str().unwrap();
    assert_eq!(download(headliner_url).await, h0.bytes);

    // A comment, which the owner reads and marks.
    let comment = api
        .post(
            &format!("/api/shared/{share_token}/boxes/{}/comments/", boxes[0]),
            None,
            &json!({ "author_name": "Dana", "text": "Love the fox.\nMore dusk?" }),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED, "{:?}", comment.body);
    let comment_id = comment.body["id"].as_str().unwrap().to_owned();
    let unread = api
        .get(
            &format!("/api/boxes/{}/comments/?is_read=false", boxes[0]),
            token,
        )
        .await;
    assert_eq!(unread.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(unread.body["results"][0]["author_name"], "Dana");
    assert_eq!(
        unread.body["results"][0]["text"],
        "Love the fox.\nMore dusk?"
    );
    let marked = api
        .patch(
            &format!("/api/comments/{comment_id}/"),
            token,
            &json!({ "is_read": true }),
        )
        .await;
    assert_eq!(marked.status, StatusCode::OK, "{:?}", marked.body);
    assert_eq!(marked.body["is_read"], true);
    let unread = api
        .get(
            &format!("/api/boxes/{}/comments/?is_read=false", boxes[0]),
            token,
        )
        .await;
    assert_eq!(unread.body["results"], json!([]));
    let read = api
        .get(
            &format!("/api/boxes/{}/comments/?is_read=true", boxes[0]),
            token,
        )
        .await;
    assert_eq!(read.body["results"][0]["id"], comment_id.as_str());

    // The owner's list; revoking makes the token a 404 like an unknown one.
    let links = api
        .get(&format!("/api/projects/{p}/share-links/"), token)
        .await;
    assert_eq!(links.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(links.body["results"][0]["active"], true);
    assert!(
        !links.body.to_string().contains(&share_token),
        "the token is shown once"
    );
    let link_id = link.body["id"].as_str().unwrap();
    let unknown = api
        .get(
            &format!("/api/shared/{}/", assetbox_shared::sharing::new_token()),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let revoked = api
        .delete(&format!("/api/projects/{p}/share-links/{link_id}/"), token)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let gone = api.get(&format!("/api/shared/{share_token}/"), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body, unknown.body, "revoked and unknown look alike");
    let late = api
        .post(
            &format!("/api/shared/{share_token}/boxes/{}/comments/", boxes[0]),
            None,
            &json!({ "author_name": "Dana", "text": "still there?" }),
        )
        .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND);

    // An expired link (its expiry moved into the past) is a 404 as well.
    let second = api
        .post(
            &format!("/api/projects/{p}/share-links/"),
            token,
            &json!({ "expires_in_days": 1 }),
        )
        .await;
    let second_token = second.body["token"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/api/shared/{second_token}"), None)
            .await
            .status,
        StatusCode::OK
    );
    let hash = hex_sha256(second_token);
    stack()
        .dynamodb()
        .await
        .update_item()
        .table_name(&stack().table)
        .key("pk", AttributeValue::S(format!("SHARE#{hash}")))
        .key("sk", AttributeValue::S("LINK".into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", AttributeValue::S("2020-01-01T00:00:00Z".into()))
        .send()
        .await
        .unwrap();
    let expired = api.get(&format!("/api/shared/{second_token}/"), None).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    assert_eq!(expired.body, unknown.body);

    // The storyboard: a row per box in order, pictures for the two image
    // headliners, a note for the box without one.
    let export = api
        .get(&format!("/api/projects/{p}/export/?format=docx"), token)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{:?}", export.body);
    assert_eq!(export.body["boxes"], 3);
    assert!(
        export.body["file_name"]
            .as_str()
            .unwrap()
            .ends_with(".docx")
    );
    let docx = download(export.body["url"].as_str().unwrap()).await;
    assert_eq!(docx.len() as u64, export.body["size"].as_u64().unwrap());
    let document = docx_part(&docx, "word/document.xml");
    let rows = document.matches("<w:tr>").count() + document.matches("<w:tr ").count();
    assert_eq!(rows, 4, "a header and one row per box");
    let at = |needle: &str| {
        document
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    assert!(at("S3 Ending") < at("S1 Opening") && at("S1 Opening") < at("S2 Chase"));
    assert!(document.contains(&h0.prompt) && document.contains(&h1.prompt));
    assert!(document.contains("no headliner"));
    assert_eq!(
        document.matches("<a:blip ").count(),
        2,
        "two embedded pictures"
    );
    let mut archive = zip::ZipArchive::new(Cursor::new(&docx)).unwrap();
    let media: Vec<String> = archive
        .file_names()
        .filter(|n| n.starts_with("word/media/") && !n.ends_with('/'))
        .map(str::to_owned)
        .collect();
    assert_eq!(media.len(), 2, "{media:?}");
    for name in media {
        let mut bytes = Vec::new();
        archive
            .by_name(&name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let picture = image::load_from_memory(&bytes).expect("an image a reader can decode");
        assert!(picture.width() > 0 && picture.height() > 0);
    }
    let pdf = api
        .get(&format!("/api/projects/{p}/export/?format=pdf"), token)
        .await;
    assert_eq!(pdf.status, StatusCode::BAD_REQUEST);
    assert!(pdf.field_error("format").is_some());
}

fn hex_sha256(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn small_uploads_refuse_bad_input_and_change_nothing() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Strict").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let before = stack().items_of(&user.id).await;
    let png = media::png(16, 16, 3);

    // A Windows executable renamed .png: its bytes say what it is.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.extend(std::iter::repeat_n(0u8, 64));
    exe[0x3c] = 0x40;
    exe.extend_from_slice(b"PE\x00\x00");
    let refused = upload(&api, &user, &b, &[("file", Some("cat.png"), &exe)]).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert!(refused.field_error("file").is_some());
    let text = upload(
        &api,
        &user,
        &b,
        &[("file", Some("notes.png"), b"just some text")],
    )
    .await;
    assert_eq!(
        text.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        text.body
    );

    type Fields<'a> = Vec<(&'a str, Option<&'a str>, Vec<u8>)>;
    let cases: Vec<(&str, Fields, StatusCode, &str)> = vec![
        (
            "no file",
            vec![("prompt_text", None, b"x".to_vec())],
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            "empty file",
            vec![("file", Some("a.png"), vec![])],
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            "unknown field",
            vec![
                ("file", Some("a.png"), png.clone()),
                ("owner", None, b"me".to_vec()),
            ],
            StatusCode::BAD_REQUEST,
            "owner",
        ),
        (
            "two files",
            vec![
                ("file", Some("a.png"), png.clone()),
                ("file", Some("b.png"), png.clone()),
            ],
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            "long prompt",
            vec![
                ("file", Some("a.png"), png.clone()),
                ("prompt_text", None, "p".repeat(4001).into_bytes()),
            ],
            StatusCode::BAD_REQUEST,
            "prompt_text",
        ),
        (
            "bad flag",
            vec![
                ("file", Some("a.png"), png.clone()),
                ("is_favorite", None, b"maybe".to_vec()),
            ],
            StatusCode::BAD_REQUEST,
            "is_favorite",
        ),
        (
            "long model",
            vec![
                ("file", Some("a.png"), png.clone()),
                ("ai_model", None, "m".repeat(101).into_bytes()),
            ],
            StatusCode::BAD_REQUEST,
            "ai_model",
        ),
    ];
    for (what, fields, status, field) in cases {
        let fields: Vec<(&str, Option<&str>, &[u8])> = fields
            .iter()
            .map(|(n, f, b)| (*n, *f, b.as_slice()))
            .collect();
        let reply = upload(&api, &user, &b, &fields).await;
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert!(
            reply.field_error(field).is_some(),
            "{what}: {:?}",
            reply.body
        );
    }

    // Above the cap (4 MiB) but within what Lambda accepts: our 413, which
    // names where large files go.
    let mut big = media::png(8, 8, 1);
    big.resize(4 * 1024 * 1024 + 10, 0);
    let too_big = upload(&api, &user, &b, &[("file", Some("big.png"), &big)]).await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{:?}",
        too_big.body
    );
    let message = too_big.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/v1/files/uploads") && message.contains("/s3/multipart"),
        "{message}"
    );

    // Not a form at all.
    let json_body = api
        .send(
            Method::POST,
            &format!("/api/boxes/{b}/upload/"),
            token,
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(stack().items_of(&user.id).await, before, "nothing written");
    assert!(
        stack().objects_of(&user.id).await.is_empty(),
        "no object left"
    );

    // And a good one still lands.
    let ok = upload(&api, &user, &b, &[("file", None, &png)]).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    assert_eq!(ok.body["content_type"], "image/png");
    assert!(ok.body["file_url"].as_str().unwrap().contains(".png"));
    assert_eq!(stack().objects_of(&user.id).await.len(), 1);
    // Deleting it gives the quota back and removes the object.
    let id = ok.body["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/assets/{id}/"), token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(stack().objects_of(&user.id).await.is_empty());
    assert_eq!(stack().quota_used(&user.id).await, "0");
}

#[tokio::test]
async fn sharing_refuses_bad_input_and_caps_comments() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Shared").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let other_project = project(&api, &user, "Other").await;
    let outside = new_box(&api, &user, &other_project, "Elsewhere").await;

    for body in [
        json!({ "expires_in_days": 0 }),
        json!({ "expires_in_days": 31 }),
        json!({ "expires_in_days": -1 }),
        json!({ "expires_in_days": "7" }),
        json!({ "expires_in_days": 7, "token": "mine" }),
    ] {
        let reply = api
            .post(&format!("/api/projects/{p}/share-links/"), token, &body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
    }
    let links = api
        .get(&format!("/api/projects/{p}/share-links/"), token)
        .await;
    assert_eq!(links.body["results"], json!([]), "no link was made");

    let link = api
        .post(
            &format!("/api/projects/{p}/share-links/"),
            token,
            &json!({ "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED);
    let share = link.body["token"].as_str().unwrap();
    let comments = format!("/api/shared/{share}/boxes/{b}/comments/");
    for (body, field) in [
        (json!({ "author_name": "", "text": "hi" }), "author_name"),
        (
            json!({ "author_name": "a".repeat(81), "text": "hi" }),
            "author_name",
        ),
        (json!({ "author_name": "Dana", "text": "   " }), "text"),
        (
            json!({ "author_name": "Dana", "text": "t".repeat(2001) }),
            "text",
        ),
        (
            json!({ "author_name": "Dana", "text": "bell\u{7}" }),
            "text",
        ),
        (json!({ "author_name": "Dana", "text": 5 }), "text"),
        (
            json!({ "author_name": "Dana", "text": "hi", "is_read": true }),
            "is_read",
        ),
    ] {
        let reply = api.post(&comments, None, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert!(
            reply.field_error(field).is_some(),
            "{body}: {:?}",
            reply.body
        );
    }
    // A box of another project, even the owner's, is not reachable by this link.
    let wrong_box = api
        .post(
            &format!("/api/shared/{share}/boxes/{outside}/comments/"),
            None,
            &json!({ "author_name": "Dana", "text": "hi" }),
        )
        .await;
    assert_eq!(wrong_box.status, StatusCode::NOT_FOUND);
    let listed = api.get(&format!("/api/boxes/{b}/comments/"), token).await;
    assert_eq!(listed.body["results"], json!([]), "bad input wrote nothing");
    let bad_filter = api
        .get(&format!("/api/boxes/{b}/comments/?is_read=maybe"), token)
        .await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);

    // The hourly cap (30 in the template): the 31st comment is a 429.
    let hour = |t: time::OffsetDateTime| t.unix_timestamp() / 3600;
    let started = hour(time::OffsetDateTime::now_utc());
    let mut statuses = Vec::new();
    for i in 0..31 {
        let reply = api
            .post(
                &comments,
                None,
                &json!({ "author_name": "Bot", "text": format!("spam {i}") }),
            )
            .await;
        statuses.push(reply.status);
    }
    if hour(time::OffsetDateTime::now_utc()) == started {
        assert!(
            statuses[..30].iter().all(|s| *s == StatusCode::CREATED),
            "{statuses:?}"
        );
        assert_eq!(statuses[30], StatusCode::TOO_MANY_REQUESTS);
        let listed = api
            .get(&format!("/api/boxes/{b}/comments/?limit=200"), token)
            .await;
        assert_eq!(listed.body["results"].as_array().unwrap().len(), 30);
    }
}

#[tokio::test]
async fn another_user_sees_none_of_it_and_changes_nothing() {
    let api = Client::new();
    let owner = api.new_user().await;
    let other = api.new_user().await;
    let token = Some(owner.access_token.as_str());
    let t = Some(other.access_token.as_str());
    let p = project(&api, &owner, "Private").await;
    let b = new_box(&api, &owner, &p, "Shot").await;
    let png = media::png(16, 16, 9);
    let asset = upload(&api, &owner, &b, &[("file", Some("a.png"), &png)]).await;
    let a = asset.body["id"].as_str().unwrap().to_owned();
    let link = api
        .post(
            &format!("/api/projects/{p}/share-links/"),
            token,
            &json!({}),
        )
        .await;
    let link_id = link.body["id"].as_str().unwrap().to_owned();
    let share = link.body["token"].as_str().unwrap().to_owned();
    let comment = api
        .post(
            &format!("/api/shared/{share}/boxes/{b}/comments/"),
            None,
            &json!({ "author_name": "Dana", "text": "nice" }),
        )
        .await;
    let c = comment.body["id"].as_str().unwrap().to_owned();
    let before = stack().items_of(&owner.id).await;
    let objects = stack().objects_of(&owner.id).await;

    let (form_type, form_body) = form(&[("file", Some("b.png"), &png)]);
    type Body = Option<(String, Vec<u8>)>;
    let attempts: Vec<(Method, String, Body)> = vec![
        (Method::GET, format!("/api/projects/{p}/"), None),
        (Method::GET, format!("/api/projects/{p}/boxes/"), None),
        (Method::GET, format!("/api/boxes/?project={p}"), None),
        (Method::GET, format!("/api/boxes/{b}/"), None),
        (
            Method::PATCH,
            format!("/api/boxes/{b}/"),
            Some(("application/json".into(), br#"{"name":"mine"}"#.to_vec())),
        ),
        (Method::DELETE, format!("/api/boxes/{b}/"), None),
        (Method::GET, format!("/api/boxes/{b}/assets/"), None),
        (
            Method::POST,
            format!("/api/projects/{p}/boxes/reorder/"),
            Some((
                "application/json".into(),
                format!(r#"{{"box_ids":["{b}"]}}"#).into_bytes(),
            )),
        ),
        (Method::GET, format!("/api/assets/?box={b}"), None),
        (Method::GET, format!("/api/assets/?project={p}"), None),
        (Method::GET, format!("/api/assets/{a}/"), None),
        (
            Method::PATCH,
            format!("/api/assets/{a}/"),
            Some((
                "application/json".into(),
                br#"{"is_favorite":true}"#.to_vec(),
            )),
        ),
        (Method::POST, format!("/api/assets/{a}/favorite/"), None),
        (Method::DELETE, format!("/api/assets/{a}/"), None),
        (
            Method::POST,
            format!("/api/boxes/{b}/upload/"),
            Some((form_type.clone(), form_body.clone())),
        ),
        (
            Method::POST,
            format!("/api/boxes/{b}/import/"),
            Some((
                "application/json".into(),
                br#"{"url":"https://example.com/a.png"}"#.to_vec(),
            )),
        ),
        (
            Method::POST,
            format!("/api/projects/{p}/share-links/"),
            Some(("application/json".into(), b"{}".to_vec())),
        ),
        (Method::GET, format!("/api/projects/{p}/share-links/"), None),
        (
            Method::DELETE,
            format!("/api/projects/{p}/share-links/{link_id}/"),
            None,
        ),
        (Method::GET, format!("/api/boxes/{b}/comments/"), None),
        (
            Method::PATCH,
            format!("/api/comments/{c}/"),
            Some(("application/json".into(), br#"{"is_read":true}"#.to_vec())),
        ),
        (
            Method::GET,
            format!("/api/projects/{p}/export/?format=docx"),
            None,
        ),
        (Method::DELETE, format!("/api/projects/{p}/"), None),
    ];
    for (method, path, body) in attempts {
        let reply = api
            .send(
                method.clone(),
                &path,
                t,
                body.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            reply.body
        );
    }
    // Lists scoped to the other user hold nothing of the owner's.
    let mine = api.get("/api/assets/", t).await;
    assert_eq!(mine.body["results"], json!([]));

    assert_eq!(stack().items_of(&owner.id).await, before, "nothing changed");
    assert_eq!(stack().objects_of(&owner.id).await, objects);
    assert!(stack().objects_of(&other.id).await.is_empty());
    // The link still works: the attempt to revoke it changed nothing.
    assert_eq!(
        api.get(&format!("/api/shared/{share}/"), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrent_small_uploads_keep_the_count_and_quota_right() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Busy").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let files: Vec<Vec<u8>> = (0..8u8).map(|i| media::png(20 + i as u32, 20, i)).collect();
    let replies = futures::future::join_all(files.iter().map(|bytes| {
        let (api, user, b) = (&api, &user, &b);
        async move { upload(api, user, b, &[("file", Some("f.png"), bytes)]).await }
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    let got = api.get(&format!("/api/boxes/{b}/"), token).await;
    assert_eq!(got.body["assets_count"], 8);
    let total: usize = files.iter().map(Vec::len).sum();
    assert_eq!(stack().quota_used(&user.id).await, total.to_string());
    // Deleting the box gives every byte back and removes every object.
    assert_eq!(
        api.delete(&format!("/api/boxes/{b}/"), token).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(stack().objects_of(&user.id).await.is_empty());
    assert_eq!(stack().quota_used(&user.id).await, "0");
}

/// A loopback server with the files imports fetch.
async fn media_server(big: Vec<u8>, small: Vec<u8>) -> String {
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/out/frame.png",
            get({
                let small = small.clone();
                move || async move { small.clone() }
            }),
        )
        .route(
            "/out/slow.png",
            get(move || async move {
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                small.clone()
            }),
        )
        .route("/out/big.png", get(move || async move { big.clone() }))
        .route(
            "/out/notes.txt",
            get(|| async { "meeting notes, not a picture" }),
        )
        .route(
            "/out/moved",
            get(|| async { Redirect::temporary("/out/frame.png") }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "gone").into_response() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    base
}

/// Polls an asset until it leaves `PENDING`.
async fn settled(api: &Client, user: &User, id: &str) -> Value {
    for _ in 0..200 {
        let got = api
            .get(&format!("/api/assets/{id}/"), Some(&user.access_token))
            .await;
        assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
        if got.body["status"] != "PENDING" {
            return got.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("asset {id} stayed PENDING");
}

#[tokio::test]
async fn imports_fetch_server_side_and_fail_with_a_reason() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Imports").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let small = media::png(40, 30, 5);
    // Larger than one 8 MiB part: streamed as a multipart upload.
    let mut big = media::png(64, 64, 6);
    big.extend(assetbox_e2e::test_bytes(9 * 1024 * 1024, 6));
    let base = media_server(big.clone(), small.clone()).await;
    let import = |url: String| {
        let api = &api;
        let b = &b;
        async move {
            api.post(
                &format!("/api/boxes/{b}/import/"),
                token,
                &json!({ "url": url, "prompt_text": "from the provider" }),
            )
            .await
        }
    };

    let accepted = import(format!("{base}/out/frame.png")).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(accepted.body["status"], "PENDING");
    assert_eq!(accepted.body["file_url"], Value::Null);
    let id = accepted.body["id"].as_str().unwrap().to_owned();
    let done = settled(&api, &user, &id).await;
    assert_eq!(done["status"], "PROCESSING", "{done}");
    assert_eq!(done["content_type"], "image/png");
    assert_eq!(done["size"], small.len());
    assert_eq!(done["prompt_text"], "from the provider");
    assert_eq!(done["asset_type"], "IMAGE");
    let file_url = done["file_url"].as_str().unwrap();
    assert!(
        file_url.contains("frame.png"),
        "named after the URL: {file_url}"
    );
    assert_eq!(download(done["file_url"].as_str().unwrap()).await, small);

    let big_import = import(format!("{base}/out/big.png")).await;
    let big_done = settled(&api, &user, big_import.body["id"].as_str().unwrap()).await;
    assert_eq!(big_done["status"], "PROCESSING", "{big_done}");
    assert_eq!(big_done["size"], big.len());
    assert_eq!(download(big_done["file_url"].as_str().unwrap()).await, big);

    // Edits made while the fetch runs survive its finish.
    let slow = import(format!("{base}/out/slow.png")).await;
    let slow_id = slow.body["id"].as_str().unwrap().to_owned();
    let favourite = api
        .post(
            &format!("/api/assets/{slow_id}/favorite/"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(favourite.body["is_favorite"], true, "{:?}", favourite.body);
    let slow_done = settled(&api, &user, &slow_id).await;
    assert_eq!(slow_done["status"], "PROCESSING", "{slow_done}");
    assert_eq!(slow_done["is_favorite"], true, "the edit survived");

    let moved = import(format!("{base}/out/moved")).await;
    let moved_done = settled(&api, &user, moved.body["id"].as_str().unwrap()).await;
    assert_eq!(moved_done["status"], "PROCESSING", "redirects are followed");

    for (path, reason) in [
        ("/out/notes.txt", "not a recognised image or video"),
        ("/out/nothing-here.png", "404"),
    ] {
        let reply = import(format!("{base}{path}")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        let failed = settled(&api, &user, reply.body["id"].as_str().unwrap()).await;
        assert_eq!(failed["status"], "FAILED", "{failed}");
        let message = failed["error_message"].as_str().unwrap();
        assert!(message.contains(reason), "{path}: {message}");
        assert_eq!(failed["file_url"], Value::Null);
    }
    let counted = api.get(&format!("/api/boxes/{b}/"), token).await;
    assert_eq!(counted.body["assets_count"], 6);
    let used = (small.len() * 3 + big.len()).to_string();
    assert_eq!(stack().quota_used(&user.id).await, used);
    assert_eq!(
        stack().objects_of(&user.id).await.len(),
        4,
        "failed imports store nothing"
    );

    // The same request delivered again changes nothing.
    let before = stack().items_of(&user.id).await;
    let queue = stack().physical_ids["ImportQueue"].clone();
    stack()
        .sqs()
        .await
        .send_message()
        .queue_url(queue)
        .message_body(
            json!({ "owner": user.id, "asset_id": id, "url": format!("{base}/out/big.png") })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        stack().items_of(&user.id).await,
        before,
        "a duplicate changes nothing"
    );
    assert_eq!(download(done["file_url"].as_str().unwrap()).await, small);

    // Bad input: a 400 naming the field, and nothing recorded.
    for body in [
        json!({}),
        json!({ "url": "not a url" }),
        json!({ "url": "ftp://example.com/a.png" }),
        json!({ "url": "file:///etc/passwd" }),
        json!({ "url": format!("https://example.com/{}", "a".repeat(2048)) }),
        json!({ "url": "https://user:secret@example.com/a.png" }),
        json!({ "url": "https://example.com/a.png", "prompt_text": "p".repeat(4001) }),
        json!({ "url": "https://example.com/a.png", "box": b }),
        json!({ "url": 5 }),
    ] {
        let reply = api
            .post(&format!("/api/boxes/{b}/import/"), token, &body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
    }
    assert_eq!(stack().items_of(&user.id).await, before, "nothing recorded");
}

/// An import fetches no more than the quota has room for: a declared
/// length beyond it fails before the body is read, and a body without one
/// is cut off once past it (both servers here would otherwise send for
/// ever). A fetch that will be retried says why while it waits.
#[tokio::test]
async fn imports_stop_at_the_quota_and_say_why_they_are_retried() {
    use futures::StreamExt;
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Imports").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let png = media::png(16, 16, 3);
    let endless = move |declared: Option<u64>| {
        let head = bytes::Bytes::from(png.clone());
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(
            futures::stream::repeat_with(|| Ok(bytes::Bytes::from(vec![0u8; 64 * 1024]))).then(
                |chunk| async move {
                    // Paced, so an unbounded fetch would run for minutes.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    chunk
                },
            ),
        );
        let mut response = axum::response::Response::new(axum::body::Body::from_stream(body));
        if let Some(n) = declared {
            response
                .headers_mut()
                .insert("content-length", n.to_string().parse().unwrap());
        }
        response
    };
    let app = axum::Router::new()
        .route(
            "/declared.png",
            axum::routing::get({
                let endless = endless.clone();
                move || async move { endless(Some(3 << 30)) }
            }),
        )
        .route(
            "/endless.png",
            axum::routing::get(move || async move { endless(None) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });

    // 1 MiB left of the tests' 100 GiB quota.
    let used = (100u64 << 30) - (1 << 20);
    stack().set_quota_used(&user.id, used).await;
    for path in ["/declared.png", "/endless.png"] {
        let reply = api
            .post(
                &format!("/api/boxes/{b}/import/"),
                token,
                &json!({ "url": format!("{base}{path}") }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        let failed = settled(&api, &user, reply.body["id"].as_str().unwrap()).await;
        assert_eq!(failed["status"], "FAILED", "{path}: {failed}");
        let message = failed["error_message"].as_str().unwrap();
        assert!(message.contains("storage quota"), "{path}: {message}");
    }
    assert!(stack().objects_of(&user.id).await.is_empty());
    assert_eq!(stack().quota_used(&user.id).await, used.to_string());

    // Nothing listens here: the fetch is retried later, and says so now.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let reply = api
        .post(
            &format!("/api/boxes/{b}/import/"),
            token,
            &json!({ "url": format!("http://127.0.0.1:{port}/a.png") }),
        )
        .await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let mut noted = Value::Null;
    for _ in 0..200 {
        noted = api.get(&format!("/api/assets/{id}/"), token).await.body;
        if !noted["error_message"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(noted["status"], "PENDING", "{noted}");
    let message = noted["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("attempt 1 of 3") && message.contains("retried"),
        "{noted}"
    );
}

/// A duplicated import message whose fetch gets another type (so another
/// key) than the one that won leaves no object behind: only the asset's.
#[tokio::test]
async fn a_duplicate_import_of_another_type_leaves_no_object() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user, "Imports").await;
    let b = new_box(&api, &user, &p, "Shot").await;
    let served = Arc::new(AtomicUsize::new(0));
    let (png, jpeg) = (media::png(20, 20, 1), media::jpeg(20, 20, 2));
    let app = axum::Router::new()
        .route(
            "/busy.png",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
                media::png(8, 8, 3)
            }),
        )
        .route(
            "/flip",
            axum::routing::get({
                let served = served.clone();
                move || async move {
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    // Slow, so both deliveries fetch before either finishes.
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                    if n.is_multiple_of(2) {
                        png.clone()
                    } else {
                        jpeg.clone()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/flip");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });

    // Another import in flight beside the two deliveries (the local event
    // source, like Lambda's, runs several batches at once).
    let busy = api
        .post(
            &format!("/api/boxes/{b}/import/"),
            token,
            &json!({ "url": format!("{base}/busy.png") }),
        )
        .await;
    assert_eq!(busy.status, StatusCode::ACCEPTED, "{:?}", busy.body);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let reply = api
        .post(
            &format!("/api/boxes/{b}/import/"),
            token,
            &json!({ "url": url }),
        )
        .await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    stack()
        .sqs()
        .await
        .send_message()
        .queue_url(stack().physical_ids["ImportQueue"].clone())
        .message_body(json!({ "owner": user.id, "asset_id": id, "url": url }).to_string())
        .send()
        .await
        .unwrap();
    let done = settled(&api, &user, &id).await;
    assert_eq!(done["status"], "PROCESSING", "{done}");
    // Both deliveries fetched; wait for the loser to clean up after itself
    // (its object is stored before it learns it lost) and the busy import.
    let mut objects = Vec::new();
    for _ in 0..100 {
        objects = stack().objects_of(&user.id).await;
        let of_asset = objects.iter().filter(|k| k.contains(&id)).count();
        if served.load(Ordering::SeqCst) == 2 && objects.len() == 2 && of_asset == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(served.load(Ordering::SeqCst), 2, "both deliveries fetched");
    // The busy import's object and the winner's, nothing else.
    let theirs: Vec<&String> = objects.iter().filter(|k| k.contains(&id)).collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert_eq!(theirs.len(), 1, "only the asset's object: {objects:?}");
    let extension = if done["content_type"] == "image/png" {
        "png"
    } else {
        "jpg"
    };
    assert!(theirs[0].ends_with(extension), "{objects:?} for {done}");
}
