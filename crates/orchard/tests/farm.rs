//! A farm of separate processes: `orchard serve` and `orchard worker`s over HTTP, with real
//! Blender. Workers die, servers restart, Blender fails; every frame is stored exactly once.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use orchard_api::Client;
use serde_json::json;

/// `orchard serve` on a fixed port and data directory, so that it can be restarted.
struct Serve {
    child: Child,
    port: u16,
    lease_ttl: u64,
    data: tempfile::TempDir,
    key: String,
    token: String,
}

/// Runs an `orchard` admin command on `data` and returns its last line (the secret it made).
fn admin(args: &[&str], data: &Path) -> String {
    let output = orchard().args(args).arg("--data").arg(data).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().last().unwrap().to_string()
}

impl Serve {
    fn start(lease_ttl: u64) -> Serve {
        let data = tempfile::tempdir().unwrap();
        // Secrets first, while the database is the CLI's alone.
        let key = admin(&["keys", "create", "--workspace", "farm"], data.path());
        let token = admin(&["workers", "token", "create"], data.path());
        let port = free_port();
        let child = spawn_serve(data.path(), port, lease_ttl);
        let serve = Serve { child, port, lease_ttl, data, key, token };
        serve.wait_ready();
        serve
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("orchard serve did not start");
    }

    /// Kills the server outright and starts it again on the same port and data.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn_serve(self.data.path(), self.port, self.lease_ttl);
        self.wait_ready();
    }

    fn client(&self) -> Client {
        Client::new(&self.url(), &self.key)
    }

    fn worker(&self, extra: &[&str]) -> Worker {
        let data = tempfile::tempdir().unwrap();
        let child = orchard()
            .args(["worker", "--server", &self.url(), "--token", &self.token, "--threads", "1", "--speed-factor", "1"])
            .arg("--data")
            .arg(data.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Worker { child, data }
    }
}

