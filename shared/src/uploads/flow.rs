//! What every upload function needs: the table, the bucket, the policy and a
//! way to sign, plus the lookups both contracts share (a caller's file by id,
//! or by Companion's key + upload id).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::clock;
use crate::config::{self, ConfigError, Settings, vars};
use crate::db::{Refusal, Table};
use crate::error::{ApiError, BoxNamed};
use crate::http::caller::Caller;
use crate::pagination::{CursorKey, StringKey};
use crate::s3::Bucket;
use crate::s3::presign::{BucketEndpoint, ObjectRequest, Presigner, attachment_disposition};
use crate::uploads::{
    self, ChecksumAlgorithm, FileRecord, UploadContract, UploadPlan, UploadPolicy, UploadStatus,
    parse_object_key,
};
use crate::{aws, validation};

#[derive(Clone)]
pub struct UploadEnv {
    pub table: Table,
    pub bucket: Bucket,
    pub policy: Arc<UploadPolicy>,
    signing: Arc<Signing>,
    /// Seals part-signing grants (see [`UploadTarget`]); without it every
    /// signing request reads the record.
    grants: Option<CursorKey>,
}

/// What signing a part needs to know about an upload. Read from the record,
/// or from a grant: initiate seals this (encrypted, bound to the owner) into the
/// `next_parts_url`, so signing further parts needs no AWS call at all. A
/// grant cannot outlive the upload's expiry; for an upload aborted or
/// completed meanwhile, S3 refuses the part (NoSuchUpload), so a grant never
/// lets bytes in that the record would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    pub file_id: String,
    pub s3_key: String,
    pub upload_id: String,
    pub file_size: u64,
    pub part_size: u64,
    pub num_parts: u32,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub expires_at: String,
}

impl UploadTarget {
    /// The multipart upload of `f` (409 for a single PUT, which has none).
    pub fn of(f: &FileRecord) -> Result<Self, ApiError> {
        Ok(Self {
            file_id: f.id.clone(),
            s3_key: f.s3_key.clone(),
            upload_id: f.multipart_upload_id()?.to_owned(),
            file_size: f.file_size,
            part_size: f.part_size,
            num_parts: f.num_parts,
            checksum_algorithm: f.checksum_algorithm,
            expires_at: f.expires_at.clone(),
        })
    }

    pub fn part_length(&self, part_number: u32) -> Option<u64> {
        crate::uploads::part_length(self.file_size, self.part_size, self.num_parts, part_number)
    }

