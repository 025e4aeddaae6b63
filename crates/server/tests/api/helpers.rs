//! `spawn_app` and typed request helpers.

use std::path::PathBuf;

use orchard_api::{Assignment, CompleteResponse};
use orchard_server::{Server, ServerConfig};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub(crate) struct TestApp {
    pub server: Server,
    pub base: String,
    /// A key of workspace "studio".
    pub key: String,
    /// A key of another workspace.
    pub other_key: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// The example scene (Cycles, camera, 4 frames), saved by Blender 3.4.
pub(crate) fn example_scene() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    let database = match backend() {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            config.database_url = Some(database.url.clone());
            Some(database)
        }
    };
    tweak(&mut config);
    let server = orchard_server::start(config).await.expect("server starts");
    let store = server.store().clone();
    let (key, _) = orchard_server::keys::create_key(store.as_ref(), "studio", "alice").await.unwrap();
    let (other_key, _) = orchard_server::keys::create_key(store.as_ref(), "rival", "bob").await.unwrap();
    TestApp { base: server.url(), server, key, other_key, http: reqwest::Client::new(), _dir: dir, _database: database }
}

/// Where a test server keeps its metadata.
enum Backend {
    /// A SQLite file in the server's temp dir (the default data dir layout).
    Sqlite,
    /// A fresh database on the PostgreSQL server `ORCHARD_TEST_POSTGRES_URL` points at.
    Postgres,
}

/// This file is compiled into two test binaries: `api` (this directory) runs the suite on
/// SQLite, and `api_postgres` (`tests/api_postgres.rs`) runs the very same tests on
/// PostgreSQL. The crate name says which binary this is. Without
/// `ORCHARD_TEST_POSTGRES_URL` the PostgreSQL binary runs on SQLite too, unless
/// `ORCHARD_REQUIRE_POSTGRES=1` (set by `dev/test`) makes that a failure.
fn backend() -> Backend {
    if !module_path!().starts_with("api_postgres::") {
        return Backend::Sqlite;
    }
    match std::env::var("ORCHARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Backend::Postgres,
        _ => {
            if std::env::var("ORCHARD_REQUIRE_POSTGRES").is_ok_and(|it| it == "1") {
                panic!("ORCHARD_REQUIRE_POSTGRES=1 but ORCHARD_TEST_POSTGRES_URL is not set");
            }
            eprintln!("ORCHARD_TEST_POSTGRES_URL is not set: this PostgreSQL test runs on SQLite");
            Backend::Sqlite
        }
    }
}

/// A randomly named database, dropped with the test app.
struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        let server = std::env::var("ORCHARD_TEST_POSTGRES_URL").expect("checked by backend()");
        let name = format!("orchard_api_test_{}", uuid::Uuid::new_v4().simple());
        let url = orchard_store::PgStore::create_database(&server, &name).await.expect("test database created");
        TestDatabase { server, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a future: drop the
        // database from a thread with a runtime of its own (`with (force)` ends the
        // server's connections).
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(orchard_store::PgStore::drop_database(&server, &name)).ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Status and JSON body of a response (Null for an empty body).
pub(crate) async fn parts(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts the API's error shape and returns the code.
#[track_caller]
pub(crate) fn error_code(body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(body["error"]["message"].as_str().is_some_and(|it| !it.is_empty()), "error without message: {body}");
    code.to_string()
}

impl TestApp {
    /// Stops this server and starts another on the same data and database (a new port).
    pub(crate) async fn restart(self) -> TestApp {
        let TestApp { server, key, other_key, http, _dir, _database, .. } = self;
        let config = server.config().clone();
        server.shutdown().await;
        let server = orchard_server::start(config).await.expect("the server starts again");
        TestApp { base: server.url(), server, key, other_key, http, _dir, _database }
    }

    /// The server's data folder (its SQLite file and `storage/`).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}/api/external/v1{path}", self.base)
    }

    pub(crate) async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, self.api(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        parts(self.call(Method::POST, path, Some(&self.key), Some(body)).await).await
    }

    pub(crate) async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        parts(self.call(Method::POST, path, Some(&self.key), None).await).await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        parts(self.call(Method::GET, path, Some(&self.key), None).await).await
    }

    /// `POST /uploads` then the PUT; returns the slug.
    pub(crate) async fn upload(&self, file_name: &str, file_type: &str, bytes: Vec<u8>) -> String {
        let (status, body) = self.post("/uploads", json!({"fileName": file_name, "fileType": file_type})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["uploadUrl"].as_str().unwrap().to_string();
        let put = self.http.put(&url).body(bytes).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK, "{}", put.text().await.unwrap_or_default());
        body["slug"].as_str().unwrap().to_string()
    }

    /// A job in `created` made from `bytes`.
    pub(crate) async fn created_job(&self, bytes: Vec<u8>) -> String {
        let slug = self.upload("shot.blend", "blend", bytes).await;
        let (status, body) = self.post("/jobs", json!({"slug": slug})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "created");
        body["id"].as_str().unwrap().to_string()
    }

    /// A job in `validated` made from the example scene.
    pub(crate) async fn validated_job(&self) -> String {
        let id = self.created_job(example_scene()).await;
        let (status, body) = self.post_empty(&format!("/jobs/{id}/validate")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "validated", "{body}");
        id
    }
}

