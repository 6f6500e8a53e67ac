//! One created object, ingested: find who claims it, check its real type,
//! describe it, thumbnail an image, and finish the asset (or file).
//!
//! - The key says whose and which record (`uploads/<owner>/<id>/original.*`,
//!   `<id>` an asset for small uploads and imports, a file for direct
//!   uploads; one BatchGetItem reads both). Thumbnails beside originals are
//!   ours and skipped. Any other key under `uploads/` is none of ours (our
//!   keys never derive from user input) and is moved to `quarantine/`, so
//!   `uploads/` holds only objects a record accounts for.
//! - No record yet is a retry: a small upload stores its object a moment
//!   before its record, and a multipart upload's object exists a moment
//!   before its completion is recorded. One short wait absorbs that race;
//!   after it, Lambda retries the event twice, then it goes to the DLQ —
//!   where an object no record ever claims ends up, logged and left alone
//!   (an early event must never delete a file whose record is on its way).
//! - Videos: duration and size from container headers (MP4/MOV `moov`,
//!   WebM Info and Tracks), read through the first 64 KiB already streamed
//!   and small ranged GETs past the media, which is never downloaded. No
//!   video thumbnails: that needs a video decoder (ffmpeg) in the Lambda —
//!   a layer of its own, left for later.
//! - A duplicate, late or superseded event changes nothing: the claim must
//!   still be processing this very key, the object must still carry the
//!   event's ETag, and the final write is conditional on the state read.

use assetbox_shared::assets::{AssetRecord, AssetStatus};
use assetbox_shared::clock;
use assetbox_shared::db::Refusal;
use assetbox_shared::ingestion::Claim;
use assetbox_shared::media::{AssetType, Description};
use assetbox_shared::s3::checksum::bare_etag;
use assetbox_shared::s3::{Bucket, OpenedObject};
use assetbox_shared::uploads::flow::UploadEnv;
use assetbox_shared::uploads::{self, UploadStatus};

use crate::describe::{NotDescribed, box_header, decode_event_key, describe_image, describe_moov};
use crate::webm;

/// Bytes read to tell the type (every signature `infer` knows fits).
const HEAD_BYTES: usize = 8 * 1024;
/// Bytes of a video read from the open stream before it is dropped: a
/// WebM's Info and Tracks, and a short MP4's `moov`, usually lie within.
const VIDEO_HEAD_BYTES: usize = 64 * 1024;
/// Top-level boxes or elements walked looking for the headers.
const MAX_CONTAINER_STEPS: usize = 64;
/// A `moov` larger than this is not read (hours of video with many tracks).
const MOOV_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// WebM Info or Tracks larger than this are not read (real ones are tiny).
const WEBM_ELEMENT_MAX_BYTES: u64 = 1024 * 1024;
/// Images above this are not decoded in a Lambda (no thumbnail, no
/// dimensions; the asset still completes).
pub const IMAGE_DECODE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// How long to wait once for a record that is being written.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_millis(750);
/// An object no record claims this long after its event is an orphan: every
/// route writes its record before (files, imports) or within the request
/// that stores the object (small uploads, ≤ 30 s), so it is deleted. Lambda
/// retries an event after ~1 and ~3 minutes.
const ORPHAN_AFTER_SECS: i64 = 60;
/// The prefix ingestion watches (the template's event filter).
const UPLOADS_PREFIX: &str = "uploads/";
/// Where objects no key of ours can name are moved.
pub const QUARANTINE_PREFIX: &str = "quarantine/";