fn spawn_serve(data: &Path, port: u16, lease_ttl: u64) -> Child {
    orchard()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--lease-ttl", &lease_ttl.to_string()])
        // Receivers in these tests are on this machine; a retry every second or so.
        .args(["--webhooks-allow-private", "--webhook-first-retry", "1", "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Worker {
    child: Child,
    data: tempfile::TempDir,
}

impl Worker {
    fn id(&self) -> Option<String> {
        std::fs::read_to_string(self.data.path().join("worker-id")).ok().map(|it| it.trim().to_string())
    }

    fn blenders(&self) -> Vec<u32> {
        blender_processes(self.data.path())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn small(frames: &str) -> serde_json::Value {
    json!({
        "colorManagementPreset": "default", "frameRanges": [frames], "resolution": [64, 48],
        "resolutionPercentage": 100, "sampleCount": 2, "denoisingEnabled": false
    })
}

/// Frames that take a few seconds each on one thread.
fn slow(frames: &str) -> serde_json::Value {
    json!({
        "colorManagementPreset": "default", "frameRanges": [frames], "resolution": [160, 120],
        "resolutionPercentage": 100, "sampleCount": 400, "denoisingEnabled": false
    })
}

async fn assert_frames_once(client: &Client, id: &str, expected: &[&str]) {
    let downloads = client.downloads(id).await.unwrap();
    let names: Vec<_> = downloads.frame_outputs.iter().map(|it| it.file_name.as_str()).collect();
    assert_eq!(names, expected);
    for url in &downloads.frames {
        let image = image::load_from_memory(&fetch(url).await).expect("a frame decodes");
        assert_eq!((image.width(), image.height()), (64, 48));
    }
}

#[tokio::test]
async fn two_workers_render_one_job_and_each_frame_is_stored_once() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    let a = serve.worker(&[]);
    let b = serve.worker(&[]);
    let id = submit(&client, small("1-6")).await;
    let job = finished(&client, &id, Duration::from_secs(180)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    assert_frames_once(
        &client,
        &id,
        &["frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png", "frame_0005.png", "frame_0006.png"],
    )
    .await;
    let tasks = client.tasks(&id).await.unwrap();
    assert!(tasks.iter().all(|it| it.status == "completed" && it.attempt == 1), "{tasks:?}");
    let ids = [a.id(), b.id()];
    assert!(tasks.iter().all(|it| ids.contains(&it.worker_id)), "{tasks:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_task_loses_it_to_another_when_the_lease_expires() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(3);
    let client = serve.client();
    let mut doomed = serve.worker(&[]);
    let id = submit(&client, slow("1-2")).await;
    eventually("the first worker's Blender", Duration::from_secs(60), || async {
        (!doomed.blenders().is_empty()).then_some(())
    })
    .await;
    let orphans_of = doomed.data.path().to_path_buf();
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    // Blender dies with its worker (parent-death signal): nothing renders on unseen.
    eventually("the orphaned Blender to exit", Duration::from_secs(10), || async {
        blender_processes(&orphans_of).is_empty().then_some(())
    })
    .await;
    let _rescuer = serve.worker(&[]);
    let job = finished(&client, &id, Duration::from_secs(240)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    let names: Vec<_> = client.downloads(&id).await.unwrap().frame_outputs.into_iter().map(|it| it.file_name).collect();
    assert_eq!(names, ["frame_0001.png", "frame_0002.png"]);
    let tasks = client.tasks(&id).await.unwrap();
    assert!(tasks.iter().any(|it| it.attempt == 2), "a task was claimed again: {tasks:?}");
}

#[tokio::test]
async fn a_server_restarted_mid_render_loses_and_duplicates_nothing() {
    if !blender_available() {
        return;
    }
    let mut serve = Serve::start(30);
    let client = serve.client();
    let _worker = serve.worker(&[]);
    let id = submit(&client, slow("1-3")).await;
    eventually("rendering to start", Duration::from_secs(60), || async {
        (client.get_job(&id).await.ok()?.status == "rendering").then_some(())
    })
    .await;
    serve.restart();
    let job = finished(&client, &id, Duration::from_secs(300)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    let names: Vec<_> = client.downloads(&id).await.unwrap().frame_outputs.into_iter().map(|it| it.file_name).collect();
    assert_eq!(names, ["frame_0001.png", "frame_0002.png", "frame_0003.png"]);
}

#[tokio::test]
async fn a_cancel_reaches_a_remote_worker_and_stops_blender() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    let worker = serve.worker(&[]);
    let id = submit(
        &client,
        json!({"colorManagementPreset": "default", "frameRanges": ["1"], "sampleCount": 100000,
        "resolution": [640, 480], "denoisingEnabled": false}),
    )
    .await;
    eventually("Blender to render", Duration::from_secs(60), || async {
        (!worker.blenders().is_empty()).then_some(())
    })
    .await;
    assert_eq!(client.cancel(&id).await.unwrap().status, "canceled");
    eventually("Blender to stop", Duration::from_secs(5), || async { worker.blenders().is_empty().then_some(()) })
        .await;
}

#[tokio::test]
async fn a_task_failing_everywhere_fails_the_job_with_the_frame_and_the_log() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    let _a = serve.worker(&[]);
    let _b = serve.worker(&[]);
    // Debian's Blender ships no ACES view transform: the driver refuses, Blender exits 3.
    let mut config = small("1");
    config["colorManagementPreset"] = json!("aces");
    let id = submit(&client, config).await;
    let job = finished(&client, &id, Duration::from_secs(120)).await;
    assert_eq!(job.status, "failed");
    let reason = job.failed_reason.unwrap();
    assert_eq!((reason.name.as_str(), reason.kind.as_str()), ("task_failed", "render"));
    let message = reason.message.unwrap();
    assert!(message.contains("frames 1"), "{message}");
    assert!(message.contains("ACES"), "{message}");
    assert!(message.contains("Blender log"), "{message}");
    let tasks = client.tasks(&id).await.unwrap();
    // Both workers tried and were blocklisted after three failures each.
    assert!(tasks[0].failures >= 6, "{tasks:?}");
    // Each attempt kept what Blender printed.
    for attempt in [1, 2] {
        let log = client.task_log(&id, &tasks[0].id, Some(attempt)).await.unwrap().expect("the attempt's log");
        assert_eq!(log.attempt, attempt);
        assert!(log.text.contains("Read blend"), "{}", log.text);
    }
}

#[tokio::test]
async fn a_hung_or_crashed_blender_is_detected() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    let endless = || {
        json!({"colorManagementPreset": "default", "frameRanges": ["1"], "sampleCount": 100000,
            "resolution": [640, 480], "denoisingEnabled": false})
    };
    let impatient = serve.worker(&["--hang-timeout", "3"]);
    let id = submit(&client, endless()).await;
    let hung = eventually("a hang to be reported", Duration::from_secs(60), || async {
        client.tasks(&id).await.ok()?[0].last_error.clone()
    })
    .await;
    assert!(hung.contains("Blender hung: no frame finished for 3 s"), "{hung}");
    client.cancel(&id).await.unwrap();
    drop(impatient);

    let patient = serve.worker(&[]);
    let id = submit(&client, endless()).await;
    let pid =
        eventually("Blender to render", Duration::from_secs(60), || async { patient.blenders().first().copied() })
            .await;
    signal(pid, Signal::SIGSEGV);
    let crashed = eventually("the crash to be reported", Duration::from_secs(60), || async {
        client.tasks(&id).await.ok()?[0].last_error.clone()
    })
    .await;
    assert!(crashed.contains("Blender crashed (killed by a signal)"), "{crashed}");
}

#[tokio::test]
async fn jobs_go_only_to_workers_that_can_render_them() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    // Both offer only Debian's Blender 3.4 (built without OpenImageDenoise).
    let small_box = serve.worker(&["--ram-gib", "2", "--blender", "/usr/bin/blender"]);
    let big_box = serve.worker(&["--ram-gib", "64", "--blender", "/usr/bin/blender"]);
    let mut config = small("1-4");
    config["minimumRam"] = json!(16);
    let id = submit(&client, config).await;
    let job = finished(&client, &id, Duration::from_secs(180)).await;
    assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
    let tasks = client.tasks(&id).await.unwrap();
    assert!(tasks.iter().all(|it| it.worker_id == big_box.id()), "{tasks:?} (small: {:?})", small_box.id());

    // Nobody has 1000 GiB, and Debian's Blender has no OpenImageDenoise: the job says so.
    let mut config = small("1");
    config["minimumRam"] = json!(1000);
    let id = submit(&client, config).await;
    let reason = eventually("a waiting reason", Duration::from_secs(30), || async {
        client.get_job(&id).await.ok()?.waiting_reason
    })
    .await;
    assert!(reason.contains("RAM"), "{reason}");
    let mut config = small("1");
    config["denoisingEnabled"] = json!(true);
    let id = submit(&client, config).await;
    let reason = eventually("a waiting reason", Duration::from_secs(30), || async {
        client.get_job(&id).await.ok()?.waiting_reason
    })
    .await;
    assert!(reason.contains("OpenImageDenoise"), "{reason}");
    assert_eq!(client.get_job(&id).await.unwrap().status, "booting");
}

#[tokio::test]
async fn a_warm_session_renders_every_task_of_a_job_in_one_blender() {
    if !blender_available() {
        return;
    }
    for (flags, warm) in [(&[][..], true), (&["--no-warm-sessions"][..], false)] {
        let serve = Serve::start(10);
        let client = serve.client();
        let worker = serve.worker(flags);
        // One frame per task, fixed: four tasks, whatever the measured frame time suggests.
        let mut config = small("1-4");
        config["chunkSize"] = json!(1);
        let id = submit(&client, config).await;
        let mut seen = std::collections::BTreeSet::new();
        let job = eventually("the job to finish", Duration::from_secs(180), || {
            seen.extend(worker.blenders());
            let client = &client;
            let id = &id;
            async move {
                let job = client.get_job(id).await.ok()?;
                matches!(job.status.as_str(), "completed" | "failed").then_some(job)
            }
        })
        .await;
        assert_eq!(job.status, "completed", "{:?}", job.failed_reason);
        let tasks = client.tasks(&id).await.unwrap();
        assert_eq!(tasks.len(), 4);
        // A task tried again (its lease lost on a machine too loaded to beat in time) starts
        // a Blender of its own: one launch per attempt without warm sessions, one for the
        // whole job plus one per retry with them.
        let attempts: usize = tasks.iter().map(|it| it.attempt.max(1) as usize).sum();
        let expected_launches = if warm { 1 + (attempts - tasks.len()) } else { attempts };
        assert_eq!(seen.len(), expected_launches, "Blender launches with {flags:?}: {seen:?}, {attempts} attempts");
    }
}

/// The `bpy` interpreter to test with (`orchard blender install 4.5` prints it), if any.
fn bpy_python() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("ORCHARD_TEST_BPY").map(std::path::PathBuf::from);
    if path.is_none() {
        assert!(
            std::env::var("ORCHARD_REQUIRE_BPY").is_err(),
            "ORCHARD_REQUIRE_BPY is set but ORCHARD_TEST_BPY is not"
        );
        eprintln!("skipped: ORCHARD_TEST_BPY is not set");
    }
    path
}

#[tokio::test]
async fn a_file_goes_to_the_worker_whose_blender_can_open_and_denoise_it() {
    if !blender_available() {
        return;
    }
    let Some(bpy) = bpy_python() else { return };
    // A Blender 4.5 file that denoises with OpenImageDenoise: Debian's 3.4 can do neither.
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("shot45.blend");
    let status = std::process::Command::new(&bpy)
        .arg("-c")
        .arg(
            "import bpy, sys; s = bpy.context.scene; s.render.engine = 'CYCLES'; s.cycles.samples = 2; \
             s.cycles.use_denoising = True; s.render.resolution_x = 64; s.render.resolution_y = 48; \
             s.render.resolution_percentage = 100; s.frame_start = 1; s.frame_end = 2; \
             bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])",
        )
        .arg(&scene)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let serve = Serve::start(10);
    let client = serve.client();
    let debian = serve.worker(&["--blender", "/usr/bin/blender"]);
    let module = serve.worker(&["--blender", bpy.to_str().unwrap()]);
    let id = submit_file(&client, &scene, json!({"colorManagementPreset": "default"})).await;
    let job = client.get_job(&id).await.unwrap();
    let analysis = job.analysis.as_ref().expect("validated: analysed");
    assert_eq!(analysis.blender_version, "4.5", "{analysis:?}");
    let done = finished(&client, &job.id, Duration::from_secs(240)).await;
    assert_eq!(done.status, "completed", "{:?}", done.failed_reason);
    let tasks = client.tasks(&job.id).await.unwrap();
    assert!(tasks.iter().all(|it| it.worker_id == module.id()), "{tasks:?} (debian: {:?})", debian.id());
    let names: Vec<_> =
        client.downloads(&job.id).await.unwrap().frame_outputs.into_iter().map(|it| it.file_name).collect();
    // This scene's output path names a folder: frames are numbered only.
    assert_eq!(names, ["0001.png", "0002.png"]);
}

#[tokio::test]
async fn missing_or_undecodable_outputs_fail_the_attempt() {
    if !blender_available() {
        return;
    }
    let serve = Serve::start(10);
    let client = serve.client();
    let dir = tempfile::tempdir().unwrap();
    // Real Blender renders; then the disk "loses" or damages what it wrote, before the worker
    // checks it (without warm sessions the worker checks once Blender has exited).
    for (damage, expected) in [("truncate -s 100", "does not decode"), ("rm -f", "no output file")] {
        let wrapper = dir.path().join(format!("damaging-blender-{}", damage.len()));
        let blender = orchard_worker::blender::find(None).unwrap();
        let script = format!(
            "#!/bin/sh\n{} \"$@\"\nstatus=$?\nfor last; do :; done\nfor f in \"$(dirname \"$last\")\"/out/*.png; do [ -e \"$f\" ] && {damage} \"$f\"; done\nexit $status\n",
            blender.display()
        );
        std::fs::write(&wrapper, script).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&wrapper).status().unwrap();
        let worker = serve.worker(&["--no-warm-sessions", "--blender", wrapper.to_str().unwrap()]);
        let id = submit(&client, small("1")).await;
        let error = eventually("the damaged output to be reported", Duration::from_secs(90), || async {
            client.tasks(&id).await.ok()?[0].last_error.clone()
        })
        .await;
        assert!(error.contains("frame 1") && error.contains(expected), "{damage}: {error}");
        client.cancel(&id).await.unwrap();
        drop(worker);
    }
}

#[tokio::test]
async fn a_border_render_cropped_to_its_border_completes() {
    if !blender_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("border.blend");
    let expr = format!(
        "import bpy; s = bpy.context.scene; s.render.engine = 'CYCLES'; s.cycles.samples = 2; \
         s.cycles.use_denoising = False; s.render.resolution_x = 64; s.render.resolution_y = 48; \
         s.render.resolution_percentage = 100; s.render.use_border = True; s.render.use_crop_to_border = True; \
         s.render.border_min_x = 0.0; s.render.border_max_x = 0.5; s.render.border_min_y = 0.0; \
         s.render.border_max_y = 0.5; bpy.ops.wm.save_as_mainfile(filepath={:?})",
        scene.display().to_string()
    );
    let blender = orchard_worker::blender::find(None).unwrap();
    let status = std::process::Command::new(blender)
        .args(["-b", "--factory-startup", "--python-expr", &expr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let serve = Serve::start(10);
    let client = serve.client();
    let _worker = serve.worker(&["--blender", "/usr/bin/blender"]);
    let id = submit_file(&client, &scene, json!({"colorManagementPreset": "default", "frameRanges": ["1"]})).await;
    let job = client.get_job(&id).await.unwrap();
    let done = finished(&client, &job.id, Duration::from_secs(120)).await;
    assert_eq!(done.status, "completed", "{:?}", done.failed_reason);
    let frame = fetch(&client.downloads(&job.id).await.unwrap().frames[0]).await;
    let image = image::load_from_memory(&frame).unwrap();
    assert!(image.width() < 64 && image.height() < 48, "cropped: {}×{}", image.width(), image.height());
}

/// POSTs a receiver got: (lowercased head, body).
type Posts = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on `port`: every POST's headers and body, answered 200.
async fn receive_on(port: u16, got: Posts) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        let got = got.clone();
        tokio::spawn(async move {
            let mut data = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let Ok(n @ 1..) = socket.read(&mut buffer).await else { return };
                data.extend_from_slice(&buffer[..n]);
                let Some(end) = data.windows(4).position(|it| it == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|it| it.strip_prefix("content-length:"))
                    .and_then(|it| it.trim().parse().ok())
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    let body = data[end + 4..end + 4 + length].to_vec();
                    got.lock().unwrap().push((head, body));
                    let _ =
                        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    return;
                }
            }
        });
    }
}

