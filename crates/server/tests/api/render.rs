//! Starting renders, progress, cancel and downloads (no worker runs here: jobs stay booting).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, example_scene, spawn_app};

#[tokio::test]
async fn render_is_refused_before_validation_and_without_a_config() {
    let app = spawn_app().await;
    let created = app.created_job(example_scene()).await;
    let (status, body) = app
        .post(
            &format!("/jobs/{created}/render"),
            json!({"requestedRenderConfig": {"colorManagementPreset": "default"}}),
        )
        .await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"));

    let id = app.validated_job().await;
    for (body, field) in [
        (json!({}), "requestedRenderConfig"),
        (json!({"requestedRenderConfig": {}}), "requestedRenderConfig"),
        (json!({"requestedRenderConfig": null}), "requestedRenderConfig"),
        (json!({"requestedRenderConfig": {"sampleCount": 2}}), "colorManagementPreset"),
        (json!({"requestedRenderConfig": {"colorManagementPreset": "default", "resolution": [64]}}), "resolution"),
        (
            json!({"requestedRenderConfig": {"colorManagementPreset": "default", "outputSettings": {"colorDepth": "7"}}}),
            "outputSettings.colorDepth",
        ),
        (
            json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["10-1"]}}),
            "frameRanges",
        ),
        (
            json!({"requestedRenderConfig": {"colorManagementPreset": "default", "outputFormat": "JPEG", "outputSettings": {"colorMode": "RGBA"}}}),
            "outputSettings.colorMode",
        ),
    ] {
        let (status, response) = app.post(&format!("/jobs/{id}/render"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_eq!(error_code(&response), "invalid_render_config", "{body}");
        assert_eq!(response["error"]["details"]["field"], field, "{body}: {response}");
    }
    let (status, response) = app.post_empty(&format!("/jobs/{id}/render")).await;
    assert_eq!(
        (status, response["error"]["details"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("requestedRenderConfig"))
    );
    // A JSON body must say it is one.
    let config = json!({"requestedRenderConfig": {"colorManagementPreset": "default"}}).to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = app
            .http
            .post(app.api(&format!("/jobs/{id}/render")))
            .bearer_auth(&app.key)
            .header("content-type", content_type)
            .body(config.clone())
            .send()
            .await
            .unwrap();
        let (status, response) = crate::helpers::parts(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}: {response}");
        assert_eq!(error_code(&response), "unsupported_media_type");
    }
    // Refusals changed nothing.
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["status"], "validated");
}

