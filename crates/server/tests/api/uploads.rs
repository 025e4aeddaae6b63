//! Presigned uploads: the target, its signature, its limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, example_scene, parts, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_upload_target_has_a_url_a_slug_and_an_expiry() {
    let app = spawn_app().await;
    let (status, body) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["uploadUrl"].as_str().unwrap().contains("signature="), "{body}");
    assert!(!body["slug"].as_str().unwrap().is_empty());
    assert!(chrono_like(body["expiresAt"].as_str().unwrap()), "{body}");
}

fn chrono_like(text: &str) -> bool {
    text.len() >= 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

#[tokio::test]
async fn bad_upload_requests_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let cases = [
        (json!({"fileName": "", "fileType": "blend"}), "invalid_file_name"),
        (json!({"fileName": "../x.blend", "fileType": "blend"}), "invalid_file_name"),
        (json!({"fileName": "shot.blend", "fileType": "max"}), "invalid_file_type"),
        (json!({"fileName": "shot.zip", "fileType": "blend"}), "file_type_mismatch"),
        (json!({"fileName": "shot", "fileType": "zip"}), "file_type_mismatch"),
        (json!({"fileType": "blend"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let (status, response) = app.post("/uploads", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_eq!(error_code(&response), code, "{body}");
    }
    let response = app
        .http
        .post(app.api("/uploads"))
        .bearer_auth(&app.key)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let (status, body) = parts(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_json");
}

#[tokio::test]
async fn a_wrong_signature_is_403_and_stores_nothing() {
    let app = spawn_app().await;
    let (_, body) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    let url = body["uploadUrl"].as_str().unwrap();
    let slug = body["slug"].as_str().unwrap();
    let tampered = [
        url.replace("signature=", "signature=00"),
        url.replace(slug, &slug.replace(&slug[..1], if &slug[..1] == "a" { "b" } else { "a" })),
        {
            let (head, _) = url.split_once("expires=").unwrap();
            let (_, rest) = url.split_once("&signature=").unwrap();
            format!("{head}expires=99999999999&signature={rest}")
        },
    ];
    for url in tampered {
        let (status, response) = parts(app.http.put(&url).body("BLENDER").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {response}");
        assert_eq!(error_code(&response), "invalid_signature");
    }
    let (status, response) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&response), "upload_incomplete");
}

#[tokio::test]
async fn an_expired_upload_url_is_403() {
    let app = spawn_app().await;
    let (_, body) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    let slug = body["slug"].as_str().unwrap();
    // A URL signed with the server's own key, but an hour in the past.
    let path = format!("/blobs/uploads/{slug}");
    let past = orchard_server::state::now_ms() / 1000 - 3600;
    let query = app.server.state.signer.sign("PUT", &path, past);
    let (status, response) =
        parts(app.http.put(format!("{}{path}?{query}", app.base)).body("x").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{response}");
    assert_eq!(error_code(&response), "url_expired");
}

#[tokio::test]
async fn an_oversized_upload_is_413_and_stores_nothing() {
    let app = spawn_app_with(|config| config.max_upload_bytes = 1000).await;
    for chunked in [false, true] {
        let (_, body) = app.post("/uploads", json!({"fileName": "big.blend", "fileType": "blend"})).await;
        let url = body["uploadUrl"].as_str().unwrap();
        let bytes = vec![7u8; 5000];
        let request = if chunked {
            // No Content-Length: the limit is enforced while streaming.
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(700).map(|it| Ok(it.to_vec())).collect();
            app.http.put(url).body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        } else {
            app.http.put(url).body(bytes)
        };
        let (status, response) = parts(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "chunked={chunked}: {response}");
        assert_eq!(error_code(&response), "too_large");
        let (status, response) = app.post("/jobs", json!({"slug": body["slug"]})).await;
        assert_eq!((status, error_code(&response).as_str()), (StatusCode::BAD_REQUEST, "upload_incomplete"));
    }
}

#[tokio::test]
async fn an_upload_can_be_replaced_until_a_job_uses_it() {
    let app = spawn_app().await;
    let (_, body) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    let url = body["uploadUrl"].as_str().unwrap();
    assert_eq!(app.http.put(url).body("first").send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.http.put(url).body(example_scene()).send().await.unwrap().status(), StatusCode::OK);
    let (status, _) = app.post("/jobs", json!({"slug": body["slug"]})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = parts(app.http.put(url).body("late").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{response}");
    assert_eq!(error_code(&response), "upload_in_use");
}
