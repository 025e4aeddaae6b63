//! Browsers: no cross-origin access unless an origin is configured, and then only for it.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, error_code, parts, spawn_app, spawn_app_with};

const TOOLS: &str = "https://tools.studio.example";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.api("/jobs"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_a_configured_origin_no_page_may_call_the_api() {
    let app = spawn_app().await;
    let response = preflight(&app, TOOLS).await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let (status, body) = parts(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(error_code(&body), "method_not_allowed", "the error body, as everywhere");
    let response = app.http.get(app.api("/jobs")).bearer_auth(&app.key).header("origin", TOOLS).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_configured_origin_may_call_the_api_and_no_other() {
    let app = spawn_app_with(|config| config.cors_origins = vec![TOOLS.to_string()]).await;
    let allowed = preflight(&app, TOOLS).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], TOOLS);
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_string();
    assert!(methods.contains("POST"), "{methods}");
    let response = app.http.get(app.api("/jobs")).bearer_auth(&app.key).header("origin", TOOLS).send().await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], TOOLS);

    let other = preflight(&app, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_origin_that_is_not_an_origin_stops_the_server_from_starting() {
    for bad in ["tools.studio.example", "https://tools.studio.example/path", "ftp://x.example", "*"] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = orchard_server::ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        config.cors_origins = vec![bad.to_string()];
        let error = orchard_server::start(config).await.err().expect("refused");
        assert!(error.to_string().contains("--cors-origin"), "{bad}: {error}");
    }
}
