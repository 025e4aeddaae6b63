//! The dashboard in a real browser: `orchard up` with real Blender, driven by headless
//! Chromium through Selenium (`tests/browser/dashboard.py`, run with the tests' Python).
//!
//! Needs Blender, ffmpeg, `/usr/bin/chromium`, `/usr/bin/chromedriver` and
//! `ORCHARD_TEST_PYTHON` (a Python with `selenium`; `dev/test` makes one). Without them it reports a skip, unless
//! `ORCHARD_REQUIRE_E2E=1` (set by the test script and CI), where anything missing fails.
//! One farm, one browser session, the scenarios in sequence; each saves a screenshot under
//! `target/tmp/dashboard/` (printed), for a reviewer to look at.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// What the browser test needs beside Blender, or why it cannot run.
fn browser_tools() -> Result<PathBuf, String> {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            return Err(format!("{tool} is missing (Debian's chromium and chromium-driver; dev/setup test)"));
        }
    }
    let runs = |tool: &str| Command::new(tool).arg("-version").output().is_ok_and(|it| it.status.success());
    if !runs("ffmpeg") {
        return Err("ffmpeg is missing (the job's video; dev/setup test)".into());
    }
    let python = std::env::var_os("ORCHARD_TEST_PYTHON")
        .ok_or("ORCHARD_TEST_PYTHON (a Python with selenium) is not set; dev/test sets it")?;
    let ok = Command::new(&python).args(["-c", "import selenium"]).status().is_ok_and(|it| it.success());
    if !ok {
        return Err(format!("{} cannot import selenium (dev/test installs it)", Path::new(&python).display()));
    }
    Ok(PathBuf::from(python))
}

/// Whether the browser test can run; panics when it must (`ORCHARD_REQUIRE_E2E=1`) and cannot.
fn browser_available() -> Option<PathBuf> {
    match browser_tools() {
        Ok(python) => Some(python),
        Err(why) => {
            assert!(std::env::var("ORCHARD_REQUIRE_E2E").is_err(), "ORCHARD_REQUIRE_E2E is set but {why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let Some(python) = browser_available() else { return };
    if !blender_available() {
        return;
    }
    let farm = LocalFarm::start();
    let studio = farm.workspace_key("studio");
    let rival = farm.workspace_key("rival");
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    println!("dashboard screenshots: {}", screenshots.display());
    eprintln!("dashboard screenshots: {}", screenshots.display());
    let status = Command::new(python)
        .arg(repo_root().join("crates/orchard/tests/browser/dashboard.py"))
        .env("ORCHARD_URL", &farm.url)
        .env("ORCHARD_ADMIN_KEY", &farm.key)
        .env("ORCHARD_STUDIO_KEY", &studio)
        .env("ORCHARD_RIVAL_KEY", &rival)
        .env("ORCHARD_SCENE", example_scene())
        .env("ORCHARD_SCREENSHOTS", &screenshots)
        .env("ORCHARD_CHROMIUM", CHROMIUM)
        .env("ORCHARD_CHROMEDRIVER", CHROMEDRIVER)
        // Selenium must not go looking for drivers on the network.
        .env("SE_OFFLINE", "true")
        .status()
        .expect("the browser script runs");
    assert!(status.success(), "the browser scenarios failed (screenshots in {})", screenshots.display());
}
