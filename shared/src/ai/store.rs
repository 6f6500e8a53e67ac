//! The AI registry in the table: `AI` / `PROVIDER#<id>` and `AI` /
//! `MODEL#<id>`. A deleted model or provider keeps its item (marked
//! `deleted_at`, inactive) so the generations running on it can finish;
//! lists and reads skip it.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Model, Provider};
use crate::db::keys;
use crate::db::{StoreError, Table, condition_held, store_error};

type Item = std::collections::HashMap<String, AttributeValue>;

fn decode<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("reading {what}: {e}")))
}

impl Table {
    fn registry_item<T: Serialize>(
        entity: &str,
        record: &T,
        sk: String,
    ) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
        Self::item(
            entity,
            record,
            &[(keys::PK, keys::AI_PK.to_owned()), (keys::SK, sk)],
        )
    }

    pub async fn insert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        self.insert_new(Self::registry_item(
            "ai_provider",
            provider,
            keys::provider_sk(&provider.id),
        )?)
        .await
    }

    pub async fn insert_model(&self, model: &Model) -> Result<(), StoreError> {
        self.insert_new(Self::registry_item(
            "ai_model",
            model,
            keys::model_sk(&model.id),
        )?)
        .await
    }

    /// Writes an edited provider over the one read (`false`: it changed or
    /// went meanwhile).
    pub async fn replace_provider(
        &self,
        provider: &Provider,
        read_at: &str,
    ) -> Result<bool, StoreError> {
        let item = Self::registry_item("ai_provider", provider, keys::provider_sk(&provider.id))?;
        self.replace_registry_item(item, read_at).await
    }

    pub async fn replace_model(&self, model: &Model, read_at: &str) -> Result<bool, StoreError> {
        let item = Self::registry_item("ai_model", model, keys::model_sk(&model.id))?;
        self.replace_registry_item(item, read_at).await
    }

    async fn replace_registry_item(
        &self,
        item: std::collections::HashMap<String, AttributeValue>,
        read_at: &str,
    ) -> Result<bool, StoreError> {
        condition_held(
            self.client()
                .put_item()
                .table_name(self.name())
                .set_item(Some(item))
                .condition_expression("updated_at = :read AND attribute_not_exists(deleted_at)")
                .expression_attribute_values(":read", AttributeValue::S(read_at.to_owned()))
                .send()
                .await,
        )
    }

    /// Marks a registry entry deleted (and inactive); `false` when it was
    /// not there or already deleted.
    pub async fn delete_registry_entry(&self, sk: String, now: &str) -> Result<bool, StoreError> {
        condition_held(
            self.client()
                .update_item()
                .table_name(self.name())
                .set_key(Some(Self::primary_key(keys::AI_PK.to_owned(), sk)))
                .update_expression("SET deleted_at = :now, active = :no, updated_at = :now")
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(deleted_at)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":now", AttributeValue::S(now.to_owned()))
                .expression_attribute_values(":no", AttributeValue::Bool(false))
                .send()
                .await,
        )
    }

    /// A provider and whether it is deleted (a running generation still
    /// uses its own).
    pub async fn get_provider(&self, id: &str) -> Result<Option<(Provider, bool)>, StoreError> {
        self.get_registry(keys::provider_sk(id), "ai provider")
            .await
    }

    /// A model and whether it is deleted.
    pub async fn get_model(&self, id: &str) -> Result<Option<(Model, bool)>, StoreError> {
        self.get_registry(keys::model_sk(id), "ai model").await
    }

    /// A model unless it is unknown or deleted.
    pub async fn live_model(&self, id: &str) -> Result<Option<Model>, StoreError> {
        Ok(self
            .get_model(id)
            .await?
            .and_then(|(m, deleted)| (!deleted).then_some(m)))
    }

    /// A provider unless it is unknown or deleted.
    pub async fn live_provider(&self, id: &str) -> Result<Option<Provider>, StoreError> {
        Ok(self
            .get_provider(id)
            .await?
            .and_then(|(p, deleted)| (!deleted).then_some(p)))
    }

    async fn get_registry<T: DeserializeOwned>(
        &self,
        sk: String,
        what: &str,
    ) -> Result<Option<(T, bool)>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.name())
            .set_key(Some(Self::primary_key(keys::AI_PK.to_owned(), sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item
            .map(|item| {
                let deleted = item.contains_key("deleted_at");
                decode(item, what).map(|record| (record, deleted))
            })
            .transpose()
    }

    /// Every provider not deleted, oldest first.
    pub async fn list_providers(&self) -> Result<Vec<Provider>, StoreError> {
        self.registry_items(keys::prefix::PROVIDER)
            .await?
            .into_iter()
            .map(|item| decode(item, "ai provider"))
            .collect()
    }

    /// Every provider and every model not deleted, oldest first, in one
    /// Query of the registry's partition.
    pub async fn registry(&self) -> Result<(Vec<Provider>, Vec<Model>), StoreError> {
        let (mut providers, mut models) = (Vec::new(), Vec::new());
        for item in self.registry_items("").await? {
            let sk = item.get(keys::SK).and_then(|v| v.as_s().ok());
            if sk.is_some_and(|sk| sk.starts_with(keys::prefix::MODEL)) {
                models.push(decode(item, "ai model")?);
            } else if sk.is_some_and(|sk| sk.starts_with(keys::prefix::PROVIDER)) {
                providers.push(decode(item, "ai provider")?);
            }
        }
        Ok((providers, models))
    }

    /// The registry's items under `prefix` (all of them for `""`), deleted
    /// ones left out.
    async fn registry_items(&self, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let query = self
                .client()
                .query()
                .table_name(self.name())
                .filter_expression("attribute_not_exists(deleted_at)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":pk", AttributeValue::S(keys::AI_PK.to_owned()))
                .set_exclusive_start_key(after);
            // DynamoDB refuses an empty key value, so "all" is no prefix.
            let query = match prefix {
                "" => query.key_condition_expression("#pk = :pk"),
                _ => query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", keys::SK)
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
            };
            let out = query.send().await.map_err(store_error)?;
            found.extend(out.items.unwrap_or_default());
            after = out.last_evaluated_key;
            if after.is_none() {
                return Ok(found);
            }
        }
    }
}
