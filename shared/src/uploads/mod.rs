//! Direct uploads and the files they become: the rules of SPEC §3.2/§3.3 that
//! need no AWS (limits, part maths, names, statuses, keys), the stored record
//! and its API view. The S3 side is in [`crate::s3`], the table side in
//! `store.rs`, signing in [`crate::s3::presign`].
//!
//! One model for both contracts: a `/v1/files` upload and an Uppy Companion
//! upload are the same [`FileRecord`]; Companion's `key` is our object key,
//! which names the owner and the file id, so its routes find the record with
//! one GetItem.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::{self, ConfigError, Settings, vars};
use crate::error::ApiError;
use crate::media::{AssetType, NotMedia, media_signature};
use crate::s3::checksum::{ChecksumAlgorithm, ChecksumType, ClientPart, bare_etag};
use crate::validation;
use crate::wire::wire_enum;

pub mod flow;
mod store;

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;
/// S3's multipart limits.
pub const MIN_PART_BYTES: u64 = 5 * MIB;
pub const MAX_PART_BYTES: u64 = 5 * GIB;
pub const MAX_PARTS: u32 = 10_000;
/// File names: what a file system allows, without what breaks headers and logs.
pub const FILE_NAME_MAX_CHARS: usize = 255;
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

const DEFAULT_CONTENT_TYPES: &str = "image/jpeg,image/png,image/webp,image/gif,image/avif,image/heic,image/heif,image/tiff,video/mp4,video/quicktime,video/webm";

/// Upload limits and timings, from the function's environment.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    pub bucket: String,
    pub max_file_bytes: u64,
    pub quota_bytes: u64,
    /// What an upload of undeclared size reserves until measured.
    pub unsized_reserve_bytes: u64,
    pub allowed_content_types: Vec<String>,
    pub url_expiry: Duration,
    pub first_url_batch: u32,
    pub upload_expiry: Duration,
    /// Serve objects from this base URL instead of presigned S3 URLs.
    pub cdn_base_url: Option<String>,
    /// Largest file `POST /api/boxes/{id}/upload/` takes (below the Lambda
    /// payload limit; larger files go through the direct-upload routes).
    pub small_upload_max_bytes: u64,
}

/// A Lambda request event is at most 6 MB and a binary body arrives base64
/// encoded (4/3 larger), so no form above ~4.5 MB can reach a handler.
pub const SMALL_UPLOAD_CEILING_BYTES: u64 = 4 * MIB + MIB / 2;

impl UploadPolicy {
    pub fn from_settings(settings: &dyn Settings) -> Result<Self, ConfigError> {
        let types = config::parsed_or(
            settings,
            vars::ALLOWED_CONTENT_TYPES,
            DEFAULT_CONTENT_TYPES.to_owned(),
        )?;
        let policy = Self {
            bucket: config::required(settings, vars::MEDIA_BUCKET)?,
            max_file_bytes: config::parsed_or(settings, vars::MAX_UPLOAD_BYTES, 5 * GIB)?,
            quota_bytes: config::parsed_or(settings, vars::USER_QUOTA_BYTES, 50 * GIB)?,
            unsized_reserve_bytes: config::parsed_or(
                settings,
                vars::UNSIZED_UPLOAD_RESERVE_BYTES,
                GIB,
            )?,
            allowed_content_types: types
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
            url_expiry: Duration::from_secs(config::parsed_or(
                settings,
                vars::UPLOAD_URL_EXPIRY_SECONDS,
                3600u64,
            )?),
            first_url_batch: config::parsed_or(settings, vars::UPLOAD_FIRST_URL_BATCH, 100u32)?,
            upload_expiry: Duration::from_secs(
                3600 * config::parsed_or(settings, vars::UPLOAD_EXPIRY_HOURS, 24u64)?,
            ),
            cdn_base_url: settings
                .get(vars::MEDIA_CDN_BASE_URL)
                .filter(|v| !v.trim().is_empty()),
            small_upload_max_bytes: config::parsed_or(
                settings,
                vars::SMALL_UPLOAD_MAX_BYTES,
                4 * MIB,
            )?,
        };
        if policy.small_upload_max_bytes == 0
            || policy.small_upload_max_bytes > SMALL_UPLOAD_CEILING_BYTES
        {
            return Err(ConfigError::Invalid {
                key: vars::SMALL_UPLOAD_MAX_BYTES,
                reason: format!(
                    "must be 1..={SMALL_UPLOAD_CEILING_BYTES} (the Lambda payload limit)"
                ),
            });
        }
        if policy.max_file_bytes > MAX_PART_BYTES * MAX_PARTS as u64 {
            return Err(ConfigError::Invalid {
                key: vars::MAX_UPLOAD_BYTES,
                reason: "above S3's 5 TiB object limit".into(),
            });
        }
        if policy.url_expiry.is_zero() || policy.url_expiry > crate::s3::presign::MAX_EXPIRY {
            return Err(ConfigError::Invalid {
                key: vars::UPLOAD_URL_EXPIRY_SECONDS,
                reason: "must be 1..=604800 seconds".into(),
            });
        }
        if !(1..=1000).contains(&policy.first_url_batch) {
            return Err(ConfigError::Invalid {
                key: vars::UPLOAD_FIRST_URL_BATCH,
                reason: "must be 1..=1000".into(),
            });
        }
        Ok(policy)
    }

