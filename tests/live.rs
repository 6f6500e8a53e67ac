//! Live status end to end: browsers' WebSocket connections to the local
//! stack's live API (authorizer, routes, management API), the table's
//! stream pumped into status-push, and what arrives on the socket.

use std::time::Duration;

use assetbox_e2e::{Client, Stack, User, media, stack_delivering_s3_events};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for an event it expects.
const EXPECTED_WITHIN: Duration = Duration::from_secs(20);

fn stack() -> &'static Stack {
    stack_delivering_s3_events()
}

/// Connects with `token` in the query string, as a browser does.
async fn connect(token: &str) -> Result<Socket, u16> {
    let url = format!("{}?token={token}", stack().live);
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("connecting: {e}"),
    }
}

/// The next JSON frame, or `None` within `wait`.
async fn next_json(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next()).await.ok()??;
        if let Ok(Message::Text(text)) = frame {
            return Some(serde_json::from_str(&text).expect("frames are JSON"));
        }
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

/// Subscribes to `project`: the reply.
async fn subscribe(socket: &mut Socket, project: &str) -> Value {
    send(socket, json!({"action": "subscribe", "project": project})).await;
    next_json(socket, EXPECTED_WITHIN)
        .await
        .expect("a reply to subscribe")
}

/// Events until one satisfies `done` (all of them, that one last).
async fn events_until(socket: &mut Socket, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(event) = next_json(socket, EXPECTED_WITHIN).await {
        let last = done(&event);
        seen.push(event);
        if last {
            return seen;
        }
    }
    panic!("no such event arrived; saw {seen:#?}");
}

async fn subscribed_user() -> (Client, User, String, String, Socket) {
    stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (project, box_id) = api.project_and_box(&user).await;
    let mut socket = connect(&user.access_token).await.expect("connected");
    let reply = subscribe(&mut socket, &project).await;
    assert_eq!(reply, json!({"type": "subscribed", "project": project}));
    (api, user, project, box_id, socket)
}

#[tokio::test]
async fn a_subscriber_sees_uploads_complete_with_a_thumbnail_or_fail_with_the_reason() {
    let (api, user, project, box_id, mut socket) = subscribed_user().await;
    let asset = api
        .small_upload(&user, &box_id, "frame.png", &media::png(64, 48, 1))
        .await;
    let id = asset["id"].as_str().unwrap().to_owned();
    let seen = events_until(&mut socket, |e| {
        e["asset_id"] == id.as_str() && e["status"] == "COMPLETED"
    })
    .await;
    let first = &seen[0];
    assert_eq!(first["type"], "asset_created", "{seen:#?}");
    assert_eq!(first["status"], "PROCESSING");
    assert_eq!(first["project"], project.as_str());
    assert_eq!(first["box"], box_id.as_str());
    let done = seen.last().unwrap();
    assert_eq!(done["type"], "asset_changed");
    assert_eq!(done["has_thumbnail"], true, "{seen:#?}");
    assert!(done["version"].as_str().unwrap() > first["version"].as_str().unwrap());

    // Not an image, though named one: ingestion fails it, and says why.
    // A direct upload declared a PNG that is text: ingestion fails it.
    let file = api
        .upload_into_box(
            &user,
            &box_id,
            "image/png",
            b"not a picture at all".to_vec(),
        )
        .await;
    let seen = events_until(&mut socket, |e| e["type"] == "asset_created").await;
    let broken_id = seen.last().unwrap()["asset_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!file.is_empty());
    let seen = events_until(&mut socket, |e| {
        e["asset_id"] == broken_id.as_str() && e["status"] == "FAILED"
    })
    .await;
    let failed = seen.last().unwrap();
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{failed}"
    );
    assert!(
        failed["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("status"))
    );
}

#[tokio::test]
async fn tokens_that_do_not_verify_are_refused_at_connect() {
    let stack = stack();
    // No token: API Gateway's 401, the authorizer never runs.
    assert_eq!(connect("").await.err(), Some(401));
    let mut expired = stack.access_claims("someone");
    expired["exp"] = json!(1_700_000_000);
    assert_eq!(connect(&stack.mint_token(&expired)).await.err(), Some(403));
    let mut foreign_client = stack.access_claims("someone");
    foreign_client["client_id"] = json!("another-app");
    assert_eq!(
        connect(&stack.mint_token(&foreign_client)).await.err(),
        Some(403)
    );
    // A valid token with its payload changed: the signature no longer holds.
    let valid = stack.mint_token(&stack.access_claims("someone"));
    let parts: Vec<&str> = valid.split('.').collect();
    let forged_claims = stack.access_claims("someone-else");
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&forged_claims).unwrap());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(connect(&forged).await.err(), Some(403));
    assert_eq!(connect("not-a-jwt").await.err(), Some(403));
    // The same token, intact, connects.
    assert!(connect(&valid).await.is_ok());
}

