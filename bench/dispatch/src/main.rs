//! Task dispatch throughput: one in-process `orchard` server, N simulated workers over HTTP,
//! each looping claim → PUT a tiny frame to the URL that came with the task → complete (which
//! claims the next task, as `orchard worker` does). Prints tasks per second, and the same
//! clients' rate against a bare axum server that answers the same two requests with nothing
//! behind them (a fixed assignment), measured first in the same run: their ratio is what is
//! left of Orchard's rate once the machine's speed cancels out.
//!
//!     cargo run --release -p dispatch-bench -- [sqlite|postgres] [WORKERS] [TASKS] [JOBS]
//!
//! `postgres` needs `ORCHARD_BENCH_POSTGRES_URL` (a server where it may create a database).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orchard_api::{Assignment, Client, CompleteResponse};
use orchard_server::ServerConfig;
use orchard_store::PgStore;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map(String::as_str).unwrap_or("sqlite").to_string();
    let n_workers: usize = args.get(2).and_then(|it| it.parse().ok()).unwrap_or(64);
    let n_tasks: usize = args.get(3).and_then(|it| it.parse().ok()).unwrap_or(4000);
    let n_jobs: usize = args.get(4).and_then(|it| it.parse().ok()).unwrap_or(1).max(1);

    let bare = baseline(n_workers, n_tasks).await;

    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    let mut pg = None;
    if backend == "postgres" {
        let admin = std::env::var("ORCHARD_BENCH_POSTGRES_URL").expect("ORCHARD_BENCH_POSTGRES_URL");
        let name = format!("orchard_bench_{}", uuid::Uuid::new_v4().simple());
        config.database_url = Some(PgStore::create_database(&admin, &name).await.unwrap());
        pg = Some((admin, name));
    }
    let server = orchard_server::start(config).await.unwrap();
    let store = server.store().clone();
    let (key, _) = orchard_server::keys::create_key(store.as_ref(), "bench", "bench").await.unwrap();
    let token = orchard_server::keys::create_worker_token(store.as_ref()).await.unwrap();

    let client = Client::new(&server.url(), &key);
    // The tasks split over JOBS jobs rendering at once (default 1).
    let per_job = n_tasks.div_ceil(n_jobs);
    for _ in 0..n_jobs {
        let upload = client.create_upload("cube.blend", "blend").await.unwrap();
        let scene = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
        client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
        let job = client.create_job(&upload.slug).await.unwrap();
        client.validate(&job.id).await.unwrap();
        let config = json!({"colorManagementPreset": "default", "frameRanges": [format!("1-{per_job}")], "chunkSize": 1,
            "resolution": [64, 48], "resolutionPercentage": 100, "denoisingEnabled": false});
        client.render(&job.id, config).await.unwrap();
    }

    let done = Arc::new(AtomicUsize::new(0));
    // Workers make their HTTP client and register before the clock starts, as real ones do
    // once at start-up.
    let ready = Arc::new(tokio::sync::Barrier::new(n_workers + 1));
    let mut workers = Vec::new();
    for index in 0..n_workers {
        workers.push(tokio::spawn(worker(server.url(), token.clone(), index, done.clone(), ready.clone())));
    }
    ready.wait().await;
    let started = Instant::now();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let rate = n as f64 / elapsed;
    println!(
        "{backend}: {n} tasks of {n_jobs} job(s) by {n_workers} workers in {elapsed:.2} s = {rate:.0} dispatches/s (claim + output upload + complete); bare axum, same clients: {bare:.0}/s; ratio {:.3}",
        rate / bare
    );
    server.shutdown().await;
    if let Some((admin, name)) = pg {
        PgStore::drop_database(&admin, &name).await.unwrap();
    }
}

