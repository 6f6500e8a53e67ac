//! api-docs: the OpenAPI 3.1 document of every HTTP function, merged from the
//! docs each function crate derives from its own handlers. It is its own
//! function so no other binary carries every route's schemas.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = catalog_api::CatalogApiDoc::openapi();
    doc.merge(auth_api::AuthApiDoc::openapi());
    doc.merge(upload_initiate::UploadInitiateDoc::openapi());
    doc.merge(upload_parts::UploadPartsDoc::openapi());
    doc.merge(upload_complete::UploadCompleteDoc::openapi());
    doc.merge(upload_abort::UploadAbortDoc::openapi());
    doc.merge(project_export::ProjectExportDoc::openapi());
    doc.info.title = "assetbox".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some("Backend of an AI production asset manager.".into());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("Cognito access or id token"))
                .build(),
        ),
    );
    doc
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
}
