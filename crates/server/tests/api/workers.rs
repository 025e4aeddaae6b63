//! The worker protocol refuses what a worker cannot truly be: numbers beyond reason,
//! versions that are not versions, another token's worker id.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, parts, spawn_app};

fn capabilities() -> Value {
    json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": []})
}

fn registration() -> Value {
    json!({"workerId": "node-1", "name": "node-1", "capabilities": capabilities(), "speedFactor": 1.0})
}

async fn token(app: &TestApp) -> String {
    orchard_server::keys::create_worker_token(app.server.store().as_ref()).await.unwrap()
}

async fn worker_call(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let url = app.api(&format!("/workers{path}"));
    parts(app.http.post(url).bearer_auth(token).json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn a_worker_id_belongs_to_the_token_that_registered_it() {
    let app = spawn_app().await;
    let (first, second) = (token(&app).await, token(&app).await);
    let (status, body) = worker_call(&app, &first, "/register", registration()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = worker_call(&app, &second, "/register", registration()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "worker_id_taken");
    // The second token cannot act for it either.
    let (status, body) = worker_call(&app, &second, "/node-1/claim", json!({"waitSeconds": 0})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_registration_with_impossible_numbers_or_versions_is_refused_by_field() {
    let app = spawn_app().await;
    let token = token(&app).await;
    let with = |pointer: &str, value: Value| {
        let mut body = registration();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (with("/speedFactor", json!(1e308)), "invalid_speed_factor", "speedFactor"),
        (with("/speedFactor", json!(0)), "invalid_speed_factor", "speedFactor"),
        (with("/speedFactor", json!(-2.5)), "invalid_speed_factor", "speedFactor"),
        (
            with("/capabilities/blenders/0/version", json!("abc")),
            "invalid_blender_version",
            "capabilities.blenders[0].version",
        ),
        (
            with("/capabilities/blenders/0/version", json!("4")),
            "invalid_blender_version",
            "capabilities.blenders[0].version",
        ),
        (with("/capabilities/ramGib", json!(-1.0)), "invalid_worker", "capabilities.ramGib"),
        (with("/capabilities/ramGib", json!(1e300)), "invalid_worker", "capabilities.ramGib"),
        (with("/capabilities/cpuThreads", json!(0)), "invalid_worker", "capabilities.cpuThreads"),
        (with("/capabilities/tags", json!(vec!["t"; 65])), "invalid_worker", "capabilities.tags"),
        (with("/name", json!("")), "invalid_worker", "name"),
        (with("/name", json!("a\u{7}b")), "invalid_worker", "name"),
        (with("/workerId", json!("w".repeat(101))), "invalid_worker", "workerId"),
    ];
    for (body, code, field) in cases {
        let (status, answer) = worker_call(&app, &token, "/register", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(error_code(&answer), code, "{body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    // Nothing was registered: the id is still free for a sane registration.
    let (status, body) = worker_call(&app, &token, "/register", registration()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn render_seconds_beyond_reason_are_refused_and_normalized_seconds_stay_a_number() {
    let app = spawn_app().await;
    let job = app.validated_job().await;
    let config = json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["1"]}});
    let (status, body) = app.post(&format!("/jobs/{job}/render"), config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = token(&app).await;
    let (status, body) = worker_call(&app, &token, "/register", registration()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, task) = worker_call(&app, &token, "/node-1/claim", json!({"waitSeconds": 5})).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    let (task_id, attempt) = (task["taskId"].as_str().unwrap(), task["attempt"].clone());
    let url = task["outputUrls"]["frame_0001.png"].as_str().expect("an upload URL for frame 1");
    assert_eq!(app.http.put(url).body(vec![1u8; 16]).send().await.unwrap().status(), StatusCode::OK);
    let frames = json!([{"frame": 1, "fileName": "frame_0001.png"}]);
    for seconds in [json!(1e308), json!(-1.0)] {
        let complete = json!({"attempt": attempt, "frames": frames, "renderSeconds": seconds});
        let (status, body) = worker_call(&app, &token, &format!("/node-1/tasks/{task_id}/complete"), complete).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "invalid_render_seconds");
    }
    let complete = json!({"attempt": attempt, "frames": frames, "renderSeconds": 2.0});
    let (status, body) = worker_call(&app, &token, &format!("/node-1/tasks/{task_id}/complete"), complete).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = app.get(&format!("/jobs/{job}")).await;
    assert_eq!(body["data"]["normalizedSeconds"], json!(2.0), "{body}");
}

#[tokio::test]
async fn a_waiting_claim_is_answered_when_the_server_stops() {
    let app = spawn_app().await;
    let token = token(&app).await;
    let (status, body) = worker_call(&app, &token, "/register", registration()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = app.api("/workers/node-1/claim");
    let http = app.http.clone();
    let claim = tokio::spawn(async move {
        http.post(url).bearer_auth(&token).json(&json!({"waitSeconds": 30})).send().await.map(|it| it.status())
    });
    // Stop while the claim waits for work: it is answered (no work) rather than cut off.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let TestApp { server, .. } = app;
    server.shutdown().await;
    // Once the server has stopped, the claim has its answer (well before its 30 s wait ends;
    // the bound only keeps a broken shutdown from hanging the test).
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), claim)
        .await
        .expect("the waiting claim was still open after the server stopped")
        .unwrap();
    assert_eq!(
        answered.as_ref().ok(),
        Some(&StatusCode::NO_CONTENT),
        "a waiting claim ends with the server: {answered:?}"
    );
}

#[tokio::test]
async fn a_multiview_frame_is_delivered_once_per_view_and_listed_with_its_view() {
    let app = spawn_app().await;
    let worker = crate::helpers::Worker::register(&app, "stereo").await;
    let id = crate::helpers::rendering_job(&app, &app.key, "1", json!({})).await;
    let task = worker.claim().await.expect("a task");
    let files = ["frame_0001_L.png", "frame_0001_R.png"];
    let path = format!("/{}/tasks/{}/outputs", worker.id, task.task_id);
    let (status, urls) = worker.call(&path, json!({"attempt": task.attempt, "files": files})).await;
    assert_eq!(status, StatusCode::OK, "{urls}");
    for file in files {
        let put = app.http.put(urls["urls"][file].as_str().unwrap()).body(crate::helpers::png()).send().await;
        assert_eq!(put.unwrap().status(), StatusCode::OK);
    }
    let complete = format!("/{}/tasks/{}/complete", worker.id, task.task_id);
    let delivered = |left_view: &str| {
        json!({"attempt": task.attempt, "renderSeconds": 0.5, "frames": [
            {"frame": 1, "fileName": "frame_0001_L.png", "view": left_view},
            {"frame": 1, "fileName": "frame_0001_R.png", "view": "right"}]})
    };
    let (status, body) = worker.call(&complete, delivered("le\u{7}ft")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "frames.view", "{body}");
    let (status, body) = worker.call(&complete, delivered("left")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    crate::helpers::wait_for(&app, &id, "completed").await;
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let listed: Vec<(&str, &str)> = downloads["frameOutputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| (it["fileName"].as_str().unwrap(), it["view"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("frame_0001_L.png", "left"), ("frame_0001_R.png", "right")]);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["status"], "completed");
}
