//! The function registry: which crate serves each `BuildProperties.Binary`
//! of the template. Each crate's `app()` is the same wiring its `main.rs`
//! uses, fed with the template's environment instead of the process's.

use anyhow::bail;
use assetbox_shared::http::{HttpService, service};
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::template::FunctionSpec;

pub enum LocalFunction {
    Http(HttpService),
    /// Consumes SQS batches (an event source mapping calls it).
    Sqs(crate::pumps::SqsConsumer),
    /// Takes S3 events (S3 invokes it asynchronously).
    S3(crate::s3_events::S3Consumer),
    /// A Lambda authorizer of the WebSocket API.
    Authorizer(Arc<live_authorizer::Authorizer>),
    /// A route of the WebSocket API.
    WebSocket(Arc<live_api::LiveApi>),
    /// Reads DynamoDB stream batches (an event source mapping calls it).
    Stream(crate::streams::StreamConsumer),
}

/// One table, one row per binary, whatever invokes it.
pub fn build(spec: &FunctionSpec, sdk: &SdkConfig) -> anyhow::Result<LocalFunction> {
    let env = &spec.environment;
    let http = |router| LocalFunction::Http(service(router));
    Ok(match spec.binary.as_str() {
        "catalog-api" => http(catalog_api::app(env, sdk)?),
        "auth-api" => http(auth_api::app(env, sdk)?),
        "api-docs" => http(api_docs::router()),
        "upload-initiate" => http(upload_initiate::app(env, sdk)?),
        "upload-parts" => http(upload_parts::app(env, sdk)?),
        "upload-complete" => http(upload_complete::app(env, sdk)?),
        "upload-abort" => http(upload_abort::app(env, sdk)?),
        "upload-sign" => http(upload_sign::app(env, sdk)?),
        "project-export" => http(project_export::app(env, sdk)?),
        "import-url" => {
            let importer = Arc::new(import_url::Importer::from_settings(env, sdk)?);
            LocalFunction::Sqs(Arc::new(move |event| {
                let importer = importer.clone();
                Box::pin(async move { Ok(importer.handle(event).await) })
            }))
        }
        "generate-dispatch" => http(generate_dispatch::app(env, sdk)?),
        "generation-callback" => http(generation_callback::app(env, sdk)?),
        "generation-poll" => {
            let poller = Arc::new(generation_poll::Poller::from_settings(env, sdk)?);
            LocalFunction::Sqs(Arc::new(move |event| {
                let poller = poller.clone();
                Box::pin(async move { Ok(poller.handle(event).await) })
            }))
        }
        "cleanup" => {
            let cleaner = Arc::new(cleanup::Cleaner::from_settings(env, sdk)?);
            LocalFunction::Sqs(Arc::new(move |event| {
                let cleaner = cleaner.clone();
                Box::pin(async move { Ok(cleaner.handle(event).await) })
            }))
        }
        "ingest-object" => {
            let ingestor = Arc::new(ingest_object::Ingestor::from_settings(env, sdk)?);
            LocalFunction::S3(Arc::new(move |event| {
                let ingestor = ingestor.clone();
                Box::pin(async move { ingest_object::handle(&ingestor, event).await })
            }))
        }
        "live-authorizer" => {
            LocalFunction::Authorizer(Arc::new(live_authorizer::Authorizer::from_settings(env)?))
        }
        "live-api" => {
            LocalFunction::WebSocket(Arc::new(live_api::LiveApi::from_settings(env, sdk)?))
        }
        "status-push" => {
            let pusher = Arc::new(status_push::Pusher::from_settings(env, sdk)?);
            LocalFunction::Stream(Arc::new(move |event| {
                let pusher = pusher.clone();
                Box::pin(async move { pusher.handle(event).await })
            }))
        }
        other => bail!(
            "template function {} builds binary {other}, which the local stack cannot run yet",
            spec.logical_id
        ),
    })
}