    pub fn allows_type(&self, content_type: &str) -> bool {
        self.allowed_content_types.iter().any(|t| t == content_type)
    }

    /// The allowed image or video type `head` (a file's first bytes) is, by
    /// its signature, never by a name or a declared type. The one rule of
    /// the small upload, imports and ingestion.
    pub fn media_type_of(&self, head: &[u8]) -> Result<&'static str, NotMedia> {
        match media_signature(head) {
            Some(mime) if AssetType::of_content_type(mime).is_some() && self.allows_type(mime) => {
                Ok(mime)
            }
            Some(mime) => Err(NotMedia::NotAllowed(mime)),
            None => Err(NotMedia::Unrecognised),
        }
    }
}

wire_enum! {
    /// Where an upload is: `pending` (a single PUT waiting for its object),
    /// `uploading` (a multipart upload in progress), then `completed`,
    /// `aborted`, `expired` (not completed in time) or `failed`. Only `pending`
    /// and `uploading` uploads are open.
    // `pending → uploading → completed | aborted | expired | failed` (SPEC §3.2).
    pub enum UploadStatus {
        Pending = "pending",
        Uploading = "uploading",
        Completed = "completed",
        Aborted = "aborted",
        Expired = "expired",
        Failed = "failed",
    }
}

impl UploadStatus {
    /// Still open: holds quota and may be completed or aborted.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Uploading)
    }
}

/// The only parent type so far: a box, which makes the file an asset.
pub const PARENT_BOX: &str = "box";

/// The type of a file's parent: `box` (a completed file in a box is one of
/// its assets) is the only one. Requests carry it as a string; this names
/// it for the OpenAPI document.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParentType {
    Box,
}

/// A file: an upload in progress and, once completed, the object it made.
/// One item, see [`crate::db::keys`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub id: String,
    pub owner: String,
    pub file_name: String,
    /// Declared at initiate; for a Companion upload without a declared size,
    /// 0 until complete measures it.
    pub file_size: u64,
    pub file_content_type: String,
    /// 0 for a single PUT.
    pub num_parts: u32,
    /// 0 when the client did not declare it (Companion): parts are then
    /// signed without a length.
    pub part_size: u64,
    pub s3_key: String,
    /// The S3 multipart upload id, `None` for a single PUT.
    pub upload_id: Option<String>,
    pub upload_status: UploadStatus,
    pub name: String,
    pub description: String,
    // The parent as stored (see [`Parent`]): only this crate's stores see
    // the three strings; everyone else reads and sets `parent()`.
    pub(crate) parent_content_type: Option<String>,
    pub(crate) parent_object_id: Option<String>,
    /// The project of a parent box, read at initiate so completing needs no
    /// extra read.
    pub(crate) parent_project: Option<String>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// Set with `checksum_algorithm` (older records have none: composite).
    #[serde(default)]
    pub checksum_type: Option<ChecksumType>,
    /// What this file holds of the owner's quota right now.
    pub reserved_bytes: u64,
    pub etag: Option<String>,
    /// Set when completing made the file an asset.
    pub asset_id: Option<String>,
    /// Why the upload `failed`, in words for its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// What ingestion found in the object (set once it was verified).
    #[serde(default)]
    pub media: Option<crate::media::Description>,
    /// Where the upload came from.
    pub contract: UploadContract,
    pub created: String,
    pub updated: String,
    /// RFC 3339; open uploads past it are expired by the cleanup job.
    pub expires_at: String,
}

/// Where an upload came from ([`FileRecord::contract`]); stored as its
/// lowercase name (`files`, `companion`, `signed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadContract {
    /// `POST /v1/files/uploads`.
    Files,
    /// Uppy Companion's `/s3/params` and `/s3/multipart` routes.
    Companion,
    /// Uppy 6's `signRequest` hook (`POST /s3/sign`): the browser talks to
    /// S3 itself, the multipart completion included.
    Signed,
}

/// Where a file belongs: a box (of a project) is the only parent so far, and
/// a completed file in one is one of its assets. Stored as the attributes
/// `parent_content_type` (`"box"`), `parent_object_id` and `parent_project`,
/// as it always was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    Box { id: String, project: String },
}

