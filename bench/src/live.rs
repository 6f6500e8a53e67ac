//! `live`: what pushing an asset's change to a browser costs.
//!
//! Through the local stack, with a counting proxy between the functions and
//! the emulator: one subscriber (a WebSocket client) follows a project with
//! one generated asset; the asset is renamed `changes` times through the
//! API, and each time the bench waits for the event. Reported: time from
//! the write's request to the event's arrival and from the write's answer
//! to the arrival (median and p99), the AWS calls made meanwhile, and the
//! time status-push itself takes per event (its handler called in this
//! process on a record like the stream's). Then the cost of 1,000 events.
//!
//! Locally the stream is read every 100 ms, so the arrival times include
//! about 50 ms of waiting on average (the writes are spread over that
//! cycle); Lambda polls a stream's shards about four times a second, so
//! AWS adds a delay of the same order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use assetbox_local::LocalStack;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::generation::account;
use crate::uploads::{image_model, proxied_stack};
use crate::{median, percentile};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next event that satisfies `wanted`.
async fn event_where(
    socket: &mut Socket,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("no event within 30 s")?
            .context("the socket closed")??;
        if let Message::Text(text) = frame {
            let event: Value = serde_json::from_str(&text)?;
            if wanted(&event) {
                return Ok(event);
            }
        }
    }
}

pub async fn run(changes: usize) -> anyhow::Result<()> {
    let (stack, proxy) = proxied_stack(
        vec![("CleanupScheduleState".into(), "DISABLED".into())],
        true,
    )
    .await?;
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    let live = stack
        .live_url
        .clone()
        .context("the template's WebSocket API")?;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{live}?token={}", account.token)).await?;
    socket
        .send(Message::Text(
            json!({"action": "subscribe", "project": account.project})
                .to_string()
                .into(),
        ))
        .await?;
    event_where(&mut socket, |e| e["type"] == "subscribed").await?;

    let model = image_model(&stack)?;
    let accepted: Value = http
        .post(format!(
            "{}/api/boxes/{}/generate/",
            account.api, account.box_id
        ))
        .bearer_auth(&account.token)
        .json(&json!({"ai_model": model, "prompt_text": "a harbour at night"}))
        .send()
        .await?
        .json()
        .await?;
    let id = accepted["id"].as_str().context("generation id")?.to_owned();
    event_where(&mut socket, |e| {
        e["asset_id"] == id.as_str() && e["status"] == "COMPLETED"
    })
    .await?;
    // Let the last writes of the generation pass before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.calls.lock().await.clear();
    let (mut from_request, mut from_answer, mut round_trip) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..changes {
        // Spread the writes over the stream's polling cycle: right after an
        // event the pump is about to read again, which would flatter it.
        tokio::time::sleep(Duration::from_millis((i as u64 * 37) % 200)).await;
        let name = format!("take-{i}.png");
        let sent = Instant::now();
        let answer = http
            .patch(format!("{}/api/assets/{id}/", account.api))
            .bearer_auth(&account.token)
            .json(&json!({"name": name}))
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "rename: {}", answer.status());
        let answered = Instant::now();
        event_where(&mut socket, |e| e["name"] == name.as_str()).await?;
        let arrived = Instant::now();
        from_request.push((arrived - sent).as_secs_f64() * 1e3);
        from_answer.push((arrived - answered).as_secs_f64() * 1e3);
        round_trip.push((answered - sent).as_secs_f64() * 1e3);
    }
    let calls = proxy.calls.lock().await.clone();
    let mut by_operation: BTreeMap<&str, usize> = BTreeMap::new();
    for call in &calls {
        *by_operation.entry(call.as_str()).or_default() += 1;
    }
    println!(
        "live: {changes} renames, one subscriber: write request → event median {:.1} ms, p99 {:.1} ms; \
         write answered → event median {:.1} ms, p99 {:.1} ms (the PATCH itself: median {:.1} ms)",
        median(&mut from_request.clone()),
        percentile(&mut from_request, 0.99),
        median(&mut from_answer.clone()),
        percentile(&mut from_answer, 0.99),
        median(&mut round_trip),
    );
    println!(
        "live: AWS calls per change (the PATCH's and status-push's together): {}",
        by_operation
            .iter()
            .map(|(op, n)| format!("{op} {:.2}", *n as f64 / changes as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // status-push alone, on a record like the stream's, in this process.
    let env = stack
        .functions
        .iter()
        .find(|f| f.binary == "status-push")
        .context("status-push")?
        .environment
        .clone();
    let pusher = status_push::Pusher::from_settings(&env, &stack.sdk)?;
    let asset = stack_item(&stack, &account.owner, &id).await?;
    let mut handler_ms = Vec::new();
    for i in 0..changes {
        let mut renamed = asset.clone();
        renamed["name"] = json!({"S": format!("direct-{i}.png")});
        let record = json!({"Records": [{
            "eventID": format!("bench-{i}"), "eventName": "MODIFY", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": asset["pk"], "sk": asset["sk"]}, "OldImage": asset,
                         "NewImage": renamed, "SequenceNumber": format!("{}", 10_000_000 + i),
                         "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}}]});
        let started = Instant::now();
        let response = pusher.handle(record).await;
        handler_ms.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(response.batch_item_failures.is_empty(), "a push failed");
        event_where(&mut socket, |e| {
            e["name"] == format!("direct-{i}.png").as_str()
        })
        .await?;
    }
    let handler = median(&mut handler_ms);
    println!(
        "live: status-push per event (1 Query of the subscribers, 1 PostToConnection): median {handler:.2} ms"
    );
    // 1,000 events, each alone in its batch (the worst case), one
    // subscriber each: API Gateway $1.00 per million messages (32 KB
    // units; an event is < 1 KB) and $0.25 per million connection minutes;
    // Lambda $0.20 per million requests and $0.0000133334 per GB-s at 128 MB
    // arm64 (billed per ms, at least 1 ms).
    let events = 1000.0;
    let gb_s = events * (handler.max(1.0) / 1e3) * 0.125;
    let dollars = events * 1.0e-6 + events * 0.2e-6 + gb_s * 0.000_013_333_4;
    println!(
        "live: 1,000 events, one batch each: 1,000 WebSocket messages, 1,000 invocations, \
         {gb_s:.3} GB-s, 1,000 DynamoDB Queries (≤ 1 RRU each) ≈ ${dollars:.5}; \
         plus $0.000015 per connection-hour"
    );
    Ok(())
}

/// The asset's item as the table holds it, in the stream's JSON.
async fn stack_item(stack: &LocalStack, owner: &str, id: &str) -> anyhow::Result<Value> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let item = dynamodb
        .get_item()
        .table_name(stack.physical_id("Table").context("table")?)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{owner}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ASSET#{id}")),
        )
        .send()
        .await?
        .item
        .context("the asset")?;
    // serde_dynamo writes the stream's attribute-value JSON.
    Ok(serde_json::to_value(serde_dynamo::Item::from(item))?)
}
