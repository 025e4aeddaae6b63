//! Every refusal is the error body, in words for a person, naming the field it is about.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, parts, spawn_app};

async fn post_raw(app: &TestApp, path: &str, content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = app.http.post(app.api(path)).bearer_auth(&app.key).body(body.to_string());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let json = response.headers().get("content-type").and_then(|it| it.to_str().ok()) == Some("application/json");
    let (status, body) = parts(response).await;
    assert!(json, "{path}: the error body is JSON: {body}");
    (status, body)
}

#[tokio::test]
async fn a_wrong_body_names_its_field_in_words_for_a_person() {
    let app = spawn_app().await;
    let json = Some("application/json");
    let cases = [
        (r#"{"fileName": 5, "fileType": "blend"}"#, "fileName"),
        (r#"{"fileName": "a.blend", "fileType": "blend", "parts": 2.5}"#, "parts"),
        (r#"{"fileName": "a.blend", "fileType": "blend", "parts": "two"}"#, "parts"),
    ];
    for (body, field) in cases {
        let (status, answer) = post_raw(&app, "/uploads", json, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(error_code(&answer), "invalid_body", "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
        for internal in ["u32", "i64", "struct", "CreateUploadRequest", "line 1"] {
            assert!(!message.contains(internal), "Rust's words in {message:?}");
        }
    }
    let (status, answer) = post_raw(&app, "/uploads", json, "[1, 2, 3]").await;
    assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "invalid_body".to_string()));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("JSON object") && !message.contains("CreateUploadRequest"), "{message}");
    let (status, answer) = post_raw(&app, "/uploads", json, r#"{"fileName": "#).await;
    assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "invalid_json".to_string()), "{answer}");
    let (status, answer) = post_raw(&app, "/uploads", None, r#"{"fileName": "a.blend", "fileType": "blend"}"#).await;
    assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "unsupported_media_type".to_string()));
}

#[tokio::test]
async fn paths_that_do_not_parse_and_unknown_methods_answer_the_error_body() {
    let app = spawn_app().await;
    let (_, upload) = app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend", "parts": 2})).await;
    let slug = upload["slug"].as_str().unwrap();
    for (method, path) in [
        (Method::PUT, format!("/blobs/uploads/{slug}/parts/abc")),
        (Method::PUT, "/blobs/outputs/not-a-uuid/also-not/1/0001.png".to_string()),
        (Method::PUT, format!("/blobs/outputs/{}/{}/x/0001.png", uuid::Uuid::nil(), uuid::Uuid::nil())),
        (Method::GET, "/api/external/v1/no-such-thing".to_string()),
    ] {
        let response = app.http.request(method.clone(), format!("{}{path}", app.base)).body("x").send().await.unwrap();
        let content_type = response.headers().get("content-type").cloned();
        let (status, body) = parts(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "not_found", "{method} {path}");
        assert_eq!(content_type.unwrap(), "application/json");
    }
    let response = app.http.delete(app.api("/jobs")).bearer_auth(&app.key).send().await.unwrap();
    let (status, body) = parts(response).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".to_string()));
}

#[tokio::test]
async fn a_signed_url_without_its_signature_is_forbidden() {
    let app = spawn_app().await;
    let (_, upload) = app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend"})).await;
    let url = upload["uploadUrl"].as_str().unwrap();
    let bare = url.split('?').next().unwrap();
    for (target, code) in [
        (bare.to_string(), "missing_signature"),
        (format!("{bare}?signature=abc"), "missing_signature"),
        (format!("{bare}?expires=soon&signature=abc"), "invalid_signature"),
        (format!("{bare}?expires=1&expires=2&signature=abc"), "invalid_signature"),
    ] {
        let (status, body) = parts(app.http.put(&target).body("x").send().await.unwrap()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, code.to_string()), "{target}: {body}");
    }
    let (status, body) =
        parts(app.http.get(format!("{}/blobs/files/jobs/x/frames.zip", app.base)).send().await.unwrap()).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "missing_signature".to_string()), "{body}");
}

#[tokio::test]
async fn a_page_past_the_last_says_so() {
    let app = spawn_app().await;
    let (status, body) = app.get("/jobs?page=1").await;
    assert_eq!(status, StatusCode::OK, "page 1 of nothing is an empty page: {body}");
    app.created_job(crate::helpers::example_scene()).await;
    let (status, body) = app.get("/jobs?page=2&pageSize=1").await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "page_not_found".to_string()), "{body}");
    assert_eq!(body["error"]["details"]["lastPage"], 1, "{body}");
}

#[tokio::test]
async fn a_whole_number_written_as_a_float_is_that_number_everywhere() {
    let app = spawn_app().await;
    let (status, body) = app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend", "parts": 2.0})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["partUrls"].as_array().unwrap().len(), 2, "{body}");
    let id = app.validated_job().await;
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1"], "sampleCount": 4.0});
    let (status, body) = app.post(&format!("/jobs/{id}/render"), json!({"requestedRenderConfig": config})).await;
    assert_eq!(status, StatusCode::OK, "the render config follows the same rule: {body}");
    assert_eq!(body["finalConfig"]["sampleCount"], 4, "{body}");
}

#[tokio::test]
async fn a_url_longer_than_any_the_server_makes_is_414_with_the_error_body() {
    let app = spawn_app().await;
    let long = format!("/jobs/{}", "a".repeat(9000));
    let response = app.call(Method::GET, &long, Some(&app.key), None).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let (status, body) = parts(response).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::URI_TOO_LONG, "uri_too_long"), "{body}");
    // A long query counts too; the same path with a short one is routed as usual.
    let (status, body) = app.get(&format!("/jobs?status={}", "x".repeat(9000))).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
    let (status, _) = app.get("/jobs?status=created").await;
    assert_eq!(status, StatusCode::OK);
}
