//! api-docs: the OpenAPI 3.1 document of every HTTP function, merged from the
//! docs each function crate derives from its own handlers. It is its own
//! function so no other binary carries every route's schemas.
//!
//! Each handler documents what it answers itself. What every route of a
//! kind answers is added here, once: the gateway's 401 on every route behind
//! the authorizer, and the JSON body extractor's 413 and 415 on every route
//! that takes a JSON body. [`status_gaps`] checks the result against those
//! rules and the ones a handler must follow (400 with a body or a query,
//! 404 with a path id).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use assetbox_shared::error::{CompanionErrorBody, ErrorBody, GatewayMessage};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Serves this document.
#[derive(OpenApi)]
#[openapi(paths(openapi_json))]
struct DocsDoc;

/// The OpenAPI document
///
/// Public. This document, as OpenAPI 3.1 JSON.
#[utoipa::path(
    get, path = "/openapi.json", tag = "docs",
    responses((status = 200, description = "The document.", body = Object))
)]
#[allow(dead_code)] // Only its annotation is used: the route serves a prepared document.
async fn openapi_json() {}

pub fn document() -> Value {
    let mut doc = catalog_api::CatalogApiDoc::openapi();
    doc.merge(auth_api::AuthApiDoc::openapi());
    doc.merge(upload_initiate::UploadInitiateDoc::openapi());
    doc.merge(upload_parts::UploadPartsDoc::openapi());
    doc.merge(upload_complete::UploadCompleteDoc::openapi());
    doc.merge(upload_abort::UploadAbortDoc::openapi());
    doc.merge(upload_sign::UploadSignDoc::openapi());
    doc.merge(project_export::ProjectExportDoc::openapi());
    doc.merge(generate_dispatch::GenerateDispatchDoc::openapi());
    doc.merge(generation_callback::GenerationCallbackDoc::openapi());
    doc.merge(DocsDoc::openapi());
    doc.info.title = "assetbox".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(DESCRIPTION.into());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The `access_token` (or `id_token`) of `POST /api/auth/login`.",
                ))
                .build(),
        ),
    );
    for (name, schema) in [
        (GatewayMessage::name(), GatewayMessage::schema()),
        (ErrorBody::name(), ErrorBody::schema()),
        (CompanionErrorBody::name(), CompanionErrorBody::schema()),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
    let mut doc = serde_json::to_value(doc).expect("the document serialises");
    // Relative, so the document fits every deployment: it is served by the
    // API itself, and `/` resolves against wherever it was fetched from
    // (the local stack, a stage's execute-api URL, a custom domain). A
    // server variable would need a default API id that no reader has;
    // validators, openapi-typescript and Swagger UI all take a relative URL.
    doc["servers"] = json!([{
        "url": "/",
        "description": "The API that serves this document."
    }]);
    doc["tags"] = tags();
    add_common_responses(&mut doc);
    doc
}

const DESCRIPTION: &str = "Backend of an AI production asset manager: projects \
of ordered boxes (shots), each holding uploaded, imported or AI-generated \
image and video assets, with share links for reviewers.\n\n\
Send `Authorization: Bearer <access_token>` (from `POST /api/auth/login`) on \
every route that lists the `bearer` security scheme. Errors are JSON: \
`{\"error\": {\"code\", \"message\", \"fields\"}}` from the API, or \
`{\"message\"}` from the gateway in front of it (a missing or invalid token is \
a 401 before the route runs). Lists are pages: pass `next_cursor` back as \
`cursor` until it is `null`. Routes accept a trailing slash and its absence \
alike.\n\n\
Large files go straight to storage: `POST /v1/files/uploads`, `PUT` each part \
to its URL, then complete; the `/s3` routes offer the same to Uppy's \
`@uppy/aws-s3` client.\n\n\
Generation: `GET /api/ai/models/` lists the models with the JSON Schema of \
their `params`; `POST /api/boxes/{id}/generate/` answers 202 with the new \
asset, which moves from `PENDING` through `PROCESSING` to `COMPLETED` or \
`FAILED` (poll `GET /api/assets/{id}/`).";

