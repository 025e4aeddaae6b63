//! How the analysis object ([`Analysis`], orchard.md §5) is read out of a `.blend`'s bytes:
//! decompress, parse, read every scene and the dependencies, then the warnings.

use crate::AnalyzeOptions;
use crate::dependencies::{self, MainBlend};
use crate::error::AnalyzeError;
use crate::model::{
    Analysis, Compression, Dependency, DependencyKind, DependencyStatus, EEVEE_ENGINES, FileVersion, SceneInfo,
    Warning, WarningCode,
};
use crate::paths::{Location, locate};
use crate::python::{self, Python};
use crate::read::{BlendFile, is_linked};
use crate::{compression, scenes};

/// Most scenes a file may have. Real files have a handful; the cap bounds the size of the
/// analysis a hostile file can produce.
pub const MAX_SCENES: usize = 10_000;

/// Newest file version this reader was checked against (Blender 5.0). Newer files are still read,
/// with a `newer_file_format` warning, because their layout is described by their own DNA.
pub const NEWEST_KNOWN_VERSION: u16 = 500;

/// Decompresses, parses and analyses; the caller fills in the file's name, size, hash and time
/// (and, for a `.zip`, the main file's path).
pub(crate) fn analyze_blend_bytes(
    bytes: &[u8],
    main: MainBlend<'_>,
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let (compression, data) = compression::decompress(bytes, opts.max_decompressed_bytes)?;
    let file = BlendFile::parse(&data)?;
    analyze_file(&file, compression, main, opts)
}

/// Everything that comes from the `.blend` bytes themselves.
fn analyze_file(
    file: &BlendFile<'_>,
    compression: Compression,
    main: MainBlend<'_>,
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let header = file.header;
    let version = header.version;
    let glob = file.blocks.with_code(b"GLOB").next().and_then(|b| file.view_block_as(b, "FileGlobal"));
    let subversion = glob.and_then(|g| g.int("subversion")).and_then(|v| u16::try_from(v).ok()).unwrap_or(0);
    let min_blender_version =
        glob.and_then(|g| g.int("minversion")).filter(|&v| v > 0).map(|v| format!("{}.{}", v / 100, v % 100));

    let mut scenes = Vec::new();
    let mut active_scene = None;
    let curscene = glob.and_then(|g| g.ptr("curscene")).unwrap_or(0);
    for block in file.blocks.with_code(b"SC\0\0") {
        let Some(scene) = file.view_block_as(block, "Scene") else {
            continue;
        };
        if is_linked(&scene) {
            continue;
        }
        if scenes.len() >= MAX_SCENES {
            return Err(AnalyzeError::corrupt(format!("it holds more than {MAX_SCENES} scenes")));
        }
        let info = scenes::read(&scene, version, subversion);
        if curscene != 0 && block.old == curscene {
            active_scene = Some(info.name.clone());
        }
        scenes.push(info);
    }
    // Without a window to name one (`GLOB.curscene` null), Blender opens the first scene.
    if active_scene.is_none() {
        active_scene = scenes.first().map(|s| s.name.clone());
    }

    let (dependencies, unreadable) = dependencies::collect(file, main, opts);
    let mut warnings = Vec::new();
    dependency_warnings(&dependencies, &mut warnings);
    for (library, why) in unreadable {
        warnings.push(Warning {
            code: WarningCode::UnreadableLibrary,
            message: format!("the linked library {library:?} is in the project but cannot be read: {why}"),
            path: Some(library),
        });
    }
    scene_warnings(scenes.iter().find(|s| Some(&s.name) == active_scene.as_ref()), &mut warnings);
    python_warnings(&python::read(file), &mut warnings);
    if version > NEWEST_KNOWN_VERSION {
        warnings.push(Warning {
            code: WarningCode::NewerFileFormat,
            message: format!(
                "the file was saved by Blender {}.{}, newer than the newest format this reader was checked \
                 against ({}.{}); check the detected settings",
                header.major(),
                header.minor(),
                NEWEST_KNOWN_VERSION / 100,
                NEWEST_KNOWN_VERSION % 100
            ),
            path: None,
        });
    }

    Ok(Analysis {
        id: None,
        main_file: None,
        file_name: String::new(),
        file_size: 0,
        sha256: String::new(),
        compression,
        blender_version: format!("{}.{}", header.major(), header.minor()),
        file_version: FileVersion { major: header.major(), minor: header.minor(), subversion },
        min_blender_version,
        active_scene,
        scenes,
        dependencies,
        warnings,
        duration_ms: 0,
    })
}

