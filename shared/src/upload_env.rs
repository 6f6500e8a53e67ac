//! What every upload function needs: the table, the bucket, the policy and a
//! way to sign, plus the lookups both contracts share (a caller's file by id,
//! or by Companion's key + upload id).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::caller::Caller;
use crate::clock;
use crate::config::{self, ConfigError, Settings, vars};
use crate::dynamo::Table;
use crate::error::ApiError;
use crate::objects::Bucket;
use crate::presign::{BucketEndpoint, ObjectRequest, Presigner, attachment_disposition};
use crate::uploads::{FileRecord, UploadPolicy, UploadStatus, parse_object_key};
use crate::{aws, validation};

#[derive(Clone)]
pub struct UploadEnv {
    pub table: Table,
    pub bucket: Bucket,
    pub policy: Arc<UploadPolicy>,
    signing: Arc<Signing>,
}

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
        })
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
        if !validation::is_ulid(id) {
            return Err(ApiError::not_found("file"));
        }
        self.table
            .get_file(&caller.user_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("file"))
    }

    /// Companion addresses an upload by our object key and S3's upload id.
    /// The key names its owner: a key of someone else's is a 404, as is an
    /// upload id that is not this key's.
    pub async fn companion_file(
        &self,
        caller: &Caller,
        key: &str,
        upload_id: &str,
    ) -> Result<FileRecord, ApiError> {
        let Some((owner, id)) = parse_object_key(key) else {
            return Err(ApiError::not_found("upload"));
        };
        if owner != caller.user_id {
            return Err(ApiError::not_found("upload"));
        }
        let file = self
            .table
            .get_file(owner, id)
            .await?
            .ok_or_else(|| ApiError::not_found("upload"))?;
        if file.upload_id.as_deref() != Some(upload_id) || file.s3_key != key {
            return Err(ApiError::not_found("upload"));
        }
        Ok(file)
    }

    /// An upload that may still take parts: `uploading` and not past its
    /// expiry; else 409 with the reason.
    pub fn ensure_accepting_parts(file: &FileRecord) -> Result<(), ApiError> {
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
        file: &FileRecord,
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
                    ("uploadId", file.upload_id.clone().unwrap_or_default()),
                ],
                headers,
            },
            self.policy.url_expiry,
        )
    }

    /// A short-lived download URL that saves under the original name.
    pub fn download_url(&self, signer: &Presigner, file: &FileRecord) -> Option<String> {
        (file.upload_status == UploadStatus::Completed).then(|| {
            signer.presign(
                &ObjectRequest {
                    method: "GET",
                    key: &file.s3_key,
                    query: vec![(
                        "response-content-disposition",
                        attachment_disposition(&file.file_name),
                    )],
                    headers: vec![],
                },
                self.policy.url_expiry,
            )
        })
    }
}

/// Whether an RFC 3339 instant has passed; unparsable counts as passed
/// (fail closed).
pub fn is_past(rfc3339: &str) -> bool {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|at| at <= clock::now())
        .unwrap_or(true)
}
