//! Webhooks and the event stream, measured in one run against baselines:
//!
//! 1. Latency from the completion that finishes a job (a one-frame job: the worker's
//!    `complete` call, then finalizing and the delivery) to the receiver holding the webhook,
//!    p50 and p99 over JOBS jobs; against the same receiver getting a bare POST from a client.
//! 2. Fan-out: SUBSCRIBERS event streams on one server, EVENTS events (validations) made as
//!    fast as a client can; events delivered per second (events × subscribers / time until the
//!    last subscriber has them all) and the process's RSS before and with the subscribers
//!    (server and clients share the process: the growth is an upper bound for the server's).
//!
//!     cargo run --release -p dispatch-bench --bin notices-bench -- [JOBS] [SUBSCRIBERS] [EVENTS]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchard_api::{Assignment, Client, Notice};
use orchard_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_jobs: usize = args.get(1).and_then(|it| it.parse().ok()).unwrap_or(200);
    let n_subscribers: usize = args.get(2).and_then(|it| it.parse().ok()).unwrap_or(1000);
    let n_events: usize = args.get(3).and_then(|it| it.parse().ok()).unwrap_or(100);

    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.webhooks_allow_private = true;
    config.rate_limit = 0;
    let server = orchard_server::start(config).await.unwrap();
    let store = server.store().clone();
    let (key, _) = orchard_server::keys::create_key(store.as_ref(), "bench", "bench").await.unwrap();
    let token = orchard_server::keys::create_worker_token(store.as_ref()).await.unwrap();
    let client = Client::new(&server.url(), &key);

    // The receiver: when each job's event (or each bare POST, by its id) arrived.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let log = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let at = Instant::now();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(id) = body["jobId"].as_str() {
                    log.lock().unwrap().insert(id.to_string(), at);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Baseline: a bare POST of a body of the same size, client to receiver.
    let http = reqwest::Client::new();
    let mut bare = Vec::new();
    for index in 0..n_jobs {
        let id = format!("bare-{index}");
        let sent = Instant::now();
        let response = http.post(&hook).json(&json!({"jobId": id, "padding": "x".repeat(300)})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        bare.push(arrivals.lock().unwrap()[&id] - sent);
    }

    client.create_webhook(&hook, vec![Notice::RenderComplete]).await.unwrap();
    let worker = Worker::register(&server.url(), &token).await;
    let scene = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    let mut latencies = Vec::new();
    for _ in 0..n_jobs {
        let upload = client.create_upload("cube.blend", "blend").await.unwrap();
        client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
        let job = client.create_job(&upload.slug).await.unwrap();
        client.validate(&job.id).await.unwrap();
        let config = json!({"colorManagementPreset": "default", "frameRanges": ["1"], "resolution": [64, 48],
            "resolutionPercentage": 100, "denoisingEnabled": false});
        client.render(&job.id, config).await.unwrap();
        let task = worker.claim().await;
        worker.upload(&task).await;
        let finishing = Instant::now();
        worker.complete(&task).await;
        let arrived = loop {
            if let Some(at) = arrivals.lock().unwrap().get(&job.id) {
                break *at;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived - finishing);
    }
    let (p50, p99) = percentiles(&mut latencies);
    let (b50, b99) = percentiles(&mut bare);
    println!(
        "webhook latency over {n_jobs} jobs: p50 {:.1} ms, p99 {:.1} ms; bare POST to the same receiver: p50 {:.2} ms, p99 {:.2} ms; ratio p50 {:.0}, p99 {:.0}",
        ms(p50),
        ms(p99),
        ms(b50),
        ms(b99),
        ms(p50) / ms(b50),
        ms(p99) / ms(b99)
    );

    // Fan-out.
    let before = rss_kib();
    let addr = server.addr();
    let mut subscribers = Vec::new();
    let connected = Arc::new(tokio::sync::Barrier::new(n_subscribers + 1));
    for _ in 0..n_subscribers {
        let (key, connected) = (key.clone(), connected.clone());
        subscribers.push(tokio::spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "GET /api/external/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
            );
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut buffer = vec![0u8; 8192];
            // The answer's head: connected.
            let mut head = Vec::new();
            while !head.windows(4).any(|it| it == b"\r\n\r\n") {
                let n = socket.read(&mut buffer).await.unwrap();
                head.extend_from_slice(&buffer[..n]);
            }
            connected.wait().await;
            let mut seen = head.windows(4).filter(|it| it == b"\nid:").count();
            let mut carry = Vec::new();
            while seen < n_events {
                let n = socket.read(&mut buffer).await.unwrap();
                carry.extend_from_slice(&buffer[..n]);
                seen += carry.windows(4).filter(|it| it == b"\nid:" || it == b"id: ").count();
                let keep = carry.len().saturating_sub(3);
                carry.drain(..keep);
            }
            Instant::now()
        }));
    }
    connected.wait().await;
    let with = rss_kib();
    let started = Instant::now();
    let makers: Vec<_> = (0..n_events)
        .map(|_| {
            let (client, scene) = (client.clone(), scene.clone());
            tokio::spawn(async move {
                let upload = client.create_upload("cube.blend", "blend").await.unwrap();
                client.put_file(&upload.upload_url, &scene, |_| {}).await.unwrap();
                let job = client.create_job(&upload.slug).await.unwrap();
                client.validate(&job.id).await.unwrap();
            })
        })
        .collect();
    for maker in makers {
        maker.await.unwrap();
    }
    let made = started.elapsed();
    let mut last = started;
    for subscriber in subscribers {
        last = last.max(subscriber.await.unwrap());
    }
    let took = (last - started).as_secs_f64();
    println!(
        "fan-out: {n_subscribers} subscribers × {n_events} events in {took:.2} s (made in {:.2} s) = {:.0} events delivered/s; RSS {} MiB before, {} MiB with the subscribers connected (+{:.1} KiB each, client side included)",
        made.as_secs_f64(),
        (n_subscribers * n_events) as f64 / took,
        before / 1024,
        with / 1024,
        (with.saturating_sub(before)) as f64 / n_subscribers as f64
    );
    server.shutdown().await;
}

