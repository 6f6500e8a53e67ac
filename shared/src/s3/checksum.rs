//! S3's own vocabulary that requests carry through us: the checksum
//! algorithms and types of multipart uploads and the part list of a
//! complete. Pure, so upload rules can name them without the SDK.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A part as the client reports it at complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPart {
    pub part_number: u32,
    pub etag: String,
}

/// ETags are compared without their quotes (browsers and scripts differ).
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// Per-part checksums the client commits to at initiate: storage verifies
/// each part against the signed `x-amz-checksum-*` header of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChecksumAlgorithm {
    Sha256,
    Crc32,
    Crc32c,
    Crc64nvme,
}

/// How S3 checks the whole object at complete: `COMPOSITE` (a checksum of
/// the part checksums, any algorithm) or `FULL_OBJECT` (the checksum of the
/// whole file, CRC algorithms only; what a client can compute while reading
/// the file once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    Composite,
    FullObject,
}

impl ChecksumAlgorithm {
    /// The header that carries a part's checksum.
    pub fn header(self) -> &'static str {
        match self {
            Self::Sha256 => "x-amz-checksum-sha256",
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64nvme => "x-amz-checksum-crc64nvme",
        }
    }

    /// The checksum types S3 allows with this algorithm.
    pub fn allows(self, kind: ChecksumType) -> bool {
        match self {
            Self::Sha256 => kind == ChecksumType::Composite,
            Self::Crc64nvme => kind == ChecksumType::FullObject,
            Self::Crc32 | Self::Crc32c => true,
        }
    }

    /// S3's default type for the algorithm.
    pub fn default_type(self) -> ChecksumType {
        match self {
            Self::Crc64nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    /// Length of the base64 encoding of the digest.
    fn encoded_len(self) -> usize {
        match self {
            Self::Sha256 => 44,
            Self::Crc32 | Self::Crc32c => 8,
            Self::Crc64nvme => 12,
        }
    }

    pub fn check(self, value: &str) -> Result<(), String> {
        use base64::Engine;
        let ok = value.len() == self.encoded_len()
            && base64::engine::general_purpose::STANDARD
                .decode(value)
                .is_ok();
        if ok {
            Ok(())
        } else {
            Err(format!(
                "must be the base64 {} of the part ({} characters)",
                match self {
                    Self::Sha256 => "SHA-256",
                    Self::Crc32 => "CRC32",
                    Self::Crc32c => "CRC32C",
                    Self::Crc64nvme => "CRC64NVME",
                },
                self.encoded_len()
            ))
        }
    }
}
