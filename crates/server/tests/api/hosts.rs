//! Where signed URLs point: the request's Host, checked, and forwarded headers only from a
//! trusted proxy — a client must not be able to aim another's upload or download elsewhere.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, parts, spawn_app, spawn_app_with};

async fn upload_target(app: &TestApp, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = app
        .http
        .post(app.api("/uploads"))
        .bearer_auth(&app.key)
        .json(&json!({"fileName": "shot.blend", "fileType": "blend"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    parts(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_host_header_that_is_not_a_host_is_refused() {
    let app = spawn_app().await;
    for host in ["evil.example/abc?", "evil.example?x=", "user@evil.example", "evil.example#", "a b"] {
        let (status, body) = upload_target(&app, &[("host", host)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{host:?}: {body}");
        assert_eq!(error_code(&body), "invalid_host", "{host:?}");
    }
    let (status, body) = upload_target(&app, &[("host", "Farm.Studio:7800")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["uploadUrl"].as_str().unwrap().starts_with("http://farm.studio:7800/blobs/uploads/"), "{body}");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_a_trusted_proxy() {
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "farm.example")];
    let app = spawn_app().await;
    let (status, body) = upload_target(&app, &forwarded).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["uploadUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/blobs/uploads/", app.base)), "ignored from anyone: {url}");

    let app = spawn_app_with(|config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let (status, body) = upload_target(&app, &forwarded).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["uploadUrl"].as_str().unwrap();
    assert!(url.starts_with("https://farm.example/blobs/uploads/"), "believed from the proxy: {url}");
    let (status, body) = upload_target(&app, &[("x-forwarded-host", "evil.example/x?")]).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_host".to_string()), "{body}");
}
