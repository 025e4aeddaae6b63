//! Packaging tasks over the worker protocol: a job that asked for a video waits in
//! `finalizing` (saying so when no worker has ffmpeg) until a worker that has makes it; the
//! task is fenced by its attempt, its upload checked, and the job completes with
//! `transforms.video` — or, after three failed attempts, without it and with the reason.

use orchard_api::Assignment;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, Worker, error_code, example_scene, parts, png, rendering_job, spawn_app, wait_for};

/// A worker that reports an ffmpeg: it is offered packaging tasks.
async fn video_worker<'a>(app: &'a TestApp, id: &str) -> Worker<'a> {
    let token = orchard_server::keys::create_worker_token(app.server.store().as_ref()).await.unwrap();
    let worker = Worker { app, token, id: id.to_string() };
    let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": true, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": [], "ffmpeg": "5.1.6-0+deb12u1"});
    let (status, body) = worker
        .call("/register", json!({"workerId": id, "name": id, "capabilities": capabilities, "speedFactor": 1.0}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    worker
}

/// Renders every frame of `id` with `worker`: the job is `finalizing` after.
async fn render_all(app: &TestApp, worker: &Worker<'_>, id: &str) {
    let mut next = worker.claim().await;
    while let Some(task) = next {
        assert!(task.packaging.is_none(), "a render task first");
        next = worker.deliver(&task).await.filter(|it| it.packaging.is_none());
    }
    wait_for(app, id, "finalizing").await;
}

/// Claims until the packaging task of the job comes (the finalizer queues it).
async fn claim_packaging(worker: &Worker<'_>) -> Assignment {
    for _ in 0..200 {
        if let Some(task) = worker.claim().await {
            assert!(task.packaging.is_some(), "only the video is left: {task:?}");
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no packaging task came");
}

async fn job(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/jobs/{id}")).await.1["data"].clone()
}

#[tokio::test]
async fn a_video_job_waits_for_an_ffmpeg_worker_and_completes_with_the_video_it_made() {
    let app = spawn_app().await;
    let renderer = Worker::register(&app, "renderer").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({"video": true})).await;
    assert_eq!(job(&app, &id).await["finalConfig"]["video"], true);
    render_all(&app, &renderer, &id).await;

    // No worker can make it: the job says so, and the renderer is offered nothing.
    for _ in 0..200 {
        if job(&app, &id).await["waitingReason"].as_str().is_some_and(|it| it.contains("ffmpeg")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let waiting = job(&app, &id).await;
    assert_eq!(waiting["status"], "finalizing");
    assert!(waiting["waitingReason"].as_str().is_some_and(|it| it.contains("ffmpeg")), "{waiting}");
    assert!(renderer.claim().await.is_none());

    let maker = video_worker(&app, "maker").await;
    let (_, workers) = app.get("/workers").await;
    let ffmpeg: Vec<&Value> = workers["workers"].as_array().unwrap().iter().map(|it| &it["ffmpeg"]).collect();
    assert_eq!(ffmpeg, [&Value::Null, &json!("5.1.6-0+deb12u1")], "who makes videos, for people: {workers}");
    let task = claim_packaging(&maker).await;
    let packaging = task.packaging.clone().unwrap();
    assert_eq!(task.job_id, id);
    assert_eq!((task.frames.clone(), task.attempt), (vec![1, 2], 1));
    assert_eq!(packaging.file_name, "frame.mp4", "named after the scene's frames (frame_####)");
    assert!(packaging.fps > 0.0);
    assert!(!packaging.sound, "the example holds no sound: no Blender needed for its video");
    let names: Vec<_> = packaging.frames.iter().map(|it| (it.frame, it.file_name.as_str())).collect();
    assert_eq!(names, [(1, "frame_0001.png"), (2, "frame_0002.png")]);
    let frame = app.http.get(&packaging.frames[0].url).send().await.unwrap();
    assert_eq!(frame.status(), StatusCode::OK);
    assert_eq!(frame.bytes().await.unwrap().to_vec(), png(), "the frame as delivered");

    // Its calls, fenced: the scene, heartbeats, a stranger's heartbeat.
    let base = format!("/{}/packaging/{}", maker.id, task.task_id);
    let scene = app
        .http
        .get(app.api(&format!("/workers{base}/scene?attempt=1")))
        .bearer_auth(&maker.token)
        .send()
        .await
        .unwrap();
    assert_eq!(scene.status(), StatusCode::OK);
    assert_eq!(scene.bytes().await.unwrap().to_vec(), example_scene());
    let (status, body) = maker.call(&format!("{base}/heartbeat"), json!({"attempt": 1, "framesDone": 0})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stranger = format!("/{}/packaging/{}/heartbeat", renderer.id, task.task_id);
    let (status, body) = renderer.call(&stranger, json!({"attempt": 1, "framesDone": 0})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "lease_lost"));

    // The completion is checked against what was uploaded.
    let video = b"not really an mp4, but bytes the server keeps".to_vec();
    let info = json!({"fileName": "frame.mp4", "codec": "h264", "width": 64, "height": 48, "fps": 24.0,
        "frames": 2, "durationSeconds": 0.083, "audio": false, "size": video.len()});
    let (status, body) = maker.call(&format!("{base}/complete"), json!({"attempt": 1, "video": info})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "output_missing"), "{body}");
    let put = app.http.put(&packaging.upload_url).body(video.clone()).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let mut wrong = info.clone();
    wrong["size"] = json!(3);
    let (status, body) = maker.call(&format!("{base}/complete"), json!({"attempt": 1, "video": wrong})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "output_mismatch"), "{body}");
    let mut wrong = info.clone();
    wrong["fps"] = json!(0);
    let (status, body) = maker.call(&format!("{base}/complete"), json!({"attempt": 1, "video": wrong})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "video.fps", "{body}");
    let (status, body) = maker.call(&format!("{base}/complete"), json!({"attempt": 2, "video": info})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::CONFLICT, "lease_lost"), "{body}");
    let (status, body) = maker.call(&format!("{base}/complete"), json!({"attempt": 1, "video": info})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let done = wait_for(&app, &id, "completed").await;
    assert_eq!(done["waitingReason"], Value::Null, "{done}");
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let described = &downloads["transforms"]["video"];
    for (field, value) in [("fileName", json!("frame.mp4")), ("codec", json!("h264")), ("frames", json!(2))] {
        assert_eq!(described[field], value, "{described}");
    }
    let fetched = app.http.get(described["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), video);
    assert_eq!(downloads["frameOutputs"].as_array().map(Vec::len), Some(2), "frames delivered as ever");

    // Frames rendered again make another video.
    let (status, body) = app.post(&format!("/jobs/{id}/retry"), json!({"frames": ["2"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    render_all(&app, &renderer, &id).await;
    let again = claim_packaging(&maker).await;
    assert_ne!(again.task_id, task.task_id);
    assert_eq!(again.frames, [1, 2]);
}

#[tokio::test]
async fn a_video_no_worker_can_make_leaves_the_job_complete_with_the_reason() {
    let app = spawn_app().await;
    let maker = video_worker(&app, "maker").await;
    let id = rendering_job(&app, &app.key, "1", json!({"video": true})).await;
    render_all(&app, &maker, &id).await;
    for n in 1..=3 {
        let task = claim_packaging(&maker).await;
        assert_eq!(task.attempt, n);
        let path = format!("/{}/packaging/{}/fail", maker.id, task.task_id);
        let error = format!("ffmpeg failed ({n}): Invalid data found when processing input");
        let (status, body) = maker.call(&path, json!({"attempt": n, "error": error})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    wait_for(&app, &id, "completed").await;
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let error = downloads["transforms"]["video"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("ffmpeg failed (3)"), "{downloads}");
    assert_eq!(downloads["frameOutputs"].as_array().map(Vec::len), Some(1));
    assert!(maker.claim().await.is_none(), "nothing left");
}

#[tokio::test]
async fn a_job_without_video_has_none_and_the_field_is_checked() {
    let app = spawn_app().await;
    let maker = video_worker(&app, "maker").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    render_all(&app, &maker, &id).await;
    wait_for(&app, &id, "completed").await;
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    assert_eq!(downloads["transforms"]["video"], json!({}));

    let other = app.validated_job().await;
    let config = json!({"requestedRenderConfig": {"colorManagementPreset": "default", "video": "yes"}});
    let (status, body) =
        parts(app.call(Method::POST, &format!("/jobs/{other}/render"), Some(&app.key), Some(config)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "video", "{body}");
}
