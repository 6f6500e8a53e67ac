use std::sync::Arc;

use assetbox_shared::config::ProcessEnv;
use assetbox_shared::{aws, http};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let sdk = aws::load_sdk_config().await;
    let pusher = Arc::new(status_push::Pusher::from_settings(&ProcessEnv, &sdk)?);
    // The event is read record by record (a record that does not parse is
    // skipped, not a batch that fails for ever).
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let pusher = pusher.clone();
        async move { Ok::<_, lambda_runtime::Error>(pusher.handle(event.payload).await) }
    }))
    .await
}
