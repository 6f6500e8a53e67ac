//! Media: what kind of image or video bytes are, from their own signature
//! (never the name or the declared type), and what ingestion learns of
//! them. The one rule every way in (small upload, import, ingestion) checks
//! against the allowlist of [`crate::uploads::UploadPolicy`].

use crate::wire::wire_enum;
use serde::{Deserialize, Serialize};

wire_enum! {
    /// What an asset is: an image or a video.
    pub enum AssetType {
        Image = "IMAGE",
        Video = "VIDEO",
    }
}

impl AssetType {
    pub fn of_content_type(content_type: &str) -> Option<Self> {
        if content_type.starts_with("image/") {
            Some(Self::Image)
        } else if content_type.starts_with("video/") {
            Some(Self::Video)
        } else {
            None
        }
    }
}

/// The media type a file's first bytes carry the signature of, if any.
pub fn media_signature(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|t| t.mime_type())
}

/// Why bytes are not an upload we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotMedia {
    #[error("the content is not a recognised image or video")]
    Unrecognised,
    #[error("the content is {0}, not an allowed image or video")]
    NotAllowed(&'static str),
}

/// What ingestion learned about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// As read from the bytes.
    pub content_type: String,
    pub size: u64,
    /// The ETag of the object described (a replaced object is another one).
    #[serde(default)]
    pub etag: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub thumbnail_key: Option<String>,
    /// S3's stored checksum (`ALGORITHM:value`), when it has one.
    #[serde(default)]
    pub checksum: Option<String>,
}
