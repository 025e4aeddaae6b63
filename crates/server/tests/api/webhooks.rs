//! Webhooks and the event stream, against a real HTTP receiver that checks every signature:
//! the documented bodies, retries with one delivery id, a receiver that was down, a server
//! restarted before it delivered, private targets, secret rotation, workspaces kept apart,
//! and an event stream resumed with `Last-Event-ID`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, Worker, error_code, parts, rendering_job, spawn_app, spawn_app_with, wait_for};

/// A POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// An HTTP endpoint that records what it is sent and answers what it is told to.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    stop: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_on(addr: SocketAddr) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let (log, script) = (received.clone(), answers.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    log.lock().unwrap().push(Received { headers, body });
                    let status = script.lock().unwrap().pop_front().unwrap_or(200);
                    (AxumStatus::from_u16(status).unwrap(), "thanks")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let stop = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, received, answers, stop }
    }

    /// Answer these statuses first (200 after).
    fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    /// Waits until `n` POSTs arrived; all of them.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the receiver got {:?}, expected {n}", self.received.lock().unwrap().len());
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.abort();
    }
}

/// Checks the delivery's signature with `secret` as a receiver does (Renderjuice's scheme);
/// the body as JSON.
#[track_caller]
fn verified(received: &Received, secret: &str) -> Value {
    let header = |name: &str| received.headers.get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap();
    let timestamp = header("x-renderjuice-timestamp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - timestamp.parse::<i64>().unwrap()).abs() < 300, "a fresh timestamp");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&received.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(header("x-renderjuice-signature"), expected, "signed with the secret, over the exact body");
    assert_eq!(header("content-type"), "application/json");
    uuid::Uuid::parse_str(header("x-orchard-delivery")).expect("a delivery id");
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(header("x-orchard-event"), body["event"]);
    body
}

fn delivery_id(received: &Received) -> String {
    received.headers["x-orchard-delivery"].to_str().unwrap().to_string()
}

/// A server that may call receivers on this machine, retrying quickly.
async fn app_for_hooks() -> TestApp {
    spawn_app_with(|config| {
        config.webhooks_allow_private = true;
        config.webhook_first_retry = Duration::from_millis(150);
    })
    .await
}

/// Adds a webhook with `key`; (its id, its secret).
async fn add_hook(app: &TestApp, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let body = json!({"url": url, "events": events});
    let (status, hook) = parts(app.call(Method::POST, "/webhooks", Some(key), Some(body)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
    (hook["id"].as_str().unwrap().to_string(), secret)
}

/// Renders job `id` to completion with `worker`.
async fn complete(app: &TestApp, worker: &Worker<'_>, id: &str) {
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    wait_for(app, id, "completed").await;
}

/// The delivery log once the newest delivery is in `state` (its attempt is recorded just after
/// the receiver answered).
async fn settled(app: &TestApp, hook: &str, state: &str) -> Vec<Value> {
    for _ in 0..200 {
        let log = deliveries(app, hook).await;
        if log.first().is_some_and(|it| it["state"] == state) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the newest delivery never got {state}: {:?}", deliveries(app, hook).await);
}

async fn deliveries(app: &TestApp, hook: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/webhooks/{hook}/deliveries")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn completed_and_failed_jobs_are_posted_signed_with_the_documented_bodies() {
    let app = app_for_hooks().await;
    let receiver = Receiver::start().await;
    let (hook, secret) = add_hook(&app, &app.key, &receiver.url, &["onRenderComplete", "onRenderFail"]).await;
    let (_, listed) = app.get("/webhooks").await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    assert!(listed["webhooks"][0].get("secret").is_none(), "the secret is shown once: {listed}");
    assert_eq!(listed["webhooks"][0]["events"], json!(["onRenderComplete", "onRenderFail"]));

    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({})).await;
    complete(&app, &worker, &id).await;
    let got = receiver.wait_for(1).await;
    let body = verified(&got[0], &secret);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(body["event"], "onRenderComplete");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["jobId"], id.as_str());
    assert_eq!(body["workspaceId"], job["data"]["workspaceId"]);
    assert!(body["completedAt"].as_str().unwrap().ends_with('Z'), "{body}");
    let frames = body["outputs"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 2, "{body}");
    let frame = app.http.get(frames[0].as_str().unwrap()).send().await.unwrap();
    assert_eq!(frame.status(), StatusCode::OK, "the frame URLs work");
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["completedAt", "event", "jobId", "outputs", "status", "workspaceId"],
        "exactly the documented fields"
    );

    // A scene that does not read fails validation: onRenderFail.
    let failed = app.created_job(b"not a blend file at all".to_vec()).await;
    app.post_empty(&format!("/jobs/{failed}/validate")).await;
    let got = receiver.wait_for(2).await;
    let body = verified(&got[1], &secret);
    assert_eq!((body["event"].as_str(), body["status"].as_str()), (Some("onRenderFail"), Some("failed")));
    assert_eq!(body["jobId"], failed.as_str());
    assert!(body["failedAt"].is_string() && body["failedReason"]["message"].is_string(), "{body}");
    // Neither validation nor the render's start was asked for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 2, "only the events subscribed to");

    let log = settled(&app, &hook, "delivered").await;
    assert_eq!(log.len(), 2);
    assert_eq!((log[0]["event"].as_str(), log[0]["state"].as_str()), (Some("onRenderFail"), Some("delivered")));
    assert_eq!(log[1]["attempts"][0]["statusCode"], 200);
    assert_eq!(log[1]["attempts"][0]["response"], "thanks");
    assert_eq!(log[1]["id"].as_str().unwrap(), delivery_id(&got[0]));
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_with_the_same_delivery_id() {
    let app = app_for_hooks().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 503]);
    let (hook, secret) = add_hook(&app, &app.key, &receiver.url, &["onRenderComplete"]).await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    complete(&app, &worker, &id).await;
    let got = receiver.wait_for(3).await;
    let ids: Vec<String> = got.iter().map(delivery_id).collect();
    assert!(ids.iter().all(|it| *it == ids[0]), "one delivery, three attempts: {ids:?}");
    for received in &got {
        verified(received, &secret);
    }
    let log = settled(&app, &hook, "delivered").await;
    let codes: Vec<i64> =
        log[0]["attempts"].as_array().unwrap().iter().map(|it| it["statusCode"].as_i64().unwrap()).collect();
    assert_eq!((codes, log[0]["state"].as_str()), (vec![500, 503, 200], Some("delivered")));

    // Sent again on request: a new delivery of the same event.
    let path = format!("/webhooks/{hook}/deliveries/{}/redeliver", ids[0]);
    let (status, again) = app.post_empty(&path).await;
    assert_eq!((status, again["state"].as_str()), (StatusCode::ACCEPTED, Some("pending")), "{again}");
    let got = receiver.wait_for(4).await;
    assert_eq!(delivery_id(&got[3]), again["id"].as_str().unwrap());
    assert_eq!(verified(&got[3], &secret)["jobId"], id.as_str());
    let (status, _) = app.post_empty(&format!("/webhooks/{hook}/deliveries/{}/redeliver", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_event_when_it_is_back() {
    let app = app_for_hooks().await;
    // A port nothing listens on, yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (hook, secret) = add_hook(&app, &app.key, &format!("http://{addr}/hook"), &["onRenderComplete"]).await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    complete(&app, &worker, &id).await;
    for _ in 0..200 {
        if deliveries(&app, &hook).await[0]["attempts"].as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = deliveries(&app, &hook).await;
    assert_eq!(log[0]["state"], "pending");
    assert!(log[0]["attempts"][0]["error"].as_str().unwrap().contains("connect"), "{log:?}");
    assert!(log[0]["nextAttemptAt"].is_string());
    let receiver = Receiver::start_on(addr).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(verified(&got[0], &secret)["jobId"], id.as_str());
    settled(&app, &hook, "delivered").await;
}

#[tokio::test]
async fn an_event_recorded_before_a_restart_is_delivered_once_after_it() {
    let app = app_for_hooks().await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (_, secret) = add_hook(&app, &app.key, &format!("http://{addr}/hook"), &["onRenderComplete"]).await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    complete(&app, &worker, &id).await;
    // The server goes away with the event undelivered; another starts on the same data.
    let app = app.restart().await;
    let receiver = Receiver::start_on(addr).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(verified(&got[0], &secret)["jobId"], id.as_str(), "the secret survives the restart");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.count(), 1, "once");
    drop(app);
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_operator_allows_them() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (status, body) = app.post("/webhooks", json!({"url": receiver.url, "events": ["onRenderComplete"]})).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_url"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("--webhooks-allow-private"), "{body}");
    // A name is checked when it resolves, at delivery: `localhost` is loopback.
    let named = receiver.url.replace("127.0.0.1", "localhost");
    let (hook, _) = add_hook(&app, &app.key, &named, &["onRenderComplete"]).await;
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1", json!({})).await;
    complete(&app, &worker, &id).await;
    for _ in 0..200 {
        let log = deliveries(&app, &hook).await;
        if let Some(error) = log.first().and_then(|it| it["attempts"][0]["error"].as_str()) {
            assert!(error.contains("private or local address"), "{error}");
            assert_eq!(receiver.count(), 0, "nothing reached the receiver");
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no refused attempt recorded");
}

#[tokio::test]
async fn a_rotated_secret_signs_from_then_on() {
    let app = app_for_hooks().await;
    let receiver = Receiver::start().await;
    let (hook, old) = add_hook(&app, &app.key, &receiver.url, &["onValidated"]).await;
    let (status, rotated) = app.post_empty(&format!("/webhooks/{hook}/rotate-secret")).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    app.validated_job().await;
    let got = receiver.wait_for(1).await;
    let body = verified(&got[0], new);
    assert_eq!((body["event"].as_str(), body["status"].as_str()), (Some("onValidated"), Some("validated")));
    assert!(body["at"].is_string());
    // Removed: nothing more is sent.
    let (status, _) = parts(app.call(Method::DELETE, &format!("/webhooks/{hook}"), Some(&app.key), None).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.validated_job().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 1);
    let (status, _) = app.get(&format!("/webhooks/{hook}/deliveries")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn webhooks_are_checked_and_another_workspaces_are_out_of_reach() {
    let app = app_for_hooks().await;
    let receiver = Receiver::start().await;
    for (body, field) in [
        (json!({"url": receiver.url, "events": []}), "events"),
        (json!({"url": receiver.url, "events": ["onRenderDone"]}), ""),
        (json!({"url": "ftp://example.com/x", "events": ["onRenderFail"]}), "url"),
        (json!({"url": "https://user:pw@example.com/x", "events": ["onRenderFail"]}), "url"),
        (json!({"events": ["onRenderFail"]}), ""),
    ] {
        let (status, answer) = app.post("/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        }
    }
    let (hook, _) = add_hook(&app, &app.key, &receiver.url, &["onValidated"]).await;
    let (_, theirs) = parts(app.call(Method::GET, "/webhooks", Some(&app.other_key), None).await).await;
    assert_eq!(theirs["webhooks"], json!([]));
    for (method, path) in [
        (Method::GET, format!("/webhooks/{hook}/deliveries")),
        (Method::POST, format!("/webhooks/{hook}/rotate-secret")),
        (Method::DELETE, format!("/webhooks/{hook}")),
    ] {
        let (status, _) = parts(app.call(method.clone(), &path, Some(&app.other_key), None).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // Their validation is not our event.
    let slug = {
        let body = json!({"fileName": "s.blend", "fileType": "blend"});
        let (_, upload) = parts(app.call(Method::POST, "/uploads", Some(&app.other_key), Some(body)).await).await;
        app.http.put(upload["uploadUrl"].as_str().unwrap()).body(crate::helpers::example_scene()).send().await.unwrap();
        upload["slug"].as_str().unwrap().to_string()
    };
    let (_, job) =
        parts(app.call(Method::POST, "/jobs", Some(&app.other_key), Some(json!({"slug": slug}))).await).await;
    let path = format!("/jobs/{}/validate", job["id"].as_str().unwrap());
    let (status, _) = parts(app.call(Method::POST, &path, Some(&app.other_key), None).await).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0, "another workspace's job");
}

/// Reads SSE events from `response` until `n` arrived: (id, data).
async fn read_events(response: reqwest::Response, n: usize) -> Vec<(i64, Value)> {
    read_until(response, |events| events.len() >= n).await
}

/// Reads SSE events from `response` until `done` says so: (id, data).
async fn read_until(response: reqwest::Response, done: impl Fn(&[(i64, Value)]) -> bool) -> Vec<(i64, Value)> {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("events in time").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field =
                |name: &str| block.lines().find_map(|it| it.strip_prefix(name).map(str::trim).map(str::to_string));
            if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                events.push((id.parse().unwrap(), serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_event_stream_resumes_after_its_last_event_id_and_loses_nothing() {
    let app = app_for_hooks().await;
    let open = |last: Option<i64>, key: String| {
        let app = &app;
        async move {
            let mut request = app.http.get(app.api("/events")).bearer_auth(key);
            if let Some(last) = last {
                request = request.header("Last-Event-ID", last.to_string());
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "text/event-stream");
            response
        }
    };
    let stream = open(None, app.key.clone()).await;
    let theirs = open(None, app.other_key.clone()).await;
    let first = app.validated_job().await;
    let events = read_events(stream, 1).await;
    assert_eq!(
        (events[0].1["type"].as_str(), events[0].1["jobId"].as_str()),
        (Some("onValidated"), Some(first.as_str()))
    );
    // Disconnected; meanwhile two jobs validate and one is canceled.
    let (second, third) = (app.validated_job().await, app.validated_job().await);
    app.post_empty(&format!("/jobs/{third}/cancel")).await;
    let resumed = read_events(open(Some(events[0].0), app.key.clone()).await, 3).await;
    let seen: Vec<(String, String)> = resumed
        .iter()
        .map(|(_, it)| (it["type"].as_str().unwrap().to_string(), it["jobId"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("onValidated".to_string(), second.clone()),
            ("onValidated".to_string(), third.clone()),
            ("onRenderCancel".to_string(), third.clone())
        ]
    );
    assert!(resumed.windows(2).all(|it| it[0].0 < it[1].0) && resumed[0].0 > events[0].0, "in order, after the last");
    // The other workspace saw none of it: its first event is its own.
    let fourth = {
        let slug = {
            let body = json!({"fileName": "s.blend", "fileType": "blend"});
            let (_, upload) = parts(app.call(Method::POST, "/uploads", Some(&app.other_key), Some(body)).await).await;
            app.http
                .put(upload["uploadUrl"].as_str().unwrap())
                .body(crate::helpers::example_scene())
                .send()
                .await
                .unwrap();
            upload["slug"].as_str().unwrap().to_string()
        };
        let (_, job) =
            parts(app.call(Method::POST, "/jobs", Some(&app.other_key), Some(json!({"slug": slug}))).await).await;
        let id = job["id"].as_str().unwrap().to_string();
        parts(app.call(Method::POST, &format!("/jobs/{id}/validate"), Some(&app.other_key), None).await).await;
        id
    };
    let theirs = read_events(theirs, 1).await;
    assert_eq!(theirs[0].1["jobId"], fourth.as_str());
    let (status, body) = parts(
        app.http.get(app.api("/events")).bearer_auth(&app.key).header("Last-Event-ID", "x").send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_event_stream_carries_a_rendering_jobs_progress() {
    let app = app_for_hooks().await;
    let stream = app.http.get(app.api("/events")).bearer_auth(&app.key).send().await.unwrap();
    let worker = Worker::register(&app, "node-1").await;
    let id = rendering_job(&app, &app.key, "1-2", json!({})).await;
    let mut next = worker.claim().await;
    while let Some(task) = next {
        next = worker.deliver(&task).await;
    }
    let events = read_until(stream, |events| events.iter().any(|(_, it)| it["type"] == "onRenderComplete")).await;
    let kinds: Vec<&str> = events.iter().map(|(_, it)| it["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"onValidated"), "{kinds:?}");
    assert!(kinds.contains(&"onRenderStart"), "{kinds:?}");
    let last = events.iter().rev().find(|(_, it)| it["type"] == "progress").expect("progress").1.clone();
    assert_eq!(
        (last["framesDone"].as_i64(), last["framesTotal"].as_i64(), last["jobId"].as_str()),
        (Some(2), Some(2), Some(id.as_str())),
        "the last frames always: {last}"
    );
    assert!(events.iter().all(|(_, it)| it["jobId"] == id.as_str()));
}
