//! The common crate of every assetbox function. Functions stay thin: wiring in
//! `main.rs`, routes in `lib.rs`, rules and storage here.
//!
//! Modules are declared in dependency order: each names only those above it
//! (a test, `tests/layers.rs`, keeps it so). Infrastructure (`db`, `s3`,
//! `http`, `lambda`, `aws`) knows no domain; each domain folder has the same
//! shape: `mod.rs` types and rules (no AWS SDK, axum or `db`), `store.rs` its
//! items and conditional writes, `flow.rs` a workflow two functions share.
//! `ai/` is the AI registry (providers and models as data) and the rules of
//! a generation; `generation/` runs the jobs on their assets; `cleanup/`
//! pages through what the others leave behind.

// Plain rules and values.
pub mod clock;
pub mod validation;
pub mod wire;
pub mod config;
pub mod error;
pub mod pagination;

// Infrastructure.
pub mod db;
pub mod s3;
pub mod aws;
pub mod secrets;
pub mod http;
pub mod lambda;
pub mod download;

// Domains, each after those it builds on.
pub mod media;
pub mod catalog;
pub mod uploads;
pub mod ai;
pub mod assets;
pub mod sharing;
pub mod imports;
pub mod ingestion;
pub mod generation;
pub mod cleanup;
pub mod live;
