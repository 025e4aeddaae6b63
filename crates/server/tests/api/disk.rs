//! A full disk is a 507 with the error body and a word in /healthz, and the server recovers
//! without a restart once space returns. Needs root (it mounts a small tmpfs for the data
//! folder); skipped otherwise unless ORCHARD_REQUIRE_ROOT_TESTS is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, example_scene, parts, spawn_app_with};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|it| it.success());
        mounted.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes `dir/filler` until the disk is full.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test]
async fn a_full_disk_is_507_and_the_server_recovers_when_space_returns() {
    let required = std::env::var_os("ORCHARD_REQUIRE_ROOT_TESTS").is_some();
    let Some(tmpfs) = Tmpfs::mount("8m") else {
        assert!(!required, "could not mount a tmpfs (root needed)");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = tmpfs.0.join("data");
    let root = data.clone();
    let app = spawn_app_with(move |config| config.data_dir = root).await;
    let slug = app.upload("shot.blend", "blend", example_scene()).await;
    fill(&tmpfs.0);

    let (status, body) = app.post("/uploads", json!({"fileName": "a.blend", "fileType": "blend"})).await;
    let upload_url = match status {
        StatusCode::OK => body["uploadUrl"].as_str().unwrap().to_string(),
        // On SQLite the metadata is on the full disk too.
        _ => {
            assert_eq!((status, error_code(&body)), (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage".into()));
            String::new()
        }
    };
    if !upload_url.is_empty() {
        let response = app.http.put(&upload_url).body(example_scene()).send().await.unwrap();
        let (status, body) = parts(response).await;
        assert_eq!((status, error_code(&body)), (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage".into()));
    }
    let (status, health) = parts(app.http.get(format!("{}/healthz", app.base)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["problems"][0].as_str().unwrap().contains("full"), "{health}");

    std::fs::remove_file(tmpfs.0.join("filler")).unwrap();
    let (status, health) = parts(app.http.get(format!("{}/healthz", app.base)).send().await.unwrap()).await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("ok")), "{health}");
    // Without a restart: uploads, jobs and validation work again.
    let (status, job) = app.post("/jobs", json!({"slug": slug})).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let id = app.created_job(example_scene()).await;
    let (status, job) = app.post_empty(&format!("/jobs/{id}/validate")).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("validated")), "{job}");
    drop(app);
    drop(tmpfs);
}
