//! Generation jobs (SPEC §3.5) on their assets: recorded before the
//! provider is called, submitted once, polled through SQS with growing
//! delays, woken by signed callbacks, and finished by storing every result
//! in S3 for ingestion. The rules are in [`crate::ai`]; here are the job's
//! conditional moves (`store.rs`), the provider calls (`provider.rs`) and
//! the workflow dispatch, poll and callback share (`flow.rs`).

pub mod flow;
pub mod provider;
mod store;

pub use store::{IDEMPOTENCY_TTL_SECS, KeyUse, NotRecorded};
