//! Dependency statuses: missing, packed, absolute and present, for a lone `.blend`, a `.blend`
//! beside its textures, and a `.zip` project.

mod common;

use orchard_blend::{
    AnalyzeError, AnalyzeOptions, Dependency, DependencyKind, DependencyStatus, WarningCode, ZipProject, analyze_bytes,
    analyze_path,
};

use common::{fixture, fixture_bytes, scratch_dir};

fn dep(kind: DependencyKind, path: &str, status: DependencyStatus) -> Dependency {
    Dependency { kind, path: path.to_string(), status }
}

#[test]
fn a_lone_blend_lists_missing_packed_and_absolute_dependencies() {
    let a = analyze_path(&fixture("deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let want = [
        dep(DependencyKind::Library, "//lib/library.blend", DependencyStatus::Missing),
        dep(DependencyKind::Image, "/nonexistent/orchard/absolute.png", DependencyStatus::OutsideProject),
        dep(DependencyKind::Image, "//textures/packed.png", DependencyStatus::Packed),
        dep(DependencyKind::Image, "//textures/wood.png", DependencyStatus::Missing),
    ];
    assert_eq!(a.dependencies, want);
    let warned: Vec<(WarningCode, Option<&str>)> = a.warnings.iter().map(|w| (w.code, w.path.as_deref())).collect();
    for expected in [
        (WarningCode::MissingDependency, Some("//lib/library.blend")),
        (WarningCode::MissingDependency, Some("//textures/wood.png")),
        (WarningCode::AbsolutePath, Some("/nonexistent/orchard/absolute.png")),
    ] {
        assert!(warned.contains(&expected), "expected {expected:?} among {warned:?}");
    }
    assert!(
        !warned.iter().any(|(_, p)| *p == Some("//textures/packed.png")),
        "a packed image needs no warning: {warned:?}"
    );
}

#[test]
fn dependencies_agree_with_blenders_own_list() {
    let truth: serde_json::Value =
        serde_json::from_slice(&fixture_bytes("deps.truth.json")).unwrap_or_else(|e| panic!("{e}"));
    let a = analyze_path(&fixture("deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(String, String, bool)> = a
        .dependencies
        .iter()
        .map(|d| {
            let kind = serde_json::to_value(d.kind).ok().and_then(|v| v.as_str().map(str::to_string));
            (kind.unwrap_or_default(), d.path.clone(), d.status == DependencyStatus::Packed)
        })
        .collect();
    let want: Vec<(String, String, bool)> = truth["dependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or("").to_string(),
                d["path"].as_str().unwrap_or("").to_string(),
                d["packed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_blend_beside_its_texture_on_disk_finds_it_present() {
    let dir = scratch_dir("blend_beside_texture");
    std::fs::copy(fixture("deps.blend"), dir.join("deps.blend")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.join("textures")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("textures/wood.png"), b"not really a png").unwrap_or_else(|e| panic!("{e}"));
    let a = analyze_path(&dir.join("deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let wood = a.dependencies.iter().find(|d| d.path == "//textures/wood.png");
    assert_eq!(wood.map(|d| d.status), Some(DependencyStatus::Present));
}

#[test]
fn bytes_without_a_location_report_relative_dependencies_missing() {
    let a = analyze_bytes(&fixture_bytes("deps.blend"), "deps.blend", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let wood = a.dependencies.iter().find(|d| d.path == "//textures/wood.png");
    assert_eq!(wood.map(|d| d.status), Some(DependencyStatus::Missing));
}

#[test]
fn a_zip_project_resolves_dependencies_inside_the_archive() {
    let a = analyze_path(&fixture("project.zip"), "project.zip", &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.dependencies, [dep(DependencyKind::Image, "//textures/wood.png", DependencyStatus::Present)]);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(a.file_name, "project.zip");
    assert_eq!(a.file_size, std::fs::metadata(fixture("project.zip")).map(|m| m.len()).unwrap_or(0));
}

#[test]
fn a_zip_project_chooses_its_main_file_and_extracts_it_with_its_texture() {
    let opts = AnalyzeOptions::default();
    let project = ZipProject::open(&fixture("project.zip"), None, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(project.main_file(), "shot/main.blend");
    let dir = scratch_dir("extract_project");
    let main = project.extract_to(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(main, dir.join("shot/main.blend"));
    assert!(dir.join("shot/textures/wood.png").is_file());
    // Once extracted, the same file resolves its texture on disk.
    let a = analyze_path(&main, "main.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.dependencies[0].status, DependencyStatus::Present);
}

#[test]
fn a_zip_project_honours_or_rejects_the_requested_main_file() {
    let opts = AnalyzeOptions::default();
    let chosen =
        ZipProject::open(&fixture("project.zip"), Some("shot/main.blend"), &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chosen.main_file(), "shot/main.blend");
    for wanted in ["nope.blend", "shot/textures/wood.png", "../shot/main.blend"] {
        let res = ZipProject::open(&fixture("project.zip"), Some(wanted), &opts);
        assert!(matches!(res, Err(AnalyzeError::ZipMainFileNotFound { .. })), "{wanted}: {res:?}");
    }
}