fn tags() -> Value {
    json!([
        {"name": "health", "description": "Is the API up."},
        {"name": "auth", "description": "Accounts and tokens."},
        {"name": "projects", "description": "Projects and their storyboard export."},
        {"name": "boxes", "description": "The boxes (shots) of a project, in order."},
        {"name": "assets", "description": "The images and videos of boxes."},
        {"name": "sharing", "description": "Share links, the public view and its comments."},
        {"name": "files", "description": "Uploaded files, completed or not."},
        {"name": "uploads", "description": "Direct uploads to storage in parts."},
        {"name": "companion", "description": "Uploads from Uppy's `@uppy/aws-s3` client (the Companion S3 contract)."},
        {"name": "ai", "description": "The AI model registry: models for everyone, providers and models managed by admins."},
        {"name": "generation", "description": "Generating images and videos with a registry model, and the providers' callbacks."},
        {"name": "docs", "description": "This document."}
    ])
}

/// Every operation of the document with its path and method.
fn operations(doc: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |m| item.get(*m).map(|op| (path.as_str(), *m, op)))
        })
}

/// Whether a route sits behind the gateway's authorizer.
fn is_protected(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|s| !s.is_empty())
}

fn takes_json(op: &Value) -> bool {
    op.pointer("/requestBody/content/application~1json")
        .is_some()
}

/// The `/s3` routes answer errors with a top-level `message` (Uppy reads it).
fn is_companion(path: &str) -> bool {
    path.starts_with("/s3/")
}

fn add_common_responses(doc: &mut Value) {
    let error = |companion: bool| {
        let name = if companion {
            CompanionErrorBody::name()
        } else {
            ErrorBody::name()
        };
        json!({ "$ref": format!("#/components/schemas/{name}") })
    };
    let gateway = json!({ "$ref": format!("#/components/schemas/{}", GatewayMessage::name()) });
    let responses = doc["components"]
        .as_object_mut()
        .expect("components")
        .entry("responses")
        .or_insert_with(|| json!({}));
    responses["Unauthorized"] = json!({
        "description": "No valid bearer token: it is missing, malformed, expired or not issued \
            for this API. The gateway answers before the route runs.",
        "headers": {
            "WWW-Authenticate": {
                "description": "`Bearer`: the scheme to authenticate with.",
                "schema": { "type": "string" }
            }
        },
        "content": { "application/json": { "schema": gateway } }
    });
    for companion in [false, true] {
        let prefix = if companion { "Companion" } else { "" };
        responses[format!("{prefix}NotJson")] = json!({
            "description": "The body is not sent as JSON: `Content-Type` must be \
                `application/json` (or another `+json` type).",
            "content": { "application/json": { "schema": error(companion) } }
        });
        responses[format!("{prefix}BodyTooLarge")] = json!({
            "description": "The body is larger than this route takes.",
            "content": { "application/json": { "schema": error(companion) } }
        });
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let companion = is_companion(path);
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let protected = is_protected(op);
            let json_body = takes_json(op);
            let responses = op["responses"].as_object_mut().expect("responses");
            if protected {
                let unauthorized = json!({ "$ref": "#/components/responses/Unauthorized" });
                match responses.get("401").cloned() {
                    None => {
                        responses.insert("401".into(), unauthorized);
                    }
                    // The handler may also refuse the token (e.g. logout,
                    // when the identity provider does): either body.
                    Some(own) => {
                        responses.insert("401".into(), either_401(&own, &gateway));
                    }
                }
            }
            if json_body {
                let prefix = if companion { "Companion" } else { "" };
                for (status, name) in [("413", "BodyTooLarge"), ("415", "NotJson")] {
                    responses.entry(status).or_insert_with(
                        || json!({ "$ref": format!("#/components/responses/{prefix}{name}") }),
                    );
                }
            }
        }
    }
}

/// A 401 that the gateway or the handler may answer.
fn either_401(own: &Value, gateway: &Value) -> Value {
    let own_schema = own
        .pointer("/content/application~1json/schema")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let description = own["description"].as_str().unwrap_or_default();
    json!({
        "description": format!(
            "No valid bearer token: the gateway refused it (`{{\"message\": \"Unauthorized\"}}`, \
             with `WWW-Authenticate`), or {}{}",
            description.get(..1).map(str::to_lowercase).unwrap_or_default(),
            description.get(1..).unwrap_or_default()
        ),
        "headers": {
            "WWW-Authenticate": {
                "description": "`Bearer`, on the gateway's refusal.",
                "schema": { "type": "string" }
            }
        },
        "content": { "application/json": { "schema": { "anyOf": [gateway, own_schema] } } }
    })
}

