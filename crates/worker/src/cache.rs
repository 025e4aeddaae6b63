//! The worker's scene cache (`scenes/{sha256}/`: the file, and a zip's extracted project),
//! kept within a size: the scenes used longest ago go first.
//!
//! A scene's folder is marked used (its `used` file's modification time) each time a task
//! takes it; when the cache grows past its size, whole folders go, least recently used first,
//! never the one in use.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Marks `dir` (a scene's folder) used now.
pub fn touch(dir: &Path) {
    let _ = std::fs::write(dir.join("used"), b"");
}

/// Removes the least recently used scene folders under `root` until what is left fits
/// `limit` bytes, keeping `keep`; returns the folders removed.
pub fn trim(root: &Path, limit: u64, keep: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut scenes: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|it| it.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|it| {
            let path = it.path();
            let used =
                std::fs::metadata(path.join("used")).and_then(|it| it.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
            (used, size_of(&path), path)
        })
        .collect();
    let mut total: u64 = scenes.iter().map(|it| it.1).sum();
    scenes.sort_by_key(|it| it.0);
    let mut removed = Vec::new();
    for (_, size, path) in scenes {
        if total <= limit {
            break;
        }
        if path == keep {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            total = total.saturating_sub(size);
            removed.push(path);
        }
    }
    removed
}

/// Bytes of the files under `dir`, recursively (links not followed).
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => total += entry.metadata().map(|it| it.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenes_used_longest_ago_go_first_and_never_the_one_in_use() {
        let root = tempfile::tempdir().unwrap();
        let scene = |name: &str, bytes: usize| {
            let dir = root.path().join(name);
            std::fs::create_dir_all(dir.join("project")).unwrap();
            std::fs::write(dir.join("project/scene.blend"), vec![0u8; bytes]).unwrap();
            touch(&dir);
            std::thread::sleep(std::time::Duration::from_millis(20));
            dir
        };
        let (old, middle, new) = (scene("a", 1000), scene("b", 1000), scene("c", 1000));
        touch(&old); // used again: now the most recent
        assert!(trim(root.path(), 5000, &new).is_empty(), "within the limit");
        assert_eq!(trim(root.path(), 2000, &new), std::slice::from_ref(&middle), "the least recently used");
        assert_eq!(trim(root.path(), 0, &new), std::slice::from_ref(&old), "never the one in use");
        assert!(new.exists() && !old.exists() && !middle.exists());
    }
}