fn percentiles(values: &mut [Duration]) -> (Duration, Duration) {
    values.sort();
    let at = |q: f64| values[((values.len() as f64 * q) as usize).min(values.len() - 1)];
    (at(0.50), at(0.99))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|it| it.strip_prefix("VmRSS:"))
        .and_then(|it| it.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A simulated worker: claim, PUT the frame, complete.
struct Worker {
    http: reqwest::Client,
    api: String,
    token: String,
}

impl Worker {
    async fn register(base: &str, token: &str) -> Worker {
        let worker =
            Worker { http: reqwest::Client::new(), api: format!("{base}/api/external/v1"), token: token.into() };
        let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
            "cpuThreads": 2, "ramGib": 8.0, "tags": []});
        let body = json!({"workerId": "bench", "name": "bench", "capabilities": capabilities, "speedFactor": 1.0});
        let response = worker
            .http
            .post(format!("{}/workers/register", worker.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        worker
    }

    async fn claim(&self) -> Assignment {
        loop {
            let response = self
                .http
                .post(format!("{}/workers/bench/claim", self.api))
                .bearer_auth(&self.token)
                .json(&json!({"waitSeconds": 5}))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::OK {
                return response.json().await.unwrap();
            }
        }
    }

    async fn upload(&self, task: &Assignment) {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbaImage::new(64, 48).write_to(&mut png, image::ImageFormat::Png).unwrap();
        let url = task.output_urls.values().next().expect("an upload URL for the frame");
        let put = self.http.put(url).body(png.into_inner()).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }

    async fn complete(&self, task: &Assignment) {
        let file = task.output_urls.keys().next().expect("the frame's name");
        let body = json!({"attempt": task.attempt, "frames": [{"frame": 1, "fileName": file}], "renderSeconds": 0.1});
        let url = format!("{}/workers/bench/tasks/{}/complete", self.api, task.task_id);
        let response = self.http.post(url).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