/// Image decodes in flight at once (see `describe_picture`).
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Not an allowed image or video, not what was declared, or over the
    /// quota: the claim is `FAILED` with this reason and the object removed.
    Rejected(String),
    /// Not a key of ours: moved under [`QUARANTINE_PREFIX`].
    Quarantined,
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
    /// event carries it, URL-encoded; `etag` the event's). An unclaimed
    /// object is always retried: see [`Self::ingest_event`].
    pub async fn ingest(&self, raw_key: &str, etag: Option<&str>) -> Outcome {
        self.ingest_event(raw_key, etag, None).await
    }

    /// As [`Self::ingest`], for an event made `age_secs` ago: an object no
    /// record claims once the event is [`ORPHAN_AFTER_SECS`] old is deleted.
    pub async fn ingest_event(
        &self,
        raw_key: &str,
        etag: Option<&str>,
        age_secs: Option<i64>,
    ) -> Outcome {
        match self.try_ingest(raw_key, etag, age_secs).await {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Retry(reason),
        }
    }

    async fn try_ingest(
        &self,
        raw_key: &str,
        etag: Option<&str>,
        age_secs: Option<i64>,
    ) -> Result<Outcome, String> {
        let key = decode_event_key(raw_key);
        let claim = match self.claim_for(&key, etag, age_secs).await? {
            Ok(claim) => claim,
            Err(outcome) => return Ok(outcome),
        };
        let bucket = &self.env.bucket;
        // One GET: size, ETag and S3's checksum, and the body as it streams.
        let Some(mut opened) = bucket.open(&key).await.map_err(|e| e.to_string())? else {
            return self
                .reject(
                    claim,
                    &key,
                    "the object was removed before it could be verified",
                )
                .await;
        };
        if let Some(etag) = etag
            && bare_etag(etag) != bare_etag(&opened.etag)
        {
            return Ok(Outcome::Skipped("the object was replaced since this event"));
        }
        let head = opened
            .head(HEAD_BYTES)
            .await
            .map_err(|e| e.to_string())?
            .to_vec();
        let max = self.env.policy.max_file_bytes;
        let checked = match self.check_type(&head, claim.declared_type()) {
            // An upload of undeclared size (single PUT, Uppy 6's multipart)
            // was never held to the limit.
            Ok(_) if opened.size > max => Err(format!(
                "the file is {} bytes, above the limit of {max}",
                opened.size
            )),
            checked => checked,
        };
        let detected = match checked {
            Ok(mime) => mime,
            Err(reason) => {
                drop(opened);
                bucket.delete(&key).await.map_err(|e| e.to_string())?;
                return self.reject(claim, &key, &reason).await;
            }
        };
        let description = self.describe(&key, opened, detected).await?;
        self.finish(claim, &key, &description).await
    }

    /// The record waiting for the object at `key`, or what to do instead:
    /// skip (a thumbnail, a closed upload, a duplicate), quarantine (not one
    /// of our keys), retry (its record not written yet) or delete an orphan.
    async fn claim_for(
        &self,
        key: &str,
        etag: Option<&str>,
        age_secs: Option<i64>,
    ) -> Result<Result<Claim, Outcome>, String> {
        let Some((owner, id)) = uploads::parse_object_key(key) else {
            if is_thumbnail_key(key) {
                return Ok(Err(Outcome::Skipped("a thumbnail")));
            }
            if !key.starts_with(UPLOADS_PREFIX) {
                return Ok(Err(Outcome::Skipped("not under uploads/")));
            }
            return self.quarantine(key).await.map(Err);
        };
        let bucket = &self.env.bucket;
        let Some(claim) = self.settled_claim(owner, id).await? else {
            if age_secs.is_some_and(|age| age >= ORPHAN_AFTER_SECS) {
                bucket.delete(key).await.map_err(|e| e.to_string())?;
                tracing::warn!(key, "no record ever claimed it: deleted");
                return Ok(Err(Outcome::Skipped("an orphan: deleted")));
            }
            return Ok(Err(Outcome::Retry(format!("no record claims {key} yet"))));
        };
        if is_closed_undescribed(&claim) {
            // A single-PUT URL used after its upload closed: the object
            // would be held by no record and counted by no quota.
            bucket.delete(key).await.map_err(|e| e.to_string())?;
            return Ok(Err(Outcome::Skipped(
                "the upload is closed: object deleted",
            )));
        }
        if let Some(skip) = not_processing(&claim, key, etag) {
            return Ok(Err(skip));
        }
        Ok(Ok(claim))
    }

    /// What the verified object is: a thumbnail and the size of an image,
    /// the dimensions and duration of a video (reading only its head and
    /// index, by range).
    async fn describe(
        &self,
        key: &str,
        mut opened: OpenedObject,
        detected: &'static str,
    ) -> Result<Description, String> {
        let bucket = &self.env.bucket;
        let mut description = Description {
            content_type: detected.to_owned(),
            size: opened.size,
            etag: bare_etag(&opened.etag).to_owned(),
            checksum: opened.checksum.clone(),
            ..Description::default()
        };
        match AssetType::of_content_type(detected) {
            Some(AssetType::Image) if opened.size <= IMAGE_DECODE_MAX_BYTES => {
                let bytes = opened.into_bytes().await.map_err(|e| e.to_string())?;
                self.describe_picture(key, bytes, &mut description).await?;
            }
            Some(AssetType::Video) => {
                let head = opened
                    .head(VIDEO_HEAD_BYTES)
                    .await
                    .map_err(|e| e.to_string())?
                    .to_vec();
                // Dropping the stream here closes the connection: the rest
                // of the video is never transferred.
                drop(opened);
                let ranges = Ranges {
                    bucket,
                    key,
                    head: &head,
                    size: description.size,
                };
                describe_video(&ranges, &mut description).await?;
            }
            _ => drop(opened),
        }
        Ok(description)
    }

    /// The claim, waiting once if its record is still being written.
    async fn settled_claim(&self, owner: &str, id: &str) -> Result<Option<Claim>, String> {
        let table = &self.env.table;
        let read = || async { table.claim_of(owner, id).await.map_err(|e| e.to_string()) };
        let claim = read().await?;
        let unsettled = match &claim {
            None => true,
            Some(Claim::File(file)) => {
                file.upload_status == UploadStatus::Uploading && !file.completes_on_arrival()
            }
            Some(Claim::Asset(asset)) => awaits_its_record(asset),
        };
        if !unsettled {
            return Ok(claim);
        }
        tokio::time::sleep(SETTLE_WAIT).await;
        read().await
    }

    /// The detected type when it is an allowed one and what was declared;
    /// else the reason, in words.
    fn check_type(&self, head: &[u8], declared: &str) -> Result<&'static str, String> {
        let mime = self
            .env
            .policy
            .media_type_of(head)
            .map_err(|not| not.to_string())?;
        if mime != declared {
            return Err(format!(
                "the content is {mime}, but the upload declared {declared}"
            ));
        }
        Ok(mime)
    }

    /// Size and a thumbnail of an image. One that cannot be decoded still
    /// completes: with its size and no thumbnail when its header asks for
    /// more memory than a decode may take, undescribed when it is damaged.
    async fn describe_picture(
        &self,
        key: &str,
        bytes: Vec<u8>,
        description: &mut Description,
    ) -> Result<(), String> {
        // Records run several at a time; one decode at a time keeps the
        // function within its memory at each decode's cap (decoding is CPU
        // bound, so little is lost).
        let _turn = DECODES.acquire().await.map_err(|e| e.to_string())?;
        let facts = tokio::task::spawn_blocking(move || describe_image(&bytes))
            .await
            .map_err(|e| e.to_string())?;
        match facts {
            Ok(facts) => {
                let thumbnail_key = thumbnail_key(key);
                self.env
                    .bucket
                    .put(&thumbnail_key, facts.thumbnail_jpeg, "image/jpeg", None)
                    .await
                    .map_err(|e| e.to_string())?;
                description.width = Some(facts.width);
                description.height = Some(facts.height);
                description.thumbnail_key = Some(thumbnail_key);
            }
            Err(NotDescribed::TooLarge { width, height }) => {
                tracing::warn!(
                    key,
                    width,
                    height,
                    "image too large to decode: no thumbnail"
                );
                description.width = Some(width);
                description.height = Some(height);
            }
            Err(NotDescribed::Unreadable(reason)) => {
                tracing::warn!(key, reason, "image not described");
            }
        }
        Ok(())
    }

    /// The final conditional write. A claim that changed meanwhile is read
    /// again and written again when it still waits for this object (a file
    /// moved into a box meanwhile now has an asset to finish).
    async fn finish(
        &self,
        mut claim: Claim,
        key: &str,
        description: &Description,
    ) -> Result<Outcome, String> {
        let table = &self.env.table;
        let quota = self.env.policy.quota_bytes;
        let mut detach = false;
        for _ in 0..3 {
            let now = clock::rfc3339(clock::now());
            let refusal = match table
                .complete_ingest(&claim, description, quota, detach, &now)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(()) => return Ok(Outcome::Completed),
                Err(refusal) => refusal,
            };
            match refusal {
                Refusal::QuotaExceeded => {
                    self.remove_object_and_thumbnail(key, description).await?;
                    let reason = "the file is larger than the storage left in your quota";
                    return self.reject(claim, key, reason).await;
                }
                // Its box went while the object arrived: a plain file.
                Refusal::ParentGone => detach = true,
                Refusal::StateChanged => match self.reclaim(key).await? {
                    Reclaimed::Waiting(fresh) => {
                        // Read again, it may have a new (existing) box.
                        claim = *fresh;
                        detach = false;
                    }
                    Reclaimed::Moved(fresh) => {
                        if is_closed_undescribed(&fresh) {
                            // Closed (deleted, expired) while this ran: what
                            // it stored is no record's now.
                            self.remove_object_and_thumbnail(key, description).await?;
                        }
                        return Ok(Outcome::Skipped("the claim changed meanwhile"));
                    }
                    Reclaimed::Gone => {
                        // Deleted meanwhile: its thumbnail would be an orphan.
                        if let Some(thumbnail) = &description.thumbnail_key {
                            self.env
                                .bucket
                                .delete(thumbnail)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        return Ok(Outcome::Skipped("the claim was deleted meanwhile"));
                    }
                },
            }
        }
        Err("the claim kept changing; retry".into())
    }

    /// The claim read again after a refused write.
    async fn reclaim(&self, key: &str) -> Result<Reclaimed, String> {
        let (owner, id) = uploads::parse_object_key(key).unwrap_or_default();
        let fresh = self
            .env
            .table
            .claim_of(owner, id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(match fresh {
            Some(fresh) if not_processing(&fresh, key, None).is_none() => {
                Reclaimed::Waiting(Box::new(fresh))
            }
            Some(fresh) => Reclaimed::Moved(Box::new(fresh)),
            None => Reclaimed::Gone,
        })
    }

    async fn remove_object_and_thumbnail(
        &self,
        key: &str,
        description: &Description,
    ) -> Result<(), String> {
        let bucket = &self.env.bucket;
        bucket.delete(key).await.map_err(|e| e.to_string())?;
        if let Some(thumbnail) = &description.thumbnail_key {
            bucket.delete(thumbnail).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The claim `FAILED` with the reason (the object is already gone); a
    /// claim that changed meanwhile but still waits for this object (a file
    /// just moved into a box) is failed as it is now.
    async fn reject(&self, mut claim: Claim, key: &str, reason: &str) -> Result<Outcome, String> {
        for _ in 0..3 {
            let now = clock::rfc3339(clock::now());
            let refused = self
                .env
                .table
                .fail_ingest(&claim, reason, &now)
                .await
                .map_err(|e| e.to_string())?
                .is_err();
            if !refused {
                return Ok(Outcome::Rejected(reason.to_owned()));
            }
            match self.reclaim(key).await? {
                Reclaimed::Waiting(fresh) => claim = *fresh,
                Reclaimed::Moved(_) | Reclaimed::Gone => {
                    return Ok(Outcome::Skipped("the claim changed meanwhile"));
                }
            }
        }
        Err("the claim kept changing; retry".into())
    }

    /// Moves an object no key of ours names out of `uploads/`.
    async fn quarantine(&self, key: &str) -> Result<Outcome, String> {
        let bucket = &self.env.bucket;
        let target = format!("{QUARANTINE_PREFIX}{key}");
        if !bucket.copy(key, &target).await.map_err(|e| e.to_string())? {
            return Ok(Outcome::Skipped("gone (moved already?)"));
        }
        bucket.delete(key).await.map_err(|e| e.to_string())?;
        tracing::warn!(key, target, "not a key of ours: quarantined");
        Ok(Outcome::Quarantined)
    }
}

/// A file upload closed (aborted, expired, failed) before ingestion
/// described it: an object at its key is held by no record.
fn is_closed_undescribed(claim: &Claim) -> bool {
    matches!(claim, Claim::File(file)
    if file.media.is_none()
        && matches!(
            file.upload_status,
            UploadStatus::Aborted | UploadStatus::Expired | UploadStatus::Failed
        ))
}

/// An asset whose object is stored before its record names it: an import
/// (`PENDING`) or a generation's output (`PENDING`, or `PROCESSING` at the
/// provider with no key yet).
fn awaits_its_record(asset: &AssetRecord) -> bool {
    asset.status == AssetStatus::Pending
        || (asset.status == AssetStatus::Processing && asset.s3_key.is_none())
}

/// A claim read again.
enum Reclaimed {
    /// Still waiting for this object (written again as it is now).
    Waiting(Box<Claim>),
    /// Done with or closed to it.
    Moved(Box<Claim>),
    Gone,
}

/// `Some(why)` when the claim is not waiting for this object: a duplicate,
/// late or superseded event, or an upload still completing (a retry).
fn not_processing(claim: &Claim, key: &str, etag: Option<&str>) -> Option<Outcome> {
    if let Claim::Asset(asset) = claim
        && awaits_its_record(asset)
    {
        // An import or a generation stores its object, then records it.
        return Some(Outcome::Retry(
            "the asset has not recorded its object yet".into(),
        ));
    }
    if claim.s3_key() != Some(key) {
        return Some(Outcome::Skipped("the claim is for another object"));
    }
    match claim {
        Claim::Asset(asset) => (asset.status != AssetStatus::Processing)
            .then_some(Outcome::Skipped("the asset is not processing this object")),
        Claim::File(file) => {
            if let Some(media) = &file.media {
                let same = etag.is_none_or(|e| bare_etag(e) == bare_etag(&media.etag));
                if !same {
                    // A single PUT re-sent with a still-valid URL after
                    // ingestion: see README (ingestion, what is missing).
                    tracing::warn!(key, "object replaced after it was verified");
                }
                return Some(Outcome::Skipped("already ingested"));
            }
            match file.upload_status {
                UploadStatus::Pending | UploadStatus::Completed => None,
                // The browser completed it with S3 itself (Uppy 6).
                UploadStatus::Uploading if file.completes_on_arrival() => None,
                UploadStatus::Uploading => Some(Outcome::Retry(
                    "the upload's completion is not recorded yet".into(),
                )),
                _ => Some(Outcome::Skipped("the upload is closed")),
            }
        }
    }
}

/// An object's bytes by range: from the head already read when it covers
/// them, else a ranged GET.
struct Ranges<'a> {
    bucket: &'a Bucket,
    key: &'a str,
    head: &'a [u8],
    size: u64,
}

impl Ranges<'_> {
    async fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        if end <= self.head.len() as u64 {
            return Ok(self.head[offset as usize..end as usize].to_vec());
        }
        Ok(self
            .bucket
            .get_range(self.key, offset, end - 1)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default())
    }
}