#[tokio::test]
async fn render_merges_the_request_into_the_detected_settings_and_replays() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let request = json!({"requestedRenderConfig": {
        "colorManagementPreset": "default", "frameRanges": ["1-3"], "resolution": [64, 48],
        "resolutionPercentage": 100, "sampleCount": 2, "denoisingEnabled": false, "renderEngine": "CYCLES"
    }});
    let first =
        app.call(reqwest::Method::POST, &format!("/jobs/{id}/render"), Some(&app.key), Some(request.clone())).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("x-idempotent-replay").is_none());
    let job: serde_json::Value = first.json().await.unwrap();
    assert_eq!(job["status"], "booting");
    let config = &job["finalConfig"];
    assert_eq!(config["resolution"], json!([64, 48]));
    assert_eq!(config["sampleCount"], 2);
    assert_eq!(config["frameRanges"], json!(["1-3"]));
    // Detected from the file, not in the request:
    assert_eq!(config["outputFormat"], "PNG");
    assert_eq!(job["requestedConfig"]["sampleCount"], 2);

    let again = app.call(reqwest::Method::POST, &format!("/jobs/{id}/render"), Some(&app.key), Some(request)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["x-idempotent-replay"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["finalConfig"], job["finalConfig"]);
    // A replay is the answer to a request that could have started the render: a missing or
    // empty config is refused as always.
    for body in [json!({}), json!({"requestedRenderConfig": {}})] {
        let (status, response) = app.post(&format!("/jobs/{id}/render"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_eq!(response["error"]["details"]["field"], "requestedRenderConfig", "{response}");
    }
    // So is an invalid one: a replay never answers 200 to what a first request would refuse.
    let invalid = json!({"requestedRenderConfig": {"colorManagementPreset": "default", "useTiling": {"a": 1}}});
    let (status, response) = app.post(&format!("/jobs/{id}/render"), invalid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
    assert_eq!(response["error"]["details"]["field"], "useTiling", "{response}");

    let (status, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(progress.as_array().unwrap().len(), 1, "{progress}");
    let counters = &progress[0];
    assert_eq!(counters["jobId"], id.as_str());
    assert_eq!(counters["status"], "booting");
    assert_eq!(counters["framesTotal"], 3);
    assert_eq!(counters["framesDone"], 0);
    assert_eq!(counters["percent"], 0.0);
    let (_, all) = app.get("/jobs/progress").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test]
async fn the_scene_range_is_rendered_when_no_frames_are_asked() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let (status, job) = app
        .post(&format!("/jobs/{id}/render"), json!({"requestedRenderConfig": {"colorManagementPreset": "default"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let scene = &job["analysis"]["scenes"][0];
    let expected = format!("{}-{}", scene["frameStart"], scene["frameEnd"]);
    assert_eq!(job["finalConfig"]["frameRanges"], json!([expected]));
}

#[tokio::test]
async fn progress_is_empty_when_nothing_runs_and_downloads_are_empty_before_outputs() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let (status, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert_eq!((status, progress), (StatusCode::OK, json!([])));
    let (_, all) = app.get("/jobs/progress").await;
    assert_eq!(all, json!([]));
    let (status, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(downloads["frames"], json!([]));
    assert_eq!(downloads["compositeNodes"], json!([]));
    assert_eq!(downloads["frameOutputs"], json!([]));
    assert_eq!(downloads["compositeNodeOutputs"], json!([]));
    assert_eq!(downloads["transforms"]["framesZip"], "");
    for key in ["compositeNodesZip", "video", "framesZipOutputs", "compositeNodesZipOutputs"] {
        assert!(downloads["transforms"].get(key).is_some(), "transforms.{key}: {downloads}");
    }
}

#[tokio::test]
async fn cancel_works_from_any_live_status_and_is_refused_once_terminal() {
    let app = spawn_app().await;
    let created = app.created_job(example_scene()).await;
    let (status, body) = app.post_empty(&format!("/jobs/{created}/cancel")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("canceled")));

    let id = app.validated_job().await;
    app.post(
        &format!("/jobs/{id}/render"),
        json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["1"]}}),
    )
    .await;
    let (status, body) = app.post_empty(&format!("/jobs/{id}/cancel")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("canceled")));
    let (status, body) = app.post_empty(&format!("/jobs/{id}/cancel")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"));
    let (status, body) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"));
    let (_, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert_eq!(progress, json!([]));
}

#[tokio::test]
async fn chunk_size_sets_the_frames_per_task() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let config =
        json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["1-5"], "chunkSize": 2}});
    let (status, body) = app.post(&format!("/jobs/{id}/render"), config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, tasks) = app.get(&format!("/jobs/{id}/tasks")).await;
    let frames: Vec<_> = tasks.as_array().unwrap().iter().map(|it| it["frames"].clone()).collect();
    assert_eq!(frames, [json!(["1-2"]), json!(["3-4"]), json!(["5"])]);
    assert!(tasks.as_array().unwrap().iter().all(|it| it["status"] == "queued"));
}

#[tokio::test]
async fn an_oversized_json_body_is_a_413_in_the_error_shape() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let notes = "x".repeat(2 * 1024 * 1024);
    let body = json!({"requestedRenderConfig": {"colorManagementPreset": "default", "notes": notes}});
    let (status, response) = app.post(&format!("/jobs/{id}/render"), body.clone()).await;
    assert_eq!((status, error_code(&response).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (status, response) = app.post("/uploads", json!({"fileName": notes, "fileType": "blend"})).await;
    assert_eq!((status, error_code(&response).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
}

#[tokio::test]
async fn a_render_over_a_limit_of_the_farm_is_refused_naming_the_limit() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.max_frames_per_job = 50;
        config.max_tasks_per_job = 10;
    })
    .await;
    let id = app.validated_job().await;
    let cases = [
        // 160 × 120 at 16384 %: 26214 × 19660, half a billion pixels.
        (json!({"resolution": [160, 120], "resolutionPercentage": 16384}), "maxPixelsPerFrame", "resolutionPercentage"),
        (json!({"frameRanges": ["1-51"]}), "maxFramesPerJob", "frameRanges"),
        (json!({"frameRanges": ["1-11"], "chunkSize": 1}), "maxTasksPerJob", "chunkSize"),
    ];
    for (extra, limit, field) in cases {
        let mut config = json!({"colorManagementPreset": "default"});
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        let (status, body) = app.post(&format!("/jobs/{id}/render"), json!({"requestedRenderConfig": config})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limit}: {body}");
        assert_eq!(error_code(&body), "limit_exceeded", "{body}");
        assert_eq!(body["error"]["details"]["limit"], limit, "{body}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["status"], "validated", "refusals changed nothing");
    let ok =
        json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["1-10"], "chunkSize": 1}});
    let (status, body) = app.post(&format!("/jobs/{id}/render"), ok).await;
    assert_eq!(status, StatusCode::OK, "within every limit: {body}");
}
