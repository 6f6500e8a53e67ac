use std::sync::Arc;

use assetbox_shared::config::ProcessEnv;
use assetbox_shared::http;
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    http::init_logging();
    let authorizer = Arc::new(live_authorizer::Authorizer::from_settings(&ProcessEnv)?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
            let authorizer = authorizer.clone();
            async move { authorizer.handle(event.payload).await }
        },
    ))
    .await
}