#[tokio::test]
async fn another_users_project_is_refused_like_an_unknown_one_and_its_events_never_arrive() {
    let (api, alice, alice_project, alice_box, mut alice_socket) = subscribed_user().await;
    let (_, bob, _, bob_box, mut bob_socket) = subscribed_user().await;
    let foreign = subscribe(&mut bob_socket, &alice_project).await;
    let unknown = subscribe(&mut bob_socket, "01JNKN0WNPR0JECT0000000000").await;
    assert_eq!(foreign["status"], 404, "{foreign}");
    assert_eq!(foreign["message"], unknown["message"]);
    send(&mut bob_socket, json!({"action": "shout"})).await;
    let unknown_action = next_json(&mut bob_socket, EXPECTED_WITHIN).await.unwrap();
    assert_eq!(unknown_action["status"], 400, "{unknown_action}");

    let alices = api
        .small_upload(&alice, &alice_box, "a.png", &media::png(32, 32, 2))
        .await;
    let alices = alices["id"].as_str().unwrap().to_owned();
    events_until(&mut alice_socket, |e| e["asset_id"] == alices.as_str()).await;
    // Bob's own upload after Alice's: the first event Bob sees is his.
    let bobs = api
        .small_upload(&bob, &bob_box, "b.png", &media::png(32, 32, 3))
        .await;
    let bobs = bobs["id"].as_str().unwrap();
    let first = next_json(&mut bob_socket, EXPECTED_WITHIN).await.unwrap();
    assert_eq!(first["asset_id"], bobs, "{first}");
    let all = events_until(&mut bob_socket, |e| e["status"] == "COMPLETED").await;
    assert!(all.iter().all(|e| e["asset_id"] == bobs), "{all:#?}");
}

