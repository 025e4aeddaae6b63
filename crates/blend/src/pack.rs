//! Packing a scene for the farm: the `.blend`, the libraries it links and the files they use,
//! gathered from the disk into one `.zip` project that renders what the artist sees, without
//! Blender.
//!
//! The closure is what the analysis finds, followed from each `.blend` (libraries of libraries
//! too, each analysed with its own directory as the base of its `//` paths). Relative paths are
//! kept: the archive's root is the deepest directory that holds the main file and everything
//! reached by relative paths (so `//../assets/props.blend` still resolves). Files reached only by
//! absolute paths go under `_external/` (their absolute path mirrored, so files beside each other
//! stay beside each other), and the paths that name them are rewritten, in the copy that goes
//! into the archive, to relative ones. Blender's path fields are fixed-size character arrays, so
//! a rewrite overwrites the field in place in the decompressed bytes; the artist's files are
//! never touched.
//!
//! Image sequences and UDIM sets bring every file of the set; caches (directories) come whole.
//! Paths that cannot be rewritten (a cache or strip reached by an absolute path, a Windows path)
//! are reported, as are files not found: the farm will not have them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::AnalyzeError;
use crate::model::{DependencyKind, DependencyStatus};
use crate::paths::{Location, blender_path, locate};
use crate::read::{BlendFile, c_string, is_linked};
use crate::{AnalyzeOptions, analyze_path, compression};

/// The folder of the archive that holds files reached by absolute paths.
pub const EXTERNAL_DIR: &str = "_external";
/// Most files one pack may hold (the server's limit on a project's entries).
pub const MAX_PACKED_FILES: usize = crate::project::MAX_ENTRIES as usize;

/// The ID types whose path field a pack can rewrite: (block code, struct, field).
const REWRITABLE: &[(&[u8; 4], &str, &str)] = &[
    (b"LI\0\0", "Library", "name"),
    (b"IM\0\0", "Image", "name"),
    (b"SO\0\0", "bSound", "name"),
    (b"VF\0\0", "VFont", "name"),
    (b"MC\0\0", "MovieClip", "name"),
    (b"CF\0\0", "CacheFile", "filepath"),
    (b"VO\0\0", "Volume", "filepath"),
];

/// Why a scene could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A `.blend` of the closure could not be read.
    #[error("{path}: {source}")]
    Blend {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: AnalyzeError,
    },
    /// A file could not be read or the archive written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The archive could not be written.
    #[error("writing the project archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// More files than a project may hold.
    #[error("the scene needs more than {MAX_PACKED_FILES} files")]
    TooManyFiles,
}

/// What goes into the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// The main `.blend`'s name in the archive (`mainFile` of the job).
    pub main_file: String,
    /// Every file, by its name in the archive.
    pub files: BTreeMap<String, PackedFile>,
    /// Paths whose files were not found: (the `.blend` that names it, the path as stored).
    pub missing: Vec<(PathBuf, String)>,
    /// Paths to files outside the archive's root that a pack cannot rewrite: the farm will not
    /// find them. (the `.blend`, the path as stored).
    pub unmapped: Vec<(PathBuf, String)>,
}

/// One file of a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedFile {
    /// Where it is on disk.
    pub source: PathBuf,
    /// Its size.
    pub size: u64,
    /// For a `.blend`: its stored paths to rewrite (as stored, `\` turned `/` → the new one).
    pub rewrites: BTreeMap<String, String>,
}

impl Pack {
    /// Whether the main file needs nothing beside it: the `.blend` alone is the project.
    pub fn is_single_file(&self) -> bool {
        self.files.len() == 1
    }

    /// Bytes of all the files (before compression).
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|it| it.size).sum()
    }
}

/// A path one `.blend` stores, resolved on disk.
struct Reference {
    /// The `.blend` storing it.
    from: PathBuf,
    /// As stored, `\` turned `/`.
    stored: String,
    kind: DependencyKind,
    /// The directory it names a file in (or, for a directory dependency, the directory).
    dir: PathBuf,
    /// The file's name as stored (may hold `<UDIM>` or a frame number); `None` for a directory.
    file: Option<String>,
    relative: bool,
}

