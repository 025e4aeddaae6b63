//! `spawn_app` and typed request helpers.

use std::path::PathBuf;

use orchard_server::{Server, ServerConfig};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub struct TestApp {
    pub server: Server,
    pub base: String,
    /// A key of workspace "studio".
    pub key: String,
    /// A key of another workspace.
    pub other_key: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The example scene (Cycles, camera, 4 frames), saved by Blender 3.4.
pub fn example_scene() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    tweak(&mut config);
    let server = orchard_server::start(config).await.expect("server starts");
    let store = server.state.store.clone();
    let (key, _) = orchard_server::keys::create_key(store.as_ref(), "studio", "alice").await.unwrap();
    let (other_key, _) = orchard_server::keys::create_key(store.as_ref(), "rival", "bob").await.unwrap();
    TestApp { base: server.url(), server, key, other_key, http: reqwest::Client::new(), _dir: dir }
}

/// Status and JSON body of a response (Null for an empty body).
pub async fn parts(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Asserts the API's error shape and returns the code.
#[track_caller]
pub fn error_code(body: &Value) -> String {
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"));
    assert!(body["error"]["message"].as_str().is_some_and(|it| !it.is_empty()), "error without message: {body}");
    code.to_string()
}

impl TestApp {
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/external/v1{path}", self.base)
    }

    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, self.api(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        parts(self.call(Method::POST, path, Some(&self.key), Some(body)).await).await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        parts(self.call(Method::POST, path, Some(&self.key), None).await).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        parts(self.call(Method::GET, path, Some(&self.key), None).await).await
    }

    /// `POST /uploads` then the PUT; returns the slug.
    pub async fn upload(&self, file_name: &str, file_type: &str, bytes: Vec<u8>) -> String {
        let (status, body) = self.post("/uploads", json!({"fileName": file_name, "fileType": file_type})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["uploadUrl"].as_str().unwrap().to_string();
        let put = self.http.put(&url).body(bytes).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK, "{}", put.text().await.unwrap_or_default());
        body["slug"].as_str().unwrap().to_string()
    }

    /// A job in `created` made from `bytes`.
    pub async fn created_job(&self, bytes: Vec<u8>) -> String {
        let slug = self.upload("shot.blend", "blend", bytes).await;
        let (status, body) = self.post("/jobs", json!({"slug": slug})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "created");
        body["id"].as_str().unwrap().to_string()
    }

    /// A job in `validated` made from the example scene.
    pub async fn validated_job(&self) -> String {
        let id = self.created_job(example_scene()).await;
        let (status, body) = self.post_empty(&format!("/jobs/{id}/validate")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "validated", "{body}");
        id
    }
}
