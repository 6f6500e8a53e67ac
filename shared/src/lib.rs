//! The common crate of every assetbox function: configuration, the single-table
//! design, the error contract, the caller extractor, cursor pagination, the
//! AWS adapters and the HTTP glue. Functions stay thin: wiring in `main.rs`,
//! routes in `lib.rs`, rules and storage here.

pub mod assets;
pub mod aws;
pub mod boxes;
pub mod boxes_store;
pub mod caller;
pub mod clock;
pub mod config;
pub mod dynamo;
pub mod error;
pub mod files_store;
pub mod http;
pub mod imports;
pub mod ingestion;
pub mod keys;
pub mod lambda;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod objects;
pub mod pagination;
pub mod presign;
pub mod projects;
pub mod sharing;
pub mod upload_env;
pub mod uploads;
pub mod validation;
