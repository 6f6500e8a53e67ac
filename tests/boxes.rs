//! Boxes end to end: create in order and at a position, move, reorder
//! atomically, headliner rules, delete with its assets, ownership, bad input.

use assetbox_e2e::{Client, Reply, User, stack, test_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn project(api: &Client, user: &User) -> String {
    let reply = api
        .post(
            "/api/projects/",
            Some(&user.access_token),
            &json!({ "name": "Film" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn new_box(api: &Client, user: &User, project: &str, name: &str) -> Reply {
    api.post(
        "/api/boxes/",
        Some(&user.access_token),
        &json!({ "project": project, "name": name }),
    )
    .await
}

/// Names of the project's boxes in order, and their order_index values.
async fn order(api: &Client, user: &User, project: &str) -> Vec<(String, u64)> {
    let reply = api
        .get(
            &format!("/api/projects/{project}/boxes/"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["order_index"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn names(list: &[(String, u64)]) -> Vec<&str> {
    list.iter().map(|(n, _)| n.as_str()).collect()
}

fn dense(list: &[(String, u64)]) -> bool {
    list.iter()
        .enumerate()
        .all(|(i, (_, idx))| *idx == i as u64)
}

#[tokio::test]
async fn boxes_keep_a_dense_order_through_every_change() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user).await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let b = new_box(&api, &user, &p, name).await;
        assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
        assert_eq!(b.body["project"], p.as_str());
        assert_eq!(b.body["project_name"], "Film");
        ids.push(b.body["id"].as_str().unwrap().to_owned());
    }
    // Insert at a position.
    let x = api
        .post(
            "/api/boxes",
            token,
            &json!({ "project": p, "name": "X", "order_index": 1 }),
        )
        .await;
    assert_eq!(x.status, StatusCode::CREATED, "{:?}", x.body);
    assert_eq!(x.body["order_index"], 1);
    let now = order(&api, &user, &p).await;
    assert_eq!(names(&now), ["A", "X", "B", "C"]);
    assert!(dense(&now));
    let project_view = api.get(&format!("/api/projects/{p}"), token).await;
    assert_eq!(project_view.body["boxes_count"], 4);

    // Move one by PATCH.
    let moved = api
        .patch(
            &format!("/api/boxes/{}/", ids[2]),
            token,
            &json!({ "order_index": 0, "name": "C2" }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["order_index"], 0);
    assert_eq!(moved.body["name"], "C2");
    assert_eq!(names(&order(&api, &user, &p).await), ["C2", "A", "X", "B"]);

    // Reorder everything at once.
    let x_id = x.body["id"].as_str().unwrap().to_owned();
    let wanted = vec![ids[1].clone(), x_id.clone(), ids[0].clone(), ids[2].clone()];
    let reordered = api
        .post(
            &format!("/api/projects/{p}/boxes/reorder/"),
            token,
            &json!({ "box_ids": wanted }),
        )
        .await;
    assert_eq!(reordered.status, StatusCode::OK, "{:?}", reordered.body);
    let after = order(&api, &user, &p).await;
    assert_eq!(names(&after), ["B", "X", "A", "C2"]);
    assert!(dense(&after));

    // A list that is not exactly the project's boxes changes nothing.
    for bad in [
        json!({ "box_ids": [ids[0], ids[1], ids[2]] }),
        json!({ "box_ids": [ids[0], ids[0], ids[1], ids[2]] }),
        json!({ "box_ids": [ids[0], ids[1], ids[2], x_id, ulid::Ulid::new().to_string()] }),
        json!({ "box_ids": [ids[0], ids[1], ids[2], ulid::Ulid::new().to_string()] }),
    ] {
        let reply = api
            .post(&format!("/api/projects/{p}/boxes/reorder"), token, &bad)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.field_error("box_ids").is_some());
    }
    assert_eq!(order(&api, &user, &p).await, after);

    // Delete the second: the rest close up.
    let deleted = api.delete(&format!("/api/boxes/{x_id}"), token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let left = order(&api, &user, &p).await;
    assert_eq!(names(&left), ["B", "A", "C2"]);
    assert!(dense(&left));
    let project_view = api.get(&format!("/api/projects/{p}"), token).await;
    assert_eq!(project_view.body["boxes_count"], 3);
    let gone = api.get(&format!("/api/boxes/{x_id}"), token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // A project with boxes is not deleted (no orphans).
    let refused = api.delete(&format!("/api/projects/{p}"), token).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);

    // The flat list needs its project; pages walk the order.
    let flat = api.get("/api/boxes/", token).await;
    assert_eq!(flat.status, StatusCode::BAD_REQUEST);
    let first = api
        .get(&format!("/api/boxes/?project={p}&limit=2"), token)
        .await;
    assert_eq!(first.body["results"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .get(
            &format!(
                "/api/boxes/?project={p}&limit=2&cursor={}",
                form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
            ),
            token,
        )
        .await;
    assert_eq!(second.body["results"][0]["name"], "C2");
    assert_eq!(second.body["results"][0]["order_index"], 2);
    assert_eq!(second.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn concurrent_creates_all_land_in_the_order() {
    let api = Client::new();
    let user = api.new_user().await;
    let p = project(&api, &user).await;
    let replies = futures::future::join_all((0..6).map(|i| {
        let api = &api;
        let user = &user;
        let p = p.clone();
        async move { new_box(api, user, &p, &format!("S{i}")).await }
    }))
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    // Each either lands or reports a conflict; none is lost from the order.
    for r in &replies {
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
            "{:?}",
            r.body
        );
    }
    let now = order(&api, &user, &p).await;
    assert_eq!(now.len(), created);
    assert!(dense(&now));
    let boxes = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .filter(|i| i["entity"].as_s().unwrap() == "box")
        .count();
    assert_eq!(boxes, created, "no box outside the order");
}

#[tokio::test]
async fn headliners_are_the_boxes_own_assets_and_go_with_it() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user).await;
    let shot = new_box(&api, &user, &p, "Shot").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = new_box(&api, &user, &p, "Other").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // An asset in `shot`, uploaded into it.
    let uploaded = asset_in(&api, &user, &shot).await;
    let files = api
        .get(&format!("/v1/files?parent_object_id={shot}"), token)
        .await;
    let file_id = files.body["results"][0]["id"].as_str().unwrap().to_owned();
    let assets = api.get(&format!("/api/boxes/{shot}/assets/"), token).await;
    assert_eq!(assets.status, StatusCode::OK, "{:?}", assets.body);
    let asset = &assets.body["results"][0];
    assert_eq!(asset["status"], "PROCESSING");
    assert_eq!(asset["box_name"], "Shot");
    assert!(
        asset["file_url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature=")
    );
    let asset_id = asset["id"].as_str().unwrap().to_owned();
    assert_eq!(asset_id, uploaded);

    // Not an asset of `other`; fine for `shot`; null clears.
    let wrong = api
        .patch(
            &format!("/api/boxes/{other}"),
            token,
            &json!({ "headliner_asset": asset_id }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.field_error("headliner_asset").is_some());
    let set = api
        .patch(
            &format!("/api/boxes/{shot}"),
            token,
            &json!({ "headliner_asset": asset_id }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["headliner_asset"], asset_id.as_str());
    assert_eq!(set.body["assets_count"], 1);

    // Deleting the box deletes its asset, the object and the file, and frees quota.
    let deleted = api.delete(&format!("/api/boxes/{shot}/"), token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(stack().objects_of(&user.id).await.is_empty());
    let left: Vec<String> = stack()
        .items_of(&user.id)
        .await
        .into_iter()
        .map(|i| i["entity"].as_s().unwrap().clone())
        .filter(|e| e == "asset" || e == "file")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let file = api.get(&format!("/v1/files/{file_id}"), token).await;
    assert_eq!(file.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_users_boxes_are_invisible_and_bad_input_changes_nothing() {
    let api = Client::new();
    let owner = api.new_user().await;
    let other = api.new_user().await;
    let t = Some(other.access_token.as_str());
    let p = project(&api, &owner).await;
    let b = new_box(&api, &owner, &p, "Mine").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = stack().items_of(&owner.id).await;
    let attempts = [
        api.get(&format!("/api/boxes/{b}"), t).await,
        api.patch(&format!("/api/boxes/{b}"), t, &json!({ "name": "x" }))
            .await,
        api.delete(&format!("/api/boxes/{b}"), t).await,
        api.get(&format!("/api/boxes/{b}/assets"), t).await,
        api.get(&format!("/api/boxes/?project={p}"), t).await,
        api.post("/api/boxes/", t, &json!({ "project": p, "name": "x" }))
            .await,
        api.post(
            &format!("/api/projects/{p}/boxes/reorder"),
            t,
            &json!({ "box_ids": [b] }),
        )
        .await,
    ];
    for (i, reply) in attempts.iter().enumerate() {
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "attempt {i}: {:?}",
            reply.body
        );
    }
    let token = Some(owner.access_token.as_str());
    let bad: Vec<(Value, &str)> = vec![
        (json!({ "project": p, "name": "" }), "name"),
        (json!({ "project": p, "name": "n".repeat(201) }), "name"),
        (
            json!({ "project": p, "name": "ok", "order_index": -1 }),
            "order_index",
        ),
        (
            json!({ "project": p, "name": "ok", "order_index": 5 }),
            "order_index",
        ),
        (
            json!({ "project": p, "name": "ok", "order_index": 1e12 }),
            "order_index",
        ),
        (json!({ "project": p, "name": 7 }), "name"),
        (
            json!({ "project": p, "name": "ok", "colour": "red" }),
            "colour",
        ),
    ];
    for (body, field) in bad {
        let reply = api.post("/api/boxes/", token, &body).await;
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
    let huge = api
        .patch(
            &format!("/api/boxes/{b}"),
            token,
            &json!({ "order_index": 4294967296u64 }),
        )
        .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST);
    let empty = api
        .patch(&format!("/api/boxes/{b}"), token, &json!({}))
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(stack().items_of(&owner.id).await, before, "nothing changed");
}

/// Uploads a small PNG into a box; the asset's id.
async fn asset_in(api: &Client, user: &User, box_id: &str) -> String {
    asset_of_type(api, user, box_id, "image/png").await
}

async fn asset_of_type(api: &Client, user: &User, box_id: &str, content_type: &str) -> String {
    api.upload_into_box(user, box_id, content_type, test_bytes(32, 2))
        .await;
    let token = Some(user.access_token.as_str());
    let listed = api.get(&format!("/api/boxes/{box_id}/assets"), token).await;
    listed.body["results"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn assets_edit_toggle_and_delete() {
    let api = Client::new();
    let user = api.new_user().await;
    let stranger = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user).await;
    let b = new_box(&api, &user, &p, "Shot").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asset = asset_in(&api, &user, &b).await;

    let got = api.get(&format!("/api/assets/{asset}/"), token).await;
    assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
    assert_eq!(got.body["is_favorite"], false);
    assert_eq!(got.body["box_name"], "Shot");
    assert_eq!(got.body["asset_type"], "IMAGE");

    let edited = api
        .patch(
            &format!("/api/assets/{asset}"),
            token,
            &json!({ "prompt_text": "  a red fox at dawn ", "name": "Fox" }),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(edited.body["prompt_text"], "a red fox at dawn");
    let stored = api.get(&format!("/api/assets/{asset}"), token).await;
    assert_eq!(stored.body["prompt_text"], "a red fox at dawn");

    // The toggle flips once per call.
    for expected in [true, false, true] {
        let toggled = api
            .post(&format!("/api/assets/{asset}/favorite/"), token, &json!({}))
            .await;
        assert_eq!(toggled.status, StatusCode::OK, "{:?}", toggled.body);
        assert_eq!(toggled.body["is_favorite"], expected);
    }

    for (body, field) in [
        (json!({ "prompt_text": "p".repeat(4001) }), "prompt_text"),
        (json!({ "is_favorite": "yes" }), "is_favorite"),
        (json!({ "colour": 1 }), "colour"),
        (json!({ "name": "" }), "name"),
    ] {
        let reply = api
            .patch(&format!("/api/assets/{asset}"), token, &body)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            reply.field_error(field).is_some(),
            "{body}: {:?}",
            reply.body
        );
    }

    // Someone else: 404 everywhere, nothing changes.
    let before = stack().items_of(&user.id).await;
    let s = Some(stranger.access_token.as_str());
    for reply in [
        api.get(&format!("/api/assets/{asset}"), s).await,
        api.patch(
            &format!("/api/assets/{asset}"),
            s,
            &json!({ "is_favorite": false }),
        )
        .await,
        api.post(&format!("/api/assets/{asset}/favorite"), s, &json!({}))
            .await,
        api.delete(&format!("/api/assets/{asset}"), s).await,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    }
    assert_eq!(stack().items_of(&user.id).await, before);

    // Deleting the headliner asset clears the headliner and the count.
    api.patch(
        &format!("/api/boxes/{b}"),
        token,
        &json!({ "headliner_asset": asset }),
    )
    .await;
    let deleted = api.delete(&format!("/api/assets/{asset}"), token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let the_box = api.get(&format!("/api/boxes/{b}"), token).await;
    assert_eq!(the_box.body["headliner_asset"], Value::Null);
    assert_eq!(the_box.body["assets_count"], 0);
    assert!(stack().objects_of(&user.id).await.is_empty());
    let again = api.get(&format!("/api/assets/{asset}"), token).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn asset_filters_combine_and_page() {
    let api = Client::new();
    let user = api.new_user().await;
    let stranger = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user).await;
    let b1 = new_box(&api, &user, &p, "One").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b2 = new_box(&api, &user, &p, "Two").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fox = asset_of_type(&api, &user, &b1, "image/png").await;
    let fav = asset_of_type(&api, &user, &b1, "image/jpeg").await;
    let clip = asset_of_type(&api, &user, &b2, "video/mp4").await;
    api.patch(
        &format!("/api/assets/{fox}"),
        token,
        &json!({ "prompt_text": "A Red Fox at dawn" }),
    )
    .await;
    api.post(&format!("/api/assets/{fav}/favorite"), token, &json!({}))
        .await;

    let ids = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let mut ids: Vec<String> = reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let q = |query: String| {
        let api = &api;
        async move { api.get(&format!("/api/assets/?{query}"), token).await }
    };
    assert_eq!(
        ids(&q(format!("box={b1}")).await),
        sorted(vec![fox.clone(), fav.clone()])
    );
    assert_eq!(
        ids(&q(format!("project={p}")).await),
        sorted(vec![fox.clone(), fav.clone(), clip.clone()])
    );
    assert_eq!(ids(&q(String::new()).await).len(), 3);
    assert_eq!(
        ids(&q(format!("project={p}&asset_type=VIDEO")).await),
        vec![clip.clone()]
    );
    assert_eq!(
        ids(&q(format!("box={b1}&is_favorite=true")).await),
        vec![fav.clone()]
    );
    assert_eq!(
        ids(&q(format!("project={p}&search=red%20FOX")).await),
        vec![fox.clone()]
    );
    assert_eq!(
        ids(&q(format!("box={b1}&search=fox&is_favorite=true")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&q(format!("project={p}&status=PROCESSING&asset_type=IMAGE")).await).len(),
        2
    );
    assert!(ids(&q(format!("project={p}&status=COMPLETED")).await).is_empty());
    assert!(ids(&q(format!("box={b2}&project={p}&asset_type=IMAGE")).await).is_empty());

    for (query, field) in [
        ("asset_type=GIF", "asset_type"),
        ("is_favorite=maybe", "is_favorite"),
        ("status=DONE", "status"),
        ("limit=0", "limit"),
    ] {
        let reply = q(query.to_owned()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            reply.field_error(field).is_some(),
            "{query}: {:?}",
            reply.body
        );
    }

    // Pages of one walk every asset once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!(
                "project={p}&limit=1&cursor={}",
                form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            ),
            None => format!("project={p}&limit=1"),
        };
        let page = q(path).await;
        seen.extend(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(sorted(seen), sorted(vec![fox, fav, clip]));

    // Someone else's box or project: 404; their own list is empty.
    let s = Some(stranger.access_token.as_str());
    assert_eq!(
        api.get(&format!("/api/assets/?box={b1}"), s).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&format!("/api/assets/?project={p}"), s)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.get("/api/assets/", s).await.body["results"], json!([]));
}

/// Setting a headliner while its asset is being deleted: whichever lands
/// first, the box never ends up naming an asset that is gone. And deleting
/// another asset never wipes a headliner.
#[tokio::test]
async fn a_headliner_never_names_a_deleted_asset() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());
    let p = project(&api, &user).await;
    let b = new_box(&api, &user, &p, "Shot").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keeper = asset_in(&api, &user, &b).await;
    for round in 0..12 {
        let doomed = asset_in(&api, &user, &b).await;
        let (box_path, asset_path) = (format!("/api/boxes/{b}/"), format!("/api/assets/{doomed}/"));
        let body = json!({ "headliner_asset": doomed });
        let set = api.patch(&box_path, token, &body);
        let delete = api.delete(&asset_path, token);
        let (set, deleted) = tokio::join!(set, delete);
        assert_eq!(
            deleted.status,
            StatusCode::NO_CONTENT,
            "round {round}: {:?}",
            deleted.body
        );
        assert!(
            set.status == StatusCode::OK || set.status == StatusCode::BAD_REQUEST,
            "round {round}: {:?}",
            set.body
        );
        let the_box = api.get(&format!("/api/boxes/{b}/"), token).await;
        let headliner = &the_box.body["headliner_asset"];
        assert_ne!(
            headliner,
            doomed.as_str(),
            "round {round}: names a deleted asset"
        );
        if let Some(id) = headliner.as_str() {
            let asset = api.get(&format!("/api/assets/{id}/"), token).await;
            assert_eq!(asset.status, StatusCode::OK, "round {round}");
        }
        // The keeper as headliner survives the next round's delete.
        let kept = api
            .patch(
                &format!("/api/boxes/{b}/"),
                token,
                &json!({ "headliner_asset": keeper }),
            )
            .await;
        assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
        let other = asset_in(&api, &user, &b).await;
        assert_eq!(
            api.delete(&format!("/api/assets/{other}/"), token)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let after = api.get(&format!("/api/boxes/{b}/"), token).await;
        assert_eq!(
            after.body["headliner_asset"],
            keeper.as_str(),
            "round {round}"
        );
        assert_eq!(after.body["assets_count"], 1, "round {round}");
    }
}

/// A project holds at most 1000 boxes (its order lives on the project
/// item, which DynamoDB caps at 400 KB): one more is a clear 409 that
/// writes nothing.
#[tokio::test]
async fn a_project_holds_at_most_a_thousand_boxes() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let api = Client::new();
    let user = api.new_user().await;
    let p = project(&api, &user).await;
    // Filling it through the API would take 1000 calls: write the order.
    let order: Vec<AttributeValue> = (0..1000)
        .map(|_| AttributeValue::S(ulid::Ulid::new().to_string()))
        .collect();
    stack()
        .dynamodb()
        .await
        .update_item()
        .table_name(&stack().table)
        .key(
            "pk",
            AttributeValue::S(assetbox_shared::db::keys::user_pk(&user.id)),
        )
        .key(
            "sk",
            AttributeValue::S(assetbox_shared::db::keys::project_sk(&p)),
        )
        .update_expression("SET box_order = :order, boxes_count = :n")
        .expression_attribute_values(":order", AttributeValue::L(order))
        .expression_attribute_values(":n", AttributeValue::N("1000".into()))
        .send()
        .await
        .unwrap();
    let before = stack().items_of(&user.id).await;
    let refused = new_box(&api, &user, &p, "One too many").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "too_many_boxes");
    assert_eq!(stack().items_of(&user.id).await, before, "nothing written");
}