/// Plans the pack of `main`: which files, under which names, and which paths to rewrite.
pub fn plan(main: &Path, opts: &AnalyzeOptions) -> Result<Pack, PackError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError::Io { path, source }
    };
    let main = lexical(&std::path::absolute(main).map_err(io(main))?);
    let mut blends = vec![main.clone()];
    let mut queue = VecDeque::from([main.clone()]);
    let mut references = Vec::new();
    let mut missing = Vec::new();
    let mut unmapped = Vec::new();
    while let Some(blend) = queue.pop_front() {
        let name = blend.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
        let analysis =
            analyze_path(&blend, &name, opts).map_err(|source| PackError::Blend { path: blend.clone(), source })?;
        let dir = blend.parent().map(Path::to_path_buf).unwrap_or_default();
        // The file's own references: its libraries are followed here, each as its own base.
        for dependency in analysis.dependencies.iter().filter(|it| it.library.is_none()) {
            if dependency.status == DependencyStatus::Packed || dependency.path.is_empty() {
                continue;
            }
            let (target, relative) = match locate(&dependency.path) {
                Location::Relative(parts) => (lexical(&dir.join(parts.join("/"))), true),
                Location::Absolute if dependency.path.starts_with('/') => (lexical(Path::new(&dependency.path)), false),
                // A Windows path: nothing on this machine answers to it.
                Location::Absolute => {
                    unmapped.push((blend.clone(), dependency.path.clone()));
                    continue;
                }
            };
            let is_dir = target.is_dir();
            let (dir, file) = if is_dir {
                (target.clone(), None)
            } else {
                let file = target.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
                (target.parent().map(Path::to_path_buf).unwrap_or_default(), Some(file))
            };
            let reference = Reference {
                from: blend.clone(),
                stored: dependency.path.clone(),
                kind: dependency.kind,
                dir,
                file,
                relative,
            };
            if files_of(&reference).is_empty() {
                missing.push((blend.clone(), dependency.path.clone()));
                continue;
            }
            if dependency.kind == DependencyKind::Library && !blends.contains(&target) {
                blends.push(target.clone());
                queue.push_back(target);
            }
            references.push(reference);
        }
    }
    let root = root_of(&main, &references);
    let place = |path: &Path| placement(&root, path);
    let mut files: BTreeMap<String, PackedFile> = BTreeMap::new();
    let add = |path: &Path, files: &mut BTreeMap<String, PackedFile>| -> Result<(), PackError> {
        let name = place(path);
        if !files.contains_key(&name) {
            if files.len() >= MAX_PACKED_FILES {
                return Err(PackError::TooManyFiles);
            }
            let size = std::fs::metadata(path).map_err(io(path))?.len();
            files.insert(name, PackedFile { source: path.to_path_buf(), size, rewrites: BTreeMap::new() });
        }
        Ok(())
    };
    for blend in &blends {
        add(blend, &mut files)?;
    }
    for reference in &references {
        for file in files_of(reference) {
            add(&file, &mut files)?;
        }
    }
    for reference in &references {
        let from_dir = parent_of(&place(&reference.from));
        let target_dir = place(&reference.dir);
        let mut wanted = relative_path(&from_dir, &target_dir);
        if let Some(file) = &reference.file {
            wanted = if wanted.is_empty() { file.clone() } else { format!("{wanted}/{file}") };
        }
        let wanted = format!("//{wanted}");
        // A relative path that still lands on the same file is kept as the artist wrote it.
        let unchanged = reference.relative && resolves_to(&from_dir, &reference.stored, &wanted);
        if unchanged {
            continue;
        }
        if !rewritable(reference.kind) {
            unmapped.push((reference.from.clone(), reference.stored.clone()));
            continue;
        }
        if let Some(blend) = files.get_mut(&place(&reference.from)) {
            blend.rewrites.insert(reference.stored.clone(), wanted);
        }
    }
    Ok(Pack { main_file: place(&main), files, missing, unmapped })
}

/// Writes `pack` as a zip at `out`; `progress` is told the bytes written so far.
pub fn write(pack: &Pack, out: &Path, opts: &AnalyzeOptions, progress: &mut dyn FnMut(u64)) -> Result<(), PackError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError::Io { path, source }
    };
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    let mut done = 0u64;
    for (name, packed) in &pack.files {
        zip.start_file(name.as_str(), options)?;
        if packed.rewrites.is_empty() {
            let mut input = std::fs::File::open(&packed.source).map_err(io(&packed.source))?;
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = input.read(&mut buffer).map_err(io(&packed.source))?;
                if n == 0 {
                    break;
                }
                zip.write_all(&buffer[..n]).map_err(io(out))?;
                done += n as u64;
                progress(done);
            }
        } else {
            let bytes = std::fs::read(&packed.source).map_err(io(&packed.source))?;
            let rewritten = rewrite_paths(&bytes, &packed.rewrites, opts)
                .map_err(|source| PackError::Blend { path: packed.source.clone(), source })?;
            zip.write_all(&rewritten).map_err(io(out))?;
            done += packed.size;
            progress(done);
        }
    }
    zip.finish()?.flush().map_err(io(out))?;
    Ok(())
}

