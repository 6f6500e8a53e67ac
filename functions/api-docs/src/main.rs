#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    assetbox_shared::http::init_logging();
    assetbox_shared::http::run_lambda(api_docs::router()).await
}
