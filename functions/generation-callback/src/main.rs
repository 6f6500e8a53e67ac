use assetbox_shared::config::ProcessEnv;
use assetbox_shared::{aws, http};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::init_logging();
    let sdk = aws::load_sdk_config().await;
    http::run_lambda(generation_callback::app(&ProcessEnv, &sdk)?).await
}
