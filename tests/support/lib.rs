//! Test support: one local stack per test binary (emulator + HTTP API on free
//! ports), and a small client that talks to it like an app would. Tests stay
//! isolated by registering their own users.

pub mod tools;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use assetbox_local::{LocalStack, Options, emulator_sdk_config};
use aws_config::SdkConfig;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What tests need to know about the running stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub api: String,
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
                    schedule_every: Some(std::time::Duration::from_secs(1)),
                    parameters,
                    deliver_s3_events: *DELIVER_S3_EVENTS.get_or_init(|| false),
                    ..Options::default()
                };
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

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub password: String,
    pub id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A JSON reply: status and parsed body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The reason a field was refused, from our error contract.
    pub fn field_error(&self, field: &str) -> Option<&str> {
        self.body
            .pointer(&format!("/error/fields/{field}"))
            .and_then(Value::as_str)
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::new(),
            base: stack().api.clone(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        let bytes = response.bytes().await.expect("HTTP body");
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, token, None).await
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        self.send(
            method,
            path,
            token,
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.json(Method::POST, path, token, body).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.json(Method::PATCH, path, token, body).await
    }

    /// Uppy 6's `signRequest` hook: POSTs one `PresignableRequest`.
    pub async fn sign(&self, user: &User, request: Value) -> Reply {
        self.post("/s3/sign", Some(&user.access_token), &request)
            .await
    }

    /// Uppy 6's CreateMultipartUpload as the browser makes it: signed here,
    /// sent to S3. Our key and S3's upload id.
    pub async fn start_signed_multipart(
        &self,
        user: &User,
        proposed_key: &str,
    ) -> (String, String) {
        let created = self
            .sign(user, json!({ "method": "POST", "key": proposed_key }))
            .await;
        assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
        let (status, xml) = send_signed(&created.body, "POST", vec![]).await;
        assert_eq!(status, StatusCode::OK, "{xml}");
        let key = created.body["key"].as_str().expect("our key").to_owned();
        (key, xml_value(&xml, "UploadId"))
    }

    /// Registers a fresh user (unique e-mail) and logs in.
    pub async fn new_user(&self) -> User {
        let email = format!(
            "user-{}@example.com",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let password = "correct horse battery".to_owned();
        let creds = json!({ "email": email, "password": password });
        let registered = self.post("/api/auth/register", None, &creds).await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{:?}",
            registered.body
        );
        let login = self.post("/api/auth/login", None, &creds).await;
        assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
        let access_token = login.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        User {
            email,
            password,
            // The user's id is the `sub` of their tokens.
            id: jwt_claims(&access_token)["sub"]
                .as_str()
                .expect("sub")
                .to_owned(),
            access_token,
            refresh_token: login.body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

impl Stack {
    /// Sets a user's quota counter, as if other uploads held `bytes`.
    pub async fn set_quota_used(&self, user_id: &str, bytes: u64) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.dynamodb()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("USER#{user_id}")))
            .item("sk", AttributeValue::S("QUOTA".into()))
            .item("used_bytes", AttributeValue::N(bytes.to_string()))
            .send()
            .await
            .expect("write the quota counter");
    }

    pub fn bucket(&self) -> &str {
        &self.physical_ids["MediaBucket"]
    }

    /// The tests' own S3 client. Response checksum validation is off: moto
    /// reports a multipart object's composite checksum as if it were the
    /// whole object's, which the SDK would reject; the tests compare bytes.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk().await)
            .force_path_style(true)
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Open multipart uploads under a user's prefix, straight from S3.
    pub async fn open_uploads_of(&self, user_id: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_multipart_uploads()
            .bucket(self.bucket())
            .prefix(format!("uploads/{user_id}/"))
            .send()
            .await
            .expect("list multipart uploads");
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect()
    }

    /// The user's quota counter as stored ("0" before anything was counted).
    pub async fn quota_used(&self, user_id: &str) -> String {
        self.items_of(user_id)
            .await
            .into_iter()
            .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("QUOTA"))
            .and_then(|q| q.get("used_bytes").and_then(|n| n.as_n().ok()).cloned())
            .unwrap_or_else(|| "0".into())
    }

    /// Stores an object straight into the media bucket (as someone with
    /// bucket access would, bypassing the API).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        self.s3()
            .await
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
    }

    pub async fn object_exists(&self, key: &str) -> bool {
        self.s3()
            .await
            .head_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Object keys under a user's prefix.
    pub async fn objects_of(&self, user_id: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(format!("uploads/{user_id}/"))
            .send()
            .await
            .expect("list objects");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

/// Deterministic bytes that differ per seed and position (no two parts alike).
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Sends a request presigned by `POST /s3/sign` as the browser would: the
/// signed headers and the body. Status and body text.
pub async fn send_signed(signed: &Value, method: &str, body: Vec<u8>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().request(
        method.parse().expect("an HTTP method"),
        signed["url"].as_str().expect("a url"),
    );
    for (name, value) in signed["headers"].as_object().into_iter().flatten() {
        request = request.header(name.as_str(), value.as_str().expect("a header value"));
    }
    let response = request.body(body).send().await.expect("S3 request");
    (response.status(), response.text().await.expect("S3 reply"))
}

/// The text of the first `<tag>` of an S3 XML reply.
pub fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let from = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let to = from + xml[from..].find("</").expect("a closing tag");
    xml[from..to].to_owned()
}

/// PUTs bytes to a presigned URL as a browser or script would; the ETag.
pub async fn put_to(url: &str, bytes: Vec<u8>, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::new()
        .put(url)
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.body(bytes).send().await.expect("PUT to S3");
    assert!(
        response.status().is_success(),
        "PUT {url}: {}",
        response.status()
    );
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("ETag header")
        .to_owned()
}

/// A function of the stack wired as the local stack wires it, and the text
/// of one of its `events/` samples.
async fn function_and_sample(
    binary: &str,
    sample: &str,
) -> (assetbox_local::functions::LocalFunction, String) {
    let spec = stack()
        .functions
        .iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("no function builds {binary}"));
    let sdk = stack().sdk().await;
    let function = assetbox_local::functions::build(spec, &sdk).expect("wire function");
    let path = assetbox_local::project_root()
        .join("events")
        .join(binary)
        .join(sample);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (function, text)
}

