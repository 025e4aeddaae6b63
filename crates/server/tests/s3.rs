//! Storage on an S3-compatible bucket: an in-process `s3s-fs` server that checks SigV4
//! signatures, reached by the server through `object_store` and by clients through the
//! presigned URLs the server hands out.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchard_server::ServerConfig;
use orchard_server::blobs::{Blobs, Presign};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCESS_KEY: &str = "AKIDTEST";
const SECRET_KEY: &str = "SECRETTEST";
const BUCKET: &str = "renders";

/// An S3 server on a random port, storing objects under a temp dir (one folder per bucket).
struct S3Server {
    endpoint: String,
    root: tempfile::TempDir,
    accept: tokio::task::JoinHandle<()>,
}

impl S3Server {
    async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("bucket folder");
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap_or_else(|e| panic!("s3s-fs: {e:?}"));
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(socket);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        S3Server { endpoint, root, accept }
    }

    /// The storage URL for `prefix` in the bucket: endpoint and keys as query options, so
    /// that tests running side by side need no process-wide `AWS_*` variables.
    fn storage_url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint={}&region=us-east-1&allow_http=true&access_key_id={ACCESS_KEY}\
             &secret_access_key={SECRET_KEY}",
            self.endpoint
        )
    }

    /// Where the object `key` lies on disk.
    fn file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Replaces the last hex digit of the `X-Amz-Signature` parameter.
fn tamper(url: &str) -> String {
    let at = url.find("X-Amz-Signature=").expect("a SigV4 presigned URL") + "X-Amz-Signature=".len();
    let end = url[at..].find('&').map_or(url.len(), |it| at + it);
    let last = &url[end - 1..end];
    let flipped = if last == "0" { "1" } else { "0" };
    format!("{}{flipped}{}", &url[..end - 1], &url[end..])
}

#[tokio::test]
async fn blobs_live_under_the_prefix_in_the_bucket() {
    let s3 = S3Server::start().await;
    let blobs = Blobs::s3(&s3.storage_url("farm/a")).expect("bucket opens");
    assert!(blobs.is_bucket());
    blobs.put("jobs/1/preview.png", b"png bytes".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(s3.file("farm/a/jobs/1/preview.png")).unwrap(), b"png bytes");
    assert_eq!(blobs.get_bytes("jobs/1/preview.png").await.unwrap().as_ref(), b"png bytes");
    assert_eq!(blobs.size("jobs/1/preview.png").await.unwrap(), Some(9));
    assert_eq!(blobs.size("jobs/1/other.png").await.unwrap(), None);

    // A streamed write larger than one multipart part goes up in parts.
    let big: Vec<u8> = (0..12 * 1024 * 1024).map(|it: u32| (it % 251) as u8).collect();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        big.chunks(1 << 20).map(|it| Ok(bytes::Bytes::copy_from_slice(it))).collect();
    let written = blobs.put_stream("uploads/big", futures::stream::iter(chunks), u64::MAX).await.unwrap();
    assert_eq!(written.size, big.len() as u64);
    assert_eq!(std::fs::read(s3.file("farm/a/uploads/big")).unwrap(), big);

    blobs.copy("uploads/big", "uploads/big-copy").await.unwrap();
    assert_eq!(blobs.size("uploads/big-copy").await.unwrap(), Some(big.len() as u64));
}

#[tokio::test]
async fn a_presigned_put_then_get_goes_straight_to_the_bucket() {
    let s3 = S3Server::start().await;
    let blobs = Blobs::s3(&s3.storage_url("")).unwrap();
    let http = reqwest::Client::new();
    let ttl = Duration::from_secs(600);
    let put = blobs.presigned_url(Presign::Put, "uploads/scene", ttl).await.unwrap().expect("a bucket presigns");
    assert!(put.starts_with(&format!("{}/{BUCKET}/uploads/scene?", s3.endpoint)), "{put}");
    let response = http.put(&put).body(b"scene bytes".to_vec()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());
    assert_eq!(std::fs::read(s3.file("uploads/scene")).unwrap(), b"scene bytes");

    let get = blobs.presigned_url_now(Presign::Get, "uploads/scene", ttl).expect("static keys sign at once");
    let response = http.get(&get).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"scene bytes");
}