/// Duration and picture size of an MP4, MOV or WebM, into the description
/// (left empty, with a warning, when the headers are out of reach or damaged).
async fn describe_video(ranges: &Ranges<'_>, description: &mut Description) -> Result<(), String> {
    let key = ranges.key;
    match description.content_type.as_str() {
        "video/mp4" | "video/quicktime" => match find_moov(ranges).await? {
            Some(moov) => match describe_moov(&moov) {
                Ok(video) => {
                    description.duration_ms = Some(video.duration_ms);
                    description.width = video.width;
                    description.height = video.height;
                }
                Err(reason) => tracing::warn!(key, reason, "video not described"),
            },
            None => tracing::warn!(key, "no moov box within reach"),
        },
        "video/webm" | "video/x-matroska" => {
            let (info, tracks) = find_webm_headers(ranges).await?;
            match webm::describe(info.as_deref(), tracks.as_deref()) {
                Ok(video) => {
                    description.duration_ms = video.duration_ms;
                    description.width = video.width;
                    description.height = video.height;
                }
                Err(reason) => tracing::warn!(key, reason, "video not described"),
            }
        }
        _ => {}
    }
    Ok(())
}

/// The `moov` box of an MP4/MOV, found box header by box header (16 bytes
/// each) so `mdat` — the media — is skipped, never downloaded.
async fn find_moov(ranges: &Ranges<'_>) -> Result<Option<Vec<u8>>, String> {
    let size = ranges.size;
    let mut offset = 0u64;
    for _ in 0..MAX_CONTAINER_STEPS {
        if offset.saturating_add(8) > size {
            return Ok(None);
        }
        let header = ranges.read(offset, 16).await?;
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
            return Ok(Some(ranges.read(offset, box_size).await?));
        }
        offset = offset.saturating_add(box_size);
    }
    Ok(None)
}

