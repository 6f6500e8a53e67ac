//! ingest-object (SPEC §3.6): `describe` is the pure core (event keys, types
//! from bytes, image description and thumbnail); `ingest` reads an object
//! and finishes its asset. The S3 event entry point and its wiring (template,
//! local delivery) come with the rest of the ingestion issue.

pub mod describe;
pub mod ingest;
pub use describe::{ImageFacts, THUMBNAIL_MAX_PX, decode_event_key, describe_image, sniff};
pub use ingest::{Ingestor, Outcome};