    fn to_grant(&self) -> StringKey {
        StringKey::from([
            ("id".to_owned(), self.file_id.clone()),
            ("key".to_owned(), self.s3_key.clone()),
            ("upload".to_owned(), self.upload_id.clone()),
            ("size".to_owned(), self.file_size.to_string()),
            ("part".to_owned(), self.part_size.to_string()),
            ("parts".to_owned(), self.num_parts.to_string()),
            (
                "alg".to_owned(),
                // The algorithm's own serde name (`CRC64NVME`): one codec,
                // derived once, so no variant can be left out of a list.
                self.checksum_algorithm
                    .and_then(|a| serde_json::to_value(a).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            ("exp".to_owned(), self.expires_at.clone()),
        ])
    }

    fn from_grant(map: &StringKey) -> Option<Self> {
        let alg = match map.get("alg")?.as_str() {
            "" => None,
            name => Some(
                serde_json::from_value::<ChecksumAlgorithm>(serde_json::Value::from(name)).ok()?,
            ),
        };
        Some(Self {
            file_id: map.get("id")?.clone(),
            s3_key: map.get("key")?.clone(),
            upload_id: map.get("upload")?.clone(),
            file_size: map.get("size")?.parse().ok()?,
            part_size: map.get("part")?.parse().ok()?,
            num_parts: map.get("parts")?.parse().ok()?,
            checksum_algorithm: alg,
            expires_at: map.get("exp")?.clone(),
        })
    }
}

const GRANT_SCOPE: &str = "upload-part-grant";

struct Signing {
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    endpoint: BucketEndpoint,
}

impl UploadEnv {
    pub fn from_settings(
        settings: &dyn Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let policy = UploadPolicy::from_settings(settings)?;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or(ConfigError::Missing("AWS_REGION"))?;
        let endpoint =
            BucketEndpoint::from_endpoint_url(sdk.endpoint_url(), &region).map_err(|reason| {
                ConfigError::Invalid {
                    key: "AWS_ENDPOINT_URL",
                    reason,
                }
            })?;
        Ok(Self {
            table: Table::new(
                aws::dynamodb(sdk),
                config::required(settings, vars::TABLE_NAME)?,
            ),
            bucket: Bucket::new(aws::s3(sdk), policy.bucket.clone()),
            policy: Arc::new(policy),
            signing: Arc::new(Signing {
                credentials: sdk.credentials_provider(),
                region,
                endpoint,
            }),
            grants: settings
                .get(vars::CURSOR_SECRET)
                .filter(|s| !s.trim().is_empty())
                .map(|s| CursorKey::new(s.into_bytes()))
                .transpose()
                .map_err(|reason| ConfigError::Invalid {
                    key: vars::CURSOR_SECRET,
                    reason,
                })?,
        })
    }

    /// A new file record for `plan`, owned by the caller, expiring after the
    /// policy's upload expiry (not written yet: see [`Self::record_upload`]).
    pub fn new_record(
        &self,
        caller: &Caller,
        plan: &UploadPlan,
        project: Option<String>,
        contract: UploadContract,
        status: UploadStatus,
    ) -> FileRecord {
        let id = validation::new_id();
        let now = clock::now();
        let created = clock::rfc3339(now);
        FileRecord {
            s3_key: uploads::object_key(&caller.user_id, &id, &plan.content_type),
            id,
            owner: caller.user_id.clone(),
            file_name: plan.file_name.clone(),
            file_size: plan.file_size,
            file_content_type: plan.content_type.clone(),
            num_parts: plan.num_parts,
            part_size: plan.part_size,
            upload_id: None,
            upload_status: status,
            name: plan.file_name.clone(),
            description: String::new(),
            parent_content_type: plan.parent.as_ref().map(|(k, _)| k.clone()),
            parent_object_id: plan.parent.as_ref().map(|(_, id)| id.clone()),
            parent_project: project,
            checksum_algorithm: plan.checksum_algorithm,
            checksum_type: plan.checksum_type,
            reserved_bytes: plan.file_size,
            etag: None,
            asset_id: None,
            error_message: None,
            media: None,
            contract,
            updated: created.clone(),
            created,
            expires_at: clock::rfc3339(now + self.policy.upload_expiry),
        }
    }

    /// Writes a new upload's record and reserves its bytes; aborts its S3
    /// multipart upload when refused, so none is left. An upload of
    /// undeclared size reserves `UNSIZED_UPLOAD_RESERVE_BYTES` (or what is
    /// left of the quota, if less) until it is measured, and is refused once
    /// nothing is left: the bytes a user's open uploads may still bring in
    /// are always counted, and so is the number of such uploads bounded.
    pub async fn record_upload(&self, record: &mut FileRecord) -> Result<(), ApiError> {
        let size_unknown = record.file_size == 0;
        let mut outcome = Ok(Refusal::StateChanged);
        for attempt in 0..3 {
            // First the whole reserve, which the write's own quota condition
            // checks (no read); only when that does not fit, what is left.
            if size_unknown {
                let reservation = match attempt {
                    0 => Ok(self.policy.unsized_reserve_bytes),
                    _ => self.unsized_reservation(&record.owner).await,
                };
                match reservation {
                    Ok(bytes) => record.reserved_bytes = bytes,
                    Err(err) => {
                        outcome = Err(err);
                        break;
                    }
                }
            }
            outcome = match self
                .table
                .create_upload(record, self.policy.quota_bytes)
                .await
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(refusal)) => Ok(refusal),
                Err(err) => Err(err.into()),
            };
            // An unsized reservation refused because the quota moved since
            // it was read: read it again.
            if !(size_unknown && matches!(outcome, Ok(Refusal::QuotaExceeded))) {
                break;
            }
        }
        if let Some(upload_id) = &record.upload_id
            && let Err(err) = self.bucket.abort(&record.s3_key, upload_id).await
        {
            // The bucket's lifecycle rule removes it later; say so in the logs.
            tracing::warn!(error = %err, key = %record.s3_key, "could not abort a refused upload");
        }
        match outcome? {
            Refusal::QuotaExceeded => Err(uploads::quota_exceeded(
                if size_unknown {
                    0
                } else {
                    record.reserved_bytes
                },
                self.policy.quota_bytes,
            )),
            Refusal::ParentGone => Err(ApiError::box_gone(BoxNamed::InField("parent_object_id"))),
            Refusal::StateChanged => Err(ApiError::conflict("upload id collision, retry")),
        }
    }

