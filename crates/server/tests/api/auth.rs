//! Keys and tenant isolation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{error_code, parts, spawn_app};

#[tokio::test]
async fn requests_without_a_valid_key_get_401() {
    let app = spawn_app().await;
    let cases: [(Option<&str>, &str); 4] = [
        (None, "no key"),
        (Some("RJ-000000000000000000000000000000000000000000000000"), "unknown key"),
        (Some("not-a-renderjuice-key"), "wrong prefix"),
        (Some(""), "empty key"),
    ];
    for (key, what) in cases {
        for (method, path) in [(Method::GET, "/jobs"), (Method::POST, "/uploads"), (Method::GET, "/jobs/progress")] {
            let (status, body) = parts(app.call(method.clone(), path, key, Some(json!({}))).await).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} {method} {path}: {body}");
            assert_eq!(error_code(&body), "unauthorized");
        }
    }
}

#[tokio::test]
async fn a_revoked_key_gets_401() {
    let app = spawn_app().await;
    let prefix = &app.key[..11];
    assert!(app.server.store().revoke_key(prefix, 0).await.unwrap());
    let (status, body) = app.get("/jobs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn another_workspaces_job_is_a_404_on_every_endpoint() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    for (method, path) in [
        (Method::GET, format!("/jobs/{id}")),
        (Method::POST, format!("/jobs/{id}/validate")),
        (Method::POST, format!("/jobs/{id}/render")),
        (Method::POST, format!("/jobs/{id}/cancel")),
        (Method::GET, format!("/jobs/{id}/progress")),
        (Method::GET, format!("/jobs/{id}/downloads")),
    ] {
        let body = json!({"requestedRenderConfig": {"colorManagementPreset": "default"}});
        let (status, response) = parts(app.call(method.clone(), &path, Some(&app.other_key), Some(body)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {response}");
        assert_eq!(error_code(&response), "not_found");
    }
    // Nothing changed: the owner still sees a validated job, and the rival lists nothing.
    let (_, body) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(body["data"]["status"], "validated");
    let (_, list) = parts(app.call(Method::GET, "/jobs", Some(&app.other_key), None).await).await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");
}

#[tokio::test]
async fn a_slug_from_another_workspace_makes_no_job() {
    let app = spawn_app().await;
    let slug = app.upload("shot.blend", "blend", crate::helpers::example_scene()).await;
    let (status, body) =
        parts(app.call(Method::POST, "/jobs", Some(&app.other_key), Some(json!({"slug": slug}))).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "unknown_slug");
}
