//! Creating, listing, getting and validating jobs.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, example_scene, spawn_app};

#[tokio::test]
async fn one_slug_makes_one_job_and_a_repeat_is_a_replay() {
    let app = spawn_app().await;
    let slug = app.upload("shot.blend", "blend", example_scene()).await;
    let first = app.call(reqwest::Method::POST, "/jobs", Some(&app.key), Some(json!({"slug": slug}))).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("x-idempotent-replay").is_none());
    let first: serde_json::Value = first.json().await.unwrap();
    let again = app.call(reqwest::Method::POST, "/jobs", Some(&app.key), Some(json!({"slug": slug}))).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["x-idempotent-replay"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    // The bare Job object, as Renderjuice documents it.
    for field in ["id", "status", "workspaceId", "userId", "createdAt", "updatedAt", "output", "isAnalysisSkipped"] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }
    assert_eq!(first["status"], "created");
}

#[tokio::test]
async fn a_job_needs_a_known_uploaded_slug() {
    let app = spawn_app().await;
    let (status, body) = app.post("/jobs", json!({"slug": "nope"})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "unknown_slug"));
    let (_, upload) = app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend"})).await;
    let (status, body) = app.post("/jobs", json!({"slug": upload["slug"]})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "upload_incomplete"));
    let (status, body) = app.post("/jobs", json!({})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_body"));
    // A slug no server makes is unknown before any database sees it (PostgreSQL text holds
    // no NUL: this was a 500 there, found by schemathesis).
    let (status, body) = app.post("/jobs", json!({"slug": "\u{0}\u{c5}abc"})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "unknown_slug"), "{body}");
    let (status, body) = app.post("/jobs", json!({"slug": upload["slug"], "mainFile": "a\u{0}.blend"})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_main_file"), "{body}");
}

#[tokio::test]
async fn get_job_wraps_the_job_in_data_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let id = app.created_job(example_scene()).await;
    let (status, body) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["id"], id.as_str());
    for path in ["/jobs/00000000-0000-0000-0000-000000000000", "/jobs/not-a-uuid"] {
        let (status, body) = app.get(path).await;
        assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn list_jobs_pages_and_filters_by_status() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.created_job(example_scene()).await);
    }
    let (status, _) = app.post_empty(&format!("/jobs/{}/validate", ids[0])).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app.get("/jobs?page=1&pageSize=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(body["pagination"], json!({"page": 1, "pageSize": 2, "total": 3, "totalPages": 2}));
    let (_, page2) = app.get("/jobs?page=2&pageSize=2").await;
    assert_eq!(page2["jobs"].as_array().unwrap().len(), 1);
    // Newest first: the first job made is last.
    assert_eq!(page2["jobs"][0]["id"], ids[0].as_str());

    let (_, body) = app.get("/jobs?status=validated").await;
    assert_eq!(body["pagination"]["total"], 1);
    assert_eq!(body["jobs"][0]["id"], ids[0].as_str());
    let (_, body) = app.get("/jobs?status=validated,created").await;
    assert_eq!(body["pagination"]["total"], 3);
    let (_, body) = app.get("/jobs").await;
    assert_eq!(body["pagination"]["pageSize"], 10);

    for (query, code) in [
        ("page=0", "invalid_page"),
        ("pageSize=0", "invalid_page_size"),
        ("pageSize=101", "invalid_page_size"),
        ("status=rendered", "invalid_status_filter"),
        ("page=abc", "invalid_query"),
    ] {
        let (status, body) = app.get(&format!("/jobs?{query}")).await;
        assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, code), "{query}");
    }
}

