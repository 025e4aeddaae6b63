//! Two servers on one PostgreSQL database and one storage folder, many workers claiming at
//! once: each task is leased to one worker at a time, each frame is stored once, and the job
//! finalizes once. The client talks to one server, the workers to both.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchard_api::{Assignment, Client, CompleteResponse};
use orchard_server::{Server, ServerConfig};
use orchard_store::PgStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn postgres_url() -> Option<String> {
    match std::env::var("ORCHARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ORCHARD_REQUIRE_POSTGRES").map_or(true, |it| it != "1"),
                "ORCHARD_REQUIRE_POSTGRES=1 but ORCHARD_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: ORCHARD_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

async fn server(database_url: &str, storage: &std::path::Path, data: &std::path::Path) -> Server {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.to_path_buf());
    config.database_url = Some(database_url.to_string());
    config.storage = Some(format!("file://{}", storage.display()));
    config.lease_ttl = Duration::from_secs(30);
    // Servers sharing a database share the key that seals webhook secrets.
    config.secrets_key = Some("5e".repeat(32));
    config.webhooks_allow_private = true;
    orchard_server::start(config).await.unwrap()
}

/// Two servers on a fresh PostgreSQL database and one storage folder, with a key and a worker
/// token; `None` without PostgreSQL.
struct Farm {
    admin_url: String,
    name: String,
    database_url: String,
    storage: tempfile::TempDir,
    a: Server,
    b: Server,
    key: String,
    token: String,
    _data: (tempfile::TempDir, tempfile::TempDir),
}

impl Farm {
    async fn start(prefix: &str) -> Option<Farm> {
        let admin_url = postgres_url()?;
        let name = format!("orchard_{prefix}_{}", uuid::Uuid::new_v4().simple());
        let database_url = PgStore::create_database(&admin_url, &name).await.unwrap();
        let storage = tempfile::tempdir().unwrap();
        let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = server(&database_url, storage.path(), data_a.path()).await;
        let b = server(&database_url, storage.path(), data_b.path()).await;
        let (key, _) = orchard_server::keys::create_key(a.store().as_ref(), "studio", "alice").await.unwrap();
        let token = orchard_server::keys::create_worker_token(a.store().as_ref()).await.unwrap();
        Some(Farm { admin_url, name, database_url, storage, a, b, key, token, _data: (data_a, data_b) })
    }
}

fn png() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(64, 48).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// What the simulated workers saw, to check that no task was held twice at once.
#[derive(Default)]
struct Ledger {
    in_flight: HashSet<String>,
    claims: HashMap<String, u32>,
    overlaps: u32,
}