    /// What an upload of undeclared size reserves now: the configured
    /// amount, or what is left of the quota if less; 413 when nothing is.
    async fn unsized_reservation(&self, owner: &str) -> Result<u64, ApiError> {
        let quota = self.policy.quota_bytes;
        let left = quota.saturating_sub(self.table.quota_used(owner).await?);
        if left == 0 {
            return Err(uploads::quota_exceeded(0, quota));
        }
        Ok(left.min(self.policy.unsized_reserve_bytes))
    }

    /// Aborts an open upload in S3 (or deletes a single PUT's object, which
    /// may have landed), then marks it `aborted` and gives its bytes back in
    /// one conditional write; the record as it ends up. S3 first: if the
    /// record write fails the client retries and S3's abort is idempotent,
    /// where the other order could leave parts only the lifecycle rule
    /// removes. Aborting twice answers the same; a completed, expired or
    /// failed upload is a 409.
    pub async fn abort_upload(&self, file: FileRecord) -> Result<FileRecord, ApiError> {
        match file.upload_status {
            UploadStatus::Aborted => return Ok(file),
            UploadStatus::Pending | UploadStatus::Uploading => {}
            other => return Err(not_abortable(other)),
        }
        match &file.upload_id {
            Some(upload_id) => self.bucket.abort(&file.s3_key, upload_id).await?,
            None => self.bucket.delete(&file.s3_key).await?,
        }
        self.close_as_aborted(file).await
    }

    /// Marks an open upload `aborted` and gives its bytes back, without
    /// touching S3 (for uploads whose S3 side the browser aborts itself).
    pub async fn close_as_aborted(&self, file: FileRecord) -> Result<FileRecord, ApiError> {
        let now = clock::rfc3339(clock::now());
        match self
            .table
            .close_upload(&file, UploadStatus::Aborted, None, &now)
            .await?
        {
            Ok(()) => {
                let mut after = file;
                after.upload_status = UploadStatus::Aborted;
                after.reserved_bytes = 0;
                after.updated = now;
                Ok(after)
            }
            Err(Refusal::StateChanged) => {
                // A concurrent abort (fine) or complete (conflict) got there first.
                let now = self
                    .table
                    .get_file(&file.owner, &file.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("file"))?;
                match now.upload_status {
                    UploadStatus::Aborted => Ok(now),
                    other => Err(not_abortable(other)),
                }
            }
            Err(other) => Err(ApiError::internal(format!("unexpected refusal {other:?}"))),
        }
    }

    /// A presigned single PUT of a `pending` record's object and the headers
    /// the client must send with it. Content type (and the size, when
    /// declared) are signed; `If-None-Match: *` makes the URL good for one
    /// object only: once the object exists (and ingestion verified it), a
    /// second PUT is refused (412) instead of replacing it unverified.
    pub fn single_put(
        &self,
        signer: &Presigner,
        record: &FileRecord,
        size: Option<u64>,
        expiry: Duration,
    ) -> (String, std::collections::BTreeMap<String, String>) {
        let mut headers = vec![
            ("content-type", record.file_content_type.clone()),
            ("if-none-match", "*".to_owned()),
        ];
        if let Some(size) = size {
            headers.push(("content-length", size.to_string()));
        }
        let url = signer.presign(
            &ObjectRequest {
                method: "PUT",
                key: &record.s3_key,
                query: vec![],
                headers: headers.clone(),
            },
            expiry,
        );
        // Browsers set Content-Length themselves (scripts may not); the
        // signature enforces it.
        let send = headers
            .into_iter()
            .filter(|(name, _)| *name != "content-length")
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        (url, send)
    }