/// A worker of the test, registered under its own token.
pub(crate) struct Worker<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) token: String,
    pub(crate) id: String,
}

impl<'a> Worker<'a> {
    pub(crate) async fn register(app: &'a TestApp, id: &str) -> Worker<'a> {
        let token = orchard_server::keys::create_worker_token(app.server.store().as_ref()).await.unwrap();
        let worker = Worker { app, token, id: id.to_string() };
        let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": true, "gpuBackends": []}],
            "cpuThreads": 2, "ramGib": 8.0, "tags": []});
        let (status, body) = worker
            .call(
                "/register",
                json!({"workerId": id, "name": id, "capabilities": capabilities, "speedFactor": 1.0, "speedSpread": 0.02}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        worker
    }

    pub(crate) async fn call(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let url = self.app.api(&format!("/workers{path}"));
        parts(self.app.http.post(url).bearer_auth(&self.token).json(&body).send().await.unwrap()).await
    }

    /// The next task, if there is one now.
    pub(crate) async fn claim(&self) -> Option<Assignment> {
        let (status, body) = self.call(&format!("/{}/claim", self.id), json!({"waitSeconds": 0})).await;
        match status {
            StatusCode::NO_CONTENT => None,
            StatusCode::OK => Some(serde_json::from_value(body).unwrap()),
            other => panic!("claim answered {other}: {body}"),
        }
    }

    /// Uploads the task's frames and completes it, claiming the next one with it.
    pub(crate) async fn deliver(&self, task: &Assignment) -> Option<Assignment> {
        self.deliver_in(task, 0.5).await
    }

    /// As [`Self::deliver`], having taken `seconds` to render.
    pub(crate) async fn deliver_in(&self, task: &Assignment, seconds: f64) -> Option<Assignment> {
        let frame = png();
        for (file, url) in &task.output_urls {
            let put = self.app.http.put(url).body(frame.clone()).send().await.unwrap();
            assert_eq!(put.status(), StatusCode::OK, "{file}");
        }
        let frames: Vec<Value> =
            // The example scene names its frames `frame_####`.
            task.frames.iter().map(|it| json!({"frame": it, "fileName": format!("frame_{it:04}.png")})).collect();
        let path = format!("/{}/tasks/{}/complete", self.id, task.task_id);
        let body = json!({"attempt": task.attempt, "frames": frames, "renderSeconds": seconds,
            "claimNext": {"preferJob": task.job_id}, "blenderVersion": task.blender_version});
        let (status, answer) = self.call(&path, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let answer: CompleteResponse = serde_json::from_value(answer).unwrap();
        answer.next
    }

    pub(crate) async fn fail(&self, task: &Assignment, error: &str) {
        let path = format!("/{}/tasks/{}/fail", self.id, task.task_id);
        let (status, body) = self.call(&path, json!({"attempt": task.attempt, "error": error})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub(crate) async fn heartbeat(&self, task: &Assignment) -> StatusCode {
        let path = format!("/{}/tasks/{}/heartbeat", self.id, task.task_id);
        self.call(&path, json!({"attempt": task.attempt, "framesDone": 0})).await.0
    }
}

pub(crate) fn png() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(16, 12).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A job of `frames` frames, one per task, rendering, made with `key`.
pub(crate) async fn rendering_job(app: &TestApp, key: &str, frames: &str, extra: Value) -> String {
    let slug = {
        let (status, body) = parts(
            app.call(Method::POST, "/uploads", Some(key), Some(json!({"fileName": "s.blend", "fileType": "blend"})))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let put = app.http.put(body["uploadUrl"].as_str().unwrap()).body(crate::helpers::example_scene()).send().await;
        assert_eq!(put.unwrap().status(), StatusCode::OK);
        body["slug"].as_str().unwrap().to_string()
    };
    let (_, job) = parts(app.call(Method::POST, "/jobs", Some(key), Some(json!({"slug": slug}))).await).await;
    let id = job["id"].as_str().unwrap().to_string();
    let (status, body) = parts(app.call(Method::POST, &format!("/jobs/{id}/validate"), Some(key), None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut config = json!({"colorManagementPreset": "default", "frameRanges": [frames], "chunkSize": 1});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, body) = parts(
        app.call(
            Method::POST,
            &format!("/jobs/{id}/render"),
            Some(key),
            Some(json!({"requestedRenderConfig": config})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// Waits until job `id` has `status`; its `data`.
pub(crate) async fn wait_for(app: &TestApp, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let (_, body) = app.get(&format!("/jobs/{id}")).await;
        if body["data"]["status"] == status {
            return body["data"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} never reached {status}");
}