#[tokio::test]
async fn a_tampered_or_misused_presigned_url_gets_403() {
    let s3 = S3Server::start().await;
    let blobs = Blobs::s3(&s3.storage_url("")).unwrap();
    blobs.put("jobs/1/frames/0001.png", b"frame".to_vec()).await.unwrap();
    let http = reqwest::Client::new();
    let ttl = Duration::from_secs(600);
    let get = blobs.presigned_url(Presign::Get, "jobs/1/frames/0001.png", ttl).await.unwrap().unwrap();
    assert_eq!(http.get(&get).send().await.unwrap().status(), StatusCode::OK);

    assert_eq!(http.get(tamper(&get)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let other_key = get.replace("0001.png", "0002.png");
    assert_eq!(http.get(&other_key).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let put_with_get_url = http.put(&get).body(b"overwritten".to_vec()).send().await.unwrap();
    assert_eq!(put_with_get_url.status(), StatusCode::FORBIDDEN);
    let unsigned = get.split_once('?').unwrap().0;
    assert_eq!(http.get(unsigned).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(std::fs::read(s3.file("jobs/1/frames/0001.png")).unwrap(), b"frame", "nothing changed");

    let wrong_keys = Blobs::s3(&s3.storage_url("").replace(SECRET_KEY, "WRONGSECRET")).unwrap();
    let forged = wrong_keys.presigned_url(Presign::Get, "jobs/1/frames/0001.png", ttl).await.unwrap().unwrap();
    assert_eq!(http.get(&forged).send().await.unwrap().status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_expired_presigned_url_gets_403() {
    let s3 = S3Server::start().await;
    let blobs = Blobs::s3(&s3.storage_url("")).unwrap();
    blobs.put("jobs/1/frames.zip", b"zip".to_vec()).await.unwrap();
    let http = reqwest::Client::new();
    // SigV4 expiries are whole seconds, one at least.
    let get = blobs.presigned_url(Presign::Get, "jobs/1/frames.zip", Duration::from_secs(1)).await.unwrap().unwrap();
    let first = http.get(&get).send().await.unwrap().status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    let status = loop {
        interval.tick().await;
        let status = http.get(&get).send().await.unwrap().status();
        if status != StatusCode::OK || tokio::time::Instant::now() > deadline {
            break status;
        }
    };
    assert_eq!(first, StatusCode::OK, "valid before it expires");
    assert_eq!(status, StatusCode::FORBIDDEN, "refused once expired");
}

#[tokio::test]
async fn s3_storage_needs_static_keys_and_known_options() {
    let s3 = S3Server::start().await;
    let without_secret = format!("s3://{BUCKET}?endpoint={}&access_key_id={ACCESS_KEY}", s3.endpoint);
    // The test process has no AWS_* keys of its own (see dev/test); if a developer's shell
    // has them, this case proves nothing, so it is only checked without them.
    if std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none() {
        let error = format!("{:#}", Blobs::s3(&without_secret).unwrap_err());
        assert!(error.contains("AWS_SECRET_ACCESS_KEY"), "{error}");
    }
    let error = format!("{:#}", Blobs::s3(&format!("{}&colour=blue", s3.storage_url(""))).unwrap_err());
    assert!(error.contains("colour") && !error.contains(SECRET_KEY), "{error}");
    let error = format!("{:#}", Blobs::s3("s3://").unwrap_err());
    assert!(error.contains("bucket"), "{error}");
}

/// A server whose storage is the bucket, and an API key for it.
async fn spawn_server(s3: &S3Server, data: &Path) -> (orchard_server::Server, String) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.to_path_buf());
    config.storage = Some(s3.storage_url("orchard"));
    let server = orchard_server::start(config).await.expect("server starts");
    let (key, _) = orchard_server::keys::create_key(server.store().as_ref(), "studio", "alice").await.unwrap();
    (server, key)
}

#[tokio::test]
async fn with_a_bucket_clients_upload_and_download_without_the_server_in_between() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let (server, key) = spawn_server(&s3, data.path()).await;
    let api = |path: &str| format!("{}/api/external/v1{path}", server.url());
    let http = reqwest::Client::new();

    let created: Value = http
        .post(api("/uploads"))
        .bearer_auth(&key)
        .json(&json!({"fileName": "shot.blend", "fileType": "blend"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slug = created["slug"].as_str().unwrap().to_string();
    let upload_url = created["uploadUrl"].as_str().unwrap();
    assert!(upload_url.starts_with(&format!("{}/{BUCKET}/orchard/uploads/{slug}?", s3.endpoint)), "{upload_url}");
    assert!(upload_url.contains("X-Amz-Signature="));

    let scene = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend")).unwrap();
    let tampered = http.put(tamper(upload_url)).body(scene.clone()).send().await.unwrap();
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
    let put = http.put(upload_url).body(scene.clone()).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(std::fs::read(s3.file(&format!("orchard/uploads/{slug}"))).unwrap(), scene);

    // The server saw no bytes; a job made from the slug finds them in the bucket.
    let state = &server.state;
    let upload = state.store.get_upload(&slug).await.unwrap().unwrap();
    assert_eq!(upload.uploaded_at, None);
    let received = orchard_server::received_upload(state, upload).await.unwrap();
    assert_eq!(received.size, Some(scene.len() as i64));
    assert!(received.object_key.starts_with(&format!("scenes/{slug}/")), "{}", received.object_key);
    assert_eq!(std::fs::read(s3.file(&format!("orchard/{}", received.object_key))).unwrap(), scene);
    let stored = state.store.get_upload(&slug).await.unwrap().unwrap();
    assert_eq!((stored.uploaded_at, stored.size), (received.uploaded_at, Some(scene.len() as i64)));

    // A later PUT to the same URL cannot change the job's copy.
    http.put(upload_url).body(b"something else".to_vec()).send().await.unwrap();
    assert_eq!(std::fs::read(s3.file(&format!("orchard/{}", received.object_key))).unwrap(), scene);

    // Files are served by presigned GETs at the bucket.
    let base = server.url();
    state.blobs.put("jobs/x/preview.png", b"preview".to_vec()).await.unwrap();
    let url = orchard_server::signed_file_url(state, &base, "jobs/x/preview.png", 0);
    assert!(url.starts_with(&format!("{}/{BUCKET}/orchard/jobs/x/preview.png?", s3.endpoint)), "{url}");
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"preview");
    assert_eq!(http.get(tamper(&url)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    server.shutdown().await;
}

#[tokio::test]
async fn a_big_file_goes_to_the_bucket_in_presigned_parts() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let (server, key) = spawn_server(&s3, data.path()).await;
    let api = |path: &str| format!("{}/api/external/v1{path}", server.url());
    let http = reqwest::Client::new();
    let created: Value = http
        .post(api("/uploads"))
        .bearer_auth(&key)
        .json(&json!({"fileName": "big.zip", "fileType": "zip", "parts": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slug = created["slug"].as_str().unwrap().to_string();
    let upload_id = created["uploadId"].as_str().expect("the bucket's upload id").to_string();
    let urls: Vec<&str> = created["partUrls"].as_array().unwrap().iter().map(|it| it.as_str().unwrap()).collect();
    assert_eq!(urls.len(), 2);
    for (number, url) in urls.iter().enumerate() {
        assert!(url.starts_with(&format!("{}/{BUCKET}/orchard/uploads/{slug}?", s3.endpoint)), "{url}");
        assert!(url.contains(&format!("partNumber={}", number + 1)) && url.contains("X-Amz-Signature="), "{url}");
    }
    // Every part but the last is at least 5 MiB, as S3 requires.
    let first: Vec<u8> = (0..5 * 1024 * 1024).map(|it| (it % 251) as u8).collect();
    let last = b"the end".to_vec();
    let tampered = http.put(tamper(urls[0])).body(first.clone()).send().await.unwrap();
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
    let mut etags = Vec::new();
    for (url, body) in urls.iter().zip([first.clone(), last.clone()]) {
        let put = http.put(*url).body(body).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        etags.push(put.headers()["etag"].to_str().unwrap().to_string());
    }
    let complete = |parts: Value, upload_id: &str| {
        http.post(api(&format!("/uploads/{slug}/complete")))
            .bearer_auth(&key)
            .json(&json!({"uploadId": upload_id, "parts": parts}))
            .send()
    };
    // The bucket's refusal is the client's 400. (s3s-fs does not compare ETags, as S3 does;
    // an unknown upload id it refuses.)
    let every = json!([{"partNumber": 1, "etag": etags[0]}, {"partNumber": 2, "etag": etags[1]}]);
    let refused = complete(every, "no-such-upload").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "parts_refused", "{body}");

    let only_first = complete(json!([{"partNumber": 1, "etag": etags[0]}]), &upload_id).await.unwrap();
    assert_eq!(only_first.status(), StatusCode::BAD_REQUEST, "every declared part must be listed");
    let parts = json!([{"partNumber": 1, "etag": etags[0]}, {"partNumber": 2, "etag": etags[1]}]);
    let done = complete(parts, &upload_id).await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["size"], (first.len() + last.len()) as u64);
    let stored = std::fs::read(s3.file(&format!("orchard/uploads/{slug}"))).unwrap();
    assert_eq!(stored, [first, last].concat(), "the bucket assembled the parts in order");
    let upload = server.store().get_upload(&slug).await.unwrap().unwrap();
    assert!(upload.uploaded_at.is_some(), "completing records the arrival");
    server.shutdown().await;
}

#[tokio::test]
async fn a_bucket_upload_that_never_arrived_stays_unreceived() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let (server, key) = spawn_server(&s3, data.path()).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/external/v1/uploads", server.url()))
        .bearer_auth(&key)
        .json(&json!({"fileName": "shot.blend", "fileType": "blend"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slug = created["slug"].as_str().unwrap();
    let upload = server.store().get_upload(slug).await.unwrap().unwrap();
    let received = orchard_server::received_upload(&server.state, upload.clone()).await.unwrap();
    assert_eq!((received.uploaded_at, received.object_key), (None, upload.object_key));
    server.shutdown().await;
}

/// A server on `s3` whose job (the example scene, validated) renders with `config`: the
/// server, a client, and the job's id.
async fn rendering_on_the_bucket(
    s3: &S3Server,
    data: &Path,
    config: Value,
) -> (orchard_server::Server, orchard_api::Client, String) {
    let (server, key) = spawn_server(s3, data).await;
    let client = orchard_api::Client::new(&server.url(), &key);
    let scene_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    let upload = client.create_upload("cube.blend", "blend").await.unwrap();
    client.put_file(&upload.upload_url, &scene_path, |_| {}).await.unwrap();
    let job = client.create_job(&upload.slug).await.unwrap();
    assert_eq!(client.validate(&job.id).await.unwrap().status, "validated");
    client.render(&job.id, config).await.unwrap();
    (server, client, job.id)
}

/// A worker `w1` registered with `server` over HTTP, making videos when `ffmpeg` is given.
async fn worker_of(server: &orchard_server::Server, ffmpeg: Option<&str>) -> orchard_worker::remote::HttpCoordinator {
    use orchard_api::{BlenderBuild, RegisterRequest, WorkerCapabilities};
    let token = orchard_server::keys::create_worker_token(server.store().as_ref()).await.unwrap();
    let build = BlenderBuild { version: "3.4.1".into(), oidn: false, eevee: false, gpu_backends: vec![] };
    let capabilities = WorkerCapabilities {
        blenders: vec![build],
        cpu_threads: 1,
        ram_gib: 8.0,
        tags: vec![],
        ffmpeg: ffmpeg.map(str::to_string),
    };
    let request = RegisterRequest {
        worker_id: "w1".into(),
        name: "w1".into(),
        capabilities,
        speed_factor: 1.0,
        speed_spread: None,
    };
    orchard_worker::remote::HttpCoordinator::register(&server.url(), &token, &request).await.unwrap().0
}

#[tokio::test]
async fn a_worker_fetches_the_scene_from_and_uploads_frames_to_the_bucket() {
    use orchard_worker::{Coordinator, Delivery, LeaseStatus, RenderedFrame};

    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1"], "resolution": [64, 48],
        "resolutionPercentage": 100, "denoisingEnabled": false});
    let (server, client, job_id) = rendering_on_the_bucket(&s3, data.path(), config).await;
    let scene_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");

    let worker = worker_of(&server, None).await;
    let assignment = worker.claim("w1", None).await.unwrap().expect("a task");
    let scene = data.path().join("scene.blend");
    worker.fetch_scene(&assignment, &scene).await.unwrap();
    assert_eq!(std::fs::read(&scene).unwrap(), std::fs::read(&scene_path).unwrap());

    let frame = data.path().join("frame_0001.png");
    image::RgbaImage::new(64, 48).save(&frame).unwrap();
    let rendered =
        RenderedFrame { frame: 1, path: frame.clone(), file_name: "frame_0001.png".into(), view: String::new() };
    // The task came with a presigned bucket URL for its frame. Spoil its signature: the bucket
    // refuses it, and the worker asks for new URLs instead of failing the task.
    let mut spoiled = assignment.clone();
    let url = spoiled.output_urls.get_mut("frame_0001.png").expect("an upload URL with the task");
    assert!(url.starts_with(&s3.endpoint), "{url}");
    *url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let delivery = Delivery {
        frames: vec![rendered],
        render_seconds: 0.5,
        blender_version: "4.5.3".into(),
        log: None,
        composites: vec![],
        blank: vec![],
        non_finite: vec![],
    };
    let completed = worker.complete(&spoiled, delivery, None).await.unwrap();
    assert!(matches!(completed, (LeaseStatus::Held, None)), "{completed:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client.get_job(&job_id).await.unwrap().status != "completed" {
        assert!(std::time::Instant::now() < deadline, "the job did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let downloads = client.downloads(&job_id).await.unwrap();
    assert!(downloads.frames[0].starts_with(&s3.endpoint), "{}", downloads.frames[0]);
    let fetched = reqwest::get(&downloads.frames[0]).await.unwrap().bytes().await.unwrap();
    assert_eq!(fetched.as_ref(), std::fs::read(&frame).unwrap());
    server.shutdown().await;
}

#[tokio::test]
async fn a_video_is_made_from_frames_in_the_bucket_and_stored_there() {
    use orchard_api::VideoInfo;
    use orchard_worker::{Coordinator, Delivery, LeaseStatus, RenderedFrame};

    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let config = json!({"colorManagementPreset": "default", "frameRanges": ["1"], "video": true});
    let (server, client, job_id) = rendering_on_the_bucket(&s3, data.path(), config).await;
    let worker = worker_of(&server, Some("5.1")).await;
    let assignment = worker.claim("w1", None).await.unwrap().expect("a task");
    let frame = data.path().join("frame_0001.png");
    image::RgbaImage::new(64, 48).save(&frame).unwrap();
    let rendered =
        RenderedFrame { frame: 1, path: frame.clone(), file_name: "frame_0001.png".into(), view: String::new() };
    let delivery = Delivery {
        frames: vec![rendered],
        render_seconds: 0.5,
        blender_version: "3.4.1".into(),
        log: None,
        composites: vec![],
        blank: vec![],
        non_finite: vec![],
    };
    assert!(matches!(worker.complete(&assignment, delivery, None).await.unwrap(), (LeaseStatus::Held, None)));

    // The video's task: its frame and its upload are presigned at the bucket.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let packaging = loop {
        if let Some(task) = worker.claim("w1", None).await.unwrap() {
            break task;
        }
        assert!(std::time::Instant::now() < deadline, "no packaging task");
    };
    let made = packaging.packaging.clone().expect("the video's task");
    assert!(made.frames[0].url.starts_with(&s3.endpoint), "{}", made.frames[0].url);
    assert!(made.upload_url.starts_with(&s3.endpoint), "{}", made.upload_url);
    let fetched = data.path().join("fetched.png");
    worker.download(&made.frames[0].url, &fetched).await.unwrap();
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&frame).unwrap());
    let video = data.path().join("frame.mp4");
    std::fs::write(&video, b"an mp4's bytes, as far as storage cares").unwrap();
    let info = VideoInfo {
        file_name: made.file_name.clone(),
        codec: "h264".into(),
        width: 64,
        height: 48,
        fps: 24.0,
        frames: 1,
        duration_seconds: 0.042,
        audio: false,
        size: std::fs::metadata(&video).unwrap().len(),
    };
    assert_eq!(worker.deliver_video(&packaging, &video, info).await.unwrap(), LeaseStatus::Held);

    while client.get_job(&job_id).await.unwrap().status != "completed" {
        assert!(std::time::Instant::now() < deadline, "the job did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let downloads = client.downloads(&job_id).await.unwrap();
    let url = downloads.transforms.video["url"].as_str().expect("the video").to_string();
    assert!(url.starts_with(&s3.endpoint), "{url}");
    let fetched = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(fetched.as_ref(), std::fs::read(&video).unwrap());
    // The frames' zip is made by the server as it downloads, from the bucket.
    let zip = reqwest::get(&downloads.transforms.frames_zip).await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut inside = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("frame_0001.png").unwrap(), &mut inside).unwrap();
    assert_eq!(inside, std::fs::read(&frame).unwrap());
    server.shutdown().await;
}