/// Operations whose documented statuses miss one they can answer, by the
/// rules every route follows: a protected route answers 401 (the gateway);
/// a body 400 (malformed), 413 (too large) and 415 (not JSON); a query 400
/// (a bad value); a path id 404 (unknown or not yours). Also every operation
/// needs a summary and a success status, every response a description, and
/// every error of an `/s3` route the Companion body.
pub fn status_gaps(doc: &Value) -> Vec<(String, Vec<String>)> {
    let mut gaps = Vec::new();
    for (path, method, op) in operations(doc) {
        let mut missing = Vec::new();
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let has = |s: &str| responses.contains_key(s);
        let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
        let mut want: Vec<&str> = Vec::new();
        if is_protected(op) {
            want.push("401");
        }
        if op.get("requestBody").is_some() {
            want.extend(["400", "413", "415"]);
        }
        if params.iter().any(|p| p["in"] == "query") {
            want.push("400");
        }
        if params.iter().any(|p| p["in"] == "path") {
            want.push("404");
        }
        want.sort_unstable();
        want.dedup();
        missing.extend(want.into_iter().filter(|s| !has(s)).map(str::to_owned));
        if !responses.keys().any(|s| s.starts_with('2')) {
            missing.push("a 2xx".into());
        }
        if op["summary"].as_str().is_none_or(str::is_empty) {
            missing.push("a summary".into());
        }
        for (status, response) in &responses {
            let response = resolve(doc, response);
            if response["description"].as_str().is_none_or(str::is_empty) {
                missing.push(format!("a description of {status}"));
            }
            if is_companion(path)
                && status.starts_with('4')
                && status != "401"
                && !mentions(response, &CompanionErrorBody::name())
            {
                missing.push(format!("the Companion error body on {status}"));
            }
        }
        if !missing.is_empty() {
            gaps.push((format!("{} {path}", method.to_uppercase()), missing));
        }
    }
    gaps
}

/// The number of operations in the document.
pub fn operation_count(doc: &Value) -> usize {
    operations(doc).count()
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(value),
        None => value,
    }
}

fn mentions(value: &Value, schema: &str) -> bool {
    let target = format!("#/components/schemas/{schema}");
    match value {
        Value::String(s) => *s == target,
        Value::Array(items) => items.iter().any(|v| mentions(v, schema)),
        Value::Object(map) => map.values().any(|v| mentions(v, schema)),
        _ => false,
    }
}