impl Parent {
    pub fn id(&self) -> &str {
        match self {
            Self::Box { id, .. } => id,
        }
    }

    pub fn project(&self) -> &str {
        match self {
            Self::Box { project, .. } => project,
        }
    }
}

impl FileRecord {
    /// Its parent, if it has a complete one.
    pub fn parent(&self) -> Option<Parent> {
        match (
            self.parent_content_type.as_deref(),
            &self.parent_object_id,
            &self.parent_project,
        ) {
            (Some(PARENT_BOX), Some(id), Some(project)) => Some(Parent::Box {
                id: id.clone(),
                project: project.clone(),
            }),
            _ => None,
        }
    }

    /// Moves it under `parent`, or under none.
    pub fn set_parent(&mut self, parent: Option<Parent>) {
        match parent {
            Some(Parent::Box { id, project }) => {
                self.parent_content_type = Some(PARENT_BOX.to_owned());
                self.parent_object_id = Some(id);
                self.parent_project = Some(project);
            }
            None => {
                self.parent_content_type = None;
                self.parent_object_id = None;
                self.parent_project = None;
            }
        }
    }
    /// The S3 multipart upload the parts of this file go to. Every multipart
    /// upload has one from the moment it is open (a Companion upload binds
    /// the browser's at its first part); a single PUT has none, and takes
    /// no parts: 409.
    pub fn multipart_upload_id(&self) -> Result<&str, ApiError> {
        self.upload_id
            .as_deref()
            .ok_or_else(|| ApiError::conflict("this upload is a single PUT: it has no parts"))
    }

    /// Whether the object's arrival completes this upload (ingestion
    /// finishes it): a single PUT, or a multipart upload the browser
    /// completes with S3 itself. Others complete by a call that records it.
    pub fn completes_on_arrival(&self) -> bool {
        match self.upload_status {
            UploadStatus::Pending => true,
            UploadStatus::Uploading => self.contract == UploadContract::Signed,
            _ => false,
        }
    }

    /// Part sizes as granted: every part `part_size`, the last the rest.
    pub fn part_length(&self, part_number: u32) -> Option<u64> {
        part_length(self.file_size, self.part_size, self.num_parts, part_number)
    }
}

/// Length of part `n` (1-based) of a file cut into `num_parts` parts of
/// `part_size`; `None` outside 1..=num_parts or when sizes are unknown.
pub fn part_length(file_size: u64, part_size: u64, num_parts: u32, n: u32) -> Option<u64> {
    if n == 0 || n > num_parts || part_size == 0 || file_size == 0 {
        return None;
    }
    if n < num_parts {
        Some(part_size)
    } else {
        Some(file_size - part_size * (num_parts as u64 - 1))
    }
}

/// The object key of a file: ours, never derived from the client's name, so
/// no name can escape the prefix or collide. The extension comes from the
/// (allow-listed) content type, which keeps keys readable in the console.
pub fn object_key(owner: &str, file_id: &str, content_type: &str) -> String {
    let ext = content_type
        .rsplit('/')
        .next()
        .map(|sub| match sub {
            "jpeg" => "jpg",
            "quicktime" => "mov",
            other => other,
        })
        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("bin");
    format!("uploads/{owner}/{file_id}/original.{ext}")
}