/// The payloads of a WebM's Segment Info and Tracks: the EBML header is
/// skipped, the Segment entered, and its children walked header by header
/// until both are found or the first Cluster (the media) begins.
async fn find_webm_headers(
    ranges: &Ranges<'_>,
) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
    let header_at = |offset| async move {
        let bytes = ranges.read(offset, webm::MAX_HEADER_LEN as u64).await?;
        Ok::<_, String>(webm::element_header(&bytes))
    };
    let (mut info, mut tracks) = (None, None);
    let Some(ebml) = header_at(0).await? else {
        return Ok((info, tracks));
    };
    let (webm::EBML_ID, Some(ebml_size)) = (ebml.id, ebml.size) else {
        return Ok((info, tracks));
    };
    let mut offset = ebml.header_len.saturating_add(ebml_size);
    let Some(segment) = header_at(offset).await? else {
        return Ok((info, tracks));
    };
    if segment.id != webm::SEGMENT_ID {
        return Ok((info, tracks));
    }
    offset = offset.saturating_add(segment.header_len);
    for _ in 0..MAX_CONTAINER_STEPS {
        if info.is_some() && tracks.is_some() {
            break;
        }
        let Some(element) = header_at(offset).await? else {
            break;
        };
        let Some(size) = element.size else {
            break;
        };
        let payload_at = offset.saturating_add(element.header_len);
        match element.id {
            webm::CLUSTER_ID => break,
            webm::INFO_ID | webm::TRACKS_ID if size <= WEBM_ELEMENT_MAX_BYTES => {
                let payload = Some(ranges.read(payload_at, size).await?);
                if element.id == webm::INFO_ID {
                    info = payload;
                } else {
                    tracks = payload;
                }
            }
            _ => {}
        }
        offset = payload_at.saturating_add(size);
    }
    Ok((info, tracks))
}

