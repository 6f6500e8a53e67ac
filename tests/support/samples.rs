//! The `events/` samples run through a function as Lambda would run them.

use serde_json::Value;

use crate::*;

/// A function of the stack wired as the local stack wires it, and the text
/// of one of its `events/` samples.
async fn function_and_sample(
    binary: &str,
    sample: &str,
) -> (assetbox_local::functions::LocalFunction, String) {
    let spec = stack()
        .functions
        .iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("no function builds {binary}"));
    let sdk = stack().sdk().await;
    let function = assetbox_local::functions::build(spec, &sdk).expect("wire function");
    let path = assetbox_local::project_root()
        .join("events")
        .join(binary)
        .join(sample);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (function, text)
}

/// Runs an `events/` sample through a function as Lambda would (lambda_http's
/// adapter), wired with the stack's environment but without its gateway:
/// the sample's own claims and route are what the function sees.
pub async fn invoke_sample(binary: &str, sample: &str) -> (u16, Value) {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::Http(service) = function else {
        panic!("{binary} is not an HTTP function");
    };
    let event = serde_json::from_str(&text).expect("sample is an API Gateway v2 event");
    let response = assetbox_shared::http::invoke(&service, event, "sample")
        .await
        .expect("handler");
    let response = serde_json::to_value(response).expect("response JSON");
    let body = response["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (
        response["statusCode"].as_u64().expect("statusCode") as u16,
        body,
    )
}
/// Runs an `events/` SQS sample through an SQS-consuming function as an
/// event source mapping would; the messages it asks to see again.
pub async fn invoke_sqs_sample(binary: &str, sample: &str) -> Vec<String> {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::Sqs(consumer) = function else {
        panic!("{binary} does not consume SQS");
    };
    let event = serde_json::from_str(&text).expect("sample is an SQS event");
    consumer(event)
        .await
        .expect("handler")
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// Runs an `events/` S3 sample through an S3-consuming function as S3
/// invokes it (one attempt); `Err` when the function asks to be retried.
pub async fn invoke_s3_sample(binary: &str, sample: &str) -> Result<(), String> {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::S3(consumer) = function else {
        panic!("{binary} takes no S3 events");
    };
    let event = serde_json::from_str(&text).expect("sample is an S3 event");
    consumer(event).await
}

/// Runs an `events/` sample of the live WebSocket API's functions (the
/// authorizer, the routes, the stream consumer) as Lambda would; what the
/// function answered, as JSON. A sample's connection is moved to now (a
/// connection lives two hours; the file's time has long passed).
pub async fn invoke_live_sample(binary: &str, sample: &str) -> Value {
    use assetbox_local::functions::LocalFunction;
    let (function, text) = function_and_sample(binary, sample).await;
    let mut event: Value = serde_json::from_str(&text).expect("sample is JSON");
    if let Some(context) = event
        .get_mut("requestContext")
        .and_then(Value::as_object_mut)
    {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_millis() as i64;
        context.insert("connectedAt".into(), now_ms.into());
        context.insert("requestTimeEpoch".into(), now_ms.into());
    }
    let answer = match function {
        LocalFunction::Authorizer(authorizer) => serde_json::to_value(
            authorizer
                .handle(serde_json::from_value(event).expect("an authorizer request"))
                .await
                .expect("an answer"),
        ),
        LocalFunction::WebSocket(api) => serde_json::to_value(
            api.handle(serde_json::from_value(event).expect("a WebSocket event"))
                .await
                .expect("an answer"),
        ),
        LocalFunction::Stream(consumer) => serde_json::to_value(consumer(event).await),
        _ => panic!("{binary} is not a live function"),
    };
    answer.expect("the answer serialises")
}