/// Owner and id of any object stored under one of our ids,
/// `uploads/<owner>/<id>/<leaf>` (an original or a thumbnail); `None` for
/// anything else.
pub fn object_owner_and_id(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split('/');
    let (Some("uploads"), Some(owner), Some(id), Some(leaf), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let owner_ok = !owner.is_empty()
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (owner_ok && validation::is_ulid(id) && !leaf.is_empty()).then_some((owner, id))
}

/// Owner and file id of one of our upload keys (an original); `None` for
/// anything else.
pub fn parse_object_key(key: &str) -> Option<(&str, &str)> {
    let leaf = key.rsplit('/').next()?;
    object_owner_and_id(key).filter(|_| leaf.starts_with("original."))
}

/// A file name as a user may give it: any Unicode, 1..=255 characters, no
/// control characters and no path separators (names travel in headers and
/// downloads, never into keys).
pub fn file_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let chars = name.chars().count();
    if chars > FILE_NAME_MAX_CHARS {
        return Err(format!(
            "must be at most {FILE_NAME_MAX_CHARS} characters (got {chars})"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err("must not contain control characters, '/' or '\\'".into());
    }
    if name == "." || name == ".." {
        return Err("must be a file name".into());
    }
    // Names become download names: none may show another extension.
    validation::unspoofable(name)?;
    Ok(name.to_owned())
}

/// `POST /v1/files/uploads`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateUpload {
    /// The file's name, kept for display and downloads: any Unicode,
    /// 1–255 characters once trimmed, no control characters, `/` or `\`.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub file_name: String,
    /// Bytes, at least 1 and at most the deployment's maximum (5 GiB unless
    /// configured otherwise; above it the reply is 413) and what is left of
    /// the caller's quota (else 413).
    #[schema(minimum = 1)]
    pub file_size: u64,
    /// One of the allowed image and video types (`image/jpeg`, `image/png`,
    /// `image/webp`, `image/gif`, `image/avif`, `image/heic`, `image/heif`,
    /// `image/tiff`, `video/mp4`, `video/quicktime`, `video/webm` by default).
    #[schema(examples("video/mp4"))]
    pub file_content_type: String,
    /// How many parts the file is cut into; with `part_size`,
    /// `(num_parts-1)*part_size < file_size <= num_parts*part_size`.
    #[schema(minimum = 1, maximum = 10000)]
    pub num_parts: u32,
    /// Bytes; every part but the last has exactly this size, at least 5 MiB
    /// (5242880) when there is more than one part, at most 5 GiB.
    #[schema(minimum = 1, maximum = 5368709120_u64)]
    pub part_size: u64,
    /// `box` makes the completed file an asset of the box
    /// `parent_object_id`; give both or neither.
    #[schema(value_type = Option<ParentType>)]
    pub parent_content_type: Option<String>,
    /// The id of one of the caller's boxes (else 422).
    pub parent_object_id: Option<String>,
    /// Commit to per-part checksums: each part URL then signs its checksum.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// `COMPOSITE` (default; SHA256, CRC32, CRC32C) or `FULL_OBJECT` (CRC32,
    /// CRC32C, CRC64NVME): with `FULL_OBJECT`, complete may send the whole
    /// file's checksum and S3 verifies it.
    pub checksum_type: Option<ChecksumType>,
    /// The parts' checksums in part order (all parts, or only the first batch;
    /// the rest go with `GET .../parts?checksums=`).
    pub part_checksums: Option<Vec<String>>,
}

/// The checked form of an initiate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    pub file_name: String,
    pub file_size: u64,
    pub content_type: String,
    pub num_parts: u32,
    pub part_size: u64,
    pub parent: Option<(String, String)>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub checksum_type: Option<ChecksumType>,
    pub part_checksums: Vec<String>,
}