/// `uploads/<owner>/<id>/thumbnail.jpg` beside `original.<ext>`: not an
/// original, so its own event is skipped.
pub fn thumbnail_key(original: &str) -> String {
    match original.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/thumbnail.jpg"),
        None => format!("{original}.thumbnail.jpg"),
    }
}

/// Whether a key is a thumbnail ingestion wrote.
fn is_thumbnail_key(key: &str) -> bool {
    key.strip_suffix("/thumbnail.jpg")
        .map(|dir| format!("{dir}/original.jpg"))
        .is_some_and(|original| uploads::parse_object_key(&original).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetbox_shared::validation;

    #[test]
    fn thumbnails_sit_beside_their_original_and_are_not_originals() {
        let id = validation::new_id();
        let original = format!("uploads/u-1/{id}/original.png");
        let thumbnail = thumbnail_key(&original);
        assert_eq!(thumbnail, format!("uploads/u-1/{id}/thumbnail.jpg"));
        assert!(uploads::parse_object_key(&original).is_some());
        assert!(uploads::parse_object_key(&thumbnail).is_none());
        assert!(is_thumbnail_key(&thumbnail));
        assert!(!is_thumbnail_key(&original));
        assert!(!is_thumbnail_key("uploads/u-1/not-an-id/thumbnail.jpg"));
        assert!(!is_thumbnail_key("uploads/u 1/Szène/thumbnail.jpg"));
    }
}
