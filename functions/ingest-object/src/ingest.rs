//! One created object, ingested: find the asset it belongs to, check its
//! real type, describe it, thumbnail an image, and finish the asset.
//!
//! - The key says whose and which record (`uploads/<owner>/<id>/original.*`,
//!   `<id>` an asset for small uploads and imports, a file for direct
//!   uploads). Other keys (thumbnails, exports) are not ours to ingest.
//! - No record yet is a retry: a small upload stores its object a moment
//!   before its record. Lambda retries an asynchronous event twice, then the
//!   event goes to the function's DLQ — which is where an object no record
//!   ever claims ends up, logged and left alone (the cleanup job's orphan
//!   sweep removes objects, not this handler: an early event must never
//!   delete a file whose record is on its way).
//! - Videos (MP4, MOV): duration and size from the `moov` box, found by
//!   reading top-level box headers (16 bytes each) so the media is never
//!   downloaded. No video thumbnail yet (that needs a decoder in the
//!   Lambda); WebM is accepted without a description.
//! - A duplicate, late or superseded event changes nothing: the asset must
//!   still be `PROCESSING` this very key, the object must still exist with
//!   the event's ETag, and both writes are conditional on that.

use assetbox_shared::assets::{AssetRecord, AssetStatus, AssetType};
use assetbox_shared::clock;
use assetbox_shared::ingestion::Description;
use assetbox_shared::upload_env::UploadEnv;
use assetbox_shared::uploads::{self, FileRecord};

use crate::describe::{box_header, decode_event_key, describe_image, describe_moov, sniff};

