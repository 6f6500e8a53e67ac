//! Part checksums S3 verifies: each part URL signs its part's
//! `x-amz-checksum-*`, so S3 refuses a part whose bytes changed on the way.
//!
//! Its own, not `shared/src/s3/checksum.rs`: the CLI speaks HTTP only and
//! does not carry the shared crate (and with it the AWS SDK).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    Sha256,
    Crc32,
    Crc32c,
    Crc64nvme,
}

impl Checksum {
    /// The API's name (`checksum_algorithm`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA256",
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64nvme => "CRC64NVME",
        }
    }

    /// The header a part's PUT carries (`x-amz-checksum-crc32c`, …).
    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.api_name().to_ascii_lowercase())
    }

    /// CRCs combine, so the whole file's checksum comes from the parts'
    /// without reading the file again: those uploads are `FULL_OBJECT` and
    /// S3 checks the assembled object too. SHA-256 can only be composite.
    pub fn full_object(self) -> bool {
        self != Self::Sha256
    }

    fn crc(self) -> Option<(crc_fast::CrcAlgorithm, usize)> {
        match self {
            Self::Sha256 => None,
            Self::Crc32 => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
            Self::Crc32c => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
            Self::Crc64nvme => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
        }
    }

    pub fn hasher(self) -> Hasher {
        match self.crc() {
            None => Hasher::Sha(sha2::Sha256::new()),
            Some((algorithm, width)) => Hasher::Crc(crc_fast::Digest::new(algorithm), width),
        }
    }

    /// The whole file's checksum from its parts' (base64, in part order,
    /// with their lengths); `None` for SHA-256 or a malformed part value.
    pub fn combine(self, parts: &[(String, u64)]) -> Option<String> {
        let (algorithm, width) = self.crc()?;
        let mut whole: Option<u64> = None;
        for (encoded, len) in parts {
            let bytes = STANDARD.decode(encoded).ok()?;
            if bytes.len() != width {
                return None;
            }
            let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            whole = Some(match whole {
                None => value,
                Some(acc) => crc_fast::checksum_combine(algorithm, acc, value, *len),
            });
        }
        whole.map(|value| encode(value, width))
    }
}

/// S3 encodes a CRC as its big-endian bytes in base64.
fn encode(value: u64, width: usize) -> String {
    STANDARD.encode(&value.to_be_bytes()[8 - width..])
}

pub enum Hasher {
    Sha(sha2::Sha256),
    Crc(crc_fast::Digest, usize),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha(sha) => sha.update(bytes),
            Self::Crc(crc, _) => crc.update(bytes),
        }
    }

    /// Base64, as S3's headers carry it.
    pub fn finish(self) -> String {
        match self {
            Self::Sha(sha) => STANDARD.encode(sha.finalize()),
            Self::Crc(crc, width) => encode(crc.finalize(), width),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: Checksum, bytes: &[u8]) -> String {
        let mut h = kind.hasher();
        h.update(bytes);
        h.finish()
    }

    fn b64(value: u64, width: usize) -> String {
        encode(value, width)
    }

    #[test]
    fn each_algorithm_is_s3s() {
        // The catalogue check values of "123456789" for each CRC.
        assert_eq!(of(Checksum::Crc32, b"123456789"), b64(0xCBF4_3926, 4));
        assert_eq!(of(Checksum::Crc32c, b"123456789"), b64(0xE306_9283, 4));
        assert_eq!(
            of(Checksum::Crc64nvme, b"123456789"),
            b64(0xAE8B_1486_0A79_9888, 8)
        );
        assert_eq!(
            of(Checksum::Sha256, b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn the_whole_file_checksum_combines_the_parts() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for kind in [Checksum::Crc32, Checksum::Crc32c, Checksum::Crc64nvme] {
            let parts: Vec<(String, u64)> = data
                .chunks(3000)
                .map(|c| (of(kind, c), c.len() as u64))
                .collect();
            assert_eq!(kind.combine(&parts), Some(of(kind, &data)), "{kind:?}");
        }
        assert_eq!(Checksum::Sha256.combine(&[("x".into(), 1)]), None);
    }
}
