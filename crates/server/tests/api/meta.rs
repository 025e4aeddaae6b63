//! Health, the OpenAPI document, unknown routes.

use reqwest::StatusCode;

use crate::helpers::{error_code, parts, spawn_app};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = parts(app.http.get(format!("{}/healthz", app.base)).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let (status, doc) = parts(app.http.get(app.api("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/external/v1/uploads", "post"),
        ("/blobs/uploads/{slug}", "put"),
        ("/api/external/v1/jobs", "post"),
        ("/api/external/v1/jobs", "get"),
        ("/api/external/v1/jobs/{id}", "get"),
        ("/api/external/v1/jobs/{id}/validate", "post"),
        ("/api/external/v1/jobs/{id}/render", "post"),
        ("/api/external/v1/jobs/{id}/cancel", "post"),
        ("/api/external/v1/jobs/{id}/progress", "get"),
        ("/api/external/v1/jobs/progress", "get"),
        ("/api/external/v1/jobs/{id}/downloads", "get"),
        ("/healthz", "get"),
    ] {
        assert!(paths.get(path).and_then(|it| it.get(method)).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in ["Job", "JobEnvelope", "JobList", "Downloads", "Progress", "ErrorBody", "CreateUploadResponse"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get("/nothing-here").await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
}
