//! What a killed server leaves behind, removed when a server starts: its temporary folder
//! (analysis copies, frames being packaged) and, in local storage, the staging files of
//! uploads that never finished.
//!
//! Each server process keeps its temporary files in `DATA/tmp/{pid}`, so that a starting
//! server removes only the folders of processes that are gone, never one a live server
//! (another on the same data folder) is using.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::error::Chain;

/// A staging file not written to for this long belongs to an upload that died: a live one
/// writes continuously.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Removes the temporary folders of server processes that no longer run, and anything else
/// in `tmp` that is not such a folder.
pub(crate) fn clean_tmp(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let live = name.to_str().and_then(|it| it.parse::<i32>().ok()).is_some_and(process_runs);
        if live {
            continue;
        }
        let path = entry.path();
        let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match result {
            Ok(()) => removed += 1,
            Err(error) => warn!(path = %path.display(), error = %Chain(&error), "a leftover stays"),
        }
    }
    if removed > 0 {
        info!(removed, "removed what stopped servers left in the temporary folder");
    }
}

/// Whether process `pid` runs (or exists and is another user's).
fn process_runs(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// Removes the staging files (`name#suffix`) of local uploads that stopped being written.
pub(crate) fn clean_staging(storage: &Path) {
    let mut removed = 0;
    let mut stack = vec![storage.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let staging = entry.file_name().to_str().is_some_and(|it| it.contains('#'));
            let stale = entry
                .metadata()
                .and_then(|it| it.modified())
                .ok()
                .and_then(|it| SystemTime::now().duration_since(it).ok())
                .is_some_and(|age| age > STALE_STAGING);
            if staging && stale && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        info!(removed, "removed the staging files of uploads that never finished");
    }
}
