//! `cleanup`: what a cleanup run costs, task by task.
//!
//! Through the local stack (its schedules disabled), with a counting proxy
//! between the functions and the emulator: for each task, `items` items are
//! made due (records written as time would have left them: expired uploads,
//! old aborted records, old unkept assets; multipart uploads no record
//! knows), one run of that task is sent to the cleanup queue, and once every
//! step is done the bench reports the AWS calls per item by operation, the
//! steps taken and each step's items per second (median). Then the cost of
//! a run over 10,000 expired uploads, from the measured calls per item and
//! step duration, in Lambda and DynamoDB terms.
//!
//! Step durations are against moto, whose transactions copy its whole table
//! (they grow with the table): they overstate what a step takes on AWS.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use assetbox_local::LocalStack;
use assetbox_shared::cleanup::{StepRecord, StepState, Task, first_steps};
use assetbox_shared::db::Table;
use assetbox_shared::db::keys::{DUE_SHARDS, due_shard};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{Value, json};

use crate::generation::{Account, account};
use crate::median;
use crate::uploads::{Proxy, proxied_stack};

type Item = HashMap<String, AttributeValue>;

fn text(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn ago(days: u64) -> String {
    assetbox_shared::clock::rfc3339(
        assetbox_shared::clock::now() - Duration::from_secs(days * 24 * 3600),
    )
}

/// One of the account's items by sort key, read straight from the emulator.
async fn item_of(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    account: &Account,
    sk: &str,
) -> anyhow::Result<Item> {
    dynamodb
        .get_item()
        .table_name(table)
        .key("pk", text(format!("USER#{}", account.owner)))
        .key("sk", text(sk))
        .send()
        .await?
        .item
        .context("the item")
}

/// Writes `count` copies of `item` under fresh ids, each changed by `with`.
async fn clone_items(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    item: &Item,
    count: usize,
    with: impl Fn(&str, &mut Item),
) -> anyhow::Result<()> {
    let mut requests = Vec::with_capacity(count);
    for _ in 0..count {
        let id = ulid::Ulid::new().to_string();
        let mut clone = item.clone();
        clone.insert("id".into(), text(&id));
        with(&id, &mut clone);
        requests.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(clone)).build()?)
                .build(),
        );
    }
    for batch in requests.chunks(25) {
        dynamodb
            .batch_write_item()
            .request_items(table, batch.to_vec())
            .send()
            .await?;
    }
    Ok(())
}

/// Runs `task` once and waits until every step is done; its step records
/// and the AWS calls the functions made meanwhile.
async fn one_run(
    stack: &LocalStack,
    table: &Table,
    proxy: &Proxy,
    task: Task,
) -> anyhow::Result<(Vec<StepRecord>, Vec<String>)> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    proxy.calls.lock().await.clear();
    let sent = sqs
        .send_message()
        .queue_url(stack.physical_id("CleanupQueue").context("queue")?)
        .message_body(json!({"kind": "scheduled-run", "tasks": [task.as_str()]}).to_string())
        .send()
        .await?;
    let run = sent.message_id().context("message id")?.to_owned();
    let first = first_steps(&run, "", &[task], DUE_SHARDS).len();
    loop {
        let steps = table.cleanup_steps(&run).await?;
        let follow_ups = steps.iter().filter(|s| s.follow_up).count();
        if steps.len() == first + follow_ups && steps.iter().all(|s| s.state == StepState::Done) {
            // The last step's own record write is counted by now.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok((steps, proxy.calls.lock().await.clone()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seconds(step: &StepRecord) -> f64 {
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
            .unwrap_or_default()
    };
    parse(step.finished.as_deref().unwrap_or_default()) - parse(&step.started)
}

/// What a run cost per item.
struct Measured {
    calls_per_item: BTreeMap<String, f64>,
    median_step_secs: f64,
}