impl UploadPlan {
    /// An upload that declares only a name, a type and maybe a size
    /// (Companion, Uppy 6), checked like `/v1/files`; each `(field, value)`
    /// names the request field an error points at. Without a size, none is
    /// reserved: the object's size is measured when it completes.
    pub fn named(
        policy: &UploadPolicy,
        (name_field, name): (&str, &str),
        (type_field, content_type): (&str, &str),
        size: Option<u64>,
    ) -> Result<Self, ApiError> {
        let mut errors = BTreeMap::new();
        let name = file_name(name)
            .map_err(|r| errors.insert(name_field.to_owned(), r))
            .ok();
        let content_type = content_type.trim().to_ascii_lowercase();
        if !policy.allows_type(&content_type) {
            errors.insert(
                type_field.to_owned(),
                format!("must be one of {}", policy.allowed_content_types.join(", ")),
            );
        }
        if size == Some(0) {
            errors.insert("size".into(), "must be at least 1 byte".into());
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        if let Some(size) = size {
            if size > policy.max_file_bytes {
                return Err(too_large(size, policy.max_file_bytes));
            }
            if size > policy.quota_bytes {
                return Err(quota_exceeded(size, policy.quota_bytes));
            }
        }
        Ok(Self {
            file_name: name.unwrap_or_default(),
            file_size: size.unwrap_or(0),
            content_type,
            num_parts: 0,
            part_size: 0,
            parent: None,
            checksum_algorithm: None,
            checksum_type: None,
            part_checksums: vec![],
        })
    }
}

/// Reasons by field, collected into one 400.
type FieldErrors = BTreeMap<String, String>;

impl InitiateUpload {
    /// Every rule of SPEC §3.2 that needs no I/O. Field errors are collected
    /// into one 400; a file over the size limit is a 413.
    pub fn validate(self, policy: &UploadPolicy) -> Result<UploadPlan, ApiError> {
        let mut errors = FieldErrors::new();
        let name = file_name(&self.file_name)
            .map_err(|r| errors.insert("file_name".to_owned(), r))
            .ok();
        let content_type = self.file_content_type.trim().to_ascii_lowercase();
        if !policy.allows_type(&content_type) {
            errors.insert(
                "file_content_type".into(),
                format!("must be one of {}", policy.allowed_content_types.join(", ")),
            );
        }
        self.check_sizes(&mut errors);
        let checksum_type =
            checksum_type_of(self.checksum_algorithm, self.checksum_type, &mut errors);
        let part_checksums = self.part_checksums.unwrap_or_default();
        check_part_checksums(
            self.checksum_algorithm,
            &part_checksums,
            self.num_parts,
            &mut errors,
        );
        let parent = parent_of(self.parent_content_type, self.parent_object_id, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        if self.file_size > policy.max_file_bytes {
            return Err(too_large(self.file_size, policy.max_file_bytes));
        }
        Ok(UploadPlan {
            file_name: name.unwrap_or_default(),
            file_size: self.file_size,
            content_type,
            num_parts: self.num_parts,
            part_size: self.part_size,
            parent,
            checksum_algorithm: self.checksum_algorithm,
            checksum_type,
            part_checksums,
        })
    }

    /// Size, part count and part size, each in range and together able to
    /// hold the file exactly.
    fn check_sizes(&self, errors: &mut FieldErrors) {
        if self.file_size == 0 {
            errors.insert("file_size".into(), "must be at least 1 byte".into());
        }
        if !(1..=MAX_PARTS).contains(&self.num_parts) {
            errors.insert("num_parts".into(), format!("must be 1 to {MAX_PARTS}"));
        }
        if self.num_parts > 1 && self.part_size < MIN_PART_BYTES {
            errors.insert(
                "part_size".into(),
                format!("must be at least {MIN_PART_BYTES} bytes (5 MiB) when there is more than one part"),
            );
        } else if self.part_size > MAX_PART_BYTES {
            errors.insert(
                "part_size".into(),
                format!("must be at most {MAX_PART_BYTES} bytes (5 GiB)"),
            );
        } else if self.part_size == 0 {
            errors.insert("part_size".into(), "must be at least 1 byte".into());
        }
        if !errors.contains_key("num_parts")
            && !errors.contains_key("part_size")
            && self.file_size > 0
        {
            let parts = self.num_parts as u64;
            let consistent = (parts - 1) * self.part_size < self.file_size
                && self.file_size <= parts * self.part_size;
            if !consistent {
                errors.insert(
                    "num_parts".into(),
                    format!(
                        "{} parts of {} bytes cannot hold {} bytes: need (num_parts-1)*part_size < file_size <= num_parts*part_size",
                        self.num_parts, self.part_size, self.file_size
                    ),
                );
            }
        }
    }
}

/// The parent named by both fields or by neither.
fn parent_of(
    kind: Option<String>,
    id: Option<String>,
    errors: &mut FieldErrors,
) -> Option<(String, String)> {
    match (kind, id) {
        (None, None) => None,
        (Some(kind), Some(id)) => {
            if kind != PARENT_BOX {
                errors.insert(
                    "parent_content_type".into(),
                    format!("must be \"{PARENT_BOX}\""),
                );
            }
            Some((kind, id))
        }
        (Some(_), None) => {
            errors.insert(
                "parent_object_id".into(),
                "is required with parent_content_type".into(),
            );
            None
        }
        (None, Some(_)) => {
            errors.insert(
                "parent_content_type".into(),
                "is required with parent_object_id".into(),
            );
            None
        }
    }
}

/// The checksum type an algorithm is used with (its default when not
/// given), as S3 allows the pair.
fn checksum_type_of(
    algorithm: Option<ChecksumAlgorithm>,
    kind: Option<ChecksumType>,
    errors: &mut FieldErrors,
) -> Option<ChecksumType> {
    match (algorithm, kind) {
        (None, Some(_)) => {
            errors.insert("checksum_type".into(), "needs checksum_algorithm".into());
            None
        }
        (Some(algorithm), Some(kind)) if !algorithm.allows(kind) => {
            errors.insert(
                "checksum_type".into(),
                "S3 allows FULL_OBJECT with CRC32, CRC32C and CRC64NVME, COMPOSITE with SHA256, CRC32 and CRC32C".into(),
            );
            None
        }
        (Some(algorithm), kind) => Some(kind.unwrap_or(algorithm.default_type())),
        (None, None) => None,
    }
}

/// Part checksums given up front: only with an algorithm, at most one per
/// part, each well formed for it.
fn check_part_checksums(
    algorithm: Option<ChecksumAlgorithm>,
    part_checksums: &[String],
    num_parts: u32,
    errors: &mut FieldErrors,
) {
    match algorithm {
        None if !part_checksums.is_empty() => {
            errors.insert("part_checksums".into(), "needs checksum_algorithm".into());
        }
        Some(algorithm) => {
            if part_checksums.len() > num_parts as usize {
                errors.insert(
                    "part_checksums".into(),
                    "has more entries than num_parts".into(),
                );
            }
            if let Some((i, reason)) = part_checksums
                .iter()
                .enumerate()
                .find_map(|(i, c)| algorithm.check(c).err().map(|r| (i, r)))
            {
                errors.insert(format!("part_checksums[{i}]"), reason);
            }
        }
        None => {}
    }
}

pub fn too_large(size: u64, max: u64) -> ApiError {
    let mut err = ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("file_size {size} is above the limit of {max} bytes"),
    );
    err.fields
        .insert("file_size".into(), format!("must be at most {max} bytes"));
    err
}

/// The 413 of a quota that this upload would overshoot.
pub fn quota_exceeded(size: u64, quota: u64) -> ApiError {
    let message = match size {
        // An upload of undeclared size is refused only once nothing is left.
        0 => format!(
            "your storage quota of {quota} bytes is used up; delete files or abort open uploads first"
        ),
        size => format!(
            "this upload of {size} bytes would exceed your storage quota of {quota} bytes; delete files or abort open uploads first"
        ),
    };
    ApiError::new(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        message,
    )
}

/// `?part_numbers=1,2,5-9`: numbers and inclusive ranges; the result is
/// unique, sorted, each within 1..=num_parts, and at most `max` long so one
/// reply stays small.
pub fn parse_part_numbers(raw: &str, num_parts: u32, max: usize) -> Result<Vec<u32>, String> {
    let mut numbers = Vec::new();
    let number = |item: &str| -> Result<u32, String> {
        let n: u32 = item
            .trim()
            .parse()
            .map_err(|_| format!("{item:?} is not a part number"))?;
        if n == 0 || n > num_parts {
            return Err(format!("part {n} is outside 1..={num_parts}"));
        }
        Ok(n)
    };
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (number(from)?, number(to)?);
                if from > to || (to - from) as usize >= max {
                    return Err(format!("range {item} is empty or longer than {max}"));
                }
                numbers.extend(from..=to);
            }
            None => numbers.push(number(item)?),
        }
        if numbers.len() > max * 2 {
            return Err(format!("at most {max} parts per request"));
        }
    }
    if numbers.is_empty() {
        return Err("name at least one part number".into());
    }
    numbers.sort_unstable();
    numbers.dedup();
    if numbers.len() > max {
        return Err(format!("at most {max} parts per request"));
    }
    Ok(numbers)
}

