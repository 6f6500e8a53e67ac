//! The stand-in provider in the registry, as `cargo run -p assetbox-local`
//! leaves it: its keys in the emulator's Secrets Manager under the stack's
//! provider prefix (as an admin would put a real provider's), and the
//! provider with its two models (`registry/standin.json`) in the table, so
//! generation works at once. `registry/replicate-shape.json` is the second
//! protocol shape, registered by tests through the admin API.

use anyhow::Context;
use assetbox_shared::ai::{Model, ModelSpec, Provider, ProviderSpec, RegistryRules};
use assetbox_shared::db::Table;
use aws_config::SdkConfig;
use base64::Engine;
use rand::RngCore;
use serde_json::Value;

use crate::standin::StandinConfig;

pub const STANDIN_DEFINITIONS: &str = include_str!("../registry/standin.json");
pub const REPLICATE_SHAPE_DEFINITIONS: &str = include_str!("../registry/replicate-shape.json");

/// A definitions file with the stand-in's URL and the stack's name filled.
pub fn definitions(text: &str, standin_url: &str, stack: &str) -> anyhow::Result<Value> {
    let filled = text
        .replace("{{standin_url}}", standin_url)
        .replace("{{stack}}", stack);
    Ok(serde_json::from_str(&filled)?)
}

/// The provider prefix of a stack's secrets (the template's
/// `${AWS::StackName}/providers/`).
pub fn secret_prefix(stack: &str) -> String {
    format!("{stack}/providers/")
}

fn random_text(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Fresh keys for the stand-in (per start, like every local secret).
pub fn standin_keys() -> (String, String, String) {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    (
        random_text(24),
        random_text(24),
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ),
    )
}

pub struct Registered {
    pub provider: Provider,
    pub models: Vec<Model>,
}

pub async fn register_standin(
    sdk: &SdkConfig,
    table_name: &str,
    stack: &str,
    url: &str,
    config: &StandinConfig,
) -> anyhow::Result<Registered> {
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    for (name, webhook) in [
        ("standin", &config.webhook_key),
        ("standin-replicate", &config.whsec),
    ] {
        let value = serde_json::json!({"api_key": config.api_key, "webhook_secret": webhook});
        let name = format!("{}{name}", secret_prefix(stack));
        let created = secrets
            .create_secret()
            .name(&name)
            .description("API key of the local stand-in AI provider")
            .secret_string(value.to_string())
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Kept from an earlier start (a data directory): the keys are per start.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                secrets
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(value.to_string())
                    .send()
                    .await
                    .context("renewing the stand-in's secret")?;
            }
            Err(e) => return Err(e).context("creating the stand-in's secret"),
        }
    }
    let defs = definitions(STANDIN_DEFINITIONS, url, stack)?;
    let rules = RegistryRules {
        secret_prefix: secret_prefix(stack),
        allow_http: true,
    };
    let table = Table::new(aws_sdk_dynamodb::Client::new(sdk), table_name);
    let now = assetbox_shared::clock::rfc3339(assetbox_shared::clock::now());
    let spec: ProviderSpec = serde_json::from_value(defs["provider"].clone())?;
    let spec = spec
        .validated(&rules)
        .map_err(|e| anyhow::anyhow!("stand-in provider: {} {:?}", e.message, e.fields))?;
    // A restored table (a data directory) has the stand-in already: it keeps
    // its ids, so generated assets still name their model, and takes this
    // start's URL (the stand-in's port is new each start) and definitions.
    let (providers, existing_models) = table.registry().await?;
    let provider = match providers.into_iter().find(|p| p.name == spec.name) {
        Some(old) => {
            let provider = spec.into_provider(old.id, old.created_at, now.clone());
            if !table.replace_provider(&provider, &old.updated_at).await? {
                anyhow::bail!("the stand-in provider changed while it was re-registered");
            }
            provider
        }
        None => {
            let provider = spec.into_provider(
                assetbox_shared::validation::new_id(),
                now.clone(),
                now.clone(),
            );
            table.insert_provider(&provider).await?;
            provider
        }
    };
    let mut models = Vec::new();
    for raw in defs["models"].as_array().cloned().unwrap_or_default() {
        let mut raw = raw;
        raw["provider"] = Value::String(provider.id.clone());
        let mut spec: ModelSpec = serde_json::from_value(raw)?;
        spec.validate()
            .map_err(|e| anyhow::anyhow!("stand-in model: {} {:?}", e.message, e.fields))?;
        let old = existing_models
            .iter()
            .find(|m| m.spec.provider == provider.id && m.spec.name == spec.name);
        let model = Model {
            id: old.map_or_else(assetbox_shared::validation::new_id, |m| m.id.clone()),
            spec,
            created_at: old.map_or_else(|| now.clone(), |m| m.created_at.clone()),
            updated_at: now.clone(),
        };
        match old {
            Some(old) => {
                if !table.replace_model(&model, &old.updated_at).await? {
                    anyhow::bail!("a stand-in model changed while it was re-registered");
                }
            }
            None => table.insert_model(&model).await?,
        }
        models.push(model);
    }
    Ok(Registered { provider, models })
}