fn report(task: Task, steps: &[StepRecord], calls: &[String]) -> Measured {
    let done: u32 = steps.iter().map(|s| s.counts.done).sum();
    let found: u32 = steps.iter().map(|s| s.counts.found).sum();
    let mut calls_per_item: BTreeMap<String, f64> = BTreeMap::new();
    for call in calls {
        *calls_per_item.entry(call.clone()).or_default() += 1.0 / done.max(1) as f64;
    }
    let mut rates: Vec<f64> = steps
        .iter()
        .filter(|s| s.counts.found > 0)
        .map(|s| s.counts.found as f64 / seconds(s).max(1e-3))
        .collect();
    let mut durations: Vec<f64> = steps
        .iter()
        .filter(|s| s.counts.found > 0)
        .map(seconds)
        .collect();
    let median_step_secs = if durations.is_empty() {
        0.0
    } else {
        median(&mut durations)
    };
    let listed: Vec<String> = calls_per_item
        .iter()
        .map(|(k, v)| format!("{v:.2}× {k}"))
        .collect();
    println!(
        "cleanup {}: {done} done of {found} found in {} steps; {:.2} AWS calls per item ({}); \
         per step (invocation) median {:.0} items/s, {:.2} s",
        task.as_str(),
        steps.len(),
        calls.len() as f64 / done.max(1) as f64,
        listed.join(", "),
        if rates.is_empty() {
            0.0
        } else {
            median(&mut rates)
        },
        median_step_secs,
    );
    Measured {
        calls_per_item,
        median_step_secs,
    }
}

/// The cost of expiring 10,000 uploads at `page` items a step, from the
/// measured calls and step time (on-demand prices, us-east-1, 2026:
/// DynamoDB $0.625 per million write and $0.125 per million read request
/// units; Lambda arm64 $0.0000133334 per GB-s and $0.20 per million
/// requests; SQS $0.40 per million requests).
fn cost_of_ten_thousand(expired: &Measured, page: usize) {
    let items = 10_000.0;
    let steps = (items / page as f64).ceil() + DUE_SHARDS as f64 + 1.0;
    let per_item = |op: &str| expired.calls_per_item.get(op).copied().unwrap_or(0.0);
    // A transaction writes the file (≤ 1 KB) and the quota counter: 2 items
    // at 2 WRU each; a step's claim and finish write 1 WRU each; reads are
    // strongly consistent items of ≤ 4 KB (1 RRU), the due page keys only.
    let wru = items * per_item("dynamodb:TransactWriteItems") * 4.0 + steps * 2.0;
    let rru = items * (1.0 + per_item("dynamodb:GetItem")) + steps;
    let gb_s = steps * expired.median_step_secs * 0.25;
    let sqs_requests = steps * 3.0;
    let dollars = wru * 0.625e-6
        + rru * 0.125e-6
        + gb_s * 0.000_013_333_4
        + steps * 0.2e-6
        + sqs_requests * 0.4e-6;
    println!(
        "cleanup of 10,000 expired uploads ({page} a step): {steps:.0} invocations, \
         {gb_s:.0} GB-s at the step time measured against the emulator; DynamoDB {wru:.0} WRU, \
         {rru:.0} RRU; {sqs_requests:.0} SQS requests; ≈ ${dollars:.4} on demand"
    );
}