/// The `.blend` `bytes` (decompressed) with the stored paths of `rewrites` replaced, in the
/// ID types a pack can rewrite. A new path longer than its field is an error (Blender's fields
/// hold 1023 bytes; the paths a pack writes are short).
pub fn rewrite_paths(
    bytes: &[u8],
    rewrites: &BTreeMap<String, String>,
    opts: &AnalyzeOptions,
) -> Result<Vec<u8>, AnalyzeError> {
    let (_, data) = compression::decompress(bytes, opts.max_decompressed_bytes)?;
    let mut out = data.to_vec();
    let file = BlendFile::parse(&data)?;
    for (code, struct_name, field) in REWRITABLE {
        for block in file.blocks.with_code(code) {
            let Some(view) = file.view_block_as(block, struct_name) else { continue };
            // A linked ID's path is its library's business.
            if **code != *b"LI\0\0" && is_linked(&view) {
                continue;
            }
            let Some((_, slot)) = view.field(field) else { continue };
            let Some(new) = rewrites.get(&blender_path(&c_string(slot))) else { continue };
            if new.len() >= slot.len() {
                return Err(AnalyzeError::Corrupt {
                    what: format!("the path {new:?} does not fit the {struct_name} path field ({} bytes)", slot.len()),
                });
            }
            // The field is a slice of `data`: its offset there is its offset in `out`.
            let target = (slot.as_ptr() as usize)
                .checked_sub(data.as_ptr() as usize)
                .and_then(|offset| out.get_mut(offset..offset + slot.len()))
                .ok_or_else(|| AnalyzeError::Corrupt { what: format!("a {struct_name} path field is out of place") })?;
            target.fill(0);
            target[..new.len()].copy_from_slice(new.as_bytes());
        }
    }
    Ok(out)
}

