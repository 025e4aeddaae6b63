//! Blender without a system package: PyPI's `bpy` wheels (Blender as a Python module) in
//! private virtual environments, one per version, driven by the same driver.
//!
//! Layout: `{root}/{version}/venv/bin/python`; `root` is `$ORCHARD_BLENDERS`, else
//! `$XDG_DATA_HOME/orchard/blenders`, else `~/.local/share/orchard/blenders`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// Blender lines with `bpy` wheels for CPython 3.11 (4.0 and 4.1 have none; 5.1+ need 3.13).
pub const SUPPORTED: &[&str] = &["4.2", "4.3", "4.4", "4.5", "5.0"];

/// Where installed Blenders live.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORCHARD_BLENDERS") {
        return PathBuf::from(dir);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("orchard/blenders")
}

/// The interpreters of installed Blenders, by version directory name.
pub fn installed(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else { return found };
    for entry in entries.flatten() {
        let python = entry.path().join("venv/bin/python");
        if python.is_file() && entry.path().join("installed").is_file() {
            found.push((entry.file_name().to_string_lossy().into_owned(), python));
        }
    }
    found.sort();
    found
}

/// `4.5` or `4.5.3` → the pip requirement, refusing lines without a cp311 wheel.
pub fn requirement(version: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = version.split('.').collect();
    let line = parts.iter().take(2).copied().collect::<Vec<_>>().join(".");
    let numeric = parts.iter().all(|it| !it.is_empty() && it.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || !(2..=3).contains(&parts.len()) || !SUPPORTED.contains(&line.as_str()) {
        anyhow::bail!(
            "Blender {version:?} is not installable: PyPI has bpy for Python 3.11 in lines {}",
            SUPPORTED.join(", ")
        );
    }
    Ok(if parts.len() == 2 { format!("bpy=={version}.*") } else { format!("bpy=={version}") })
}

/// Creates `{root}/{version}/venv` and installs `bpy` (and a numpy it works with) into it.
/// Returns the interpreter to pass as `--blender`. pip prints its own progress.
pub fn install(root: &Path, version: &str, python: &Path) -> anyhow::Result<PathBuf> {
    let requirement = requirement(version)?;
    let dir = root.join(version);
    let venv = dir.join("venv");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join("installed"));
    run(Command::new(python).arg("-m").arg("venv").arg("--clear").arg(&venv), "creating the virtual environment")?;
    let pip = venv.join("bin/pip");
    // bpy's wheels were built against numpy 1.x; pip would otherwise pick 2.x.
    run(
        Command::new(&pip).args(["install", "--disable-pip-version-check", &requirement, "numpy<2"]),
        "installing bpy",
    )?;
    std::fs::write(dir.join("installed"), &requirement)?;
    Ok(venv.join("bin/python"))
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("{what}: could not start {:?}", command.get_program()))?;
    if !status.success() {
        anyhow::bail!("{what} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_with_wheels_are_installable() {
        assert_eq!(requirement("4.5").unwrap(), "bpy==4.5.*");
        assert_eq!(requirement("5.0.1").unwrap(), "bpy==5.0.1");
        for bad in ["4.1", "5.2", "3.4", "latest", "4", "4.5.x", "4..5"] {
            assert!(requirement(bad).is_err(), "{bad}");
        }
    }
}
