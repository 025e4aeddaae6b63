//! What a killed server left behind is gone when a server starts; what a live one uses stays.

use std::time::{Duration, SystemTime};

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn a_starting_server_removes_what_stopped_servers_left_and_nothing_in_use() {
    let data = tempfile::tempdir().unwrap();
    let tmp = data.path().join("tmp");
    // A process id above any the kernel hands out: a server that is gone.
    let gone = tmp.join("2147483000");
    std::fs::create_dir_all(gone.join(".tmpXYZ")).unwrap();
    std::fs::write(gone.join(".tmpXYZ/0001.png"), b"half a frame").unwrap();
    std::fs::write(tmp.join("stray"), b"from an older layout").unwrap();
    // This process runs: its folder stays (another server on the same data folder).
    let live = tmp.join(std::process::id().to_string());
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("in-use"), b"x").unwrap();
    // Staging files of local uploads: one stale (a killed PUT), one being written now.
    let uploads = data.path().join("storage/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let stale = uploads.join("abc#1");
    std::fs::write(&stale, b"partial").unwrap();
    let file = std::fs::File::options().write(true).open(&stale).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(2 * 3600)).unwrap();
    let fresh = uploads.join("def#2");
    std::fs::write(&fresh, b"streaming").unwrap();

    let root = data.path().to_path_buf();
    let _app = spawn_app_with(move |config| config.data_dir = root).await;
    assert!(!gone.exists(), "a stopped server's folder is removed");
    assert!(!tmp.join("stray").exists());
    assert!(live.join("in-use").exists(), "a live server's folder stays");
    // The walk of stored files runs beside the serving server; wait for it (the bound only
    // keeps a broken walk from hanging the test).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stale.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stale.exists(), "a stale staging file is removed");
    assert!(fresh.exists(), "an upload being written is left alone");
}
