//! The function registry: which crate serves each `BuildProperties.Binary`
//! of the template. Each crate's `app()` is the same wiring its `main.rs`
//! uses, fed with the template's environment instead of the process's.

use anyhow::bail;
use assetbox_shared::http::{HttpService, service};
use aws_config::SdkConfig;

use crate::template::FunctionSpec;

pub enum LocalFunction {
    Http(HttpService),
    /// Consumes SQS batches (an event source mapping calls it).
    Sqs(crate::pumps::SqsConsumer),
    /// Takes S3 events (S3 invokes it asynchronously).
    S3(crate::s3_events::S3Consumer),
}

pub fn build(spec: &FunctionSpec, sdk: &SdkConfig) -> anyhow::Result<LocalFunction> {
    let env = &spec.environment;
    if spec.binary == "import-url" {
        let importer = std::sync::Arc::new(import_url::Importer::from_settings(env, sdk)?);
        return Ok(LocalFunction::Sqs(std::sync::Arc::new(move |event| {
            let importer = importer.clone();
            Box::pin(async move { Ok(importer.handle(event).await) })
        })));
    }
    if spec.binary == "ingest-object" {
        let ingestor = std::sync::Arc::new(ingest_object::Ingestor::from_settings(env, sdk)?);
        return Ok(LocalFunction::S3(std::sync::Arc::new(move |event| {
            let ingestor = ingestor.clone();
            Box::pin(async move { ingest_object::handle(&ingestor, event).await })
        })));
    }
    let router = match spec.binary.as_str() {
        "catalog-api" => catalog_api::app(env, sdk)?,
        "auth-api" => auth_api::app(env, sdk)?,
        "api-docs" => api_docs::router(),
        "upload-initiate" => upload_initiate::app(env, sdk)?,
        "upload-parts" => upload_parts::app(env, sdk)?,
        "upload-complete" => upload_complete::app(env, sdk)?,
        "upload-abort" => upload_abort::app(env, sdk)?,
        "upload-sign" => upload_sign::app(env, sdk)?,
        "project-export" => project_export::app(env, sdk)?,
        other => bail!(
            "template function {} builds binary {other}, which the local stack cannot run yet",
            spec.logical_id
        ),
    };
    Ok(LocalFunction::Http(service(router)))
}
