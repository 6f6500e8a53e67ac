//! The catalog: projects and their ordered boxes (shots). A box's place in
//! its project is its position in the project's `box_order` (see
//! [`crate::db::keys`]), so the box item holds no index that could drift.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::validation;

#[cfg(any(test, feature = "memory"))]
pub mod memory;
mod store;
pub use store::ProjectStore;

pub const NAME_MAX_CHARS: usize = 200;

/// Boxes one project may hold. The order lives on the project item (27
/// bytes a box), which DynamoDB caps at 400 KB (~13k boxes); 1000 shots is
/// a feature film's storyboard and keeps every project read small.
pub const MAX_BOXES: usize = 1000;

/// A project as stored (one item, see [`crate::db::keys`]).
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxRecord {
    pub id: String,
    pub owner: String,
    pub project: String,
    pub name: String,
    pub headliner_asset: Option<String>,
    pub assets_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoxView {
    pub id: String,
    /// The id of the project it belongs to.
    pub project: String,
    /// The project's current name.
    // Read with the project, never copied into box items, so a rename
    // needs no fan-out.
    pub project_name: String,
    pub name: String,
    /// Its position in the project's storyboard, from 0.
    pub order_index: u32,
    /// The asset that stands for the box (in the public view and the
    /// storyboard export), or `null`.
    #[schema(required = true)]
    pub headliner_asset: Option<String>,
    pub assets_count: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl BoxView {
    /// The view of a box of `project`: its name and the box's position.
    pub fn new(r: BoxRecord, project: &ProjectRecord) -> Self {
        let order_index = project
            .box_order
            .iter()
            .position(|id| *id == r.id)
            .unwrap_or(project.box_order.len()) as u32;
        Self {
            id: r.id,
            project: r.project,
            project_name: project.name.clone(),
            name: r.name,
            order_index,
            headliner_asset: r.headliner_asset,
            assets_count: r.assets_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
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