    /// A grant to sign parts of `file` without reading it again.
    pub fn seal_grant(&self, file: &FileRecord) -> Option<String> {
        let key = self.grants.as_ref()?;
        let target = UploadTarget::of(file).ok()?;
        Some(key.seal(&file.owner, GRANT_SCOPE, &target.to_grant()))
    }

    /// The upload a grant names, if it is the caller's, for this file id, and
    /// not past the upload's expiry; `None` sends the caller to the record.
    pub fn open_grant(&self, caller: &Caller, file_id: &str, grant: &str) -> Option<UploadTarget> {
        let map = self
            .grants
            .as_ref()?
            .open(&caller.user_id, GRANT_SCOPE, grant)
            .ok()?;
        UploadTarget::from_grant(&map).filter(|t| t.file_id == file_id && !is_past(&t.expires_at))
    }

    /// A signer for this request. The provider caches credentials (in Lambda
    /// they come from the environment), so this costs no AWS call.
    pub async fn presigner(&self) -> Result<Presigner, ApiError> {
        let provider = self
            .signing
            .credentials
            .as_ref()
            .ok_or_else(|| ApiError::internal("no AWS credentials provider"))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| ApiError::unavailable(format!("credentials: {e}")))?;
        Ok(Presigner::new(
            &self.policy.bucket,
            &self.signing.region,
            self.signing.endpoint.clone(),
            &credentials,
            SystemTime::now(),
        ))
    }

    pub fn url_expiry(&self) -> Duration {
        self.policy.url_expiry
    }

    /// The caller's file, or 404 whether unknown or someone else's.
    pub async fn owned_file(&self, caller: &Caller, id: &str) -> Result<FileRecord, ApiError> {
        crate::error::found_by_id("file", id, || self.table.get_file(&caller.user_id, id)).await
    }

    /// The caller's file behind one of our object keys. The key names its
    /// owner: a key of someone else's is a 404, like an unknown one.
    pub async fn file_by_key(&self, caller: &Caller, key: &str) -> Result<FileRecord, ApiError> {
        let not_found = || ApiError::not_found("upload");
        let (owner, id) = parse_object_key(key).ok_or_else(not_found)?;
        if owner != caller.user_id {
            return Err(not_found());
        }
        let file = self
            .table
            .get_file(owner, id)
            .await?
            .ok_or_else(not_found)?;
        if file.s3_key != key {
            return Err(not_found());
        }
        Ok(file)
    }

    /// Companion addresses an upload by our object key and S3's upload id;
    /// an upload id that is not this key's is a 404.
    pub async fn companion_file(
        &self,
        caller: &Caller,
        key: &str,
        upload_id: &str,
    ) -> Result<FileRecord, ApiError> {
        let file = self.file_by_key(caller, key).await?;
        if file.upload_id.as_deref() != Some(upload_id) {
            return Err(ApiError::not_found("upload"));
        }
        Ok(file)
    }

    /// An upload that may still take parts: `uploading` and not past its
    /// expiry; else 409 with the reason.
    pub fn ensure_accepting_parts(file: &FileRecord) -> Result<(), ApiError> {
        if file.upload_status == UploadStatus::Uploading && file.upload_id.is_none() {
            // Uppy 6 creates its S3 upload itself; its first signed request
            // names it (POST /s3/sign).
            return Err(ApiError::conflict(
                "the S3 multipart upload of this file is not known yet",
            ));
        }
        if file.upload_status != UploadStatus::Uploading {
            return Err(ApiError::conflict(format!(
                "upload is {}, it takes no more parts",
                file.upload_status.as_str()
            )));
        }
        if is_past(&file.expires_at) {
            return Err(ApiError::conflict(
                "upload expired; start a new one".to_owned(),
            ));
        }
        Ok(())
    }

    /// A part URL: signs the part's exact length when the upload declared
    /// its sizes, and the part's checksum when the upload uses checksums.
    pub fn part_url(
        &self,
        signer: &Presigner,
        file: &UploadTarget,
        part_number: u32,
        checksum: Option<&str>,
    ) -> String {
        let mut headers = Vec::with_capacity(2);
        if let Some(length) = file.part_length(part_number) {
            headers.push(("content-length", length.to_string()));
        }
        if let (Some(algorithm), Some(value)) = (file.checksum_algorithm, checksum) {
            headers.push((algorithm.header(), value.to_owned()));
        }
        signer.presign(
            &ObjectRequest {
                method: "PUT",
                key: &file.s3_key,
                query: vec![
                    ("partNumber", part_number.to_string()),
                    ("uploadId", file.upload_id.clone()),
                ],
                headers,
            },
            self.policy.url_expiry,
        )
    }

    /// A short-lived download URL of a completed file, saving under its
    /// original name.
    pub fn download_url(&self, signer: &Presigner, file: &FileRecord) -> Option<String> {
        (file.upload_status == UploadStatus::Completed)
            .then(|| self.object_url(signer, &file.s3_key, &file.file_name))
    }

    /// A GET URL of an object that downloads as `file_name`: short-lived and
    /// presigned, or under the configured CDN base URL (`MEDIA_CDN_BASE_URL`,
    /// a distribution in front of the bucket that does its own access control).
    pub fn object_url(&self, signer: &Presigner, key: &str, file_name: &str) -> String {
        if let Some(base) = &self.policy.cdn_base_url {
            return format!("{}/{key}", base.trim_end_matches('/'));
        }
        signer.presign(
            &ObjectRequest {
                method: "GET",
                key,
                query: vec![(
                    "response-content-disposition",
                    attachment_disposition(file_name),
                )],
                headers: vec![],
            },
            self.policy.url_expiry,
        )
    }
}