async fn worker(base: String, token: String, index: usize, done: Arc<AtomicUsize>, ready: Arc<tokio::sync::Barrier>) {
    let http = reqwest::Client::new();
    let api = format!("{base}/api/external/v1");
    let worker_id = format!("bench-{index}");
    let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": []});
    let response = http
        .post(format!("{api}/workers/register"))
        .bearer_auth(&token)
        .json(&json!({"workerId": worker_id, "name": worker_id, "capabilities": capabilities, "speedFactor": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let frame = frame_png();
    ready.wait().await;
    let mut empty_claims = 0;
    // As `orchard worker` does: each completion also claims the next task.
    let mut next: Option<Assignment> = None;
    loop {
        let assignment = match next.take() {
            Some(assignment) => assignment,
            None => {
                let claim = http
                    .post(format!("{api}/workers/{worker_id}/claim"))
                    .bearer_auth(&token)
                    .json(&json!({"waitSeconds": 0}))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .unwrap();
                if claim.status() == StatusCode::NO_CONTENT {
                    empty_claims += 1;
                    if empty_claims > 3 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                claim.json().await.unwrap()
            }
        };
        empty_claims = 0;
        let task = format!("{api}/workers/{worker_id}/tasks/{}", assignment.task_id);
        // The upload URL came with the task, as it does for `orchard worker`, under the name the
        // frame is expected to have (the scene's own: `frame_0001.png`).
        let (file, url) = assignment.output_urls.iter().next().expect("an upload URL for the frame");
        let file = file.clone();
        let put = http.put(url).body(frame.clone()).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        let completed = http
            .post(format!("{task}/complete"))
            .bearer_auth(&token)
            .json(&json!({"attempt": assignment.attempt, "frames": [{"frame": assignment.frames[0], "fileName": file}],
                "renderSeconds": 0.1, "claimNext": {"preferJob": assignment.job_id}}))
            .send()
            .await
            .unwrap();
        assert_eq!(completed.status(), StatusCode::OK);
        let answer: CompleteResponse = completed.json().await.unwrap();
        next = answer.next;
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the same clients reach against a server that does nothing: a bare axum router that
/// takes the PUT's body and answers the completion with a fixed assignment (of the size
/// Orchard's answer has), `n_tasks` times.
async fn baseline(n_workers: usize, n_tasks: usize) -> f64 {
    let assignment = json!({"lease": null, "next": {"taskId": uuid::Uuid::nil(), "attempt": 1, "jobId": uuid::Uuid::nil(),
        "frames": [1], "scene": {"url": "http://127.0.0.1/api/external/v1/workers/bench/scenes/x", "sha256": "0".repeat(64),
            "fileName": "cube.blend", "mainFile": null},
        "config": {"engine": "CYCLES", "samples": 4, "resolution": [64, 48], "resolutionPercentage": 100,
            "fileFormat": "PNG", "colorManagementPreset": "default", "denoisingEnabled": false},
        "outputUrls": {"0001.png": format!("http://127.0.0.1/blobs/{}?expires=1&sig={}", "k".repeat(120), "s".repeat(64))}}})
    .to_string();
    let app = axum::Router::new()
        .route("/frame/{n}", axum::routing::put(|_body: axum::body::Bytes| async { StatusCode::OK }))
        .route(
            "/complete",
            axum::routing::post(move |_body: axum::body::Bytes| {
                let assignment = assignment.clone();
                async move { ([("content-type", "application/json")], assignment) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let left = Arc::new(AtomicUsize::new(n_tasks));
    let ready = Arc::new(tokio::sync::Barrier::new(n_workers + 1));
    let mut workers = Vec::new();
    for index in 0..n_workers {
        let (base, left, ready) = (base.clone(), left.clone(), ready.clone());
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let frame = frame_png();
            ready.wait().await;
            while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                let put = http.put(format!("{base}/frame/{index}")).body(frame.clone()).send().await.unwrap();
                assert_eq!(put.status(), StatusCode::OK);
                let body = json!({"attempt": 1, "frames": [{"frame": 1, "fileName": "0001.png"}], "renderSeconds": 0.1,
                    "claimNext": {"preferJob": uuid::Uuid::nil()}});
                let answer: serde_json::Value =
                    http.post(format!("{base}/complete")).json(&body).send().await.unwrap().json().await.unwrap();
                assert!(answer["next"].is_object());
            }
        }));
    }
    ready.wait().await;
    let started = Instant::now();
    for worker in workers {
        worker.await.unwrap();
    }
    let rate = n_tasks as f64 / started.elapsed().as_secs_f64();
    server.abort();
    rate
}

/// The frame every simulated worker uploads: a 64×48 PNG.
fn frame_png() -> Vec<u8> {
    let mut frame = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(64, 48).write_to(&mut frame, image::ImageFormat::Png).unwrap();
    frame.into_inner()
}
