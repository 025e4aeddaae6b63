//! Shared by the end-to-end suites: the binary, the example scene, Blender processes, polling.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orchard_api::Client;
use serde_json::Value;

pub(crate) fn orchard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orchard"))
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn example_scene() -> PathBuf {
    repo_root().join("examples/cube.blend")
}

/// Whether Blender is here; panics when it must be (`ORCHARD_REQUIRE_E2E=1`) and is not.
pub(crate) fn blender_available() -> bool {
    let found = orchard_worker::blender::find(None).is_ok();
    if !found {
        assert!(std::env::var("ORCHARD_REQUIRE_E2E").is_err(), "ORCHARD_REQUIRE_E2E is set but Blender is not on PATH");
        eprintln!("skipped: Blender is not on PATH");
    }
    found
}

/// Pids of rendering Blender processes (a scene on the command line, not a capability probe)
/// whose command line mentions `needle` (a data directory).
pub(crate) fn blender_processes(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let renders = cmdline.contains(".blend ") && (cmdline.contains("--python") || cmdline.contains("--scene"));
        if cmdline.contains("blender") && renders && cmdline.contains(&needle) && !cmdline.contains("orchard worker") {
            found.push(pid);
        }
    }
    found
}

/// Polls `check` every 100 ms until it returns Some, or panics naming `what` after `limit`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads the example scene, validates it and starts a render with `config`.
pub(crate) async fn submit(client: &Client, config: Value) -> String {
    submit_file(client, &example_scene(), config).await
}

/// Uploads the `.blend` at `scene`, validates it and starts a render with `config`.
pub(crate) async fn submit_file(client: &Client, scene: &Path, config: Value) -> String {
    let name = scene.file_name().unwrap().to_string_lossy().into_owned();
    let upload = client.create_upload(&name, "blend").await.unwrap();
    client.put_file(&upload.upload_url, scene, |_| {}).await.unwrap();
    let job = client.create_job(&upload.slug).await.unwrap();
    let job = client.validate(&job.id).await.unwrap();
    assert_eq!(job.status, "validated", "{:?}", job.failed_reason);
    let job = client.render(&job.id, config).await.unwrap();
    assert_eq!(job.status, "booting");
    job.id
}

/// Waits for a job to reach a terminal status and returns it.
pub(crate) async fn finished(client: &Client, id: &str, limit: Duration) -> orchard_api::Job {
    eventually("the job to finish", limit, || async {
        let job = client.get_job(id).await.ok()?;
        matches!(job.status.as_str(), "completed" | "failed" | "canceled").then_some(job)
    })
    .await
}

pub(crate) async fn fetch(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap().to_vec()
}

/// Sends `signal` to `pid`.
pub(crate) fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// A free local port (bound and released; the OS does not reuse it at once).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `orchard up` with one local worker in a temporary data directory, as a user
/// starts one; stopped (SIGTERM, then killed) when dropped.
pub(crate) struct LocalFarm {
    pub(crate) child: Child,
    /// Its URL, as it prints it (no trailing `/`).
    pub(crate) url: String,
    /// The admin key it made.
    pub(crate) key: String,
    pub(crate) data: tempfile::TempDir,
}

impl LocalFarm {
    pub(crate) fn start() -> LocalFarm {
        let data = tempfile::tempdir().unwrap();
        let mut child = orchard()
            .args(["up", "--listen", "127.0.0.1:0", "--workers", "1", "--data"])
            .arg(data.path())
            .env("ORCHARD_THREADS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("orchard up starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("orchard up prints its URL").unwrap();
        let url = first
            .split_whitespace()
            .find(|it| it.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let key = std::fs::read_to_string(data.path().join("admin.key")).expect("admin.key written").trim().to_string();
        assert!(key.starts_with("RJ-"));
        LocalFarm { child, url, key, data }
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(&self.url, &self.key)
    }

    /// Blender processes started for this farm (their command line names its data directory).
    pub(crate) fn blender_processes(&self) -> Vec<u32> {
        blender_processes(self.data.path())
    }

    /// A new workspace key (`orchard keys create`), for `workspace`.
    pub(crate) fn workspace_key(&self, workspace: &str) -> String {
        let output = orchard()
            .args(["keys", "create", "--workspace", workspace, "--user", "alice", "--data"])
            .arg(self.data.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let key = stdout.lines().last().unwrap().trim().to_string();
        assert!(key.starts_with("RJ-"), "{stdout}");
        key
    }
}

impl Drop for LocalFarm {
    fn drop(&mut self) {
        signal(self.child.id(), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
