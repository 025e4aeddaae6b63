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
        // Taken as sent, as the OpenAPI document's pattern says: no trimming into validity.
        (json!({"fileName": "shot.blend ", "fileType": "blend"}), "file_type_mismatch"),
        (json!({"fileName": format!("{}.blend", "é".repeat(250)), "fileType": "blend"}), "invalid_file_name"),
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
async fn an_empty_put_is_refused_and_the_upload_still_waits_for_its_file() {
    let app = spawn_app().await;
    let (_, upload) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    let response = app.http.put(upload["uploadUrl"].as_str().unwrap()).body(Vec::new()).send().await.unwrap();
    let (status, body) = parts(response).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "empty_body"), "{body}");
    let (status, body) = app.post("/jobs", json!({"slug": upload["slug"]})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "upload_incomplete"), "{body}");
    // A name of 250 two-byte characters is within the 255-character limit.
    let name = format!("{}.blend", "é".repeat(240));
    let (status, body) = app.post("/uploads", json!({"fileName": name, "fileType": "blend"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&response), "upload_incomplete");
}

#[tokio::test]
async fn an_expired_upload_url_is_403() {
    let app = spawn_app().await;
    let (_, body) = app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend"})).await;
    let slug = body["slug"].as_str().unwrap();
    // A URL signed with the server's own key, but an hour in the past.
    let path = format!("/blobs/uploads/{slug}");
    let past = orchard_server::now_ms() / 1000 - 3600;
    let secret = app.server.store().setting_or_insert("url_signing_key", String::new()).await.unwrap();
    let query = orchard_server::signing::UrlSigner::new(secret.as_bytes()).sign("PUT", &path, past);
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
        assert_eq!((status, error_code(&response).as_str()), (StatusCode::CONFLICT, "upload_incomplete"));
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

/// `POST /uploads` with `parts`: the PUT URL of each part.
async fn multipart_target(app: &crate::helpers::TestApp, parts: u32) -> (String, Vec<String>) {
    let (status, body) =
        app.post("/uploads", json!({"fileName": "shot.blend", "fileType": "blend", "parts": parts})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let urls: Vec<String> = body["partUrls"].as_array().unwrap().iter().map(|it| it.as_str().unwrap().into()).collect();
    assert_eq!(urls.len(), parts as usize, "{body}");
    (body["slug"].as_str().unwrap().to_string(), urls)
}

/// PUTs each piece to its URL; returns the ETags answered.
async fn put_parts(app: &crate::helpers::TestApp, urls: &[String], pieces: &[&[u8]]) -> Vec<String> {
    let mut etags = Vec::new();
    for (url, piece) in urls.iter().zip(pieces) {
        let response = app.http.put(url).body(piece.to_vec()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        etags.push(response.headers()["etag"].to_str().unwrap().to_string());
    }
    etags
}

fn part_list(etags: &[String]) -> serde_json::Value {
    json!(etags.iter().enumerate().map(|(i, etag)| json!({"partNumber": i + 1, "etag": etag})).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_file_sent_in_parts_becomes_one_upload_that_a_job_validates() {
    let app = spawn_app().await;
    let scene = example_scene();
    let (slug, urls) = multipart_target(&app, 3).await;
    let third = scene.len() / 3;
    let pieces = [&scene[..third], &scene[third..2 * third], &scene[2 * third..]];
    // Parts may arrive in any order.
    let mut etags = put_parts(&app, &urls[2..], &pieces[2..]).await;
    etags.splice(0..0, put_parts(&app, &urls[..2], &pieces[..2]).await);

    let (status, response) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not complete yet: {response}");
    assert_eq!(error_code(&response), "upload_incomplete");

    let (status, body) = app.post(&format!("/uploads/{slug}/complete"), json!({"parts": part_list(&etags)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], scene.len() as u64);
    let (status, job) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let id = job["id"].as_str().unwrap();
    let (status, job) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "validated", "{job}");
    let whole = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&scene))
    };
    assert_eq!(job["analysis"]["sha256"], whole, "the assembled file is the original");

    let (status, response) = app.post(&format!("/uploads/{slug}/complete"), json!({"parts": part_list(&etags)})).await;
    assert_eq!(status, StatusCode::CONFLICT, "a job uses it: {response}");
    assert_eq!(error_code(&response), "upload_in_use");
}

#[tokio::test]
async fn a_multipart_upload_with_wrong_missing_or_misnumbered_parts_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let (status, response) =
        app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend", "parts": 0})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "invalid_parts".into()));
    let (status, response) =
        app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend", "parts": 10_001})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "invalid_parts".into()));

    let scene = example_scene();
    let (slug, urls) = multipart_target(&app, 2).await;
    let half = scene.len() / 2;
    let etags = put_parts(&app, &urls[..1], &[&scene[..half]]).await;
    let complete = format!("/uploads/{slug}/complete");
    let missing = [etags[0].clone(), format!("\"{}\"", "0".repeat(64))];
    let (status, response) = app.post(&complete, json!({"parts": part_list(&missing)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert!(response["error"]["message"].as_str().unwrap().contains("part 2 was not uploaded"), "{response}");

    let etags = [etags[0].clone(), put_parts(&app, &urls[1..], &[&scene[half..]]).await.remove(0)];
    let wrong = [etags[0].clone(), format!("\"{}\"", "0".repeat(64))];
    let (status, response) = app.post(&complete, json!({"parts": part_list(&wrong)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert!(response["error"]["message"].as_str().unwrap().contains("part 2 does not match"), "{response}");
    let misnumbered = json!([{"partNumber": 2, "etag": etags[1]}, {"partNumber": 1, "etag": etags[0]}]);
    let (status, response) = app.post(&complete, json!({"parts": misnumbered})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "invalid_parts".into()));
    let (status, response) = app.post(&complete, json!({"parts": []})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "invalid_parts".into()));
    // Both parts are there, but a completion listing only the first would make a truncated
    // file: every declared part must be listed.
    let (status, response) = app.post(&complete, json!({"parts": part_list(&etags[..1])})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "invalid_parts".into()), "{response}");
    assert_eq!(response["error"]["details"]["declared"], 2, "{response}");
    // Nothing was assembled by the refused attempts.
    let (status, response) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::CONFLICT, "upload_incomplete".into()));

    // Another workspace cannot see the upload; its owner completes it.
    let other = app
        .http
        .post(app.api(&complete))
        .bearer_auth(&app.other_key)
        .json(&json!({"parts": part_list(&etags)}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let (status, body) = app.post(&complete, json!({"parts": part_list(&etags)})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["size"], scene.len() as u64);
}

#[tokio::test]
async fn the_client_sends_a_file_bigger_than_its_part_size_in_parts() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.blend");
    let scene = example_scene();
    std::fs::write(&path, &scene).unwrap();
    let client = orchard_api::Client::new(&app.base, &app.key);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = sent.clone();
    let progress = move |n: u64| seen.store(n, std::sync::atomic::Ordering::Relaxed);
    // 32 KiB parts: the example scene (about 90 KB) goes in 3.
    let slug = client.upload_file("shot.blend", "blend", &path, 32 * 1024, progress).await.unwrap();
    assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), scene.len() as u64);
    let job = client.create_job(&slug).await.unwrap();
    let job = client.validate(&job.id).await.unwrap();
    assert_eq!(job.status, "validated");
    let whole = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&scene))
    };
    assert_eq!(job.analysis.as_ref().expect("validated: analysed").sha256, whole);
}