pub async fn run(items: usize) -> anyhow::Result<()> {
    let (stack, proxy) = proxied_stack(
        vec![("CleanupScheduleState".into(), "DISABLED".into())],
        true,
    )
    .await?;
    let name = stack.physical_id("Table").context("table")?.to_owned();
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = Table::new(dynamodb.clone(), &name);
    let http = reqwest::Client::new();
    let account = account(&http, &stack.api_url).await?;
    let page = 100;

    // Expired uploads: one initiated for real, the rest its copies.
    let initiated: Value = http
        .post(format!("{}/v1/files/uploads", account.api))
        .bearer_auth(&account.token)
        .json(&json!({"file_name": "take.mp4", "file_size": 6u64 << 20,
                      "file_content_type": "video/mp4", "num_parts": 2, "part_size": 5u64 << 20}))
        .send()
        .await?
        .json()
        .await?;
    let file_id = initiated["id"].as_str().context("upload id")?;
    let upload = item_of(&dynamodb, &name, &account, &format!("FILE#{file_id}")).await?;
    let expired_at = ago(1);
    clone_items(&dynamodb, &name, &upload, items, |id, item| {
        item.insert("sk".into(), text(format!("FILE#{id}")));
        item.insert(
            "s3_key".into(),
            text(format!("uploads/{}/{id}/original.mp4", account.owner)),
        );
        item.insert("upload_id".into(), text(format!("never-created-{id}")));
        item.insert("expires_at".into(), text(&expired_at));
        item.insert("due_pk".into(), text(format!("UPLOAD#{}", due_shard(id))));
        item.insert("due_sk".into(), text(format!("{expired_at}#{id}")));
    })
    .await?;
    let (steps, calls) = one_run(&stack, &table, &proxy, Task::ExpireUploads).await?;
    let expired = report(Task::ExpireUploads, &steps, &calls);

    // Old aborted records: the same item, closed and created 8 days ago.
    let created = ago(8);
    clone_items(&dynamodb, &name, &upload, items, |id, item| {
        item.insert("sk".into(), text(format!("FILE#{id}")));
        item.insert(
            "s3_key".into(),
            text(format!("uploads/{}/{id}/original.mp4", account.owner)),
        );
        item.insert("upload_status".into(), text("aborted"));
        item.insert("reserved_bytes".into(), AttributeValue::N("0".into()));
        item.insert("gsi2pk".into(), text("FILES#aborted"));
        item.insert("gsi2sk".into(), text(format!("{created}#{id}")));
        item.insert("created".into(), text(&created));
        item.remove("due_pk");
        item.remove("due_sk");
    })
    .await?;
    let (steps, calls) = one_run(&stack, &table, &proxy, Task::PurgeFiles).await?;
    report(Task::PurgeFiles, &steps, &calls);

    // Old unkept assets: one small upload, ingested, and its copies.
    let png = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut bytes = Vec::new();
    png.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    let boundary = "assetbox-bench";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"frame.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    form.extend(bytes);
    form.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let asset: Value = http
        .post(format!(
            "{}/api/boxes/{}/upload/",
            account.api, account.box_id
        ))
        .bearer_auth(&account.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await?
        .json()
        .await?;
    let asset_id = asset["id"].as_str().context("asset id")?;
    let asset_item = loop {
        let item = item_of(&dynamodb, &name, &account, &format!("ASSET#{asset_id}")).await?;
        if item.get("status") == Some(&text("COMPLETED")) {
            break item;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let made = ago(11);
    clone_items(&dynamodb, &name, &asset_item, items, |id, item| {
        item.insert("sk".into(), text(format!("ASSET#{id}")));
        item.insert("gsi1sk".into(), text(format!("ASSET#{id}")));
        item.insert("gsi2sk".into(), text(format!("ASSET#{id}")));
        item.insert(
            "s3_key".into(),
            text(format!("uploads/{}/{id}/original.png", account.owner)),
        );
        item.insert(
            "thumbnail_key".into(),
            text(format!("uploads/{}/{id}/thumbnail.jpg", account.owner)),
        );
        item.insert("quota_bytes".into(), AttributeValue::N("0".into()));
        item.insert("created_at".into(), text(&made));
        item.insert(
            "due_pk".into(),
            text(format!("RETENTION#{}", due_shard(id))),
        );
        item.insert("due_sk".into(), text(format!("{made}#{id}")));
    })
    .await?;
    // The box counts them, as it would have.
    dynamodb
        .update_item()
        .table_name(&name)
        .key("pk", text(format!("USER#{}", account.owner)))
        .key("sk", text(format!("BOX#{}", account.box_id)))
        .update_expression("ADD assets_count :n")
        .expression_attribute_values(":n", AttributeValue::N(items.to_string()))
        .send()
        .await?;
    let (steps, calls) = one_run(&stack, &table, &proxy, Task::Retention).await?;
    report(Task::Retention, &steps, &calls);

    // Multipart uploads no record knows (moto's Initiated is 2010: old).
    let s3 = assetbox_shared::aws::s3(&stack.sdk);
    let bucket = stack.physical_id("MediaBucket").context("bucket")?;
    for _ in 0..items {
        // A ULID of two hours ago: old by the key as well.
        let minted = ulid::Ulid::from_parts(
            (assetbox_shared::clock::now().unix_timestamp() as u64 - 7200) * 1000,
            rand_tail(),
        );
        s3.create_multipart_upload()
            .bucket(bucket)
            .key(format!("uploads/{}/{minted}/original.mp4", account.owner))
            .send()
            .await?;
    }
    let (steps, calls) = one_run(&stack, &table, &proxy, Task::OrphanMultipart).await?;
    report(Task::OrphanMultipart, &steps, &calls);

    cost_of_ten_thousand(&expired, page);
    Ok(())
}

fn rand_tail() -> u128 {
    ulid::Ulid::new().random()
}
