//! Operating jobs: suspend and resume, priority, delete, and the order workers are given
//! work in (priority, then fair share between workspaces). A worker here speaks the worker
//! protocol over HTTP as `orchard worker` does, uploading small PNGs as its frames.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, Worker, error_code, parts, rendering_job, spawn_app, wait_for};

#[tokio::test]
async fn a_suspended_job_starts_no_task_and_resumes_where_it_was() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    let first = worker.claim().await.expect("a task");
    let (status, job) = app.post_empty(&format!("/jobs/{id}/suspend")).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("suspended")), "{job}");
    // The running task finishes; nothing new starts.
    assert!(worker.deliver(&first).await.is_none(), "no next task while suspended");
    assert!(worker.claim().await.is_none());
    let (status, body) = app.post_empty(&format!("/jobs/{id}/suspend")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"), "{body}");
    assert_eq!(body["error"]["details"]["status"], "suspended");

    let (status, job) = app.post_empty(&format!("/jobs/{id}/resume")).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("rendering")), "{job}");
    let mut next = worker.claim().await;
    let mut frames = vec![first.frames[0]];
    while let Some(task) = next {
        frames.extend(&task.frames);
        next = worker.deliver(&task).await;
    }
    frames.sort();
    assert_eq!(frames, [1, 2, 3], "every frame once");
    let (status, body) = app.post_empty(&format!("/jobs/{id}/resume")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn suspending_with_requeue_running_takes_the_running_task_back() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let task = worker.claim().await.expect("a task");
    let (status, job) = app.post(&format!("/jobs/{id}/suspend"), json!({"requeueRunning": true})).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("suspended")), "{job}");
    assert_eq!(worker.heartbeat(&task).await, StatusCode::CONFLICT, "the worker learns it lost the task");
    let (status, _) = app.post_empty(&format!("/jobs/{id}/resume")).await;
    assert_eq!(status, StatusCode::OK);
    let again = worker.claim().await.expect("the task again");
    assert_eq!((again.task_id.as_str(), again.attempt), (task.task_id.as_str(), task.attempt + 1));
    // A suspend body that is not what it should be is refused by field.
    let (status, body) = app.post(&format!("/jobs/{id}/suspend"), json!({"requeueRunning": "yes"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "requeueRunning", "{body}");
}

#[tokio::test]
async fn priority_is_set_at_render_or_later_and_a_higher_one_goes_first() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let early = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let urgent = rendering_job(&app, &app.key, "1-2", json!({"priority": 90})).await;
    let (_, body) = app.get(&format!("/jobs/{urgent}")).await;
    assert_eq!(
        (body["data"]["priority"].as_i64(), body["data"]["requestedConfig"]["priority"].as_i64()),
        (Some(90), Some(90))
    );
    let task = worker.claim().await.unwrap();
    assert_eq!(task.job_id, urgent, "priority outranks age");
    // Raised later, the older job goes first.
    let path = format!("/jobs/{early}");
    let patch = |body: Value, key: String| {
        let path = path.clone();
        let app = &app;
        async move { app.call(Method::PATCH, &path, Some(&key), Some(body)).await }
    };
    let (status, job) = parts(patch(json!({"priority": 100}), app.key.clone()).await).await;
    assert_eq!((status, job["priority"].as_i64()), (StatusCode::OK, Some(100)), "{job}");
    let next = worker.deliver(&task).await.expect("a next task");
    assert_eq!(next.job_id, early, "warm Blender does not outrank priority");
    for (body, field) in [
        (json!({"priority": 101}), "priority"),
        (json!({"priority": -1}), "priority"),
        (json!({"colour": 1}), "colour"),
    ] {
        let (status, answer) = parts(patch(body.clone(), app.key.clone()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{body}: {answer}");
    }
    let (status, _) = parts(patch(json!({"priority": 1}), app.other_key.clone()).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another workspace's job is unknown");
}

#[tokio::test]
async fn workspaces_share_one_worker_and_a_small_job_is_not_starved_by_a_big_one() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    // The big job first, by another workspace; then the small one.
    let big = rendering_job(&app, &app.other_key, "1-40", json!({})).await;
    let small = rendering_job(&app, &app.key, "1-4", json!({})).await;
    let mut order = Vec::new();
    let mut next = worker.claim().await;
    while let Some(task) = next {
        order.push(task.job_id.clone());
        next = worker.deliver(&task).await;
    }
    assert_eq!(order.len(), 44, "every frame once");
    let small_done = order.iter().rposition(|it| *it == small).unwrap() + 1;
    let big_done = order.iter().rposition(|it| *it == big).unwrap() + 1;
    // Fair share alternates the workspaces: the small job is done after 8 tasks, not 44.
    assert!(small_done <= 9, "the small job finished after {small_done} tasks: {order:?}");
    assert_eq!(big_done, 44);
    let (_, body) = parts(app.call(Method::GET, &format!("/jobs/{small}"), Some(&app.key), None).await).await;
    assert_ne!(body["data"]["status"], "rendering", "{body}");
}

#[tokio::test]
async fn a_deleted_job_is_gone_with_its_files() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let task = worker.claim().await.unwrap();
    let next = worker.deliver(&task).await.expect("the second task");
    let storage = app.data_dir().join("storage");
    let files_of = |needle: &str| walk(&storage).into_iter().filter(|it| it.to_string_lossy().contains(needle)).count();
    assert!(files_of(&id) >= 1, "the first frame is stored under the job");
    let (status, _) = parts(app.call(Method::DELETE, &format!("/jobs/{id}"), Some(&app.other_key), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another workspace cannot delete it");

    // Deleting a rendering job cancels it first: its worker learns it at once.
    let (status, body) = parts(app.call(Method::DELETE, &format!("/jobs/{id}"), Some(&app.key), None).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(worker.heartbeat(&next).await, StatusCode::CONFLICT);
    let left: Vec<_> = walk(&storage).into_iter().filter(|it| it.to_string_lossy().contains(&id)).collect();
    assert!(left.is_empty(), "no file of the job is left: {left:?}");
    assert_eq!(walk(&storage.join("scenes")).len(), 0, "nor its scene");
    let (status, body) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _) = parts(app.call(Method::DELETE, &format!("/jobs/{id}"), Some(&app.key), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get("/jobs").await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Delivers every task the worker can claim; returns the frames rendered.
async fn render_all(worker: &Worker<'_>) -> Vec<i32> {
    let mut frames = Vec::new();
    let mut next = worker.claim().await;
    while let Some(task) = next {
        frames.extend(&task.frames);
        next = worker.deliver(&task).await;
    }
    frames.sort();
    frames
}

async fn frame_names(app: &TestApp, id: &str) -> Vec<String> {
    let (status, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    assert_eq!(status, StatusCode::OK, "{downloads}");
    downloads["frameOutputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| it["fileName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_failed_job_is_retried_with_a_fixed_config_and_keeps_the_frames_it_had() {
    let app = spawn_app().await;
    let workers = [
        Worker::register(&app, "node-1").await,
        Worker::register(&app, "node-2").await,
        Worker::register(&app, "node-3").await,
    ];
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    // Frames 1 and 2 render; frame 3 fails on three workers, and so does the job.
    let first = workers[0].claim().await.unwrap();
    let second = workers[0].deliver(&first).await.unwrap();
    let mut bad = workers[0].deliver(&second).await.unwrap();
    assert_eq!((first.frames[0], second.frames[0], bad.frames[0]), (1, 2, 3));
    for (index, worker) in workers.iter().enumerate() {
        if index > 0 {
            bad = worker.claim().await.expect("frame 3 again");
        }
        worker.fail(&bad, "Blender crashed on frame 3").await;
    }
    let failed = wait_for(&app, &id, "failed").await;
    assert!(failed["failedReason"]["message"].as_str().unwrap().contains("frame"), "{failed}");
    assert_eq!(frame_names(&app, &id).await, ["frame_0001.png", "frame_0002.png"]);

    // Retried with a lower sample count (the fix), only frame 3 renders again.
    let fix = json!({"requestedRenderConfig": {"colorManagementPreset": "default", "frameRanges": ["1-3"], "sampleCount": 8, "chunkSize": 1}});
    let (status, job) = app.post(&format!("/jobs/{id}/retry"), fix).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("booting")), "{job}");
    assert!(job.get("failedReason").is_none(), "{job}");
    assert_eq!(job["finalConfig"]["sampleCount"], 8, "{job}");
    let task = workers[0].claim().await.expect("a worker that failed it before may take it again");
    assert_eq!((task.frames.as_slice(), task.config["sampleCount"].as_i64()), ([3].as_slice(), Some(8)));
    assert!(workers[0].deliver(&task).await.is_none());
    wait_for(&app, &id, "completed").await;
    assert_eq!(frame_names(&app, &id).await, ["frame_0001.png", "frame_0002.png", "frame_0003.png"]);
    // Every attempt stays in the job's history: the failed task and the new one.
    let (_, tasks) = app.get(&format!("/jobs/{id}/tasks")).await;
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    assert_eq!(tasks.iter().filter(|it| it["frames"] == json!(["3"])).count(), 2, "{tasks:?}");
    let failed = tasks.iter().find(|it| it["status"] == "failed").expect("the task that failed stays failed");
    let attempts = failed["failedAttempts"].as_array().unwrap();
    let by: Vec<&str> = attempts.iter().map(|it| it["workerName"].as_str().unwrap()).collect();
    assert_eq!(by, ["node-1", "node-2", "node-3"], "every attempt, by worker name: {failed}");
    assert!(attempts.iter().all(|it| it["error"] == "frames 3: Blender crashed on frame 3"), "{failed}");
    let redone = tasks.iter().filter(|it| it["frames"] == json!(["3"])).find(|it| it["status"] == "completed").unwrap();
    assert_eq!(
        (redone["workerName"].as_str(), redone["renderSeconds"].as_f64()),
        (Some("node-1"), Some(0.5)),
        "{redone}"
    );
    assert_eq!(redone["blenderVersion"], "3.4.1", "the Blender that rendered it: {redone}");
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["blenderVersions"], json!(["3.4.1"]), "and the job records it: {job}");
    assert!(redone["startedAt"].is_string() && redone["finishedAt"].is_string(), "{redone}");
}

#[tokio::test]
async fn retry_renders_named_frames_of_a_completed_job_or_says_there_is_nothing_to_do() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    assert_eq!(render_all(&worker).await, [1, 2, 3]);
    wait_for(&app, &id, "completed").await;
    let (status, body) = app.post_empty(&format!("/jobs/{id}/retry")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "nothing_to_retry"), "{body}");
    for (frames, reason) in [(json!(["9"]), "not a frame of this job"), (json!(["x"]), "")] {
        let (status, body) = app.post(&format!("/jobs/{id}/retry"), json!({"frames": frames})).await;
        assert_eq!(
            (status, body["error"]["details"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("frames")),
            "{body}"
        );
        assert!(body["error"]["message"].as_str().unwrap().contains(reason), "{body}");
    }
    let (status, job) = app.post(&format!("/jobs/{id}/retry"), json!({"frames": ["2"]})).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("booting")), "{job}");
    let (status, body) = app.post_empty(&format!("/jobs/{id}/retry")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_status"), "{body}");
    assert_eq!(render_all(&worker).await, [2], "only the named frame renders again");
    wait_for(&app, &id, "completed").await;
    assert_eq!(frame_names(&app, &id).await, ["frame_0001.png", "frame_0002.png", "frame_0003.png"]);
    // A job whose render never started has nothing to retry.
    let created = app.created_job(crate::helpers::example_scene()).await;
    let (status, body) = app.post_empty(&format!("/jobs/{created}/retry")).await;
    assert_eq!(
        (status, body["error"]["details"]["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("created")),
        "{body}"
    );
}

async fn workers_seen_with(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, body) = parts(app.call(Method::GET, "/workers", Some(key), None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["workers"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_workers_are_listed_and_an_admin_drains_one() {
    let app = spawn_app().await;
    let (admin, _) =
        orchard_server::keys::create_key_as(app.server.store().as_ref(), "ops", "root", true).await.unwrap();
    let worker = Worker::register(&app, "node-1").await;
    let listed = workers_seen_with(&app, &app.key).await;
    assert_eq!(
        (listed.len(), listed[0]["name"].as_str(), listed[0]["status"].as_str()),
        (1, Some("node-1"), Some("idle"))
    );
    assert_eq!(listed[0]["blenders"][0]["version"], "3.4.1");
    assert_eq!(listed[0]["speedFactor"], 1.0);

    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    let task = worker.claim().await.unwrap();
    let mine = &workers_seen_with(&app, &app.key).await[0];
    assert_eq!((mine["status"].as_str(), mine["currentTask"]["jobId"].as_str()), (Some("busy"), Some(id.as_str())));
    // Another workspace sees the worker busy, not whose job it renders.
    let theirs = &workers_seen_with(&app, &app.other_key).await[0];
    assert_eq!(theirs["status"], "busy");
    assert!(
        theirs["currentTask"].get("jobId").is_none() && theirs["currentTask"]["frames"] == json!(["1"]),
        "{theirs}"
    );
    assert_eq!(workers_seen_with(&app, &admin).await[0]["currentTask"]["jobId"], id.as_str());

    // Only an admin drains; the drained worker finishes its task and takes no new one.
    let (status, body) = parts(app.call(Method::POST, "/workers/node-1/drain", Some(&app.key), None).await).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::FORBIDDEN, "admin_required"), "{body}");
    let (status, _) = parts(app.call(Method::POST, "/workers/node-1/drain", Some(&admin), None).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = parts(app.call(Method::POST, "/workers/nobody/drain", Some(&admin), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(workers_seen_with(&app, &app.key).await[0]["status"], "draining");
    assert!(worker.deliver(&task).await.is_none(), "no next task for a drained worker");
    assert!(worker.claim().await.is_none());
    // By name as well as by id.
    let (status, _) = parts(app.call(Method::POST, "/workers/node-1/undrain", Some(&admin), None).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(render_all(&worker).await, [2, 3], "taking tasks again");
}

/// Parses OpenMetrics text with the Prometheus project's own Python parser and prints
/// `{family: [[sample, labels, value], …]}`.
const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    families[family.name] = [[s.name, s.labels, s.value] for s in family.samples]
print(json.dumps(families))
"#;

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_farm_and_its_traffic() {
    let Some(python) = std::env::var_os("ORCHARD_TEST_PYTHON") else {
        assert!(std::env::var_os("ORCHARD_REQUIRE_TEST_PYTHON").is_none(), "ORCHARD_TEST_PYTHON is not set");
        eprintln!("skipped: ORCHARD_TEST_PYTHON (a venv with prometheus-client) is not set; dev/test sets it");
        return;
    };
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    let task = worker.claim().await.unwrap();
    // The next task runs while the metrics are read.
    let _running = worker.deliver(&task).await.unwrap();
    let (status, _) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);

    let response = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let run = std::process::Command::new(python).arg("-c").arg(PARSE_METRICS).arg(file.path()).output().unwrap();
    assert!(run.status.success(), "{}\n{text}", String::from_utf8_lossy(&run.stderr));
    let families: Value = serde_json::from_slice(&run.stdout).unwrap();
    let value = |family: &str, sample: &str, labels: Value| -> f64 {
        let samples = families[family].as_array().unwrap_or_else(|| panic!("no {family} in {text}"));
        let found = samples
            .iter()
            .find(|it| it[0] == sample && labels.as_object().unwrap().iter().all(|(k, v)| it[1][k] == *v));
        found.unwrap_or_else(|| panic!("no {sample} {labels} in {family}: {samples:?}"))[2].as_f64().unwrap()
    };
    assert_eq!(value("orchard_jobs", "orchard_jobs", json!({"status": "rendering"})), 1.0);
    assert_eq!(value("orchard_jobs", "orchard_jobs", json!({"status": "completed"})), 0.0, "every status is there");
    assert_eq!(value("orchard_tasks", "orchard_tasks", json!({"status": "running"})), 1.0);
    assert_eq!(value("orchard_tasks", "orchard_tasks", json!({"status": "queued"})), 1.0);
    assert_eq!(value("orchard_workers", "orchard_workers", json!({"status": "busy"})), 1.0);
    assert_eq!(value("orchard_frames_rendered", "orchard_frames_rendered_total", json!({})), 1.0);
    assert_eq!(value("orchard_claim_duration_seconds", "orchard_claim_duration_seconds_count", json!({})), 1.0);
    let route = json!({"route": "/api/external/v1/jobs/{id}", "method": "GET", "status": "200"});
    assert_eq!(
        value("orchard_http_request_duration_seconds", "orchard_http_request_duration_seconds_count", route),
        1.0
    );
    assert!(!text.contains(&id), "no job ids in metrics");
}

#[tokio::test]
async fn an_admin_key_sees_and_steers_every_workspaces_jobs() {
    let app = spawn_app().await;
    let (admin, _) =
        orchard_server::keys::create_key_as(app.server.store().as_ref(), "ops", "root", true).await.unwrap();
    let mine = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let theirs = rendering_job(&app, &app.other_key, "1-2", json!({})).await;
    let (_, own) = app.get("/jobs").await;
    assert_eq!(own["pagination"]["total"], 1, "a workspace key sees its own: {own}");
    let (status, all) = parts(app.call(Method::GET, "/jobs", Some(&admin), None).await).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let ids: Vec<&str> = all["jobs"].as_array().unwrap().iter().map(|it| it["id"].as_str().unwrap()).collect();
    assert_eq!((ids, all["pagination"]["total"].as_u64()), (vec![theirs.as_str(), mine.as_str()], Some(2)));
    let (status, filtered) = parts(app.call(Method::GET, "/jobs?status=booting", Some(&admin), None).await).await;
    assert_eq!((status, filtered["pagination"]["total"].as_u64()), (StatusCode::OK, Some(2)), "{filtered}");
    let (status, _) = parts(app.call(Method::POST, &format!("/jobs/{theirs}/suspend"), Some(&admin), None).await).await;
    assert_eq!(status, StatusCode::OK, "an admin steers another workspace's job");
    let (status, _) =
        parts(app.call(Method::POST, &format!("/jobs/{theirs}/resume"), Some(&app.key), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a workspace key does not");
}

#[tokio::test]
async fn progress_counts_the_frames_a_running_task_has_finished() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({"chunkSize": 3})).await;
    let task = worker.claim().await.unwrap();
    assert_eq!(task.frames, [1, 2, 3]);
    let path = format!("/{}/tasks/{}/heartbeat", worker.id, task.task_id);
    for (frames, expected) in [(2, 2), (99, 3)] {
        let (status, body) = worker.call(&path, json!({"attempt": task.attempt, "framesDone": frames})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, progress) = app.get(&format!("/jobs/{id}/progress")).await;
        let counters = &progress[0];
        // Of the task's 3 frames, `frames` are finished (never more than the task has).
        assert_eq!(
            (
                counters["framesRunningDone"].as_i64(),
                counters["framesDone"].as_i64(),
                counters["framesRendering"].as_i64()
            ),
            (Some(expected), Some(0), Some(3)),
            "{progress}"
        );
    }
    // Within a frame: Cycles' samples, as the worker reads them from Blender's status lines.
    let body = json!({"attempt": task.attempt, "framesDone": 1, "frameProgress": 0.25});
    assert_eq!(worker.call(&path, body).await.0, StatusCode::OK);
    let (_, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert_eq!(
        (progress[0]["framesRunningDone"].as_i64(), progress[0]["framesRunningProgress"].as_f64()),
        (Some(1), Some(1.25))
    );
    assert!(progress[0]["etaSeconds"].is_number(), "a pace from the frames in flight: {progress}");
    let (_, tasks) = app.get(&format!("/jobs/{id}/tasks")).await;
    assert_eq!((tasks[0]["framesDone"].as_i64(), tasks[0]["frameProgress"].as_f64()), (Some(1), Some(0.25)), "{tasks}");
    for bad in [json!(1.5), json!(-0.1), json!("half")] {
        let (status, body) =
            worker.call(&path, json!({"attempt": task.attempt, "framesDone": 1, "frameProgress": bad})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert!(worker.deliver(&task).await.is_none());
    let (_, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert!(progress.as_array().unwrap().first().is_none_or(|it| it["framesDone"] == 3), "{progress}");
}

#[tokio::test]
async fn a_tasks_log_grows_while_it_runs_and_every_attempt_keeps_its_own() {
    let app = spawn_app().await;
    let (first, second) = (Worker::register(&app, "node-1").await, Worker::register(&app, "node-2").await);
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    let task = first.claim().await.unwrap();
    let log_path = format!("/jobs/{id}/tasks/{}/log", task.task_id);
    let read = |path: String, key: String| {
        let app = &app;
        async move {
            let response = app.call(Method::GET, &path, Some(&key), None).await;
            let status = response.status();
            let header = |name: &str| response.headers().get(name).map(|it| it.to_str().unwrap().to_string());
            let (kind, attempt) = (header("content-type"), header("x-orchard-attempt"));
            (status, kind, attempt, response.text().await.unwrap())
        }
    };
    let (status, _, _, body) = read(log_path.clone(), app.key.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no output yet: {body}");

    let heartbeat = format!("/{}/tasks/{}/heartbeat", first.id, task.task_id);
    let beat = json!({"attempt": task.attempt, "framesDone": 0, "log": "Blender 4.5.3\nRead blend: s.blend\n"});
    assert_eq!(first.call(&heartbeat, beat).await.0, StatusCode::OK);
    let (status, kind, attempt, text) = read(log_path.clone(), app.key.clone()).await;
    assert_eq!(
        (status, kind.as_deref(), attempt.as_deref()),
        (StatusCode::OK, Some("text/plain; charset=utf-8"), Some("1"))
    );
    assert_eq!(text, "Blender 4.5.3\nRead blend: s.blend\n", "live, while the attempt runs");
    let beat = json!({"attempt": task.attempt, "framesDone": 0, "log": "Fra:1 \u{1b}[1mSample 1/8\u{0}\n"});
    assert_eq!(first.call(&heartbeat, beat).await.0, StatusCode::OK);
    let too_long = json!({"attempt": task.attempt, "framesDone": 0, "log": "x".repeat(64 * 1024 + 1)});
    let (status, body) = first.call(&heartbeat, too_long).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("log")), "{body}");
    let fail = format!("/{}/tasks/{}/fail", first.id, task.task_id);
    let (status, _) = first
        .call(&fail, json!({"attempt": task.attempt, "error": "Blender crashed", "log": "Segmentation fault\n"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, _, text) = read(log_path.clone(), app.key.clone()).await;
    assert_eq!(
        text, "Blender 4.5.3\nRead blend: s.blend\nFra:1 [1mSample 1/8\nSegmentation fault\n",
        "escapes and NULs dropped"
    );

    // The second attempt has a log of its own; the first stays readable by number.
    let again = second.claim().await.expect("the task again");
    assert_eq!((again.task_id.as_str(), again.attempt), (task.task_id.as_str(), 2));
    let beat = json!({"attempt": 2, "framesDone": 0, "log": "second try\n"});
    assert_eq!(second.call(&format!("/{}/tasks/{}/heartbeat", second.id, task.task_id), beat).await.0, StatusCode::OK);
    let (_, _, attempt, text) = read(log_path.clone(), app.key.clone()).await;
    assert_eq!((attempt.as_deref(), text.as_str()), (Some("2"), "second try\n"));
    let (status, _, attempt, text) = read(format!("{log_path}?attempt=1"), app.key.clone()).await;
    assert_eq!((status, attempt.as_deref()), (StatusCode::OK, Some("1")));
    assert!(text.ends_with("Segmentation fault\n"), "{text}");
    // The first worker lost the task: it writes nothing more to any log.
    let stale = json!({"attempt": 1, "framesDone": 0, "log": "late\n"});
    assert_eq!(first.call(&heartbeat, stale).await.0, StatusCode::CONFLICT);

    for (path, key) in [
        (format!("{log_path}?attempt=3"), app.key.clone()),
        (format!("/jobs/{id}/tasks/{}/log", uuid::Uuid::new_v4()), app.key.clone()),
        (format!("/jobs/{id}/tasks/not-a-task/log"), app.key.clone()),
        (log_path.clone(), app.other_key.clone()),
    ] {
        let (status, kind, _, body) = read(path.clone(), key).await;
        assert_eq!((status, kind.as_deref()), (StatusCode::NOT_FOUND, Some("application/json")), "{path}: {body}");
    }
    let (status, _, _, body) = read(format!("{log_path}?attempt=two"), app.key.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Another job's task is not found under this job.
    let other = rendering_job(&app, &app.key, "1", json!({})).await;
    let (status, _, _, _) = read(format!("/jobs/{other}/tasks/{}/log", task.task_id), app.key.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn workers_that_share_a_job_have_their_speed_factors_refined_by_it() {
    let app = spawn_app().await;
    let (fast, slow) = (Worker::register(&app, "fast").await, Worker::register(&app, "slow").await);
    // Both measured 1.0 at registration; on the job, "slow" takes twice as long per frame.
    let id = rendering_job(&app, &app.key, "1-6", json!({})).await;
    let (mut a, mut b) = (fast.claim().await, slow.claim().await);
    while a.is_some() || b.is_some() {
        if let Some(task) = a.take() {
            a = fast.deliver_in(&task, 1.0).await;
        }
        if let Some(task) = b.take() {
            b = slow.deliver_in(&task, 2.0).await;
        }
    }
    wait_for(&app, &id, "completed").await;
    let workers = workers_seen_with(&app, &app.key).await;
    let of = |name: &str| workers.iter().find(|it| it["name"] == name).unwrap().clone();
    let (fast, slow) = (of("fast"), of("slow"));
    for worker in [&fast, &slow] {
        assert_eq!(
            (worker["speedMeasured"].as_f64(), worker["speedSpread"].as_f64()),
            (Some(1.0), Some(0.02)),
            "{worker}"
        );
        assert_eq!(worker["speedObservations"], 1, "{worker}");
    }
    let (f, s) = (fast["speedFactor"].as_f64().unwrap(), slow["speedFactor"].as_f64().unwrap());
    assert!(f > 1.0 && s < 1.0, "moved apart, part of the way: {f} {s}");
    // The job's normalizedSeconds used the factors it was rendered with.
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["normalizedSeconds"].as_f64(), Some(9.0), "{job}");
}

#[tokio::test]
async fn past_its_retention_a_finished_jobs_files_go_and_it_says_so() {
    let app = crate::helpers::spawn_app_with(|config| config.retention = Some(std::time::Duration::from_secs(1))).await;
    // The other workspace keeps its files forever.
    assert!(app.server.store().set_retention("rival", Some(0)).await.unwrap());
    let worker = Worker::register(&app, "node-1").await;
    let mine = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let theirs = rendering_job(&app, &app.other_key, "1", json!({})).await;
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    let completed = wait_for(&app, &mine, "completed").await;
    assert_eq!(completed["output"]["isDeletedForClient"], false, "not yet");
    let folder = app.data_dir().join("storage/jobs").join(&mine);
    assert!(folder.exists(), "frames stored under {}", folder.display());
    let mut job = completed;
    for _ in 0..100 {
        let (_, body) = app.get(&format!("/jobs/{mine}")).await;
        job = body["data"].clone();
        if job["output"]["isDeletedForClient"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        (job["output"]["isDeletedForClient"].as_bool(), job["status"].as_str()),
        (Some(true), Some("completed")),
        "{job}"
    );
    assert!(job["previewUrl"].is_null(), "{job}");
    let (status, downloads) = app.get(&format!("/jobs/{mine}/downloads")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((downloads["frames"].clone(), downloads["frameOutputs"].clone()), (json!([]), json!([])), "{downloads}");
    assert_eq!(downloads["transforms"]["framesZip"], "", "the documented shape, empty: {downloads}");
    assert!(!folder.exists() || std::fs::read_dir(&folder).unwrap().next().is_none(), "the files are gone");
    let (status, body) = app.post_empty(&format!("/jobs/{mine}/retry")).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "files_deleted"), "{body}");
    // The other workspace's job, finished as long ago, keeps everything.
    let path = format!("/jobs/{theirs}/downloads");
    let (_, downloads) = parts(app.call(Method::GET, &path, Some(&app.other_key), None).await).await;
    assert_eq!(downloads["frames"].as_array().map(Vec::len), Some(1), "{downloads}");
}

#[tokio::test]
async fn compositor_files_are_checked_and_listed_with_their_node_and_path() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    let task = worker.claim().await.unwrap();
    let frame = crate::helpers::png();
    for (file, url) in &task.output_urls {
        assert_eq!(app.http.put(url).body(frame.clone()).send().await.unwrap().status(), StatusCode::OK, "{file}");
    }
    let path = format!("/{}/tasks/{}/outputs", worker.id, task.task_id);
    let (status, urls) = worker.call(&path, json!({"attempt": task.attempt, "files": ["c1-0-rgb_0001.png"]})).await;
    assert_eq!(status, StatusCode::OK, "{urls}");
    let put = app.http.put(urls["urls"]["c1-0-rgb_0001.png"].as_str().unwrap()).body(frame.clone()).send().await;
    assert_eq!(put.unwrap().status(), StatusCode::OK);
    let complete = |composite: Value| {
        json!({"attempt": task.attempt, "frames": [{"frame": 1, "fileName": "frame_0001.png"}], "renderSeconds": 0.5,
            "composites": [composite]})
    };
    let done = format!("/{}/tasks/{}/complete", worker.id, task.task_id);
    let good =
        json!({"frame": 1, "fileName": "c1-0-rgb_0001.png", "relativePath": "beauty/rgb_0001.png", "node": "Beauty"});
    for (bad, field) in [
        (
            json!({"frame": 1, "fileName": "c1-0-rgb_0001.png", "relativePath": "../escape.png", "node": "Beauty"}),
            "invalid_relative_path",
        ),
        (
            json!({"frame": 1, "fileName": "c1-0-rgb_0001.png", "relativePath": "/abs.png", "node": "Beauty"}),
            "invalid_relative_path",
        ),
        (
            json!({"frame": 7, "fileName": "c1-0-rgb_0001.png", "relativePath": "x.png", "node": "Beauty"}),
            "wrong_frames",
        ),
        (
            json!({"frame": 1, "fileName": "c1-0-never.png", "relativePath": "x.png", "node": "Beauty"}),
            "output_missing",
        ),
        (json!({"frame": 1, "fileName": "c1-0-rgb_0001.png", "relativePath": "x.png", "node": " "}), "invalid_node"),
    ] {
        let (status, body) = worker.call(&done, complete(bad.clone())).await;
        assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, field), "{bad}: {body}");
    }
    let (status, body) = worker.call(&done, complete(good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for(&app, &id, "completed").await;
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let output = &downloads["compositeNodeOutputs"][0];
    assert_eq!(
        (output["fileName"].as_str(), output["relativePath"].as_str(), output["compositeNodeName"].as_str()),
        (Some("rgb_0001.png"), Some("beauty/rgb_0001.png"), Some("Beauty")),
        "{downloads}"
    );
    assert_eq!(downloads["compositeNodes"].as_array().map(Vec::len), Some(1));
    assert!(downloads["transforms"]["compositeNodesZip"].as_str().is_some_and(|it| !it.is_empty()), "{downloads}");
    assert_eq!(downloads["frameOutputs"].as_array().map(Vec::len), Some(1), "frames stay frames");
}

#[tokio::test]
async fn blank_and_nan_frames_are_flagged_and_judged_again_when_retried() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    let frame = crate::helpers::png();
    let mut next = worker.claim().await;
    while let Some(task) = next.take() {
        for url in task.output_urls.values() {
            app.http.put(url).body(frame.clone()).send().await.unwrap();
        }
        // The worker found frame 2 all one colour, and NaN samples in frame 3.
        let frames: Vec<Value> = task
            .frames
            .iter()
            .map(|it| {
                json!({"frame": it, "fileName": format!("frame_{it:04}.png"), "blank": *it == 2, "nonFinite": *it == 3})
            })
            .collect();
        let path = format!("/{}/tasks/{}/complete", worker.id, task.task_id);
        let body = json!({"attempt": task.attempt, "frames": frames, "renderSeconds": 0.5});
        let (status, answer) = worker.call(&path, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        next = worker.claim().await;
    }
    let job = wait_for(&app, &id, "completed").await;
    let codes: Vec<&Value> = job["outputWarnings"].as_array().unwrap().iter().map(|it| &it["code"]).collect();
    assert_eq!(codes, ["non_finite_pixels", "blank_frames"], "{job}");
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let flags: Vec<Value> =
        downloads["frameOutputs"].as_array().unwrap().iter().map(|it| it["flags"].clone()).collect();
    assert_eq!(flags, [Value::Null, json!(["blank"]), json!(["non_finite"])], "{downloads}");
    // Rendered again, fine this time: no longer flagged.
    let (status, body) = app.post(&format!("/jobs/{id}/retry"), json!({"frames": ["2-3"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, progress) = app.get(&format!("/jobs/{id}/progress")).await;
    assert_eq!((progress[0]["framesBlank"].as_i64(), progress[0]["framesNonFinite"].as_i64()), (Some(0), Some(0)));
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    let job = wait_for(&app, &id, "completed").await;
    assert!(job.get("outputWarnings").is_none(), "{job}");
}

#[tokio::test]
async fn a_completed_job_has_a_contact_sheet_of_its_frames() {
    let app = spawn_app().await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-3", json!({})).await;
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    wait_for(&app, &id, "completed").await;
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    let sheet = &downloads["transforms"]["contactSheet"];
    assert_eq!(sheet["fileName"], "contact-sheet.png", "{downloads}");
    let bytes = app.http.get(sheet["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).expect("the sheet decodes");
    // Three 16×12 frames as 160-pixel cells: two columns, two rows, labels under each.
    assert_eq!(image.width(), 4 + 2 * (160 + 4), "{}×{}", image.width(), image.height());
    assert!(image.height() > 2 * 120, "{}", image.height());
}

#[tokio::test]
async fn gc_reclaims_the_files_no_record_refers_to_and_nothing_else() {
    let app = spawn_app().await;
    let workers = [Worker::register(&app, "node-1").await, Worker::register(&app, "node-2").await];
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    // The first attempt uploads its frame, then fails: its file is left behind.
    let first = workers[0].claim().await.unwrap();
    for url in first.output_urls.values() {
        app.http.put(url).body(crate::helpers::png()).send().await.unwrap();
    }
    workers[0].fail(&first, "lost").await;
    let second = workers[1].claim().await.unwrap();
    assert!(workers[1].deliver(&second).await.is_none());
    wait_for(&app, &id, "completed").await;
    let running = rendering_job(&app, &app.key, "1", json!({})).await;
    let third = workers[0].claim().await.unwrap();
    assert_eq!(third.job_id, running);
    for url in third.output_urls.values() {
        app.http.put(url).body(crate::helpers::png()).send().await.unwrap();
    }
    let store = app.server.store().clone();
    let blobs = orchard_server::open_blobs(app.server.config()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // A dry run reports; only the lost attempt's frame is unreferenced (the running job's
    // upload is not yet recorded, and is kept).
    let report =
        orchard_server::gc::collect(store.as_ref(), &blobs, false, now, std::time::Duration::ZERO).await.unwrap();
    let keys: Vec<&str> = report.unreferenced.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys.len(), 1, "{report:#?}");
    assert!(keys[0].starts_with(&format!("jobs/{id}/outputs/{}.{}.", first.task_id, first.attempt)), "{keys:?}");
    assert!(report.referenced_bytes > 0 && report.bytes > report.referenced_bytes);
    let again =
        orchard_server::gc::collect(store.as_ref(), &blobs, true, now, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(again.unreferenced, report.unreferenced, "reclaimed");
    let after =
        orchard_server::gc::collect(store.as_ref(), &blobs, false, now, std::time::Duration::ZERO).await.unwrap();
    assert!(after.unreferenced.is_empty(), "{after:#?}");
    // Everything a client reads is still there.
    let (_, downloads) = app.get(&format!("/jobs/{id}/downloads")).await;
    for url in [downloads["frames"][0].as_str().unwrap(), downloads["transforms"]["framesZip"].as_str().unwrap()] {
        assert_eq!(app.http.get(url).send().await.unwrap().status(), StatusCode::OK);
    }
    // Young files are kept whatever they are.
    let young =
        orchard_server::gc::collect(store.as_ref(), &blobs, false, now, orchard_server::gc::GRACE).await.unwrap();
    assert!(young.unreferenced.is_empty());
}

#[tokio::test]
async fn usage_is_summed_per_workspace_and_an_admin_sees_every_one() {
    let app = spawn_app().await;
    let (admin, _) =
        orchard_server::keys::create_key_as(app.server.store().as_ref(), "ops", "root", true).await.unwrap();
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({})).await;
    rendering_job(&app, &app.other_key, "1", json!({})).await;
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    wait_for(&app, &id, "completed").await;
    let usage = |key: String| {
        let app = &app;
        async move {
            let response = app.http.get(app.api("/usage")).bearer_auth(key).send().await.unwrap();
            parts(response).await
        }
    };
    let (status, own) = usage(app.key.clone()).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let rows = own["workspaces"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "a workspace key sees its own: {own}");
    assert_eq!((rows[0]["jobs"].as_i64(), rows[0]["framesDone"].as_i64()), (Some(1), Some(2)));
    assert!(rows[0]["normalizedSeconds"].as_f64().unwrap() > 0.0, "{own}");
    assert_eq!(own["framesLastHour"], 2, "its own frames: {own}");
    let (_, rival) = usage(app.other_key.clone()).await;
    assert_eq!(rival["workspaces"][0]["framesDone"], 1, "{rival}");
    let (_, all) = usage(admin).await;
    assert_eq!(all["workspaces"].as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all["framesLastHour"], 3, "{all}");
    assert_eq!(all["workspaces"][0]["workspaceId"], own["workspaces"][0]["workspaceId"], "most seconds first");
}