#[tokio::test]
async fn parts_that_together_pass_the_upload_limit_are_413() {
    let app = spawn_app_with(|config| config.max_upload_bytes = 1000).await;
    let (slug, urls) = multipart_target(&app, 2).await;
    let etags = put_parts(&app, &urls, &[&[1u8; 600], &[2u8; 600]]).await;
    let (status, response) = app.post(&format!("/uploads/{slug}/complete"), json!({"parts": part_list(&etags)})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{response}");
    let (status, response) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::CONFLICT, "upload_incomplete".into()));
}

#[tokio::test]
async fn a_job_keeps_one_stored_copy_of_its_scene_however_many_ask_for_it() {
    let app = spawn_app().await;
    let slug = app.upload("shot.blend", "blend", example_scene()).await;
    let mut requests = Vec::new();
    for _ in 0..6 {
        requests.push(app.post("/jobs", json!({"slug": slug})));
    }
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK), "{answers:?}");
    let id = answers[0].1["id"].as_str().unwrap().to_string();
    assert!(answers.iter().all(|(_, body)| body["id"] == id.as_str()), "one job");

    let state = &app.server.state;
    let job = state.store.get_job_internal(id.parse().unwrap()).await.unwrap().unwrap();
    let scenes = std::path::Path::new(&app.server.config().data_dir).join("storage/scenes").join(&slug);
    let copies: Vec<_> = std::fs::read_dir(&scenes).unwrap().map(|it| it.unwrap().file_name()).collect();
    assert_eq!(copies.len(), 1, "the copies of requests that lost the race are gone: {copies:?}");
    assert_eq!(state.blobs.size(&job.object_key).await.unwrap(), Some(example_scene().len() as u64));
    assert_eq!(state.blobs.size(&format!("uploads/{slug}")).await.unwrap(), None, "the upload's file is gone");
    let (status, body) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("validated")), "{body}");
}

#[tokio::test]
async fn a_file_name_with_control_or_text_direction_characters_is_refused() {
    let app = spawn_app().await;
    for name in ["shot\u{202E}dnelb.zip", "shot\u{2066}.blend", "sh\u{7}ot.blend", "shot\u{0}.blend", "a\nb.blend"] {
        let (status, body) = app.post("/uploads", json!({"fileName": name, "fileType": "blend"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}");
        assert_eq!(error_code(&body), "invalid_file_name", "{name:?}");
    }
    let (status, body) = app.post("/uploads", json!({"fileName": "plan ção.blend", "fileType": "blend"})).await;
    assert_eq!(status, StatusCode::OK, "ordinary non-ASCII names stay welcome: {body}");
}

#[tokio::test]
async fn an_upload_made_for_one_put_cannot_be_completed_in_parts() {
    let app = spawn_app().await;
    let slug = app.upload("shot.blend", "blend", example_scene()).await;
    let parts = json!([{"partNumber": 1, "etag": "\"abc\""}]);
    let (status, response) = app.post(&format!("/uploads/{slug}/complete"), json!({"parts": parts})).await;
    assert_eq!((status, error_code(&response)), (StatusCode::BAD_REQUEST, "not_multipart".into()), "{response}");
    let (status, job) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!(status, StatusCode::OK, "the upload is untouched: {job}");
}
