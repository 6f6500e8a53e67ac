//! ingest-object (SPEC §3.6), the pure core: what an S3 event's key means,
//! what an object's first bytes are, and an image's description and
//! thumbnail. The S3 event handler that reads objects and finishes assets
//! builds on these.

pub mod describe;
pub use describe::{ImageFacts, THUMBNAIL_MAX_PX, decode_event_key, describe_image, sniff};
