//! Packing a scene from the disk into a `.zip` project: the closure comes along, relative paths
//! are kept (climbing out of the scene's folder too), absolute ones are mapped inside and
//! rewritten, and the server's own analysis of the archive finds every file the artist has.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use orchard_blend::pack::{self, EXTERNAL_DIR};
use orchard_blend::{AnalyzeOptions, Dependency, DependencyKind, DependencyStatus, ZipProject, analyze_path};

use common::{fixture, scratch_dir};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn status_of(deps: &[Dependency], kind: DependencyKind, path: &str) -> DependencyStatus {
    deps.iter().find(|it| it.kind == kind && it.path == path).unwrap_or_else(|| panic!("{path}: {deps:#?}")).status
}

#[test]
fn a_scene_is_packed_with_everything_it_reaches_and_renders_the_same_paths() {
    let opts = AnalyzeOptions::default();
    for version in ["v3_4", "v4_5", "v5_0"] {
        let work = scratch_dir(&format!("pack-{version}"));
        // The artist's disk: the shot in project/shot, a texture one level up (`//../outside/`),
        // and a texture reached by an absolute path somewhere else.
        let shot = work.join("project/shot");
        copy_tree(&fixture(&format!("{version}/deps")), &shot);
        std::fs::create_dir_all(work.join("project/outside")).unwrap();
        std::fs::copy(shot.join("textures/wood.png"), work.join("project/outside/escape.png")).unwrap();
        let elsewhere = work.join("elsewhere/abs");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::rename(shot.join("textures/wood.png"), elsewhere.join("wood.png")).unwrap();
        let absolute = elsewhere.join("wood.png").to_string_lossy().into_owned();
        // The scene names that texture by its absolute path (a rewrite is the way to say so
        // without Blender; it is itself what is under test further down).
        let main = shot.join("deps.blend");
        let rewrites = BTreeMap::from([("//textures/wood.png".to_string(), absolute.clone())]);
        let bytes = pack::rewrite_paths(&std::fs::read(&main).unwrap(), &rewrites, &opts).unwrap();
        std::fs::write(&main, bytes).unwrap();
        let before = analyze_path(&main, "deps.blend", &opts).unwrap().dependencies;
        assert_eq!(status_of(&before, DependencyKind::Image, &absolute), DependencyStatus::OutsideProject);

        let plan = pack::plan(&main, &opts).unwrap();
        assert_eq!(plan.main_file, "shot/deps.blend", "the root climbs to hold //../outside");
        let names: Vec<&str> = plan.files.keys().map(String::as_str).collect();
        for expected in [
            "outside/escape.png",
            "shot/lib/library.blend",
            "shot/lib/inner/inner.blend",
            "shot/lib/tex/libwood.png",
            "shot/lib/inner/tex/inner.png",
            "shot/udim/tile.1001.png",
            "shot/udim/tile.1002.png",
            "shot/seq/frame_0001.png",
            "shot/cache_fluid/data/.keep",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:#?}");
        }
        let external = format!("{EXTERNAL_DIR}{}", elsewhere.join("wood.png").display());
        assert!(names.contains(&external.as_str()), "{external} in {names:#?}");
        assert_eq!(plan.files["shot/deps.blend"].rewrites.get(&absolute), Some(&format!("//../{external}")));
        let missing: Vec<&str> = plan.missing.iter().map(|(_, path)| path.as_str()).collect();
        assert!(missing.contains(&"//lib/missing.blend") && missing.contains(&"/nonexistent/orchard/absolute.png"));
        assert!(plan.unmapped.is_empty(), "{:?}", plan.unmapped);

        let zip = work.join("scene.zip");
        let mut reported = 0;
        pack::write(&plan, &zip, &opts, &mut |bytes| reported = bytes).unwrap();
        assert_eq!(reported, plan.total_bytes());
        // What the server sees: the archive's own analysis.
        let project = ZipProject::open(&zip, Some(&plan.main_file), &opts).unwrap();
        let after = project.analyze("scene.zip", &opts).unwrap().dependencies;
        let inside = format!("//../{external}");
        assert_eq!(status_of(&after, DependencyKind::Image, &inside), DependencyStatus::Present, "rewritten");
        for (kind, path) in [
            (DependencyKind::Image, "//../outside/escape.png"),
            (DependencyKind::Library, "//lib/library.blend"),
            (DependencyKind::Image, "//udim/tile.<UDIM>.png"),
            (DependencyKind::Sound, "//audio/beep.wav"),
            (DependencyKind::FluidCache, "//cache_fluid"),
        ] {
            assert_eq!(status_of(&after, kind, path), DependencyStatus::Present, "{version} {path}");
        }
        assert_eq!(status_of(&after, DependencyKind::Image, "//textures/missing.png"), DependencyStatus::Missing);
        assert!(after.iter().any(|it| it.library.as_deref() == Some("//lib/inner/inner.blend")), "inner followed");
        // The artist's file is untouched by packing (the rewrite went into the archive's copy).
        let again = analyze_path(&main, "deps.blend", &opts).unwrap().dependencies;
        assert_eq!(status_of(&again, DependencyKind::Image, &absolute), DependencyStatus::OutsideProject);
    }
}

#[test]
fn a_scene_that_uses_no_file_is_its_own_project() {
    let plan = pack::plan(&fixture("v3_4/cube.blend"), &AnalyzeOptions::default()).unwrap();
    assert!(plan.is_single_file(), "{plan:#?}");
    assert_eq!(plan.main_file, "cube.blend");
}

#[test]
fn a_rewritten_path_must_fit_its_field() {
    let opts = AnalyzeOptions::default();
    let bytes = std::fs::read(fixture("v3_4/deps/deps.blend")).unwrap();
    let long = format!("//{}", "x".repeat(2000));
    let rewrites = BTreeMap::from([("//textures/wood.png".to_string(), long)]);
    let error = pack::rewrite_paths(&bytes, &rewrites, &opts).unwrap_err();
    assert!(error.to_string().contains("does not fit"), "{error}");
}
