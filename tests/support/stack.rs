//! The local stack of a test binary: started once, on free ports, with
//! the parameters the binary asks for; tokens minted with the pool's key.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use assetbox_local::{LocalStack, Options, emulator_sdk_config};
use aws_config::SdkConfig;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// What tests need to know about the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub api: String,
    /// The live WebSocket API (`ws://…/live`).
    pub live: String,
    /// The web console and share page (`console/`, served by the stack).
    pub console: String,
    pub emulator: String,
    pub table: String,
    pub user_pool_id: String,
    pub client_id: String,
    pub issuer: String,
    pub cleanup_queue_url: String,
    /// Every resource's physical id (`!Ref`) and ARN, by logical id.
    pub physical_ids: std::collections::HashMap<String, String>,
    pub arns: std::collections::HashMap<String, String>,
    /// moto's private signing key as a JWK (n, e, d), to mint tokens that
    /// carry a valid signature but bad claims.
    pub signing_jwk: Value,
    /// The template's functions as the stack runs them (env resolved).
    pub functions: Vec<assetbox_local::template::FunctionSpec>,
    pub stack_name: String,
    /// The stand-in AI provider and the models the stack registered for it.
    pub standin_url: String,
    pub image_model: String,
    pub video_model: String,
}

/// Whether this binary's stack delivers S3 events to ingest-object. Off
/// unless a test asks first: most tests assert on assets as the routes leave
/// them, which ingestion would change under them.
static DELIVER_S3_EVENTS: OnceLock<bool> = OnceLock::new();

/// The stack, delivering S3 events like real S3 (call it first in every
/// test of a binary that wants them).
pub fn stack_delivering_s3_events() -> &'static Stack {
    let on = *DELIVER_S3_EVENTS.get_or_init(|| true);
    assert!(on, "this binary's stack started without S3 event delivery");
    stack()
}

/// Template parameters this binary's stack starts with, beside the ones
/// every stack gets (e.g. the browser tests' allowed CORS origin).
static EXTRA_PARAMETERS: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// The stack, started with these extra template parameters and S3 event
/// delivery on or off (call it first in every test of a binary that wants
/// them).
pub fn stack_with(parameters: Vec<(String, String)>, deliver_s3_events: bool) -> &'static Stack {
    let wanted = parameters.clone();
    let got = EXTRA_PARAMETERS.get_or_init(|| parameters);
    assert_eq!(
        got, &wanted,
        "this binary's stack started with other parameters"
    );
    let on = *DELIVER_S3_EVENTS.get_or_init(|| deliver_s3_events);
    assert_eq!(
        on, deliver_s3_events,
        "this binary's stack started otherwise"
    );
    stack()
}

/// How often test stacks fire their schedules.
pub const SCHEDULE_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// Starts the stack once for this test binary, on its own runtime thread so
/// it outlives every test's runtime. The emulator exits with the process.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            runtime.block_on(async move {
                // Room for a 10,000-part upload (every part but the last
                // >= 5 MiB makes it ~49 GiB) and a quota that parallel
                // uploads of 10 GiB can hit; the 5 GiB default is unit-tested.
                // The development defaults of command 1 (imports fetch
                // from the tests' own loopback server, as they may locally).
                let mut parameters = assetbox_local::development_parameters();
                parameters.extend([
                    ("MaxUploadBytes".into(), (64u64 << 30).to_string()),
                    ("UserQuotaBytes".into(), (100u64 << 30).to_string()),
                    // Uploads of undeclared size reserve 1 MiB until measured,
                    // so tests can go beyond a reservation with small files.
                    ("UnsizedUploadReserveBytes".into(), (1u64 << 20).to_string()),
                ]);
                parameters.extend(EXTRA_PARAMETERS.get_or_init(Vec::new).iter().cloned());
                let options = Options {
                    // Cleanup runs every 20 s instead of hourly: often enough
                    // for a test to see one, rarely enough to stay out of
                    // the way (tests start their own runs: `run_cleanup`).
                    schedule_every: Some(SCHEDULE_EVERY),
                    standin_step: std::time::Duration::from_millis(250),
                    parameters,
                    deliver_s3_events: *DELIVER_S3_EVENTS.get_or_init(|| false),
                    ..Options::default()
                };
                let stack_name = options.stack_name.clone();
                match LocalStack::start(options).await {
                    Ok(local) => {
                        let env = local
                            .function_env("AuthApiFunction")
                            .cloned()
                            .unwrap_or_default();
                        let keys = assetbox_local::jwt::read_key_set(
                            &local.emulator.cognito_keys_dir,
                            "jwks-private",
                        )
                        .expect("moto's private key set");
                        let keys: Value = serde_json::from_str(&keys).expect("JWKS JSON");
                        let info = Stack {
                            api: local.api_url.clone(),
                            live: local
                                .live_url
                                .clone()
                                .expect("the template's WebSocket API"),
                            console: local.console_url.clone(),
                            emulator: local.emulator.endpoint.clone(),
                            table: local.physical_id("Table").expect("Table").to_owned(),
                            user_pool_id: env["USER_POOL_ID"].clone(),
                            client_id: env["USER_POOL_CLIENT_ID"].clone(),
                            issuer: format!(
                                "https://cognito-idp.{}.amazonaws.com/{}",
                                assetbox_local::provision::REGION,
                                env["USER_POOL_ID"]
                            ),
                            cleanup_queue_url: local
                                .physical_id("CleanupQueue")
                                .expect("CleanupQueue")
                                .to_owned(),
                            physical_ids: local.resolved.refs.clone(),
                            arns: local
                                .resolved
                                .attrs
                                .iter()
                                .filter(|((_, attr), _)| attr == "Arn")
                                .map(|((id, _), arn)| (id.clone(), arn.clone()))
                                .collect(),
                            functions: local.functions.clone(),
                            stack_name,
                            standin_url: local.standin.url.clone(),
                            image_model: model_of(&local, "image"),
                            video_model: model_of(&local, "img2vid"),
                            signing_jwk: keys
                                .get("keys")
                                .and_then(|k| k.get(0))
                                .cloned()
                                .unwrap_or(keys),
                        };
                        tx.send(Ok(info)).ok();
                        // Keep the stack (and its runtime) alive for the whole binary.
                        std::future::pending::<()>().await;
                        drop(local);
                    }
                    Err(e) => {
                        tx.send(Err(format!("{e:#}"))).ok();
                    }
                }
            });
        });
        rx.recv()
            .expect("stack thread")
            .expect("local stack failed to start")
    })
}

