use std::sync::Arc;

use assetbox_shared::config::ProcessEnv;
use assetbox_shared::{aws, http};
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let sdk = aws::load_sdk_config().await;
    let cleaner = Arc::new(cleanup::Cleaner::from_settings(&ProcessEnv, &sdk)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let cleaner = cleaner.clone();
        async move { Ok::<_, lambda_runtime::Error>(cleaner.handle(event.payload).await) }
    }))
    .await
}
