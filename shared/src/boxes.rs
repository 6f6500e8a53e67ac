//! Boxes (shots) as stored and shown. Only their read side exists so far: the
//! project's box list queries them; creating and ordering them comes with the
//! catalog issue and keeps these shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxRecord {
    pub id: String,
    pub owner: String,
    pub project: String,
    pub name: String,
    pub order_index: u32,
    pub headliner_asset: Option<String>,
    pub assets_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoxView {
    pub id: String,
    pub project: String,
    /// The project's current name (read with the project, never copied into
    /// box items, so a rename needs no fan-out).
    pub project_name: String,
    pub name: String,
    pub order_index: u32,
    pub headliner_asset: Option<String>,
    pub assets_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl BoxView {
    pub fn new(r: BoxRecord, project_name: &str) -> Self {
        Self {
            id: r.id,
            project: r.project,
            project_name: project_name.to_owned(),
            name: r.name,
            order_index: r.order_index,
            headliner_asset: r.headliner_asset,
            assets_count: r.assets_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
