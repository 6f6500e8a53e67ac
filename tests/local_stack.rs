//! The local stack itself: what it provisioned matches template.yaml, its
//! API Gateway stand-in answers like API Gateway, and schedules fire.

use assetbox_e2e::{Client, stack};
use assetbox_local::template::Template;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn template() -> Template {
    Template::load(&assetbox_local::project_root().join("template.yaml")).expect("template.yaml")
}

#[tokio::test]
async fn provisioned_resources_match_the_template() {
    let stack = stack();
    let template = template();
    let sdk = stack.sdk().await;

    // Table: keys, indexes and TTL as declared.
    let (_, declared) = template
        .of_type("AWS::DynamoDB::Table")
        .next()
        .expect("a table");
    let declared = &declared["Properties"];
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamodb
        .describe_table()
        .table_name(&stack.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| (k.attribute_name.clone(), k.key_type.as_str().to_owned()))
            .collect()
    };
    let declared_keys = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_owned(),
                    k["KeyType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        keys(table.key_schema()),
        declared_keys(&declared["KeySchema"])
    );
    let mut live: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| (g.index_name().unwrap().to_owned(), keys(g.key_schema())))
        .collect();
    let mut want: Vec<_> = declared["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["IndexName"].as_str().unwrap().to_owned(),
                declared_keys(&g["KeySchema"]),
            )
        })
        .collect();
    live.sort();
    want.sort();
    assert_eq!(live, want);
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&stack.table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(
        ttl.attribute_name(),
        declared["TimeToLiveSpecification"]["AttributeName"].as_str()
    );
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );

    // Bucket: private, CORS that lets a browser read ETag, multipart cleanup.
    let s3 = assetbox_local::s3_client(&sdk);
    let bucket = stack.physical_ids["MediaBucket"].clone();
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.block_public_policy(),
            block.ignore_public_acls(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let cors = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    let rule = &cors.cors_rules()[0];
    assert!(rule.expose_headers().contains(&"ETag".to_owned()));
    assert!(rule.expose_headers().contains(&"Location".to_owned()));
    for method in ["GET", "PUT", "HEAD", "POST", "DELETE"] {
        assert!(
            rule.allowed_methods().contains(&method.to_owned()),
            "{method}"
        );
    }
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        lifecycle
            .rules()
            .iter()
            .any(|r| r.abort_incomplete_multipart_upload().is_some())
    );

    // Queues: each redrives to the DLQ the template names.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut checked = 0;
    for (id, queue) in template.of_type("AWS::SQS::Queue") {
        let Some(dlq) = queue
            .pointer("/Properties/RedrivePolicy/deadLetterTargetArn/Fn::GetAtt/0")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&stack.physical_ids[id])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let policy: Value = serde_json::from_str(
            &attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy],
        )
        .unwrap();
        assert_eq!(policy["deadLetterTargetArn"], stack.arns[dlq], "{id}");
        assert_eq!(
            policy["maxReceiveCount"].to_string().trim_matches('"'),
            queue["Properties"]["RedrivePolicy"]["maxReceiveCount"].to_string(),
            "{id}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "the template's queues have DLQs");
}

#[tokio::test]
async fn gateway_answers_like_api_gateway() {
    let api = Client::new();
    let user = api.new_user().await;
    let unknown = api.get("/nowhere", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body, json!({ "message": "Not Found" }));
    // A route the template does not declare for that method.
    let wrong_method = api
        .json(Method::PUT, "/api/auth/login", None, &json!({}))
        .await;
    assert_eq!(wrong_method.status, StatusCode::NOT_FOUND);
    // Past Lambda's 6 MB invocation payload.
    let big = vec![b'x'; 7 * 1024 * 1024];
    let reply = api
        .send(
            Method::POST,
            "/api/projects/",
            Some(&user.access_token),
            Some(("application/json", big)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(stack().items_of(&user.id).await.is_empty());
}

#[tokio::test]
async fn the_schedules_fire_cleanup_runs_named_by_their_time() {
    // Test stacks fire schedules every 20 s instead of hourly and daily;
    // each firing's message carries its scheduled time, which names the
    // run, and the cleanup function works every task of the two schedules.
    use assetbox_shared::cleanup::{StepRecord, StepState, Task};
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = stack();
    let dynamodb = stack.dynamodb().await;
    let waited = std::time::Instant::now();
    loop {
        let out = dynamodb
            .scan()
            .table_name(&stack.table)
            .filter_expression("entity = :step")
            .expression_attribute_values(":step", AttributeValue::S("cleanup_step".into()))
            .send()
            .await
            .expect("scan");
        let steps: Vec<StepRecord> =
            serde_dynamo::from_items(out.items.unwrap_or_default()).expect("step records");
        // Runs of the schedules are named by a time; test runs by a message id.
        let done: std::collections::BTreeSet<&str> = steps
            .iter()
            .filter(|s| s.step.run.ends_with('Z') && s.state == StepState::Done)
            .map(|s| s.step.task.as_str())
            .collect();
        if done.len() == Task::ALL.len() {
            break;
        }
        assert!(
            waited.elapsed() < assetbox_e2e::SCHEDULE_EVERY * 4,
            "tasks done by scheduled runs: {done:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn sqs_pump_deletes_what_the_consumer_handled_and_keeps_its_failures() {
    use std::sync::{Arc, Mutex};

    use assetbox_local::pumps::{SqsConsumer, spawn_sqs_pump};
    use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
    use aws_sdk_sqs::types::QueueAttributeName;

    let stack = stack();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk().await);
    // A queue of its own: the stack's queues have their functions' pumps.
    let name = format!("pump-test-{}", ulid::Ulid::new());
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "120")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in ["ok-1", "fail", "ok-2"] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let consumer: SqsConsumer = Arc::new(move |event| {
        let recorder = recorder.clone();
        Box::pin(async move {
            let mut response = SqsBatchResponse::default();
            for record in event.records {
                let body = record.body.clone().unwrap_or_default();
                if body == "fail" {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.message_id.clone().unwrap();
                    response.batch_item_failures.push(failure);
                }
                assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
                recorder.lock().unwrap().push(body);
            }
            Ok(response)
        })
    });
    let pump = spawn_sqs_pump(
        sqs.clone(),
        queue_url.clone(),
        format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
        10,
        consumer,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    pump.abort();
    let mut bodies = seen.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(bodies, ["fail", "ok-1", "ok-2"]);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let count =
        |name: QueueAttributeName| attrs.attributes().unwrap()[&name].parse::<u32>().unwrap();
    assert_eq!(count(QueueAttributeName::ApproximateNumberOfMessages), 0);
    // Only the failed message is still on the queue, in flight until its visibility timeout.
    assert_eq!(
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1
    );
}

/// A port already in use fails the start at once, naming the port and the
/// reason (moto's own server would wait for ever for a bind that failed).
#[tokio::test]
async fn a_port_in_use_fails_the_start_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for options in [
        assetbox_local::Options {
            emulator_port: port,
            ..Default::default()
        },
        assetbox_local::Options {
            api_port: port,
            ..Default::default()
        },
    ] {
        let err = assetbox_local::LocalStack::start(options)
            .await
            .err()
            .expect("a taken port is refused");
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("in use"),
            "{text}"
        );
    }
}
