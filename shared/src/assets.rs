//! Assets as stored. This slice holds what completing an upload into a box
//! writes (SPEC §3.2 "a parent of type box makes the completed file an
//! asset"); the asset routes and the ingestion that finishes an asset build on
//! the same record.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AssetType {
    Image,
    Video,
}

impl AssetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "IMAGE",
            Self::Video => "VIDEO",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Image, Self::Video]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AssetStatus {
    Pending,
    /// The object is in S3; ingestion has yet to verify and describe it.
    Processing,
    Completed,
    Failed,
}

impl AssetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Processing,
            Self::Completed,
            Self::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SourceType {
    Uploaded,
    Generated,
    Img2vid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRecord {
    pub id: String,
    pub owner: String,
    #[serde(rename = "box")]
    pub box_id: String,
    pub project: String,
    pub asset_type: AssetType,
    pub source_type: SourceType,
    pub status: AssetStatus,
    pub s3_key: String,
    /// The file record it came from, when uploaded.
    pub file_id: Option<String>,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub is_favorite: bool,
    pub prompt_text: Option<String>,
    /// The model that made it, as the uploader named it (the AI registry
    /// resolves ids to names once it exists).
    #[serde(default)]
    pub ai_model: Option<String>,
    /// Bytes this asset itself holds against the owner's quota: a small
    /// upload has no file record to hold them (0 when a file does).
    #[serde(default)]
    pub quota_bytes: u64,
    /// Filled by ingestion.
    #[serde(default)]
    pub thumbnail_key: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// S3's stored checksum, `ALGORITHM:value` (see `objects::stored_checksum`).
    #[serde(default)]
    pub checksum: Option<String>,
    /// Why it is `FAILED`, in words a user can act on.
    #[serde(default)]
    pub error_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl AssetRecord {
    /// A new uploaded asset of `owner` in a box, `PROCESSING`, nothing known
    /// of its object yet: each route sets what it knows.
    pub fn in_box(id: String, owner: &str, box_id: &str, project: &str, now: &str) -> Self {
        Self {
            id,
            owner: owner.to_owned(),
            box_id: box_id.to_owned(),
            project: project.to_owned(),
            asset_type: AssetType::Image,
            source_type: SourceType::Uploaded,
            status: AssetStatus::Processing,
            s3_key: String::new(),
            file_id: None,
            name: String::new(),
            content_type: String::new(),
            size: 0,
            is_favorite: false,
            prompt_text: None,
            ai_model: None,
            quota_bytes: 0,
            thumbnail_key: None,
            width: None,
            height: None,
            duration_ms: None,
            checksum: None,
            error_message: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// The asset an uploaded file becomes in a box: `PROCESSING` until
    /// ingestion has verified and described the object.
    pub fn uploaded(
        file: &crate::uploads::FileRecord,
        id: String,
        box_id: &str,
        project: &str,
        now: &str,
    ) -> Self {
        Self {
            asset_type: AssetType::of_content_type(&file.file_content_type)
                .unwrap_or(AssetType::Image),
            s3_key: file.s3_key.clone(),
            file_id: Some(file.id.clone()),
            name: file.name.clone(),
            content_type: file.file_content_type.clone(),
            size: file.file_size,
            ..Self::in_box(id, &file.owner, box_id, project, now)
        }
    }
}

/// An asset as the API shows it (SPEC §3.4). Fields that later issues fill
/// (generation, ingestion) are `null` until then.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssetView {
    pub id: String,
    #[serde(rename = "box")]
    pub box_id: String,
    pub box_name: String,
    pub asset_type: AssetType,
    pub source_type: SourceType,
    pub status: AssetStatus,
    /// A short-lived download URL.
    pub file_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub is_favorite: bool,
    pub prompt_text: Option<String>,
    pub ai_model: Option<String>,
    pub ai_model_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub generation_config: Option<serde_json::Value>,
    pub seed: Option<i64>,
    pub parent_asset: Option<String>,
    pub error_message: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    /// S3's checksum of the object as `ALGORITHM:value` (`-N` ends a
    /// composite one of N parts); `null` when S3 stored none.
    pub checksum: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl AssetView {
    pub fn new(
        r: AssetRecord,
        box_name: &str,
        file_url: Option<String>,
        thumbnail_url: Option<String>,
    ) -> Self {
        Self {
            id: r.id,
            box_id: r.box_id,
            box_name: box_name.to_owned(),
            asset_type: r.asset_type,
            source_type: r.source_type,
            status: r.status,
            file_url,
            thumbnail_url,
            is_favorite: r.is_favorite,
            prompt_text: r.prompt_text,
            ai_model: r.ai_model,
            ai_model_name: None,
            generation_config: None,
            seed: None,
            parent_asset: None,
            error_message: r.error_message,
            content_type: r.content_type,
            size: r.size,
            width: r.width,
            height: r.height,
            duration_ms: r.duration_ms,
            checksum: r.checksum,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