/// Runs an `events/` sample through a function as Lambda would (lambda_http's
/// adapter), wired with the stack's environment but without its gateway:
/// the sample's own claims and route are what the function sees.
pub async fn invoke_sample(binary: &str, sample: &str) -> (u16, Value) {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::Http(service) = function else {
        panic!("{binary} is not an HTTP function");
    };
    let event = serde_json::from_str(&text).expect("sample is an API Gateway v2 event");
    let response = assetbox_shared::http::invoke(&service, event, "sample")
        .await
        .expect("handler");
    let response = serde_json::to_value(response).expect("response JSON");
    let body = response["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (
        response["statusCode"].as_u64().expect("statusCode") as u16,
        body,
    )
}

impl Client {
    /// A one-part direct upload (`/v1/files`) of `bytes` declared as
    /// `content_type` into a box, completed; the file's id.
    pub async fn upload_into_box(
        &self,
        user: &User,
        box_id: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> String {
        let part_size = bytes.len();
        self.upload_file(user, Some(box_id), content_type, bytes, part_size)
            .await
    }

    /// A direct upload (`/v1/files`) cut into parts of `part_size`, into a
    /// box or none, completed; the file's id.
    pub async fn upload_file(
        &self,
        user: &User,
        box_id: Option<&str>,
        content_type: &str,
        bytes: Vec<u8>,
        part_size: usize,
    ) -> String {
        let token = Some(user.access_token.as_str());
        let parts: Vec<&[u8]> = bytes.chunks(part_size).collect();
        let mut request = json!({ "file_name": "frame", "file_size": bytes.len(),
            "file_content_type": content_type, "num_parts": parts.len(), "part_size": part_size });
        if let Some(box_id) = box_id {
            request["parent_content_type"] = json!("box");
            request["parent_object_id"] = json!(box_id);
        }
        let started = self.post("/v1/files/uploads", token, &request).await;
        assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
        let mut completed = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let url = started.body["presigned_urls"][i]["url"].as_str().unwrap();
            let etag = put_to(url, part.to_vec(), &[]).await;
            completed.push(json!({ "part_number": i + 1, "etag": etag }));
        }
        let file_id = started.body["id"].as_str().unwrap().to_owned();
        let done = self
            .post(
                &format!("/v1/files/uploads/{file_id}/complete"),
                token,
                &json!({ "parts": completed }),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
        file_id
    }
}

/// Runs an `events/` SQS sample through an SQS-consuming function as an
/// event source mapping would; the messages it asks to see again.
pub async fn invoke_sqs_sample(binary: &str, sample: &str) -> Vec<String> {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::Sqs(consumer) = function else {
        panic!("{binary} does not consume SQS");
    };
    let event = serde_json::from_str(&text).expect("sample is an SQS event");
    consumer(event)
        .await
        .expect("handler")
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// Runs an `events/` S3 sample through an S3-consuming function as S3
/// invokes it (one attempt); `Err` when the function asks to be retried.
pub async fn invoke_s3_sample(binary: &str, sample: &str) -> Result<(), String> {
    let (function, text) = function_and_sample(binary, sample).await;
    let assetbox_local::functions::LocalFunction::S3(consumer) = function else {
        panic!("{binary} takes no S3 events");
    };
    let event = serde_json::from_str(&text).expect("sample is an S3 event");
    consumer(event).await
}

/// Real media made in the test: a PNG, a JPEG (gradients that differ per
/// seed) and an MP4 (an H.264 track of `frames` samples at 25 fps).
pub mod media {
    use std::io::Cursor;

    fn picture(width: u32, height: u32, seed: u8) -> image::RgbImage {
        image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                seed,
            ])
        })
    }

    /// A PNG whose header declares `width`×`height` 8-bit RGB and whose
    /// data is a few rows of zeros: a small file asking for gigabytes (a
    /// decompression bomb as far as any decoder can tell before decoding).
    pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let rows = vec![0u8; 4 * (1 + 3 * width as usize)];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zlib, &rows).expect("compress");
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib.finish().expect("compress"));
        chunk(&mut out, b"IEND", &[]);
        out
    }

    pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture(width, height, seed)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode PNG");
        out.into_inner()
    }

    pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture(width, height, seed)
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .expect("encode JPEG");
        out.into_inner()
    }

    /// A camera-like JPEG: a gradient under per-pixel noise, so it
    /// compresses like a photo (a 20 MP one is several MiB, several parts).
    pub fn photo_jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            // xorshift64: cheap, deterministic noise.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 0x3f) as u32;
            image::Rgb([
                ((x * 191 / width.max(1)) + noise) as u8,
                ((y * 191 / height.max(1)) + noise) as u8,
                (noise * 3) as u8,
            ])
        });
        let mut out = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&picture)
            .expect("encode JPEG");
        out.into_inner()
    }

    /// A JPEG with an EXIF APP1 segment after SOI saying `Orientation = value`
    /// (as cameras write a portrait shot stored landscape: 6).
    pub fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    pub fn mp4(frames: u32, seed: u8) -> Vec<u8> {
        let config = mp4::Mp4Config {
            major_brand: str::parse("isom").unwrap(),
            minor_version: 512,
            compatible_brands: vec![
                str::parse("isom").unwrap(),
                str::parse("iso2").unwrap(),
                str::parse("avc1").unwrap(),
                str::parse("mp41").unwrap(),
            ],
            timescale: 1000,
        };
        let mut writer = mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).unwrap();
        writer
            .add_track(&mp4::TrackConfig {
                track_type: mp4::TrackType::Video,
                timescale: 25,
                language: "und".into(),
                media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                    width: 64,
                    height: 48,
                    seq_param_set: vec![0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0x40, 0x0c],
                    pic_param_set: vec![0x68, 0xce, 0x3c, 0x80],
                }),
            })
            .unwrap();
        for i in 0..frames {
            let sample = mp4::Mp4Sample {
                start_time: i as u64,
                duration: 1,
                rendering_offset: 0,
                is_sync: i == 0,
                bytes: bytes::Bytes::from(vec![0, 0, 0, 2, 0x65, seed ^ i as u8]),
            };
            writer.write_sample(1, &sample).unwrap();
        }
        writer.write_end().unwrap();
        writer.into_writer().into_inner()
    }

    /// A structurally valid WebM of `width`×`height` VP8 video, as a muxer
    /// lays it out: an EBML header (DocType "webm", which `infer` looks for
    /// to say `video/webm`), then a Segment of known size holding a 100-byte
    /// Void (where a SeekHead would be), Info (TimestampScale 1 ms and, if
    /// given, Duration — live recordings have none), Tracks (one video
    /// track) and one Cluster: a Timestamp and a SimpleBlock carrying
    /// `cluster_bytes` pseudo-random bytes, which ingestion must not read.
    /// Always longer than the 256 bytes `infer` needs to recognise it.
    pub fn webm(
        width: u32,
        height: u32,
        duration_ms: Option<u64>,
        cluster_bytes: usize,
    ) -> Vec<u8> {
        /// ID bytes (marker kept), shortest size vint, payload.
        fn el(id: u32, payload: &[u8]) -> Vec<u8> {
            let mut out: Vec<u8> = id
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            let size = payload.len() as u64;
            let len = (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap();
            out.extend_from_slice(&(size | 1u64 << (7 * len)).to_be_bytes()[8 - len..]);
            out.extend_from_slice(payload);
            out
        }
        fn uint(id: u32, value: u64) -> Vec<u8> {
            let bytes: Vec<u8> = value
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            el(id, if bytes.is_empty() { &[0] } else { &bytes })
        }
        let header = [
            uint(0x4286, 1),     // EBMLVersion
            uint(0x42F7, 1),     // EBMLReadVersion
            uint(0x42F2, 4),     // EBMLMaxIDLength
            uint(0x42F3, 8),     // EBMLMaxSizeLength
            el(0x4282, b"webm"), // DocType
            uint(0x4287, 4),     // DocTypeVersion
            uint(0x4285, 2),     // DocTypeReadVersion
        ]
        .concat();
        let mut info = uint(0x2AD7B1, 1_000_000); // TimestampScale: ticks of 1 ms
        info.extend(el(0x4D80, b"assetbox-e2e")); // MuxingApp
        info.extend(el(0x5741, b"assetbox-e2e tests/support media::webm")); // WritingApp
        if let Some(ms) = duration_ms {
            info.extend(el(0x4489, &(ms as f64).to_be_bytes())); // Duration
        }
        let video = [uint(0xB0, width.into()), uint(0xBA, height.into())].concat();
        let entry = [
            uint(0xD7, 1),      // TrackNumber
            uint(0x73C5, 1),    // TrackUID
            uint(0x83, 1),      // TrackType: video
            el(0x86, b"V_VP8"), // CodecID
            el(0xE0, &video),   // Video
        ]
        .concat();
        let tracks = el(0xAE, &entry); // TrackEntry
        let mut block = vec![0x81, 0, 0, 0x80]; // track 1, timestamp 0, keyframe
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ cluster_bytes as u64;
        block.extend((0..cluster_bytes).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }));
        let cluster = [uint(0xE7, 0), el(0xA3, &block)].concat(); // Timestamp, SimpleBlock
        let segment = [
            el(0xEC, &[0; 100]),      // Void
            el(0x1549A966, &info),    // Info
            el(0x1654AE6B, &tracks),  // Tracks
            el(0x1F43B675, &cluster), // Cluster
        ]
        .concat();
        let mut out = el(0x1A45DFA3, &header); // EBML header
        // Segment, with an 8-byte size as muxers reserve it.
        out.extend_from_slice(&0x18538067u32.to_be_bytes());
        out.extend_from_slice(&(segment.len() as u64 | 1 << 56).to_be_bytes());
        out.extend(segment);
        out
    }
}

/// A multipart/form-data body of `(name, file name, bytes)` fields; its
/// content type (with the boundary) and bytes.
pub fn form(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("assetbox-{}", ulid::Ulid::new());
    let mut body = Vec::new();
    for (name, file_name, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
