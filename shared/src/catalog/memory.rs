//! In-memory implementations of the store ports, for fast handler tests and
//! benchmarks that must not include AWS I/O. Never used by a Lambda binary
//! (behind the `memory` feature, enabled only by dev-dependencies and benches).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{BoxRecord, ProjectRecord, ProjectStore};
use crate::db::keys;
use crate::db::{Listing, StoreError};
use crate::pagination::StringKey;

#[derive(Clone, Default)]
pub struct MemoryStore {
    /// (owner, project id) → record; BTreeMap keeps ids (ULIDs) in order.
    projects: Arc<Mutex<BTreeMap<(String, String), ProjectRecord>>>,
}

fn position(owner: &str, id: &str) -> StringKey {
    StringKey::from([
        (keys::PK.to_owned(), keys::user_pk(owner)),
        (keys::SK.to_owned(), keys::project_sk(id)),
    ])
}

impl ProjectStore for MemoryStore {
    async fn insert_project(&self, project: &ProjectRecord) -> Result<(), StoreError> {
        let mut projects = self.projects.lock().expect("lock");
        let key = (project.owner.clone(), project.id.clone());
        if projects.contains_key(&key) {
            return Err(StoreError::Failed("project exists".into()));
        }
        projects.insert(key, project.clone());
        Ok(())
    }

    async fn get_project(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        Ok(self
            .projects
            .lock()
            .expect("lock")
            .get(&(owner.to_owned(), id.to_owned()))
            .cloned())
    }

    async fn list_projects(
        &self,
        owner: &str,
        limit: u32,
        after: Option<StringKey>,
    ) -> Result<Listing<ProjectRecord>, StoreError> {
        let after_id = after
            .as_ref()
            .and_then(|k| k.get(keys::SK))
            .and_then(|sk| sk.strip_prefix(keys::prefix::PROJECT))
            .map(str::to_owned);
        let projects = self.projects.lock().expect("lock");
        let mut newest_first: Vec<&ProjectRecord> = projects
            .values()
            .filter(|p| p.owner == owner)
            .filter(|p| after_id.as_ref().is_none_or(|after| p.id < *after))
            .collect();
        newest_first.sort_by(|a, b| b.id.cmp(&a.id));
        let more = newest_first.len() > limit as usize;
        newest_first.truncate(limit as usize);
        let next = more
            .then(|| newest_first.last().map(|p| position(owner, &p.id)))
            .flatten();
        Ok(Listing {
            items: newest_first.into_iter().cloned().collect(),
            next,
        })
    }

    async fn rename_project(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        updated_at: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let mut projects = self.projects.lock().expect("lock");
        Ok(projects
            .get_mut(&(owner.to_owned(), id.to_owned()))
            .map(|p| {
                p.name = name.to_owned();
                p.updated_at = updated_at.to_owned();
                p.clone()
            }))
    }

    async fn delete_project(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        // As DynamoDB's condition: only a project without boxes goes.
        let mut projects = self.projects.lock().expect("lock");
        let key = (owner.to_owned(), id.to_owned());
        match projects.get(&key) {
            Some(project) if project.box_order.is_empty() => {
                projects.remove(&key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_boxes(&self, _owner: &str, _ids: &[String]) -> Result<Vec<BoxRecord>, StoreError> {
        // Box writes go through DynamoDB only; the in-memory store has none.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(boxes: &[&str]) -> ProjectRecord {
        ProjectRecord {
            id: "01J".into(),
            owner: "u1".into(),
            name: "Film".into(),
            boxes_count: boxes.len() as u32,
            box_order: boxes.iter().map(|b| b.to_string()).collect(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// It refuses what the real store refuses: a project that has boxes
    /// is not deleted (that would orphan them).
    #[tokio::test]
    async fn a_project_with_boxes_is_not_deleted() {
        let store = MemoryStore::default();
        store.insert_project(&project(&["01B"])).await.unwrap();
        assert!(!store.delete_project("u1", "01J").await.unwrap());
        assert!(store.get_project("u1", "01J").await.unwrap().is_some());

        let store = MemoryStore::default();
        store.insert_project(&project(&[])).await.unwrap();
        assert!(store.delete_project("u1", "01J").await.unwrap());
        assert!(store.get_project("u1", "01J").await.unwrap().is_none());
    }
}
