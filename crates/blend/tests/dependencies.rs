//! Dependency statuses: present, missing, packed and outside the project, for a `.blend` beside its
//! files, the same bytes with no location, a `.zip` project, and linked libraries followed into
//! their own dependencies.

mod common;

use orchard_blend::{
    AnalyzeError, AnalyzeOptions, Dependency, DependencyKind, DependencyStatus, WarningCode, ZipProject, analyze_bytes,
    analyze_path,
};

use common::{fixture, fixture_bytes, scratch_dir};

const VERSIONS: &[&str] = &["v3_4", "v4_5", "v5_0"];

fn find<'a>(deps: &'a [Dependency], kind: DependencyKind, path: &str) -> Option<&'a Dependency> {
    deps.iter().find(|d| d.kind == kind && d.path == path)
}

#[test]
fn every_kind_of_dependency_is_found_with_its_status() {
    use DependencyKind as K;
    use DependencyStatus as S;
    let cases: &[(K, &str, S)] = &[
        (K::Library, "//lib/library.blend", S::Present),
        (K::Library, "//lib/missing.blend", S::Missing),
        (K::Image, "//textures/wood.png", S::Present),
        (K::Image, "//textures/missing.png", S::Missing),
        (K::Image, "//textures/packed.png", S::Packed),
        (K::Image, "/nonexistent/orchard/absolute.png", S::OutsideProject),
        (K::Image, "//../outside/escape.png", S::OutsideProject),
        (K::Image, "//seq/frame_0001.png", S::Present),
        (K::Image, "//movies/plate.mp4", S::Missing),
        (K::Image, "//udim/tile.<UDIM>.png", S::Present),
        // One of its two tiles is missing.
        (K::Image, "//udim_missing/tile.<UDIM>.png", S::Missing),
        (K::Sound, "//audio/beep.wav", S::Present),
        (K::Sound, "//audio/lost.wav", S::Missing),
        (K::Sound, "//audio/packed.wav", S::Packed),
        (K::Font, "//fonts/title.ttf", S::Present),
        (K::Font, "//fonts/missing.ttf", S::Missing),
        (K::MovieClip, "//clips/plate.png", S::Present),
        (K::MovieClip, "//clips/missing.mov", S::Missing),
        (K::CacheFile, "//cache/anim.abc", S::Missing),
        (K::Volume, "//cache/smoke.vdb", S::Present),
        (K::Volume, "//cache/fire.vdb", S::Missing),
        (K::Text, "//scripts/driver.py", S::Present),
        (K::Strip, "//strips/s_0001.png", S::Present),
        (K::Strip, "//movies/missing.mp4", S::Missing),
        (K::MeshCache, "//cache/anim.pc2", S::Present),
        (K::PointCache, "//blendcache_deps/", S::Missing),
        (K::FluidCache, "//cache_fluid", S::Present),
        (K::IesProfile, "//ies/lamp.ies", S::Present),
        (K::IesProfile, "//ies/missing.ies", S::Missing),
        (K::OslScript, "//osl/shader.osl", S::Present),
        (K::OslScript, "//osl/missing.osl", S::Missing),
        (K::OceanCache, "//ocean_cache", S::Present),
        (K::MeshDisplacement, "//mesh/sculpt.btx", S::Present),
    ];
    for version in VERSIONS {
        let name = format!("{version}/deps/deps.blend");
        let a = analyze_path(&fixture(&name), "deps.blend", &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for &(kind, path, status) in cases {
            let got = find(&a.dependencies, kind, path).map(|d| (d.status, d.library.as_deref()));
            assert_eq!(got, Some((status, None)), "{name}: {kind:?} {path}");
        }
        // The built-in font, generated images and in-memory texts are not files; an unbaked ocean
        // is simulated; a compositor File Output node's path is where frames go, not an input.
        let not_inputs = ["<builtin>", "", "//ocean_unbaked"];
        assert!(!a.dependencies.iter().any(|d| not_inputs.contains(&d.path.as_str())), "{name}");
        assert!(!a.dependencies.iter().any(|d| d.path.starts_with("//comp/")), "{name}");
    }
}

#[test]
fn geometry_nodes_bakes_on_disk_are_found_where_blender_reads_them() {
    // 3.4 has no bakes. The first bake lies in the modifier's directory under its id, which
    // Blender draws at random; the second has a custom directory that is not there.
    for version in ["v4_5", "v5_0"] {
        let name = format!("{version}/deps/deps.blend");
        let a = analyze_path(&fixture(&name), "deps.blend", &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut bakes: Vec<(&str, DependencyStatus)> = a
            .dependencies
            .iter()
            .filter(|d| d.kind == DependencyKind::GeometryNodesBake)
            .map(|d| (d.path.as_str(), d.status))
            .collect();
        bakes.sort_by_key(|&(path, _)| path);
        let [(in_modifier_dir, present), (custom, missing)] = bakes[..] else {
            panic!("{name}: {bakes:?}");
        };
        let id = in_modifier_dir.strip_prefix("//gn_bakes/").unwrap_or_else(|| panic!("{name}: {in_modifier_dir}"));
        assert!(id.parse::<i64>().is_ok(), "{name}: {in_modifier_dir}");
        assert_eq!((present, custom, missing), (DependencyStatus::Present, "//gn_custom/", DependencyStatus::Missing));
    }
}

#[test]
fn linked_libraries_are_followed_into_their_own_dependencies() {
    for version in VERSIONS {
        let name = format!("{version}/deps/deps.blend");
        let a = analyze_path(&fixture(&name), "deps.blend", &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let nested: Vec<(DependencyKind, &str, DependencyStatus, &str)> = a
            .dependencies
            .iter()
            .filter_map(|d| Some((d.kind, d.path.as_str(), d.status, d.library.as_deref()?)))
            .collect();
        // Paths stay relative to the library that stores them; `library` names it from the main file.
        assert_eq!(
            nested,
            [
                (DependencyKind::Library, "//inner/inner.blend", DependencyStatus::Present, "//lib/library.blend"),
                (DependencyKind::Image, "//tex/libwood.png", DependencyStatus::Present, "//lib/library.blend"),
                (DependencyKind::Image, "//tex/inner.png", DependencyStatus::Present, "//lib/inner/inner.blend"),
            ],
            "{name}"
        );
    }
}

#[test]
fn warnings_name_each_missing_absolute_and_escaping_path() {
    let a = analyze_path(&fixture("v5_0/deps/deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let warned: Vec<(WarningCode, Option<&str>)> = a.warnings.iter().map(|w| (w.code, w.path.as_deref())).collect();
    for expected in [
        (WarningCode::MissingDependency, Some("//lib/missing.blend")),
        (WarningCode::MissingDependency, Some("//udim_missing/tile.<UDIM>.png")),
        (WarningCode::MissingDependency, Some("//blendcache_deps/")),
        (WarningCode::AbsolutePath, Some("/nonexistent/orchard/absolute.png")),
        (WarningCode::OutsideProject, Some("//../outside/escape.png")),
    ] {
        assert!(warned.contains(&expected), "expected {expected:?} among {warned:?}");
    }
    for quiet in ["//textures/packed.png", "//textures/wood.png", "//tex/libwood.png"] {
        assert!(!warned.iter().any(|(_, p)| *p == Some(quiet)), "{quiet} needs no warning: {warned:?}");
    }
}

#[test]
fn bytes_without_a_location_report_relative_dependencies_missing_and_open_no_library() {
    let a = analyze_bytes(&fixture_bytes("v4_5/deps/deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let wood = find(&a.dependencies, DependencyKind::Image, "//textures/wood.png");
    assert_eq!(wood.map(|d| d.status), Some(DependencyStatus::Missing));
    let packed = find(&a.dependencies, DependencyKind::Image, "//textures/packed.png");
    assert_eq!(packed.map(|d| d.status), Some(DependencyStatus::Packed));
    assert!(a.dependencies.iter().all(|d| d.library.is_none()), "{:?}", a.dependencies);
}

#[test]
fn a_library_in_the_project_that_cannot_be_read_is_a_warning_not_an_error() {
    let dir = scratch_dir("unreadable_library");
    std::fs::copy(fixture("v3_4/deps/deps.blend"), dir.join("deps.blend")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.join("lib")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("lib/library.blend"), b"BLENDER-v304 but nothing else").unwrap_or_else(|e| panic!("{e}"));
    let a = analyze_path(&dir.join("deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let lib = find(&a.dependencies, DependencyKind::Library, "//lib/library.blend");
    assert_eq!(lib.map(|d| d.status), Some(DependencyStatus::Present));
    let warned: Vec<(WarningCode, Option<&str>)> = a.warnings.iter().map(|w| (w.code, w.path.as_deref())).collect();
    assert!(warned.contains(&(WarningCode::UnreadableLibrary, Some("//lib/library.blend"))), "{warned:?}");
}

#[test]
fn a_zip_project_resolves_dependencies_and_libraries_inside_the_archive() {
    for version in VERSIONS {
        let name = format!("{version}/project.zip");
        let a = analyze_path(&fixture(&name), "project.zip", &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<(DependencyKind, &str, DependencyStatus, Option<&str>)> =
            a.dependencies.iter().map(|d| (d.kind, d.path.as_str(), d.status, d.library.as_deref())).collect();
        for want in [
            (DependencyKind::Library, "//lib/library.blend", DependencyStatus::Present, None),
            (DependencyKind::Image, "//textures/wood.png", DependencyStatus::Present, None),
            (DependencyKind::Image, "//textures/absent.png", DependencyStatus::Missing, None),
            (DependencyKind::Image, "//tex/libwood.png", DependencyStatus::Present, Some("//lib/library.blend")),
        ] {
            assert!(got.contains(&want), "{name}: expected {want:?} among {got:?}");
        }
        assert_eq!(a.file_name, "project.zip");
        assert_eq!(a.main_file.as_deref(), Some("shot/main.blend"), "{name}");
        assert_eq!(a.file_size, std::fs::metadata(fixture(&name)).map(|m| m.len()).unwrap_or(0));
    }
}

#[test]
fn a_zip_project_reads_the_same_extracted_as_inside_the_archive() {
    let opts = AnalyzeOptions::default();
    let project = ZipProject::open(&fixture("v4_5/project.zip"), None, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(project.main_file(), "shot/main.blend");
    let in_zip = project.analyze("project.zip", &opts).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch_dir("extract_project");
    let main = project.extract_to(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(main, dir.join("shot/main.blend"));
    assert!(dir.join("shot/textures/wood.png").is_file());
    let on_disk = analyze_path(&main, "main.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on_disk.dependencies, in_zip.dependencies);
    assert_eq!(in_zip.main_file.as_deref(), Some(project.main_file()));
    assert_eq!(on_disk.main_file, None);
}

#[test]
fn a_zip_project_honours_or_rejects_the_requested_main_file() {
    let opts = AnalyzeOptions::default();
    let zip = fixture("v3_4/project.zip");
    let chosen = ZipProject::open(&zip, Some("shot/main.blend"), &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chosen.main_file(), "shot/main.blend");
    // The library is a .blend too, but deeper: the shallowest is the main file.
    let lib = ZipProject::open(&zip, Some("shot/lib/library.blend"), &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lib.main_file(), "shot/lib/library.blend");
    let lib_analysis = lib.analyze("project.zip", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lib_analysis.main_file.as_deref(), Some("shot/lib/library.blend"));
    for wanted in ["nope.blend", "shot/textures/wood.png", "../shot/main.blend"] {
        let res = ZipProject::open(&zip, Some(wanted), &opts);
        assert!(matches!(res, Err(AnalyzeError::ZipMainFileNotFound { .. })), "{wanted}: {res:?}");
    }
}