/// The id of the registered stand-in model of this kind.
fn model_of(local: &LocalStack, kind: &str) -> String {
    local
        .registered
        .models
        .iter()
        .find(|m| m.spec.kind.as_str() == kind)
        .map(|m| m.id.clone())
        .expect("the stack registers a model of each kind")
}

impl Stack {
    /// SDK configuration for direct checks against the emulator. Built per
    /// test: SDK clients keep connections on the runtime that made them.
    pub async fn sdk(&self) -> SdkConfig {
        emulator_sdk_config(&self.emulator).await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk().await)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    /// Every item stored under a user's partition.
    pub async fn items_of(
        &self,
        user_id: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let out = self
            .dynamodb()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{user_id}")),
            )
            .send()
            .await
            .expect("query the table");
        out.items.unwrap_or_default()
    }

    /// Signs `claims` with the pool's own key: a token whose signature is
    /// valid, so only its claims decide.
    pub fn mint_token(&self, claims: &Value) -> String {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let part = |name: &str| {
            let raw = self.signing_jwk[name].as_str().expect("JWK component");
            rsa::BigUint::from_bytes_be(&b64.decode(raw).expect("JWK base64"))
        };
        let key = rsa::RsaPrivateKey::from_components(part("n"), part("e"), part("d"), vec![])
            .expect("RSA key");
        let der = key.to_pkcs1_der().expect("DER");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.signing_jwk["kid"].as_str().map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            .expect("sign")
    }

    /// Claims like Cognito's access token for `sub`, valid for an hour.
    pub fn access_claims(&self, sub: &str) -> Value {
        let now = now_secs();
        json!({
            "iss": self.issuer,
            "sub": sub,
            "client_id": self.client_id,
            "token_use": "access",
            "iat": now,
            "exp": now + 3600,
        })
    }

    /// What the stand-in provider counted for a prompt (received,
    /// created, queries, callbacks, cancels).
    pub async fn standin_stats(&self, prompt: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/_standin/stats", self.standin_url))
            .query(&[("prompt", prompt)])
            .send()
            .await
            .expect("the stand-in answers")
            .json()
            .await
            .expect("its stats are JSON")
    }

    /// A token of a fresh member of the `admin` group.
    pub fn admin_token(&self) -> String {
        let mut claims = self.access_claims(&format!("admin-{}", ulid::Ulid::new()));
        claims["cognito:groups"] = json!(["admin"]);
        self.mint_token(&claims)
    }

    /// Registers the Replicate-shaped provider and its model
    /// (`local/registry/replicate-shape.json`) through the admin API, as
    /// an admin would; returns the model's id.
    pub async fn register_predictions_model(&self, api: &crate::Client) -> String {
        let admin = self.admin_token();
        let defs = assetbox_local::registry::definitions(
            assetbox_local::registry::REPLICATE_SHAPE_DEFINITIONS,
            &self.standin_url,
            &self.stack_name,
        )
        .expect("the registry file parses");
        let provider = api
            .post("/api/ai/providers/", Some(&admin), &defs["provider"])
            .await;
        assert_eq!(provider.status, 201, "{:?}", provider.body);
        let mut model = defs["models"][0].clone();
        model["provider"] = provider.body["id"].clone();
        let model = api.post("/api/ai/models/", Some(&admin), &model).await;
        assert_eq!(model.status, 201, "{:?}", model.body);
        model.body["id"]
            .as_str()
            .expect("the model's id")
            .to_owned()
    }
}

/// The claims of a JWT, read without checking its signature (the gateway
/// checks it; tests only look).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}