#[tokio::test]
async fn a_webhook_survives_the_server_killed_before_it_was_sent() {
    if !blender_available() {
        return;
    }
    let mut serve = Serve::start(30);
    let client = serve.client();
    let port = free_port();
    // Added with the CLI, as an operator does; the secret is the last line.
    let (url, key) = (serve.url(), serve.key.clone());
    let cli = |args: &[&str]| {
        let output = orchard().args(args).args(["--server", &url, "--key", &key]).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let hook = format!("http://127.0.0.1:{port}/hook");
    let secret = cli(&["webhooks", "add", &hook, "--events", "onRenderComplete"]).lines().last().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = cli(&["webhooks", "list"]);
    assert!(listed.contains(&hook) && listed.contains("onRenderComplete"), "{listed}");
    let id = listed.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();

    // The receiver is down while the job completes; then the server is killed outright.
    let worker = serve.worker(&[]);
    let job = submit(&client, small("1")).await;
    assert_eq!(finished(&client, &job, Duration::from_secs(120)).await.status, "completed");
    drop(worker);
    serve.restart();
    let got = Posts::default();
    let receiver = tokio::spawn(receive_on(port, got.clone()));
    let (head, body) =
        eventually("the delivery", Duration::from_secs(60), || async { got.lock().unwrap().first().cloned() }).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((body["event"].as_str(), body["jobId"].as_str()), (Some("onRenderComplete"), Some(job.as_str())));
    let header = |name: &str| {
        head.lines().find_map(|it| it.strip_prefix(&format!("{name}:")).map(|it| it.trim().to_string())).unwrap()
    };
    let timestamp = header("x-renderjuice-timestamp");
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&got.lock().unwrap()[0].1);
    assert_eq!(header("x-renderjuice-signature"), hex::encode(mac.finalize().into_bytes()));
    // Once: nothing more arrives, and the log says delivered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(got.lock().unwrap().len(), 1);
    let log = cli(&["webhooks", "deliveries", &id]);
    assert!(log.contains("delivered") && log.contains("HTTP 200"), "{log}");
    let rotated = cli(&["webhooks", "rotate", &id]).lines().last().unwrap().to_string();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    cli(&["webhooks", "remove", &id]);
    assert!(!cli(&["webhooks", "list"]).contains(&hook));
    receiver.abort();
}
