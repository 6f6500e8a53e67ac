//! `--demo`: a user with a project that shows every part of the console at
//! once: boxes in order, uploaded pictures and a video, a generated image and
//! an image-to-video clip from the stand-in provider, a favourite, a
//! headliner, a share link and a client's comment. Made through the public
//! API only, as a user would (so it also proves the path works); seeding
//! again finds the project and makes nothing twice.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::LocalStack;
use crate::standin::media;

pub const EMAIL: &str = "demo@example.com";
/// A local demo account's password, printed at start (not a secret).
pub const PASSWORD: &str = "assetbox-demo";
const PROJECT: &str = "Teaser (demo)";
const SEEDING: &str = "Teaser (demo, being made)";

/// What the seed made or found.
pub struct Demo {
    pub share_url: Option<String>,
    /// False when an earlier start (a data directory) had seeded it.
    pub created: bool,
}

/// A signed-in caller of the public API (the demo's, and the bench's).
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// A direct upload (`/v1/files`) in one part, into a box: initiate,
    /// one PUT of `size` bytes, complete. The id of the asset it became.
    pub async fn upload(
        &self,
        box_id: &str,
        name: &str,
        content_type: &str,
        size: u64,
        body: reqwest::Body,
    ) -> anyhow::Result<String> {
        let upload = self
            .post(
                "/v1/files/uploads",
                json!({
                    "file_name": name, "file_size": size, "file_content_type": content_type,
                    "num_parts": 1, "part_size": size,
                    "parent_content_type": "box", "parent_object_id": box_id,
                }),
            )
            .await?;
        let url = upload["presigned_urls"][0]["url"]
            .as_str()
            .context("no part URL")?;
        let put = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body)
            .send()
            .await?;
        if !put.status().is_success() {
            bail!("PUT of {name}: {}", put.status());
        }
        let etag = put
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .context("no ETag")?
            .to_owned();
        let id = upload["id"].as_str().context("no file id")?;
        let file = self
            .post(
                &format!("/v1/files/uploads/{id}/complete"),
                json!({"parts": [{"part_number": 1, "etag": etag}]}),
            )
            .await?;
        file["asset_id"]
            .as_str()
            .map(str::to_owned)
            .context("the completed file names no asset")
    }

    async fn wait_completed(&self, asset: &str) -> anyhow::Result<()> {
        for _ in 0..300 {
            let got = self.get(&format!("/api/assets/{asset}/")).await?;
            match got["status"].as_str() {
                Some("COMPLETED") => return Ok(()),
                Some("FAILED") => bail!("asset {asset} failed: {}", got["error_message"]),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        bail!("asset {asset} did not complete within 30 s")
    }
}

async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let credentials = json!({"email": EMAIL, "password": PASSWORD});
    let registered = http
        .post(format!("{base}/api/auth/register"))
        .json(&credentials)
        .send()
        .await?;
    // 409: registered by an earlier start that kept its data.
    if !registered.status().is_success() && registered.status() != StatusCode::CONFLICT {
        bail!("registering the demo user: {}", registered.text().await?);
    }
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .error_for_status()
        .context("logging the demo user in")?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

pub async fn seed(stack: &LocalStack) -> anyhow::Result<Demo> {
    let http = reqwest::Client::new();
    let token = sign_in(&http, &stack.api_url).await?;
    let api = Api {
        http,
        base: stack.api_url.clone(),
        token,
    };
    let projects = api.get("/api/projects/").await?;
    for project in projects["results"].as_array().into_iter().flatten() {
        let project_id = project["id"].as_str().context("project id")?.to_owned();
        if project["name"] == PROJECT {
            return Ok(Demo {
                share_url: None,
                created: false,
            });
        }
        // A seed that stopped half-way (kept by a data directory): again.
        if project["name"] == SEEDING {
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/projects/{project_id}/"),
                None,
            )
            .await?;
        }
    }
    // Named as finished only at the end, so a half-made demo is never
    // taken for a whole one.
    let project = api.post("/api/projects/", json!({"name": SEEDING})).await?;
    let project_id = project["id"].as_str().context("project id")?.to_owned();
    let mut boxes = Vec::new();
    for name in ["Opening: the valley", "The chase", "Finale"] {
        let made = api
            .post("/api/boxes/", json!({"project": project_id, "name": name}))
            .await?;
        boxes.push(made["id"].as_str().context("box id")?.to_owned());
    }

    let uploads = [
        (
            0,
            "valley at dawn.png",
            "image/png",
            media::png(960, 540, 40),
        ),
        (
            0,
            "valley at dusk.png",
            "image/png",
            media::png(960, 540, 200),
        ),
        (
            1,
            "chase take 1.mp4",
            "video/mp4",
            media::mp4(75, 320, 180, 7),
        ),
    ];
    let mut uploaded = Vec::new();
    for (box_index, name, content_type, bytes) in uploads {
        let size = bytes.len() as u64;
        uploaded.push(
            api.upload(&boxes[box_index], name, content_type, size, bytes.into())
                .await?,
        );
    }
    let (dawn, dusk) = (&uploaded[0], &uploaded[1]);
    api.post(&format!("/api/assets/{dawn}/favorite/"), json!({}))
        .await?;
    api.call(
        reqwest::Method::PATCH,
        &format!("/api/boxes/{}/", boxes[0]),
        Some(json!({"headliner_asset": dusk})),
    )
    .await?;

    let models = api.get("/api/ai/models/").await?;
    let model_of = |kind: &str| {
        models["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["kind"] == kind)
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned)
    };
    if let Some(image_model) = model_of("image") {
        api.post(
            &format!("/api/boxes/{}/generate/", boxes[2]),
            json!({"ai_model": image_model, "prompt_text": "a red fox running through snow at sunset",
                   "params": {"width": 640, "height": 360}}),
        )
        .await?;
    }
    if let Some(video_model) = model_of("img2vid") {
        // A parent must be a completed image: ingestion finishes it first.
        api.wait_completed(dusk).await?;
        api.post(
            &format!("/api/boxes/{}/generate/", boxes[2]),
            json!({"ai_model": video_model, "prompt_text": "the light fades over the valley",
                   "parent_asset": dusk, "params": {"duration": 3}}),
        )
        .await?;
    }

    let link = api
        .post(
            &format!("/api/projects/{project_id}/share-links/"),
            json!({"expires_in_days": 30}),
        )
        .await?;
    let share_url = link["url"].as_str().map(str::to_owned);
    if let Some(token) = link["token"].as_str() {
        api.http
            .post(format!(
                "{}/api/shared/{token}/boxes/{}/comments/",
                api.base, boxes[0]
            ))
            .json(&json!({"author_name": "Client", "text": "Love the dusk frame: can the valley be a touch warmer?"}))
            .send()
            .await?
            .error_for_status()
            .context("leaving the demo comment")?;
    }
    api.call(
        reqwest::Method::PATCH,
        &format!("/api/projects/{project_id}/"),
        Some(json!({"name": PROJECT})),
    )
    .await?;
    Ok(Demo {
        share_url,
        created: true,
    })
}