fn not_abortable(status: UploadStatus) -> ApiError {
    ApiError::conflict(format!(
        "upload is {}; only open uploads can be aborted",
        status.as_str()
    ))
}

/// Whether an RFC 3339 instant has passed; unparsable counts as passed
/// (fail closed).
pub fn is_past(rfc3339: &str) -> bool {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|at| at <= clock::now())
        .unwrap_or(true)
}

/// The query of Companion's `/s3/multipart/{uploadId}...` routes: our object
/// key (URL-encoded by the client), and the part numbers of `/batch`. As
/// OpenAPI parameters it is the query of `/batch`; the other routes document
/// `key` alone.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CompanionQuery {
    /// The `key` that `POST /s3/multipart` answered. Without it the reply
    /// is 400; a key that is not the caller's is 404.
    #[param(required = true, min_length = 1)]
    pub key: Option<String>,
    /// The part numbers to sign, comma-separated (ranges like `5-9` work
    /// too), each within the upload's parts, at most 500.
    #[serde(rename = "partNumbers")]
    #[param(required = true, min_length = 1, example = "1,2,3")]
    pub part_numbers: Option<String>,
}

impl CompanionQuery {
    pub fn key(&self) -> Result<&str, ApiError> {
        self.key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::field("key", "is required"))
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    #[test]
    fn a_grant_carries_every_checksum_algorithm_and_none() {
        let algorithms = [
            None,
            Some(ChecksumAlgorithm::Sha256),
            Some(ChecksumAlgorithm::Crc32),
            Some(ChecksumAlgorithm::Crc32c),
            Some(ChecksumAlgorithm::Crc64nvme),
        ];
        for checksum_algorithm in algorithms {
            let target = UploadTarget {
                file_id: "01J".into(),
                s3_key: "uploads/u/01J/original.mp4".into(),
                upload_id: "up".into(),
                file_size: 12,
                part_size: 5,
                num_parts: 3,
                checksum_algorithm,
                expires_at: "2030-01-01T00:00:00Z".into(),
            };
            assert_eq!(
                UploadTarget::from_grant(&target.to_grant()),
                Some(target),
                "{checksum_algorithm:?}"
            );
        }
    }
}