fn scene_warnings(active: Option<&SceneInfo>, warnings: &mut Vec<Warning>) {
    let Some(scene) = active else {
        warnings.push(Warning {
            code: WarningCode::NoScene,
            message: "the file has no scene to render".to_string(),
            path: None,
        });
        return;
    };
    if scene.camera.is_none() {
        warnings.push(Warning {
            code: WarningCode::NoCamera,
            message: format!("the active scene {:?} has no camera, so Blender cannot render it", scene.name),
            path: None,
        });
    }
    let rc = &scene.render_config;
    if EEVEE_ENGINES.contains(&rc.render_engine.as_str()) {
        warnings.push(Warning {
            code: WarningCode::EeveeNeedsGpu,
            message: format!(
                "the active scene {:?} renders with EEVEE, which needs a GPU worker: on a CPU it falls back to \
                 software OpenGL and takes minutes per frame",
                scene.name
            ),
            path: None,
        });
    }
    if rc.render_engine == "CYCLES" && rc.denoising_enabled && rc.denoiser_type.as_deref() == Some("OPENIMAGEDENOISE") {
        warnings.push(Warning {
            code: WarningCode::NeedsOidn,
            message: format!(
                "the active scene {:?} denoises with OpenImageDenoise; only workers whose Blender was built \
                 with OIDN can render it",
                scene.name
            ),
            path: None,
        });
    }
}

/// One warning for text blocks that run on load, one for scripted drivers, each naming them.
fn python_warnings(python: &Python, warnings: &mut Vec<Warning>) {
    let more = |named: usize, total: usize| {
        if total > named { format!(" and {} more", total - named) } else { String::new() }
    };
    if python.modules_total > 0 {
        let names: Vec<String> = python.modules.iter().map(|n| format!("{n:?}")).collect();
        let (these, are, they) =
            if python.modules_total == 1 { ("the text block", "is", "it") } else { ("the text blocks", "are", "they") };
        warnings.push(Warning {
            code: WarningCode::PythonCode,
            message: format!(
                "{these} {}{} {are} set to run as Python when the file opens (Register), but the farm runs \
                 Blender with Python scripts disabled: {they} will not run, and anything {they} would set up will \
                 be missing from the render",
                names.join(", "),
                more(python.modules.len(), python.modules_total)
            ),
            path: None,
        });
    }
    if python.drivers_total > 0 {
        let drivers: Vec<String> = python.drivers.iter().map(|(owner, expr)| format!("{owner:?} ({expr})")).collect();
        let (these, expressions) = if python.drivers_total == 1 {
            ("a driver", "a scripted Python expression")
        } else {
            ("drivers", "scripted Python expressions")
        };
        warnings.push(Warning {
            code: WarningCode::PythonCode,
            message: format!(
                "the file has {these} with {expressions}: {}{}; the farm runs Blender with \
                 Python scripts disabled, so an expression that is more than simple arithmetic of its \
                 variables and frame will not be evaluated, and what it drives will be wrong",
                drivers.join(", "),
                more(python.drivers.len(), python.drivers_total)
            ),
            path: None,
        });
    }
}

fn dependency_warnings(deps: &[Dependency], warnings: &mut Vec<Warning>) {
    for dep in deps {
        let what = match dep.kind {
            DependencyKind::Library => "linked library",
            DependencyKind::Image => "image",
            DependencyKind::Sound => "sound",
            DependencyKind::Font => "font",
            DependencyKind::MovieClip => "movie clip",
            DependencyKind::CacheFile => "cache file",
            DependencyKind::Volume => "volume",
            DependencyKind::Text => "text",
            DependencyKind::Strip => "sequencer strip file",
            DependencyKind::MeshCache => "mesh cache",
            DependencyKind::PointCache => "point cache directory",
            DependencyKind::FluidCache => "fluid cache directory",
            DependencyKind::IesProfile => "IES light profile",
            DependencyKind::OslScript => "OSL script",
            DependencyKind::OceanCache => "ocean cache directory",
            DependencyKind::GeometryNodesBake => "geometry nodes bake directory",
            DependencyKind::MeshDisplacement => "multires displacement file",
        };
        let whose = dep.library.as_ref().map(|l| format!(" (used by the library {l:?})")).unwrap_or_default();
        let is_cache = matches!(
            dep.kind,
            DependencyKind::PointCache
                | DependencyKind::FluidCache
                | DependencyKind::OceanCache
                | DependencyKind::GeometryNodesBake
        );
        let (code, message) = match (dep.status, locate(&dep.path)) {
            (DependencyStatus::Missing, _) if is_cache => (
                WarningCode::MissingDependency,
                format!(
                    "the {what} {:?}{whose} is not in the project; every render node will simulate again \
                     instead of reading the bake, and nodes may disagree",
                    dep.path
                ),
            ),
            (DependencyStatus::Missing, _) => (
                WarningCode::MissingDependency,
                format!("the {what} {:?}{whose} is not in the project; frames will render without it", dep.path),
            ),
            (DependencyStatus::OutsideProject, Location::Absolute) => (
                WarningCode::AbsolutePath,
                format!(
                    "the {what} {:?}{whose} has an absolute path, which will not exist on render nodes; make it \
                     relative and include it in the project",
                    dep.path
                ),
            ),
            (DependencyStatus::OutsideProject, _) => (
                WarningCode::OutsideProject,
                format!("the {what} {:?}{whose} lies outside the project folder, so it is not uploaded", dep.path),
            ),
            (DependencyStatus::Present | DependencyStatus::Packed, _) => continue,
        };
        warnings.push(Warning { code, message, path: Some(dep.path.clone()) });
    }
}
