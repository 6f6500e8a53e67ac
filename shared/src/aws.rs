//! AWS SDK configuration. Clients are built once per cold start in `main` and
//! lent to handlers. `aws_config` honours `AWS_ENDPOINT_URL` (and per-service
//! variants), so pointing at an emulator needs no special code path here.

pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// S3 against AWS uses virtual-hosted addressing; an endpoint override means
/// an emulator, which needs path-style (as [`crate::s3::presign`] assumes too).
pub fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