/// Order and count of a complete request: strictly ascending part numbers,
/// and, when the upload declared its parts, exactly 1..=num_parts.
pub fn check_part_list(parts: &[ClientPart], num_parts: u32) -> Result<(), ApiError> {
    if parts.is_empty() {
        return Err(ApiError::field("parts", "must list the uploaded parts"));
    }
    if parts.len() > MAX_PARTS as usize {
        return Err(ApiError::field("parts", "has more than 10000 entries"));
    }
    for (i, pair) in parts.windows(2).enumerate() {
        if pair[1].part_number <= pair[0].part_number {
            return Err(ApiError::field(
                &format!("parts[{}]", i + 1),
                format!(
                    "part {} follows part {}: list parts once each, in ascending order",
                    pair[1].part_number, pair[0].part_number
                ),
            ));
        }
    }
    for (i, part) in parts.iter().enumerate() {
        if bare_etag(&part.etag).is_empty() {
            return Err(ApiError::field(
                &format!("parts[{i}].etag"),
                "must not be empty",
            ));
        }
        if part.part_number == 0 || part.part_number > MAX_PARTS {
            return Err(ApiError::field(
                &format!("parts[{i}].part_number"),
                "must be 1 to 10000",
            ));
        }
    }
    if num_parts > 0 {
        if let Some(missing) =
            (1..=num_parts).find(|n| parts.binary_search_by_key(n, |p| p.part_number).is_err())
        {
            return Err(ApiError::field(
                "parts",
                format!("part {missing} is missing (this upload has {num_parts} parts)"),
            ));
        }
        if let Some(extra) = parts.iter().find(|p| p.part_number > num_parts) {
            return Err(ApiError::field(
                "parts",
                format!(
                    "part {} is beyond this upload's {num_parts} parts",
                    extra.part_number
                ),
            ));
        }
    }
    Ok(())
}

/// A file: a direct upload and, once completed, what it stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    pub id: String,
    /// The name given at upload (downloads save under it).
    pub file_name: String,
    /// Bytes: as declared, then as stored once completed (0 until then when
    /// no size was declared).
    pub file_size: u64,
    pub file_content_type: String,
    /// A short-lived download URL once completed, else `null`.
    #[schema(required = true, format = "uri")]
    pub url: Option<String>,
    pub upload_status: UploadStatus,
    /// Display name (editable).
    pub name: String,
    /// Free text (editable), empty when not set.
    pub description: String,
    /// The id of the user who uploaded it.
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created: String,
    /// `box` when the file belongs to a box, else `null`.
    #[schema(required = true, value_type = Option<ParentType>)]
    pub parent_content_type: Option<String>,
    #[schema(required = true)]
    pub parent_object_id: Option<String>,
    /// The asset this file became in its box, else `null`.
    #[schema(required = true)]
    pub asset_id: Option<String>,
    /// Why the upload `failed` (e.g. beyond the quota, not an allowed type),
    /// else `null`. Failed files list with `?status=failed`.
    #[schema(required = true)]
    pub error_message: Option<String>,
}