pub fn router() -> Router {
    let doc = document();
    Router::new().route(
        "/openapi.json",
        get(move || async move { Json(doc.clone()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_every_route() {
        let json = serde_json::to_value(document()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/api/projects/",
            "/api/projects/{id}/",
            "/api/projects/{id}/boxes/",
            "/api/auth/login",
            "/api/auth/register",
            "/v1/files",
            "/v1/files/{id}",
            "/v1/files/{id}/set-parent",
            "/v1/files/uploads",
            "/v1/files/uploads/{id}/parts",
            "/v1/files/uploads/{id}/uploaded-parts",
            "/v1/files/uploads/{id}/complete",
            "/s3/params",
            "/s3/multipart",
            "/s3/multipart/{upload_id}",
            "/s3/multipart/{upload_id}/batch",
            "/s3/multipart/{upload_id}/{part_number}",
            "/s3/multipart/{upload_id}/complete",
            "/api/boxes/",
            "/api/boxes/{id}/",
            "/api/boxes/{id}/assets/",
            "/api/boxes/{id}/upload/",
            "/api/boxes/{id}/import/",
            "/api/boxes/{id}/comments/",
            "/api/projects/{id}/boxes/reorder/",
            "/api/assets/",
            "/api/assets/{id}/",
            "/api/assets/{id}/favorite/",
            "/api/projects/{id}/share-links/",
            "/api/projects/{id}/share-links/{link_id}/",
            "/api/shared/{token}/",
            "/api/shared/{token}/boxes/{box_id}/comments/",
            "/api/comments/{id}/",
            "/api/projects/{id}/export/",
        ] {
            assert!(json["paths"].get(path).is_some(), "missing {path}");
        }
        // Paths served by two functions keep both operations.
        let shared = &json["paths"]["/s3/multipart/{upload_id}"];
        assert!(shared["get"].is_object() && shared["delete"].is_object());
        assert!(json["paths"]["/v1/files/uploads/{id}"]["delete"].is_object());
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        // The public share routes ask for no token; the owner's do.
        assert!(json["paths"]["/api/shared/{token}/"]["get"]["security"].is_null());
        assert!(json["paths"]["/api/projects/{id}/share-links/"]["post"]["security"].is_array());
        let upload = &json["paths"]["/api/boxes/{id}/upload/"]["post"]["requestBody"]["content"];
        assert!(upload["multipart/form-data"].is_object());
    }

    #[test]
    fn parameters_are_where_clients_send_them() {
        let json = document();
        let list = json["paths"]["/api/assets/"]["get"]["parameters"]
            .as_array()
            .unwrap();
        for p in list {
            assert_eq!(p["in"], "query", "{p}");
            assert_eq!(p["required"], false, "{p}");
        }
        let limit = list.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&json!(1), &json!(200))
        );
        for (path, method) in [
            ("/api/assets/{id}/", "get"),
            ("/s3/multipart/{upload_id}/{part_number}", "get"),
        ] {
            let params = json["paths"][path][method]["parameters"]
                .as_array()
                .unwrap();
            let in_path: Vec<_> = params.iter().filter(|p| p["in"] == "path").collect();
            assert!(in_path.iter().all(|p| p["required"] == true));
            assert!(
                in_path
                    .iter()
                    .all(|p| path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())))
            );
        }
        // Companion's key is in the query, and required.
        let key = &json["paths"]["/s3/multipart/{upload_id}"]["delete"]["parameters"][1];
        assert_eq!(
            (&key["name"], &key["in"], &key["required"]),
            (&json!("key"), &json!("query"), &json!(true))
        );
    }

    #[test]
    fn the_gateway_401_and_the_body_statuses_are_on_every_operation_that_answers_them() {
        let json = document();
        assert_eq!(json["servers"][0]["url"], "/");
        let unauthorized = &json["components"]["responses"]["Unauthorized"];
        assert_eq!(
            unauthorized["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/GatewayMessage"
        );
        let create = &json["paths"]["/api/projects/"]["post"]["responses"];
        assert_eq!(create["401"]["$ref"], "#/components/responses/Unauthorized");
        assert_eq!(create["415"]["$ref"], "#/components/responses/NotJson");
        let companion = &json["paths"]["/s3/multipart"]["post"]["responses"];
        assert_eq!(
            companion["415"]["$ref"],
            "#/components/responses/CompanionNotJson"
        );
        // Public routes ask for no token and document no gateway 401.
        for (path, method) in [
            ("/api/health", "get"),
            ("/api/auth/login", "post"),
            ("/api/shared/{token}/", "get"),
            ("/openapi.json", "get"),
        ] {
            let op = &json["paths"][path][method];
            assert!(op["security"].is_null(), "{path}");
            assert!(op["responses"]["401"]["$ref"].is_null(), "{path}");
        }
        // Logout's own 401 (the identity provider's) joins the gateway's.
        let logout = &json["paths"]["/api/auth/logout"]["post"]["responses"]["401"];
        assert_eq!(
            logout["content"]["application/json"]["schema"]["anyOf"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let gaps = status_gaps(&json);
        assert!(gaps.is_empty(), "{gaps:#?}");
    }

    #[test]
    fn the_gap_check_finds_a_missing_status() {
        let mut json = document();
        let ops = operation_count(&json);
        let responses = json["paths"]["/api/assets/{id}/"]["get"]["responses"]
            .as_object_mut()
            .unwrap();
        responses.remove("404");
        responses.remove("401");
        let gaps = status_gaps(&json);
        let found = gaps
            .iter()
            .find(|(op, _)| op == "GET /api/assets/{id}/")
            .unwrap();
        assert_eq!(found.1, vec!["401", "404"]);
        assert_eq!(operation_count(&json), ops);
    }
}
