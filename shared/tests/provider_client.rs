//! The provider client against a real HTTP server on loopback: what each
//! kind of answer (or its absence) means for a submit — the rule that a
//! generation is paid for once. Only a request that certainly created
//! nothing (refused connection, 429, 455) may be sent again; a timeout or a
//! 5xx after sending is an unknown outcome.

use std::time::Duration;

use assetbox_shared::ai::{Model, Provider, SubmitOutcome, SubmitValues};
use assetbox_shared::generation::provider::{ProviderClient, ProviderKeys};
use assetbox_shared::secrets::SecretValue;
use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key";

/// A provider that answers each path its own way and checks the key.
async fn serve() -> String {
    let app = axum::Router::new()
        .route(
            "/ok/api/v1/jobs/createTask",
            post(|headers: HeaderMap, Json(body): Json<Value>| async move {
                let bearer = headers[header::AUTHORIZATION].to_str().unwrap().to_owned();
                assert_eq!(bearer, format!("Bearer {KEY}"));
                // The template was filled: typed seed, member left out
                // without a callback URL.
                assert_eq!(body["input"]["seed"], 7);
                assert!(body.get("callBackUrl").is_none(), "{body}");
                Json(json!({"code": 200, "data": {"taskId": "t-1"}}))
            }),
        )
        .route(
            "/credits/api/v1/jobs/createTask",
            post(|| async { Json(json!({"code": 402, "msg": "Credits insufficient"})) }),
        )
        .route(
            "/busy/api/v1/jobs/createTask",
            post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "7")],
                    "slow down",
                )
                    .into_response()
            }),
        )
        .route(
            "/busy/api/v1/jobs/recordInfo",
            get(|| async {
                (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "9")]).into_response()
            }),
        )
        .route(
            "/down/api/v1/jobs/createTask",
            post(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/slow/api/v1/jobs/createTask",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Json(json!({"code": 200, "data": {"taskId": "t-late"}}))
            }),
        )
        .route(
            "/ok/api/v1/jobs/recordInfo",
            get(|| async {
                Json(json!({"code": 200, "data": {"state": "success",
                    "resultJson": "{\"resultUrls\":[\"https://r.example/1.png\",\"https://r.example/2.png\"]}"}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn provider(base_url: String) -> Provider {
    serde_json::from_value(json!({
        "id": "P1", "name": "Test provider", "base_url": base_url,
        "auth": {"scheme": "bearer"}, "secret_ref": "x/providers/test",
        "active": true, "created_at": "", "updated_at": ""
    }))
    .unwrap()
}

fn model() -> Model {
    serde_json::from_value(json!({
        "id": "M1", "provider": "P1", "name": "Test model", "kind": "image",
        "created_at": "", "updated_at": "",
        "submit": {"method": "POST", "path": "/api/v1/jobs/createTask",
                   "body": {"callBackUrl": "{{callback_url}}", "input": {"prompt": "{{prompt}}", "seed": "{{seed}}"}}},
        "query": {"method": "GET", "path": "/api/v1/jobs/recordInfo?taskId={{task_id}}"},
        "response": {
            "task_id": "/data/taskId", "code": "/code", "error_message": "/msg",
            "state": {"pointer": "/data/state", "values": {"success": "succeeded", "fail": "failed"}},
            "results": {"pointer": "/data/resultJson", "decode_json_string": "/resultUrls"},
            "failure_message": "/data/failMsg"
        }
    }))
    .unwrap()
}

fn keys() -> ProviderKeys {
    ProviderKeys {
        api_key: SecretValue::new(KEY.into()),
        webhook_secret: None,
    }
}

async fn submit(client: &ProviderClient, base: String) -> SubmitOutcome {
    let params = json!({});
    let values = SubmitValues {
        prompt: "a fox",
        seed: Some(7),
        params: &params,
        parent_asset_url: None,
        callback_url: None,
        generation_id: "G1",
    };
    client
        .submit(&provider(base), &model(), &keys(), &values)
        .await
}

#[tokio::test]
async fn each_answer_means_what_the_money_rule_needs() {
    let url = serve().await;
    let client = ProviderClient::new(true).with_call_timeout(Duration::from_millis(500));
    assert_eq!(
        submit(&client, format!("{url}/ok")).await,
        SubmitOutcome::Accepted("t-1".into())
    );
    assert!(matches!(
        submit(&client, format!("{url}/credits")).await,
        SubmitOutcome::Refused(r) if r.contains("insufficient credits") && r.contains("Credits insufficient")
    ));
    assert!(matches!(
        submit(&client, format!("{url}/busy")).await,
        SubmitOutcome::RetryLater {
            retry_after: Some(7),
            ..
        }
    ));
    assert!(matches!(
        submit(&client, format!("{url}/down")).await,
        SubmitOutcome::Unknown(_)
    ));
    // Sent, no answer in time: it may have been created, so never resent.
    assert!(matches!(
        submit(&client, format!("{url}/slow")).await,
        SubmitOutcome::Unknown(r) if r.contains("in time")
    ));
}

#[tokio::test]
async fn a_refused_connection_sent_nothing_and_may_be_retried() {
    let closed = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = ProviderClient::new(true);
    assert!(matches!(
        submit(&client, url).await,
        SubmitOutcome::RetryLater {
            retry_after: None,
            ..
        }
    ));
}

#[tokio::test]
async fn loopback_is_refused_unless_private_networks_are_allowed() {
    let url = serve().await;
    let guarded = ProviderClient::new(false);
    // An IP literal never reaches the resolver's check: the URL's is made first.
    let https = url.replace("http://", "https://");
    assert!(matches!(
        submit(&guarded, format!("{https}/ok")).await,
        SubmitOutcome::Refused(r) if r.contains("private network")
    ));
    assert!(matches!(
        submit(&guarded, "https://169.254.169.254/latest".into()).await,
        SubmitOutcome::Refused(r) if r.contains("private network")
    ));
    assert!(matches!(
        submit(&guarded, format!("{url}/ok")).await,
        SubmitOutcome::Refused(r) if r.contains("only https")
    ));
}

#[tokio::test]
async fn a_query_reads_state_and_every_result() {
    let url = serve().await;
    let client = ProviderClient::new(true);
    let report = client
        .query(
            &provider(format!("{url}/ok")),
            &model(),
            &keys(),
            "t-1",
            "G1",
        )
        .await
        .unwrap();
    assert_eq!(
        report.state,
        assetbox_shared::ai::response::TaskState::Succeeded
    );
    assert_eq!(report.outputs.len(), 2);
    // A busy query: try later, when the provider says.
    let busy = client
        .query(
            &provider(format!("{url}/busy")),
            &model(),
            &keys(),
            "t-1",
            "G1",
        )
        .await
        .unwrap_err();
    assert_eq!(busy.retry_after, Some(9), "{busy:?}");
}