#[tokio::test]
async fn a_gone_connection_is_forgotten_at_the_next_push_and_a_reconnect_resumes() {
    let (api, user, project, box_id, socket) = subscribed_user().await;
    let store = stack().store().await;
    // A connection API Gateway no longer has, still on the project.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    store
        .open_connection(
            "gone0000000000=",
            &user.id,
            "2026-12-06T00:00:00Z",
            now + 3600,
        )
        .await
        .unwrap();
    let subscribed = store
        .subscribe("gone0000000000=", &user.id, &project, now + 3600, now)
        .await
        .unwrap();
    assert_eq!(subscribed, assetbox_shared::live::Subscribed::Yes);
    drop(socket);
    let asset = api
        .small_upload(&user, &box_id, "c.png", &media::png(32, 32, 4))
        .await;
    let id = asset["id"].as_str().unwrap().to_owned();
    // The push meets the 410 and forgets it, subscription and all.
    let mut forgotten = false;
    for _ in 0..100 {
        let left = store.subscribers(&project, now).await.unwrap();
        if left.is_empty()
            && store
                .connection("gone0000000000=", now)
                .await
                .unwrap()
                .is_none()
        {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forgotten, "the gone connection is still subscribed");
    // A fresh connection (a new token too) follows the project again.
    let fresh = api
        .post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    let token = fresh.body["access_token"].as_str().expect("a fresh token");
    let mut socket = connect(token).await.expect("reconnected");
    assert_eq!(subscribe(&mut socket, &project).await["type"], "subscribed");
    let renamed = api
        .patch(
            &format!("/api/assets/{id}/"),
            Some(token),
            &json!({"name": "renamed.png"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let seen = events_until(&mut socket, |e| e["name"] == "renamed.png").await;
    assert!(
        seen.last().unwrap()["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("name"))
    );
}

/// What a client that keeps the newest version per asset shows.
fn newest(events: &[Value]) -> std::collections::HashMap<String, Value> {
    let mut view: std::collections::HashMap<String, Value> = Default::default();
    for event in events {
        let id = event["asset_id"].as_str().unwrap().to_owned();
        let newer = view
            .get(&id)
            .is_none_or(|held| event["version"].as_str() > held["version"].as_str());
        if newer {
            view.insert(id, event.clone());
        }
    }
    view
}

#[tokio::test]
async fn duplicated_and_reordered_records_leave_a_newest_first_client_right() {
    let (_, user, project, box_id, mut socket) = subscribed_user().await;
    let env = stack()
        .functions
        .iter()
        .find(|f| f.binary == "status-push")
        .expect("status-push in the template")
        .environment
        .clone();
    let pusher = status_push::Pusher::from_settings(&env, &stack().sdk().await).unwrap();
    let image = |status: &str| {
        json!({
            "pk": {"S": format!("USER#{}", user.id)}, "sk": {"S": "ASSET#01JDUPLICATE0000000000000"},
            "id": {"S": "01JDUPLICATE0000000000000"}, "owner": {"S": user.id}, "box": {"S": box_id},
            "project": {"S": project}, "asset_type": {"S": "IMAGE"}, "source_type": {"S": "UPLOADED"},
            "status": {"S": status}, "s3_key": {"S": ""}, "name": {"S": "d.png"},
            "content_type": {"S": "image/png"}, "size": {"N": "1"}, "is_favorite": {"BOOL": false},
            "created_at": {"S": "2026-12-06T00:00:00Z"}, "updated_at": {"S": "2026-12-06T00:00:00Z"}
        })
    };
    let record = |sequence: &str, old: &str, new: &str| {
        json!({"eventID": sequence, "eventName": "MODIFY", "eventSource": "aws:dynamodb",
               "awsRegion": "us-east-1",
               "dynamodb": {"Keys": {"pk": image(new)["pk"], "sk": image(new)["sk"]},
                            "OldImage": image(old), "NewImage": image(new),
                            "SequenceNumber": sequence, "SizeBytes": 1,
                            "StreamViewType": "NEW_AND_OLD_IMAGES"}})
    };
    let processing = record("900", "PENDING", "PROCESSING");
    let completed = record("1000", "PROCESSING", "COMPLETED");
    // The newer change first, then the older one, then the newer again.
    let batch = json!({"Records": [completed.clone(), processing, completed,
                                   {"eventID": "poison", "dynamodb": "not a record"}]});
    let response = pusher.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(
            next_json(&mut socket, EXPECTED_WITHIN)
                .await
                .expect("an event"),
        );
    }
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["COMPLETED", "PROCESSING", "COMPLETED"]);
    let view = newest(&events);
    assert_eq!(view["01JDUPLICATE0000000000000"]["status"], "COMPLETED");
}

#[tokio::test]
async fn a_subscriber_sees_a_generation_run_and_a_failed_one_fail_with_the_reason() {
    let (api, user, _, box_id, mut socket) = subscribed_user().await;
    let token = Some(user.access_token.as_str());
    let mut ids = Vec::new();
    for prompt in [
        format!("a lighthouse at dusk {}", ulid::Ulid::new()),
        format!("a storm [fail:the model refused] {}", ulid::Ulid::new()),
    ] {
        let request = json!({"ai_model": stack().image_model, "prompt_text": prompt,
                             "params": {"width": 64, "height": 48}});
        let accepted = api
            .post(&format!("/api/boxes/{box_id}/generate/"), token, &request)
            .await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        ids.push(accepted.body["id"].as_str().unwrap().to_owned());
    }
    let (good, bad) = (ids[0].as_str(), ids[1].as_str());
    let seen = events_until(&mut socket, |e| {
        e["asset_id"] == good && e["status"] == "COMPLETED"
    })
    .await;
    let states: Vec<&str> = seen
        .iter()
        .filter(|e| e["asset_id"] == good)
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(states.first(), Some(&"PENDING"), "{seen:#?}");
    assert!(seen.last().unwrap()["has_thumbnail"] == true, "{seen:#?}");
    let mut all = seen;
    if !all
        .iter()
        .any(|e| e["asset_id"] == bad && e["status"] == "FAILED")
    {
        all = events_until(&mut socket, |e| {
            e["asset_id"] == bad && e["status"] == "FAILED"
        })
        .await;
    }
    let failed = all
        .iter()
        .find(|e| e["asset_id"] == bad && e["status"] == "FAILED")
        .unwrap();
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("the model refused")),
        "{failed}"
    );
}

#[tokio::test]
async fn events_stop_when_the_connection_s_token_expires() {
    stack();
    let api = Client::new();
    let user = api.new_user().await;
    let (project, box_id) = api.project_and_box(&user).await;
    let mut claims = stack().access_claims(&user.id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claims["exp"] = json!(now + 3);
    let mut socket = connect(&stack().mint_token(&claims))
        .await
        .expect("connected");
    assert_eq!(subscribe(&mut socket, &project).await["type"], "subscribed");
    tokio::time::sleep(Duration::from_secs(4)).await;
    api.small_upload(&user, &box_id, "late.png", &media::png(16, 16, 5))
        .await;
    let late = next_json(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(late, None, "an event after the token expired");
}