#[tokio::test]
async fn validation_reads_the_scene_natively() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let (_, body) = app.get(&format!("/jobs/{id}")).await;
    let job = &body["data"];
    let analysis = &job["analysis"];
    assert_eq!(job["analysisId"], analysis["id"]);
    assert_eq!(analysis["blenderVersion"], "3.4");
    assert_eq!(analysis["activeScene"], "Scene");
    let scene = &analysis["scenes"][0];
    assert_eq!(scene["renderConfig"]["renderEngine"], "CYCLES");
    assert_eq!(scene["camera"], "Camera");
    assert_eq!(job["sceneFile"]["fileName"], "shot.blend");
}

#[tokio::test]
async fn validate_is_refused_unless_the_job_is_created() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let (status, body) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"));
    assert_eq!(body["error"]["details"]["status"], "validated");
}

#[tokio::test]
async fn an_unreadable_file_fails_validation_with_a_reason() {
    let app = spawn_app().await;
    for bytes in [b"not a blend file at all".to_vec(), b"BLENDER-v304".to_vec(), example_scene()[..5000].to_vec()] {
        let id = app.created_job(bytes).await;
        let (status, body) = app.post_empty(&format!("/jobs/{id}/validate")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "failed", "{body}");
        assert_eq!(body["failedReason"]["name"], "unreadable_scene");
        assert_eq!(body["failedReason"]["type"], "validation");
        assert!(!body["failedReason"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_scene_that_decompresses_past_the_analysis_limit_fails_validation_naming_it() {
    let app = crate::helpers::spawn_app_with(|config| config.max_analysis_bytes = 4096).await;
    let id = app.created_job(crate::helpers::example_scene()).await;
    let (status, job) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "failed", "{job}");
    let message = job["failedReason"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("4096"), "the limit is named: {message}");
}

#[tokio::test]
async fn a_validation_abandoned_by_a_stopped_server_is_run_again() {
    let app = crate::helpers::spawn_app().await;
    let id = app.created_job(crate::helpers::example_scene()).await;
    // What a server killed mid-validation leaves: the job validating, its lease run out.
    let validating = orchard_domain::JobStatus::Validating;
    let patch = orchard_store::JobPatch { validating_until: Some(1), ..Default::default() };
    let moved = app.server.store().transition_job(
        id.parse().unwrap(),
        orchard_domain::JobStatus::Created,
        validating,
        patch,
        1,
    );
    assert!(moved.await.unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, job) = app.get(&format!("/jobs/{id}")).await;
        if job["data"]["status"] == "validated" {
            assert!(job["data"]["analysis"]["scenes"].is_array(), "{job}");
            break;
        }
        assert_eq!(job["data"]["status"], "validating", "{job}");
        assert!(std::time::Instant::now() < deadline, "the validation was never taken over: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn validations_beyond_the_limit_wait_their_turn_and_all_finish() {
    let app = crate::helpers::spawn_app_with(|config| config.max_validations = 1).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(app.created_job(crate::helpers::example_scene()).await);
    }
    let paths: Vec<String> = ids.iter().map(|id| format!("/jobs/{id}/validate")).collect();
    let validations = paths.iter().map(|path| app.post_empty(path));
    for (status, job) in futures::future::join_all(validations).await {
        assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("validated")), "{job}");
    }
}

#[tokio::test]
async fn a_scene_without_a_camera_fails_validation_saying_so() {
    let app = spawn_app().await;
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../blend/tests/fixtures/v5_0/no_camera.blend");
    let id = app.created_job(std::fs::read(path).unwrap()).await;
    let (status, job) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("failed")), "{job}");
    assert_eq!(
        (job["failedReason"]["name"].as_str(), job["failedReason"]["type"].as_str()),
        (Some("no_camera"), Some("validation"))
    );
    assert!(job["failedReason"]["message"].as_str().unwrap().contains("no active camera"), "{job}");
    assert_eq!(job["analysis"]["scenes"][0]["name"], "Scene", "the analysis is kept: {job}");
    let (status, _) = app
        .post(&format!("/jobs/{id}/render"), json!({"requestedRenderConfig": {"colorManagementPreset": "default"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing renders");
}