async fn simulated_worker(
    base: String,
    token: String,
    index: usize,
    job_done: Arc<tokio::sync::Notify>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let http = reqwest::Client::new();
    let api = format!("{base}/api/external/v1");
    let worker_id = format!("sim-{index}");
    let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": []});
    let registered = http
        .post(format!("{api}/workers/register"))
        .bearer_auth(&token)
        .json(&json!({"workerId": worker_id, "name": worker_id, "capabilities": capabilities, "speedFactor": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let frame = png();
    // Odd workers work as `orchard worker` does: upload to the URLs that came with the task,
    // and claim the next task with each completion. Even ones ask for URLs and claim apart.
    let fast = index % 2 == 1;
    let mut next: Option<Assignment> = None;
    loop {
        let assignment = match next.take() {
            Some(assignment) => assignment,
            None => {
                let claim = tokio::select! {
                    claim = http.post(format!("{api}/workers/{worker_id}/claim")).bearer_auth(&token).json(&json!({"waitSeconds": 1})).send() => claim.unwrap(),
                    _ = job_done.notified() => return,
                };
                if claim.status() == StatusCode::NO_CONTENT {
                    continue;
                }
                claim.json().await.unwrap()
            }
        };
        {
            let mut ledger = ledger.lock().unwrap();
            if !ledger.in_flight.insert(assignment.task_id.clone()) {
                ledger.overlaps += 1;
            }
            *ledger.claims.entry(assignment.task_id.clone()).or_default() += 1;
        }
        let task = format!("{api}/workers/{worker_id}/tasks/{}", assignment.task_id);
        let files: Vec<String> = assignment.frames.iter().map(|it| format!("frame_{it:04}.png")).collect();
        let urls: Value = if fast {
            json!({"urls": assignment.output_urls})
        } else {
            http.post(format!("{task}/outputs"))
                .bearer_auth(&token)
                .json(&json!({"attempt": assignment.attempt, "files": files}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        };
        for file in &files {
            let put = http.put(urls["urls"][file].as_str().unwrap()).body(frame.clone()).send().await.unwrap();
            assert_eq!(put.status(), StatusCode::OK);
        }
        ledger.lock().unwrap().in_flight.remove(&assignment.task_id);
        let frames: Vec<Value> =
            assignment.frames.iter().map(|it| json!({"frame": it, "fileName": format!("frame_{it:04}.png")})).collect();
        let done = http
            .post(format!("{task}/complete"))
            .bearer_auth(&token)
            .json(&json!({"attempt": assignment.attempt, "frames": frames, "renderSeconds": 0.5,
                "claimNext": if fast { json!({"preferJob": assignment.job_id}) } else { Value::Null }}))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        let answer: CompleteResponse = done.json().await.unwrap();
        assert!(fast || answer.next.is_none(), "a task claimed without claimNext");
        next = answer.next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_share_the_work_and_store_each_frame_once() {
    let Some(Farm { admin_url, name, database_url: _, storage: _storage, a, b, key, token, _data }) =
        Farm::start("scale").await
    else {
        return;
    };

    let client = Client::new(&a.url(), &key);
    let upload = client.create_upload("cube.blend", "blend").await.unwrap();
    let scene = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
    let job = client.create_job(&upload.slug).await.unwrap();
    client.validate(&job.id).await.unwrap();
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1-40"], "chunkSize": 1,
        "resolution": [64, 48], "resolutionPercentage": 100, "denoisingEnabled": false});
    client.render(&job.id, config).await.unwrap();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let job_done = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for index in 0..16 {
        let base = if index % 2 == 0 { a.url() } else { b.url() };
        workers.push(tokio::spawn(simulated_worker(base, token.clone(), index, job_done.clone(), ledger.clone())));
    }
    // The client watches through the other server.
    let watcher = Client::new(&b.url(), &key);
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let job = watcher.get_job(&job.id).await.unwrap();
        if job.status == "completed" {
            break job;
        }
        assert!(Instant::now() < deadline, "the job did not complete: {}", job.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    job_done.notify_waiters();
    for worker in workers {
        worker.abort();
    }
    {
        let ledger = ledger.lock().unwrap();
        assert_eq!(ledger.overlaps, 0, "a task was leased to two workers at once");
        assert_eq!(ledger.claims.len(), 40);
        assert!(ledger.claims.values().all(|n| *n == 1), "a task was claimed twice: {:?}", ledger.claims);
    }

    let downloads = watcher.downloads(&finished.id).await.unwrap();
    let names: Vec<String> = downloads.frame_outputs.iter().map(|it| it.file_name.clone()).collect();
    let expected: Vec<String> = (1..=40).map(|it| format!("frame_{it:04}.png")).collect();
    assert_eq!(names, expected);
    let zip = reqwest::get(&downloads.transforms.frames_zip).await.unwrap().bytes().await.unwrap();
    assert_eq!(zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap().len(), 40);
    let tasks = watcher.tasks(&finished.id).await.unwrap();
    assert!(tasks.iter().all(|it| it.status == "completed" && it.attempt == 1));

    a.shutdown().await;
    b.shutdown().await;
    PgStore::drop_database(&admin_url, &name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_deliver_every_event_once() {
    let Some(Farm { admin_url, name, database_url, storage, a, b, key, token, _data }) = Farm::start("hooks").await
    else {
        return;
    };

    // The receiver: every POST's delivery id, event and job.
    let got: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap();
                let delivery = headers["x-orchard-delivery"].to_str().unwrap().to_string();
                let entry = (
                    delivery,
                    body["event"].as_str().unwrap().to_string(),
                    body["jobId"].as_str().unwrap().to_string(),
                );
                log.lock().unwrap().push(entry);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = Client::new(&a.url(), &key);
    let events = vec![orchard_api::Notice::RenderStart, orchard_api::Notice::RenderComplete];
    client.create_webhook(&hook, events).await.unwrap();
    let scene = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    let mut jobs = Vec::new();
    for index in 0..20 {
        // Half the jobs through each server.
        let client = if index % 2 == 0 { Client::new(&a.url(), &key) } else { Client::new(&b.url(), &key) };
        let upload = client.create_upload("cube.blend", "blend").await.unwrap();
        client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
        let job = client.create_job(&upload.slug).await.unwrap();
        client.validate(&job.id).await.unwrap();
        let config = json!({"colorManagementPreset": "default", "frameRanges": ["1-2"], "chunkSize": 1,
            "resolution": [64, 48], "resolutionPercentage": 100, "denoisingEnabled": false});
        client.render(&job.id, config).await.unwrap();
        jobs.push(job.id);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let job_done = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for index in 0..8 {
        let base = if index % 2 == 0 { a.url() } else { b.url() };
        workers.push(tokio::spawn(simulated_worker(base, token.clone(), index, job_done.clone(), ledger.clone())));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "delivered: {:?}", got.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    job_done.notify_waiters();
    for worker in workers {
        worker.abort();
    }
    // A little longer: nothing arrives twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 40, "{got:#?}");
    let deliveries: HashSet<&String> = got.iter().map(|it| &it.0).collect();
    assert_eq!(deliveries.len(), 40, "a delivery sent twice");
    let seen: HashSet<(&str, &str)> = got.iter().map(|it| (it.1.as_str(), it.2.as_str())).collect();
    for job in &jobs {
        assert!(seen.contains(&("onRenderStart", job.as_str())) && seen.contains(&("onRenderComplete", job.as_str())));
    }
    // A server with another secrets key could not sign: it refuses to start, saying why.
    let data_c = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data_c.path().to_path_buf());
    config.database_url = Some(database_url.clone());
    config.storage = Some(format!("file://{}", storage.path().display()));
    let refused = orchard_server::start(config).await.err().expect("refused").to_string();
    assert!(refused.contains("secrets key") && refused.contains("ORCHARD_SECRETS_KEY"), "{refused}");
    receiver.abort();
    a.shutdown().await;
    b.shutdown().await;
    PgStore::drop_database(&admin_url, &name).await.unwrap();
}
