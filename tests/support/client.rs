//! A small client that talks to the stack like an app would.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::*;

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
    /// `POST /api/boxes/{id}/upload/` of `bytes` named `name`: the new asset.
    pub async fn small_upload(&self, user: &User, box_id: &str, name: &str, bytes: &[u8]) -> Value {
        let (content_type, body) = form(&[("file", Some(name), bytes)]);
        let uploaded = self
            .send(
                Method::POST,
                &format!("/api/boxes/{box_id}/upload/"),
                Some(&user.access_token),
                Some((&content_type, body)),
            )
            .await;
        assert_eq!(uploaded.status, StatusCode::CREATED, "{:?}", uploaded.body);
        uploaded.body
    }

    /// A project of `user` with one box in it: their ids.
    pub async fn project_and_box(&self, user: &User) -> (String, String) {
        let token = Some(user.access_token.as_str());
        let project = self
            .post("/api/projects/", token, &json!({"name": "Teaser"}))
            .await;
        assert_eq!(project.status, StatusCode::CREATED, "{:?}", project.body);
        let project = project.body["id"].as_str().unwrap().to_owned();
        let b = self
            .post(
                "/api/boxes/",
                token,
                &json!({"project": project, "name": "Shot 1"}),
            )
            .await;
        assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
        (project, b.body["id"].as_str().unwrap().to_owned())
    }

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
