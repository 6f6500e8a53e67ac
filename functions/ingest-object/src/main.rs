use std::sync::Arc;

use assetbox_shared::config::ProcessEnv;
use assetbox_shared::{aws, http};
use aws_lambda_events::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let sdk = aws::load_sdk_config().await;
    let ingestor = Arc::new(ingest_object::Ingestor::from_settings(&ProcessEnv, &sdk)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let ingestor = ingestor.clone();
        async move {
            ingest_object::handle(&ingestor, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
