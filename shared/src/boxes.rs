//! Boxes (shots) as stored and shown. A box's place in its project is its
//! position in the project's `box_order` (see [`crate::keys`]), so the box
//! item holds no index that could drift.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    pub fn new(r: BoxRecord, project: &crate::projects::ProjectRecord) -> Self {
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
