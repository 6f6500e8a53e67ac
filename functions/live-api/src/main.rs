use std::sync::Arc;

use assetbox_shared::config::ProcessEnv;
use assetbox_shared::{aws, http};
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let sdk = aws::load_sdk_config().await;
    let api = Arc::new(live_api::LiveApi::from_settings(&ProcessEnv, &sdk)?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let api = api.clone();
            async move { api.handle(event.payload).await }
        },
    ))
    .await
}