/// The files a reference brings: the file, every file of its image sequence or UDIM set, or a
/// directory's files, recursively.
fn files_of(reference: &Reference) -> Vec<PathBuf> {
    let Some(file) = &reference.file else { return walk(&reference.dir) };
    let single = reference.dir.join(file);
    let sets = matches!(reference.kind, DependencyKind::Image | DependencyKind::Strip | DependencyKind::MovieClip);
    let pattern = if file.contains("<UDIM>") || file.contains("<UVTILE>") {
        Some(Pattern::tiles(file))
    } else if sets {
        Pattern::sequence(file)
    } else {
        None
    };
    let mut found: Vec<PathBuf> = single.is_file().then(|| single.clone()).into_iter().collect();
    if let Some(pattern) = pattern
        && let Ok(entries) = std::fs::read_dir(&reference.dir)
    {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if pattern.matches(&name) && entry.path().is_file() && entry.path() != single {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Every file under `dir`, recursively (links not followed), at most [`MAX_PACKED_FILES`].
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && found.len() < MAX_PACKED_FILES {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// A file name with a variable part: a frame number, a UDIM tile.
struct Pattern {
    prefix: String,
    suffix: String,
    /// Digits of a frame number; `None`: a tile (`1001` or `u1_v1`).
    digits: Option<usize>,
}

impl Pattern {
    fn tiles(name: &str) -> Pattern {
        let (prefix, rest) = name.split_once("<UDIM>").or_else(|| name.split_once("<UVTILE>")).unwrap_or((name, ""));
        Pattern { prefix: prefix.into(), suffix: rest.into(), digits: None }
    }

    /// `shot_0001.png` → `shot_` + 4 digits + `.png`; `None` without digits before the extension.
    fn sequence(name: &str) -> Option<Pattern> {
        let stem_end = name.rfind('.').unwrap_or(name.len());
        let stem = &name[..stem_end];
        let digits = stem.chars().rev().take_while(char::is_ascii_digit).count();
        (digits > 0).then(|| Pattern {
            prefix: stem[..stem.len() - digits].into(),
            suffix: name[stem_end..].into(),
            digits: Some(digits),
        })
    }

    fn matches(&self, name: &str) -> bool {
        let Some(middle) = name.strip_prefix(&self.prefix).and_then(|it| it.strip_suffix(&self.suffix)) else {
            return false;
        };
        match self.digits {
            Some(n) => middle.len() >= n && middle.chars().all(|it| it.is_ascii_digit()),
            None => {
                let uv = middle.strip_prefix('u').and_then(|it| it.split_once("_v")).is_some_and(|(u, v)| {
                    !u.is_empty() && !v.is_empty() && u.chars().chain(v.chars()).all(|it| it.is_ascii_digit())
                });
                uv || (middle.len() == 4 && middle.chars().all(|it| it.is_ascii_digit()))
            }
        }
    }
}

fn rewritable(kind: DependencyKind) -> bool {
    use DependencyKind as K;
    matches!(kind, K::Library | K::Image | K::Sound | K::Font | K::MovieClip | K::CacheFile | K::Volume)
}

/// The deepest directory holding the main file and every file reached by a relative path from
/// a `.blend` itself reached so (a library reached by an absolute path, and what it reaches,
/// go under `_external/`).
fn root_of(main: &Path, references: &[Reference]) -> PathBuf {
    let mut inside: BTreeSet<PathBuf> = BTreeSet::from([main.to_path_buf()]);
    let mut root = main.parent().map(Path::to_path_buf).unwrap_or_default();
    // Reached in order: a library is analysed after the file that links it.
    for reference in references {
        if !(reference.relative && inside.contains(&reference.from)) {
            continue;
        }
        root = common_ancestor(&root, &reference.dir);
        if reference.kind == DependencyKind::Library
            && let Some(file) = &reference.file
        {
            inside.insert(reference.dir.join(file));
        }
    }
    root
}

/// A file's name in the archive: relative to the root, or under `_external/` by its absolute path.
fn placement(root: &Path, path: &Path) -> String {
    let name = match path.strip_prefix(root) {
        Ok(rest) => components(rest),
        Err(_) => {
            let mut parts = vec![EXTERNAL_DIR.to_string()];
            parts.extend(components(path));
            parts
        }
    };
    name.join("/")
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|it| match it {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn parent_of(name: &str) -> String {
    name.rsplit_once('/').map(|(dir, _)| dir.to_string()).unwrap_or_default()
}

/// `to` relative to `from` (both archive directories, `/`-separated): `lib`, `../assets`, ``.
fn relative_path(from: &str, to: &str) -> String {
    let split = |it: &str| it.split('/').filter(|it| !it.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let (from, to) = (split(from), split(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts = vec!["..".to_string(); from.len() - common];
    parts.extend(to[common..].iter().cloned());
    parts.join("/")
}

/// Whether `stored`, relative to the archive directory `dir`, names the same as `wanted`.
fn resolves_to(dir: &str, stored: &str, wanted: &str) -> bool {
    let resolve = |path: &str| -> Option<Vec<String>> {
        let Location::Relative(parts) = locate(path) else { return None };
        let mut out: Vec<String> = dir.split('/').filter(|it| !it.is_empty()).map(str::to_string).collect();
        for part in parts {
            if part == ".." {
                out.pop()?;
            } else {
                out.push(part);
            }
        }
        Some(out)
    };
    resolve(stored).is_some_and(|it| Some(it) == resolve(wanted))
}

/// `path` with `.` and `..` applied, without asking the file system (Blender resolves `//`
/// paths the same way).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components().zip(b.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_archive_keep_relative_paths_and_mirror_absolute_ones() {
        let root = Path::new("/home/a/project");
        assert_eq!(placement(root, Path::new("/home/a/project/shots/s.blend")), "shots/s.blend");
        assert_eq!(placement(root, Path::new("/mnt/assets/lib.blend")), "_external/mnt/assets/lib.blend");
        assert_eq!(relative_path("shots", "assets"), "../assets");
        assert_eq!(relative_path("", "_external/mnt"), "_external/mnt");
        assert_eq!(relative_path("a/b", "a/b"), "");
        assert!(resolves_to("shots", "//../assets/x.png", "//../assets/x.png"));
        assert!(resolves_to("shots", "//./tex/../../assets/x.png", "//../assets/x.png"));
        assert!(!resolves_to("shots", "/abs/x.png", "//../abs/x.png"));
        assert_eq!(lexical(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
    }

    #[test]
    fn sequences_and_tiles_match_their_siblings_only() {
        let sequence = Pattern::sequence("shot_0001.png").unwrap();
        assert!(sequence.matches("shot_0002.png") && sequence.matches("shot_10000.png"));
        assert!(
            !sequence.matches("shot_.png") && !sequence.matches("shot_0001.jpg") && !sequence.matches("take_0001.png")
        );
        assert!(Pattern::sequence("wood.png").is_none());
        let tiles = Pattern::tiles("tile.<UDIM>.png");
        assert!(tiles.matches("tile.1001.png") && tiles.matches("tile.1012.png"));
        assert!(!tiles.matches("tile.101.png") && !tiles.matches("tile.x.png"));
        assert!(Pattern::tiles("t_<UVTILE>.exr").matches("t_u1_v2.exr"));
    }
}
