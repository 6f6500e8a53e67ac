//! Projects: the top of the catalog. A project holds ordered boxes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::boxes::BoxRecord;
use crate::dynamo::{Listing, StoreError};
use crate::error::ApiError;
use crate::pagination::StringKey;
use crate::validation;

pub const NAME_MAX_CHARS: usize = 200;

/// Boxes one project may hold. The order lives on the project item (27
/// bytes a box), which DynamoDB caps at 400 KB (~13k boxes); 1000 shots is
/// a feature film's storyboard and keeps every project read small.
pub const MAX_BOXES: usize = 1000;

/// A project as stored (one item, see [`crate::keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    /// Kept by the box writes in the same transaction (a conditional counter),
    /// so reads stay one GetItem and concurrent box writes cannot drift it.
    pub boxes_count: u32,
    /// Box ids in storyboard order; `boxes_count` is its length, written
    /// together with it.
    #[serde(default)]
    pub box_order: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A project as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// How many boxes (shots) it holds.
    pub boxes_count: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<ProjectRecord> for Project {
    fn from(r: ProjectRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            boxes_count: r.boxes_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1–200 characters once surrounding white space is trimmed, no control
    /// characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// The new name, with the rules of a new project's. Required: a PATCH
    /// that changes nothing is a 400.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
}

impl CreateProject {
    pub fn validate(self) -> Result<String, ApiError> {
        validation::display_name(&self.name, NAME_MAX_CHARS).map_err(|r| ApiError::field("name", r))
    }
}

impl UpdateProject {
    /// The new name. A PATCH that changes nothing is refused: it is almost
    /// always a client bug (misspelt field names are refused earlier).
    pub fn validate(self) -> Result<String, ApiError> {
        match self.name {
            None => Err(ApiError::bad_request("nothing to update: send `name`")),
            Some(name) => validation::display_name(&name, NAME_MAX_CHARS)
                .map_err(|r| ApiError::field("name", r)),
        }
    }
}

/// The storage a projects handler needs. Implemented for DynamoDB in
/// [`crate::dynamo`]; handlers are generic over it.
pub trait ProjectStore: Clone + Send + Sync + 'static {
    /// Writes a new project; fails if the id exists (it never should: ULIDs).
    fn insert_project(
        &self,
        project: &ProjectRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_project(
        &self,
        owner: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<ProjectRecord>, StoreError>> + Send;

    /// Newest first.
    fn list_projects(
        &self,
        owner: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> impl Future<Output = Result<Listing<ProjectRecord>, StoreError>> + Send;

    /// `None` when the caller has no such project.
    fn rename_project(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        updated_at: &str,
    ) -> impl Future<Output = Result<Option<ProjectRecord>, StoreError>> + Send;

    /// `false` when the caller has no such project, or it has boxes.
    fn delete_project(
        &self,
        owner: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The owner's boxes with these ids, in the order given (ids that name
    /// no box are skipped).
    fn get_boxes(
        &self,
        owner: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<BoxRecord>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_validates_name() {
        let ok = CreateProject {
            name: "  Teaser ".into(),
        };
        assert_eq!(ok.validate().unwrap(), "Teaser");
        let err = CreateProject { name: "".into() }.validate().unwrap_err();
        assert_eq!(err.fields["name"], "must not be empty");
        let err = CreateProject {
            name: "n".repeat(NAME_MAX_CHARS + 1),
        }
        .validate()
        .unwrap_err();
        assert!(err.fields["name"].contains("at most 200"));
    }

    #[test]
    fn empty_patch_is_refused() {
        assert!(UpdateProject { name: None }.validate().is_err());
        assert_eq!(
            UpdateProject {
                name: Some("B".into())
            }
            .validate()
            .unwrap(),
            "B"
        );
    }
}