impl FileView {
    pub fn new(r: FileRecord, url: Option<String>) -> Self {
        Self {
            id: r.id,
            file_name: r.file_name,
            file_size: r.file_size,
            file_content_type: r.file_content_type,
            url,
            upload_status: r.upload_status,
            name: r.name,
            description: r.description,
            created_by: r.owner,
            created: r.created,
            parent_content_type: r.parent_content_type,
            parent_object_id: r.parent_object_id,
            asset_id: r.asset_id,
            error_message: r.error_message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn policy() -> UploadPolicy {
        let env: HashMap<String, String> =
            HashMap::from([(vars::MEDIA_BUCKET.to_owned(), "media".to_owned())]);
        UploadPolicy::from_settings(&env).unwrap()
    }

    #[test]
    fn contracts_are_stored_as_they_always_were() {
        for (contract, stored) in [
            (UploadContract::Files, "files"),
            (UploadContract::Companion, "companion"),
            (UploadContract::Signed, "signed"),
        ] {
            assert_eq!(serde_json::to_value(contract).unwrap(), stored);
            let read: UploadContract = serde_json::from_value(stored.into()).unwrap();
            assert_eq!(read, contract);
        }
    }

    #[test]
    fn media_types_come_from_the_bytes_and_the_allowlist() {
        let policy = policy();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(policy.media_type_of(png), Ok("image/png"));
        assert_eq!(
            policy.media_type_of(b"%PDF-1.7\n"),
            Err(NotMedia::NotAllowed("application/pdf"))
        );
        assert_eq!(
            policy.media_type_of(b"plain text"),
            Err(NotMedia::Unrecognised)
        );
        assert_eq!(
            NotMedia::Unrecognised.to_string(),
            "the content is not a recognised image or video"
        );
    }

    fn request(size: u64, parts: u32, part_size: u64) -> InitiateUpload {
        InitiateUpload {
            file_name: "clip.mp4".into(),
            file_size: size,
            file_content_type: "video/mp4".into(),
            num_parts: parts,
            part_size,
            parent_content_type: None,
            parent_object_id: None,
            checksum_algorithm: None,
            checksum_type: None,
            part_checksums: None,
        }
    }

    fn field_error(r: InitiateUpload) -> (u16, Vec<String>) {
        let err = r.validate(&policy()).unwrap_err();
        (err.status.as_u16(), err.fields.keys().cloned().collect())
    }

    #[test]
    fn accepts_consistent_plans() {
        let plan = request(12 * MIB, 3, 4 * MIB + 1).validate(&policy());
        assert!(plan.is_err(), "4 MiB parts are below the minimum");
        let plan = request(12 * MIB, 3, 5 * MIB).validate(&policy()).unwrap();
        assert_eq!(plan.num_parts, 3);
        // A single part may be any size from 1 byte.
        assert!(request(10, 1, 10).validate(&policy()).is_ok());
        // Exactly full last part.
        assert!(request(15 * MIB, 3, 5 * MIB).validate(&policy()).is_ok());
    }

    #[test]
    fn refuses_each_broken_rule_with_its_field() {
        assert_eq!(
            field_error(request(12 * MIB, 0, 5 * MIB)),
            (400, vec!["num_parts".into()])
        );
        assert_eq!(
            field_error(request(12 * MIB, 10_001, 5 * MIB)),
            (400, vec!["num_parts".into()])
        );
        assert_eq!(
            field_error(request(12 * MIB, 3, MIB)),
            (400, vec!["part_size".into()])
        );
        // Too many parts for the size: the third would be empty.
        assert_eq!(
            field_error(request(10 * MIB, 3, 5 * MIB)),
            (400, vec!["num_parts".into()])
        );
        // Too few parts for the size.
        assert_eq!(
            field_error(request(16 * MIB, 3, 5 * MIB)),
            (400, vec!["num_parts".into()])
        );
        assert_eq!(
            field_error(request(0, 1, 1)),
            (400, vec!["file_size".into()])
        );
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.file_content_type = "application/x-msdownload".into();
        assert_eq!(field_error(r), (400, vec!["file_content_type".into()]));
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.file_name = "a/b.mp4".into();
        assert_eq!(field_error(r), (400, vec!["file_name".into()]));
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.parent_content_type = Some("project".into());
        r.parent_object_id = Some("x".into());
        assert_eq!(field_error(r), (400, vec!["parent_content_type".into()]));
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.checksum_algorithm = Some(ChecksumAlgorithm::Sha256);
        r.part_checksums = Some(vec!["nope".into()]);
        assert_eq!(field_error(r), (400, vec!["part_checksums[0]".into()]));
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.checksum_algorithm = Some(ChecksumAlgorithm::Sha256);
        r.checksum_type = Some(ChecksumType::FullObject);
        assert_eq!(field_error(r), (400, vec!["checksum_type".into()]));
        let mut r = request(12 * MIB, 3, 5 * MIB);
        r.checksum_algorithm = Some(ChecksumAlgorithm::Crc64nvme);
        let plan = r.validate(&policy()).unwrap();
        assert_eq!(plan.checksum_type, Some(ChecksumType::FullObject));
    }

    #[test]
    fn over_the_size_limit_is_413() {
        let err = request(6 * GIB, 1024, 6 * MIB)
            .validate(&policy())
            .unwrap_err();
        assert_eq!(err.status.as_u16(), 413);
    }

    #[test]
    fn part_lengths_cover_the_file_exactly() {
        let (size, part, parts) = (12 * MIB + 7, 5 * MIB, 3);
        let total: u64 = (1..=parts)
            .map(|n| part_length(size, part, parts, n).unwrap())
            .sum();
        assert_eq!(total, size);
        assert_eq!(part_length(size, part, parts, 3), Some(2 * MIB + 7));
        assert_eq!(part_length(size, part, parts, 4), None);
        assert_eq!(part_length(size, part, parts, 0), None);
    }

    #[test]
    fn names_accept_unicode_and_refuse_separators() {
        assert_eq!(
            file_name(" 東京 – shot 1.png ").unwrap(),
            "東京 – shot 1.png"
        );
        assert!(file_name("..").is_err());
        assert!(file_name("a\u{202E}gnp.exe").is_err());
        assert!(file_name("a\u{200B}.png").is_err());
        assert!(file_name("a\\b").is_err());
        assert!(file_name("a\nb").is_err());
        assert!(file_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn keys_are_ours_and_parse_back() {
        let id = validation::new_id();
        let key = object_key("0f1e-owner", &id, "image/jpeg");
        assert_eq!(key, format!("uploads/0f1e-owner/{id}/original.jpg"));
        assert_eq!(parse_object_key(&key), Some(("0f1e-owner", id.as_str())));
        assert_eq!(
            object_key("o", &id, "video/quicktime").rsplit('.').next(),
            Some("mov")
        );
        assert!(parse_object_key("uploads/o/not-an-id/original.jpg").is_none());
        assert!(parse_object_key(&format!("uploads/o/{id}/original.jpg/x")).is_none());
        assert!(parse_object_key(&format!("uploads/../{id}/original.jpg")).is_none());
    }

    #[test]
    fn part_number_lists() {
        assert_eq!(parse_part_numbers("3,1,2,2", 5, 10).unwrap(), vec![1, 2, 3]);
        assert!(parse_part_numbers("0", 5, 10).is_err());
        assert!(parse_part_numbers("6", 5, 10).is_err());
        assert!(parse_part_numbers("", 5, 10).is_err());
        assert!(parse_part_numbers("1,2,3", 5, 2).is_err());
        assert!(parse_part_numbers("x", 5, 2).is_err());
        assert_eq!(
            parse_part_numbers("4-6,1", 9, 10).unwrap(),
            vec![1, 4, 5, 6]
        );
        assert!(parse_part_numbers("6-4", 9, 10).is_err());
        assert!(parse_part_numbers("1-9", 9, 5).is_err());
    }

    #[test]
    fn part_lists_must_be_complete_and_ordered() {
        let p = |n: u32| ClientPart {
            part_number: n,
            etag: format!("\"e{n}\""),
        };
        assert!(check_part_list(&[p(1), p(2), p(3)], 3).is_ok());
        let err = check_part_list(&[p(1), p(3)], 3).unwrap_err();
        assert!(err.fields["parts"].contains("part 2 is missing"));
        let err = check_part_list(&[p(2), p(1), p(3)], 3).unwrap_err();
        assert!(err.fields.contains_key("parts[1]"));
        let err = check_part_list(&[p(1), p(2), p(3), p(4)], 3).unwrap_err();
        assert!(err.fields["parts"].contains("part 4"));
        // Companion uploads do not declare their part count.
        assert!(check_part_list(&[p(1), p(4)], 0).is_ok());
        assert!(check_part_list(&[], 0).is_err());
    }
}
