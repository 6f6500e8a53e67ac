//! Projects end to end: through the local API Gateway (JWT checks), the
//! catalog-api router and DynamoDB in the emulator.

use std::collections::HashSet;

use assetbox_e2e::{Client, now_secs, stack};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn id_of(reply: &assetbox_e2e::Reply) -> String {
    reply.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn create_read_update_delete() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());

    let created = api
        .post("/api/projects/", token, &json!({ "name": "  Teaser  " }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["name"], "Teaser");
    assert_eq!(created.body["boxes_count"], 0);
    let id = id_of(&created);

    // Trailing slash and its absence are the same route.
    for path in [
        format!("/api/projects/{id}"),
        format!("/api/projects/{id}/"),
    ] {
        let got = api.get(&path, token).await;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(got.body, created.body);
    }
    for path in ["/api/projects", "/api/projects/"] {
        let list = api.get(path, token).await;
        assert_eq!(list.status, StatusCode::OK, "{path}");
        assert_eq!(list.body["results"], json!([created.body]));
        assert_eq!(list.body["next_cursor"], Value::Null);
    }

    let patched = api
        .patch(
            &format!("/api/projects/{id}/"),
            token,
            &json!({ "name": "Final cut" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["name"], "Final cut");
    assert_eq!(patched.body["created_at"], created.body["created_at"]);
    assert_ne!(patched.body["updated_at"], created.body["updated_at"]);
    assert_eq!(
        api.get(&format!("/api/projects/{id}"), token).await.body["name"],
        "Final cut"
    );

    let boxes = api.get(&format!("/api/projects/{id}/boxes/"), token).await;
    assert_eq!(boxes.status, StatusCode::OK);
    assert_eq!(boxes.body, json!({ "results": [], "next_cursor": null }));

    assert_eq!(
        api.delete(&format!("/api/projects/{id}/"), token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/api/projects/{id}"), token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete(&format!("/api/projects/{id}"), token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(stack().items_of(&user.id).await.is_empty());
}

#[tokio::test]
async fn another_users_projects_are_invisible() {
    let api = Client::new();
    let owner = api.new_user().await;
    let other = api.new_user().await;
    let created = api
        .post(
            "/api/projects/",
            Some(&owner.access_token),
            &json!({ "name": "Mine" }),
        )
        .await;
    let id = id_of(&created);
    let token = Some(other.access_token.as_str());

    let not_found = |reply: assetbox_e2e::Reply, what: &str| {
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "not_found", "{what}");
    };
    not_found(api.get(&format!("/api/projects/{id}/"), token).await, "get");
    not_found(
        api.patch(
            &format!("/api/projects/{id}/"),
            token,
            &json!({ "name": "Theirs" }),
        )
        .await,
        "patch",
    );
    not_found(
        api.delete(&format!("/api/projects/{id}/"), token).await,
        "delete",
    );
    not_found(
        api.get(&format!("/api/projects/{id}/boxes/"), token).await,
        "boxes",
    );
    // An unknown id looks exactly like a foreign one.
    let unknown = api
        .get(&format!("/api/projects/{}/", ulid::Ulid::new()), token)
        .await;
    assert_eq!(
        unknown.body,
        api.get(&format!("/api/projects/{id}/"), token).await.body
    );

    let list = api.get("/api/projects/", token).await;
    assert_eq!(list.body["results"], json!([]));
    // Nothing changed for the owner.
    let still = api
        .get(&format!("/api/projects/{id}"), Some(&owner.access_token))
        .await;
    assert_eq!(still.body, created.body);
}

#[tokio::test]
async fn tokens_that_api_gateway_would_refuse_never_reach_the_handler() {
    let api = Client::new();
    let user = api.new_user().await;
    let stack = stack();
    let body = json!({ "name": "should not exist" });

    let mut tampered = user.access_token.clone();
    // Flip one character of the signature.
    let last = tampered.pop().expect("token");
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let mut expired = stack.access_claims(&user.id);
    expired["iat"] = json!(now_secs() - 7200);
    expired["exp"] = json!(now_secs() - 60);
    let mut wrong_audience = stack.access_claims(&user.id);
    wrong_audience["client_id"] = json!("some-other-client");
    let mut wrong_issuer = stack.access_claims(&user.id);
    wrong_issuer["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other");
    let mut not_yet_valid = stack.access_claims(&user.id);
    not_yet_valid["nbf"] = json!(now_secs() + 600);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing token", None),
        ("garbage", Some("not-a-jwt".into())),
        ("bad signature", Some(tampered)),
        ("expired", Some(stack.mint_token(&expired))),
        ("wrong audience", Some(stack.mint_token(&wrong_audience))),
        ("wrong issuer", Some(stack.mint_token(&wrong_issuer))),
        ("not yet valid", Some(stack.mint_token(&not_yet_valid))),
    ];
    for (what, token) in &cases {
        for (method, path) in [
            (Method::POST, "/api/projects/"),
            (Method::GET, "/api/projects/"),
        ] {
            let reply = api
                .json(method.clone(), path, token.as_deref(), &body)
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{what} {method} {path}"
            );
            assert_eq!(reply.body, json!({ "message": "Unauthorized" }), "{what}");
        }
    }
    assert!(
        stack.items_of(&user.id).await.is_empty(),
        "a refused request wrote something"
    );

    // The same minting with valid claims is accepted: the refusals above are
    // about the claims, not about how the tokens were made.
    let good = stack.mint_token(&stack.access_claims(&user.id));
    assert_eq!(
        api.get("/api/projects/", Some(&good)).await.status,
        StatusCode::OK
    );
    // Public routes need no token.
    assert_eq!(api.get("/api/health", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_writes_nothing() {
    let api = Client::new();
    let user = api.new_user().await;
    let token = Some(user.access_token.as_str());

    let cases = [
        (json!({}), Some(("name", "is required"))),
        (json!({ "name": "" }), Some(("name", "must not be empty"))),
        (
            json!({ "name": "   " }),
            Some(("name", "must not be empty")),
        ),
        (
            json!({ "name": "x".repeat(201) }),
            Some(("name", "must be at most 200 characters (got 201)")),
        ),
        (json!({ "name": 42 }), None),
        (
            json!({ "name": "ok", "owner": "someone-else" }),
            Some(("owner", "is not an accepted field")),
        ),
        (json!(["name"]), None),
        (
            json!({ "name": "a\u{202E}gnp.exe" }),
            Some((
                "name",
                "must not contain invisible, direction-changing or replacement characters (U+202E)",
            )),
        ),
        (json!({ "name": "shot\u{200B}1" }), None),
    ];
    for (body, expected) in cases {
        let reply = api.post("/api/projects/", token, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        if let Some((field, reason)) = expected {
            assert_eq!(
                reply.field_error(field),
                Some(reason),
                "{body}: {:?}",
                reply.body
            );
        }
    }
    let malformed = api
        .send(
            Method::POST,
            "/api/projects/",
            token,
            Some(("application/json", b"{\"name\":".to_vec())),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
    let not_json = api
        .send(
            Method::POST,
            "/api/projects/",
            token,
            Some(("text/plain", b"name=x".to_vec())),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // JSON that is not UTF-8 is refused, not repaired into "caf\u{FFFD}".
    let latin1 = api
        .send(
            Method::POST,
            "/api/projects/",
            token,
            Some(("application/json", b"{\"name\":\"caf\xe9\"}".to_vec())),
        )
        .await;
    assert_eq!(latin1.status, StatusCode::BAD_REQUEST, "{:?}", latin1.body);
    assert_eq!(latin1.body["error"]["code"], "bad_request");
    // A body past the route's limit has its own code.
    let huge = json!({ "name": "x", "pad": "y".repeat(70 * 1024) });
    let huge = api.post("/api/projects/", token, &huge).await;
    assert_eq!(
        huge.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{:?}",
        huge.body
    );
    assert_eq!(huge.body["error"]["code"], "body_too_large");
    // A path id that is not UTF-8 names nothing: our JSON 404.
    for path in ["/api/projects/%FF/", "/api/projects/%C3%28/boxes/"] {
        let odd = api.get(path, token).await;
        assert_eq!(odd.status, StatusCode::NOT_FOUND, "{path}: {:?}", odd.body);
        assert!(
            odd.body["error"]["code"].is_string(),
            "{path}: {:?}",
            odd.body
        );
    }
    // 200 characters is the limit, not past it.
    let at_limit = api
        .post("/api/projects/", token, &json!({ "name": "é".repeat(200) }))
        .await;
    assert_eq!(at_limit.status, StatusCode::CREATED);
    assert_eq!(
        stack().items_of(&user.id).await.len(),
        1,
        "only the valid project is stored"
    );

    // A bad PATCH changes nothing either.
    let id = id_of(&at_limit);
    for body in [json!({}), json!({ "name": "" }), json!({ "title": "x" })] {
        let reply = api
            .patch(&format!("/api/projects/{id}"), token, &body)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(
        api.get(&format!("/api/projects/{id}"), token).await.body,
        at_limit.body
    );
}

#[tokio::test]
async fn pages_walk_every_project_once_and_cursors_are_sealed() {
    let api = Client::new();
    let user = api.new_user().await;
    let other = api.new_user().await;
    let token = Some(user.access_token.as_str());

    let mut made = HashSet::new();
    for chunk in 0..12 {
        let creates = (0..10).map(|i| {
            let api = &api;
            async move {
                api.post(
                    "/api/projects/",
                    token,
                    &json!({ "name": format!("P{:03}", chunk * 10 + i) }),
                )
                .await
            }
        });
        for reply in futures::future::join_all(creates).await {
            assert_eq!(reply.status, StatusCode::CREATED);
            made.insert(id_of(&reply));
        }
    }
    assert_eq!(made.len(), 120);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut first_cursor = None;
    loop {
        let path = match &cursor {
            None => "/api/projects/?limit=7".to_owned(),
            Some(c) => format!("/api/projects/?limit=7&cursor={c}"),
        };
        let page = api.get(&path, token).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let results = page.body["results"].as_array().unwrap();
        assert!(results.len() <= 7);
        seen.extend(results.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert!(!results.is_empty(), "a cursor after an empty page");
                first_cursor.get_or_insert_with(|| next.to_owned());
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 18, "120 items at 7 a page");
    assert_eq!(seen.len(), 120, "duplicates or gaps");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), made);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "newest first");

    let cursor = first_cursor.unwrap();
    // Cursors are one encrypted, authenticated blob: any change is refused.
    let flip = |at: usize| {
        let mut chars: Vec<char> = cursor.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let (head, tail) = cursor.split_at(cursor.len() / 2);
    for bad in [
        flip(cursor.len() - 2),
        flip(cursor.len() / 2),
        format!("{cursor}xx"),
        "garbage".to_owned(),
        format!("{tail}{head}"),
    ] {
        let reply = api
            .get(&format!("/api/projects/?cursor={bad}"), token)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.field_error("cursor").is_some());
    }
    // A good cursor in another user's hands, or on another list, is refused too.
    let foreign = api
        .get(
            &format!("/api/projects/?cursor={cursor}"),
            Some(&other.access_token),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    let project = seen[0].clone();
    let other_list = api
        .get(
            &format!("/api/projects/{project}/boxes/?cursor={cursor}"),
            token,
        )
        .await;
    assert_eq!(other_list.status, StatusCode::BAD_REQUEST);

    for limit in ["0", "201", "-1", "many"] {
        let reply = api
            .get(&format!("/api/projects/?limit={limit}"), token)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "limit={limit}");
        assert!(reply.field_error("limit").is_some());
    }
    let max = api.get("/api/projects/?limit=200", token).await;
    assert_eq!(max.body["results"].as_array().unwrap().len(), 120);
    assert_eq!(max.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn openapi_document_is_served_publicly() {
    let api = Client::new();
    let doc = api.get("/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(doc.body["paths"]["/api/projects/{id}/"]["patch"].is_object());
}