/// Bytes read to tell the type (every signature `infer` knows fits).
const HEAD_BYTES: u64 = 8 * 1024;
/// Top-level boxes walked looking for `moov` (real files have a handful).
const MAX_TOP_LEVEL_BOXES: usize = 64;
/// A `moov` larger than this is not read (hours of video with many tracks).
const MOOV_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Images above this are not decoded in a Lambda (no thumbnail, no
/// dimensions; the asset still completes).
pub const IMAGE_DECODE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Not an allowed image or video, or not what was declared: the asset
    /// is `FAILED` with this reason and the object removed.
    Rejected(String),
    /// Nothing to do (why, for the log).
    Skipped(&'static str),
    /// Try again later (no record yet, or a transient failure).
    Retry(String),
}

pub struct Ingestor {
    pub env: UploadEnv,
}

impl Ingestor {
    /// Ingests the object an `ObjectCreated` record names (`raw_key` as the
    /// event carries it, URL-encoded; `etag` the event's).
    pub async fn ingest(&self, raw_key: &str, etag: Option<&str>) -> Outcome {
        match self.try_ingest(raw_key, etag).await {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Retry(reason),
        }
    }

    async fn try_ingest(&self, raw_key: &str, etag: Option<&str>) -> Result<Outcome, String> {
        let key = decode_event_key(raw_key);
        let Some((owner, id)) = uploads::parse_object_key(&key) else {
            return Ok(Outcome::Skipped("not an uploaded original"));
        };
        let Some((asset, file)) = self.claimed_by(owner, id).await? else {
            return Ok(Outcome::Retry(format!("no record claims {key} yet")));
        };
        if asset.status != AssetStatus::Processing || asset.s3_key != key {
            return Ok(Outcome::Skipped("the asset is not processing this object"));
        }
        let bucket = &self.env.bucket;
        // One ranged GET: the type's signature, the size and the ETag.
        let Some(read) = bucket
            .head_bytes(&key, HEAD_BYTES)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Outcome::Skipped("the object is gone"));
        };
        if let Some(etag) = etag
            && uploads::bare_etag(etag) != uploads::bare_etag(&read.etag)
        {
            return Ok(Outcome::Skipped("the object was replaced since this event"));
        }
        let (head, size) = (read.bytes, read.size);
        let detected = sniff(&head);
        let policy = &self.env.policy;
        let rejection = match detected {
            None => Some("the content is not a recognised image or video".to_owned()),
            Some(mime)
                if AssetType::of_content_type(mime).is_none() || !policy.allows_type(mime) =>
            {
                Some(format!(
                    "the content is {mime}, not an allowed image or video"
                ))
            }
            Some(mime) if mime != asset.content_type => Some(format!(
                "the content is {mime}, but the upload declared {}",
                asset.content_type
            )),
            Some(_) => None,
        };
        let now = clock::rfc3339(clock::now());
        if let Some(reason) = rejection {
            bucket.delete(&key).await.map_err(|e| e.to_string())?;
            return match self
                .env
                .table
                .fail_ingest(&asset, file.as_ref(), &reason, &now)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(()) => Ok(Outcome::Rejected(reason)),
                Err(_) => Ok(Outcome::Skipped("the asset changed meanwhile")),
            };
        }
        let content_type = detected.unwrap_or_default().to_owned();
        let mut description = Description {
            content_type,
            size,
            ..Description::default()
        };
        if asset.asset_type == AssetType::Image && size <= IMAGE_DECODE_MAX_BYTES {
            // Small images came whole with the head.
            let bytes = match head.len() as u64 == size {
                true => head.clone(),
                false => bucket
                    .get(&key, IMAGE_DECODE_MAX_BYTES)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the object vanished while being read")?,
            };
            let facts = tokio::task::spawn_blocking(move || describe_image(&bytes))
                .await
                .map_err(|e| e.to_string())?;
            match facts {
                Ok(facts) => {
                    let thumbnail_key = thumbnail_key(&key);
                    bucket
                        .put(&thumbnail_key, facts.thumbnail_jpeg, "image/jpeg", None)
                        .await
                        .map_err(|e| e.to_string())?;
                    description.width = Some(facts.width);
                    description.height = Some(facts.height);
                    description.thumbnail_key = Some(thumbnail_key);
                }
                Err(reason) => tracing::warn!(key, reason, "image not described"),
            }
        }
        if matches!(
            description.content_type.as_str(),
            "video/mp4" | "video/quicktime"
        ) {
            match self.find_moov(&key, size).await? {
                Some(moov) => match describe_moov(&moov) {
                    Ok(video) => {
                        description.duration_ms = Some(video.duration_ms);
                        description.width = video.width;
                        description.height = video.height;
                    }
                    Err(reason) => tracing::warn!(key, reason, "video not described"),
                },
                None => tracing::warn!(key, "no moov box within reach"),
            }
        }
        match self
            .env
            .table
            .complete_ingest(&asset, &description, &now)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(()) => Ok(Outcome::Completed),
            Err(_) => {
                // Deleted or finished meanwhile: a thumbnail written for a
                // deleted asset would be an orphan (a finished one already
                // has this same key, so leaving it is right).
                if let Some(thumbnail) = &description.thumbnail_key
                    && self
                        .env
                        .table
                        .get_asset(&asset.owner, &asset.id)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_none()
                {
                    bucket.delete(thumbnail).await.map_err(|e| e.to_string())?;
                }
                Ok(Outcome::Skipped("the asset changed meanwhile"))
            }
        }
    }

    /// The `moov` box of an MP4/MOV, read box header by box header (16
    /// bytes each) so `mdat` — the media — is skipped, never downloaded.
    async fn find_moov(&self, key: &str, size: u64) -> Result<Option<Vec<u8>>, String> {
        let bucket = &self.env.bucket;
        let mut offset = 0u64;
        for _ in 0..MAX_TOP_LEVEL_BOXES {
            if offset + 8 > size {
                return Ok(None);
            }
            let header = bucket
                .get_range(key, offset, offset + 15)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let Some((box_size, kind)) = box_header(&header) else {
                return Ok(None);
            };
            let box_size = box_size.unwrap_or(size - offset);
            if box_size < 8 {
                return Ok(None);
            }
            if &kind == b"moov" {
                if box_size > MOOV_MAX_BYTES {
                    return Ok(None);
                }
                return bucket
                    .get_range(key, offset, offset + box_size - 1)
                    .await
                    .map_err(|e| e.to_string());
            }
            offset += box_size;
        }
        Ok(None)
    }

    /// The asset an object belongs to (and the file it came from, if any).
    async fn claimed_by(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<(AssetRecord, Option<FileRecord>)>, String> {
        let table = &self.env.table;
        if let Some(asset) = table
            .get_asset(owner, id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Some((asset, None)));
        }
        let Some(file) = table.get_file(owner, id).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(asset_id) = &file.asset_id else {
            return Ok(None);
        };
        Ok(table
            .get_asset(owner, asset_id)
            .await
            .map_err(|e| e.to_string())?
            .map(|asset| (asset, Some(file))))
    }
}

/// `uploads/<owner>/<id>/thumbnail.jpg` beside `original.<ext>`: not an
/// original, so its own event is skipped.
pub fn thumbnail_key(original: &str) -> String {
    match original.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/thumbnail.jpg"),
        None => format!("{original}.thumbnail.jpg"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_sit_beside_their_original_and_are_not_originals() {
        let original = "uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/original.png";
        let thumbnail = thumbnail_key(original);
        assert_eq!(
            thumbnail,
            "uploads/u-1/01JDQ3V8X4KQ7N2M5R6T9W0YZC/thumbnail.jpg"
        );
        assert!(uploads::parse_object_key(original).is_some());
        assert!(uploads::parse_object_key(&thumbnail).is_none());
    }
}
