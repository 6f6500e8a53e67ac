//! AWS SDK configuration. Clients are built once per cold start in `main` and
//! lent to handlers. `aws_config` honours `AWS_ENDPOINT_URL` (and per-service
//! variants), so pointing at an emulator needs no special code path here.

pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}
