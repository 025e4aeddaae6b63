//! External files a `.blend` refers to (what Blender Asset Tracer v1 follows, blend-format.md
//! §1.8), each with whether the farm will have it, and the linked libraries' own, recursively.
//!
//! Paths are reported as stored (with Windows separators turned into `/`, as Blender does when it
//! loads a file), so `//` means "beside the `.blend` that stores the path":
//! for data inside a linked library that is the library, which [`Dependency::library`] names. Status
//! is decided on the project, reached only through the [`Project`] lookup trait: the `.blend`'s
//! directory on disk ([`Directory`]), the `.zip` archive (`ZipProject`), or nothing ([`Detached`]).
//!
//! A linked library contributes every dependency of its own data, not only of what the main file
//! uses from it (Blender and BAT expand from the linked IDs): a farm ships whole libraries, so what
//! they need is what the project needs. An image sequence is checked by the frame its path names, a
//! UDIM set by every tile it lists.
//!
//! Node-level paths are read from every node tree: node groups (`NT` blocks) and the trees embedded
//! in materials, lights, worlds, scenes, textures and line styles (`DATA` blocks behind their
//! `nodetree` pointer): IES textures and OSL script nodes in external mode (`NodeShaderTexIES`,
//! `NodeShaderScript`; internal ones use a text block, which is in the file). Compositor File
//! Output nodes are not followed: they name where a render *writes*, not something it reads, and the
//! analysis (orchard.md §5) lists inputs only, so a base path that does not exist yet is no missing
//! dependency.
//!
//! Modifier bakes: an Ocean modifier's `cachepath` once baked (`cached`; an unbaked ocean is
//! simulated, whatever its path says), and each geometry-nodes bake that Blender reads from disk
//! (`NodesModifierBake` whose target, or else the modifier's, is disk, and that is not packed): the
//! bake's own directory when it has a custom path, else `<modifier bake directory>/<bake id>`
//! (Blender's `get_node_bake_path`; on disk the modifier's field is still `simulation_bake_directory`).
//! Multires displacement saved to an external file is the mesh's `ldata.external` (`fdata` in files
//! older than 2.63), a `CustomDataExternal` whose `filename` is the path.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::AnalyzeError;
use crate::model::{Dependency, DependencyKind, DependencyStatus};
use crate::paths::{Location, blender_path, locate, normalize, relative_to, segments, stem_of, tile_path};
use crate::read::{BlendFile, MAX_LIST_ITEMS, StructView, is_linked};
use crate::{AnalyzeOptions, compression};

/// Most linked libraries opened while following libraries of libraries. Each is parsed and
/// dropped in turn, so this bounds time, not memory.
pub const MAX_LIBRARIES: usize = 1_000;

/// Most dependencies reported for one project: a hostile file cannot make the analysis huge.
pub const MAX_DEPENDENCIES: usize = 100_000;

/// Image sources that read files (`IMA_SRC_*`): FILE 1, SEQUENCE 2, MOVIE 3, TILED 6.
const FILE_IMAGE_SOURCES: &[i64] = &[1, 2, 3, 6];
const IMAGE_SOURCE_TILED: i64 = 6;
/// `Sequence.type`: IMAGE 0, META 1, MOVIE 3.
const STRIP_IMAGE: i64 = 0;
const STRIP_META: i64 = 1;
const STRIP_MOVIE: i64 = 3;
/// Meta strips nest; real edits go a few levels deep.
const MAX_META_DEPTH: usize = 32;
/// `Text.flags & TXT_ISMEM`: the text lives only in the file.
const TEXT_IN_MEMORY: i64 = 1 << 2;
/// `PointCache.flag`: PTCACHE_DISK_CACHE, PTCACHE_EXTERNAL.
const PTCACHE_DISK_CACHE: i64 = 64;
const PTCACHE_EXTERNAL: i64 = 512;
/// `FluidModifierData.type & MOD_FLUID_TYPE_DOMAIN`.
const FLUID_DOMAIN: i64 = 1;
/// `NodeShaderTexIES.mode` NODE_IES_EXTERNAL and `NodeShaderScript.mode` NODE_SCRIPT_EXTERNAL.
const NODE_MODE_EXTERNAL: i64 = 1;
/// `NodesModifierBake.flag & NODES_MODIFIER_BAKE_CUSTOM_PATH`.
const BAKE_CUSTOM_PATH: i64 = 1 << 1;
/// `NodesModifierBakeTarget`: INHERIT 0, PACKED 1, DISK 2.
const BAKE_TARGET_PACKED: i64 = 1;
const BAKE_TARGET_DISK: i64 = 2;
/// Bakes of one geometry-nodes modifier: one per bake or simulation node, a few in real files.
const MAX_BAKES: usize = 10_000;
/// ID types whose `nodetree` embeds a node tree, with their on-disk struct names (lights are
/// still `Lamp` in the DNA).
const NODE_TREE_OWNERS: &[(&[u8; 4], &str)] = &[
    (b"MA\0\0", "Material"),
    (b"LA\0\0", "Lamp"),
    (b"WO\0\0", "World"),
    (b"SC\0\0", "Scene"),
    (b"TE\0\0", "Tex"),
    (b"LS\0\0", "FreestyleLineStyle"),
];

/// The files relative (`//`) dependency paths are looked up in, and linked libraries read from.
///
/// Every `path` is normalised and relative to the project's root: `/`-separated, with no empty,
/// `.` or `..` segments. `Sync`, because a large file is analysed beside the thread hashing it.
pub(crate) trait Project: Sync {
    /// Whether the project holds a regular file at `path`.
    fn has_file(&self, path: &str) -> bool;
    /// Whether the project holds a directory at `path` (caches are directories).
    fn has_dir(&self, path: &str) -> bool;
    /// A linked library's bytes, refused beyond `limit` bytes (an archive applies the limit it
    /// was opened with).
    fn read_library(&self, path: &str, limit: u64) -> Result<Vec<u8>, AnalyzeError>;
}

/// A `.blend` on disk: the project is its directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Directory<'a>(pub(crate) &'a Path);

/// Bytes with no location: nothing relative can be found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detached;

/// The main `.blend` being analysed: the project it belongs to and its place in it.
#[derive(Clone, Copy)]
pub(crate) struct MainBlend<'a> {
    /// Where its relative paths are looked up.
    pub(crate) project: &'a dyn Project,
    /// Its directory inside the project, `/`-separated, `""` at the root.
    pub(crate) dir: &'a str,
    /// Its file name, which Blender names disk caches after.
    pub(crate) name: &'a str,
}

/// What a path must be to count as present.
enum Check {
    /// Stored inside the `.blend`.
    Packed,
    /// A regular file.
    File,
    /// A directory (caches).
    Dir,
    /// Every UDIM tile, `<UDIM>` replaced by each number.
    Tiles(Vec<i64>),
}

/// The `.blend` whose paths are being read.
struct Holder {
    /// Its directory, as segments from the project root.
    dir: Vec<String>,
    /// `None` for the main file; for a library, its path relative to the main file (`//lib/x.blend`).
    label: Option<String>,
    /// Its file name without `.blend`, which Blender names disk caches after.
    stem: String,
}

/// The analysis-wide state: where the project is, and what has been found.
struct Walk<'a> {
    project: &'a dyn Project,
    opts: &'a AnalyzeOptions,
    main_dir: Vec<String>,
    out: Vec<Dependency>,
    seen: HashSet<(DependencyKind, String, Option<String>)>,
    /// Project locations of every library already listed, so a library reached twice is listed once.
    libraries: HashSet<Vec<String>>,
    /// Libraries found present, to open in turn: (location, label).
    queue: VecDeque<(Vec<String>, String)>,
    /// Libraries that exist but could not be read: (label, why).
    unreadable: Vec<(String, String)>,
}

/// Dependencies of the main file and, when the project holds them, of its linked libraries.
///
/// Returns the dependencies and the libraries that exist but could not be read, with the reason.
pub(crate) fn collect(
    file: &BlendFile<'_>,
    main: MainBlend<'_>,
    opts: &AnalyzeOptions,
) -> (Vec<Dependency>, Vec<(String, String)>) {
    let main_name = main.name;
    let main_stem = stem_of(main_name);
    let main_dir = segments(main.dir);
    let mut walk = Walk {
        project: main.project,
        opts,
        main_dir: main_dir.clone(),
        out: Vec::new(),
        seen: HashSet::new(),
        // A library that links the main file back is not a dependency to open again.
        libraries: HashSet::from([main_dir.iter().cloned().chain([main_name.to_string()]).collect()]),
        queue: VecDeque::new(),
        unreadable: Vec::new(),
    };
    walk.file(file, &Holder { dir: main_dir, label: None, stem: main_stem });
    let mut opened = 0;
    while let Some((location, label)) = walk.queue.pop_front() {
        if opened >= MAX_LIBRARIES {
            break;
        }
        opened += 1;
        match walk.read_library(&location) {
            Ok(bytes) => {
                let stem = location.last().map(|n| stem_of(n)).unwrap_or_default();
                let dir = location.get(..location.len().saturating_sub(1)).unwrap_or(&[]).to_vec();
                let holder = Holder { dir, label: Some(label.clone()), stem };
                match parse_library(&bytes, opts) {
                    Ok(data) => match BlendFile::parse(&data) {
                        Ok(lib) => walk.file(&lib, &holder),
                        Err(e) => walk.unreadable.push((label, e.to_string())),
                    },
                    Err(e) => walk.unreadable.push((label, e.to_string())),
                }
            }
            Err(e) => walk.unreadable.push((label, e.to_string())),
        }
    }
    (walk.out, walk.unreadable)
}

fn parse_library<'b>(bytes: &'b [u8], opts: &AnalyzeOptions) -> Result<std::borrow::Cow<'b, [u8]>, AnalyzeError> {
    compression::decompress(bytes, opts.max_decompressed_bytes).map(|(_, data)| data)
}

impl Walk<'_> {
    /// Every dependency one `.blend` stores.
    fn file(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        self.libraries_of(file, holder);
        self.images(file, holder);
        self.simple(file, holder, b"SO\0\0", "bSound", "name", DependencyKind::Sound);
        self.simple(file, holder, b"VF\0\0", "VFont", "name", DependencyKind::Font);
        self.simple(file, holder, b"MC\0\0", "MovieClip", "name", DependencyKind::MovieClip);
        self.simple(file, holder, b"CF\0\0", "CacheFile", "filepath", DependencyKind::CacheFile);
        self.simple(file, holder, b"VO\0\0", "Volume", "filepath", DependencyKind::Volume);
        self.texts(file, holder);
        self.strips(file, holder);
        self.objects(file, holder);
        self.node_trees(file, holder);
        self.meshes(file, holder);
    }

    fn push(&mut self, kind: DependencyKind, path: String, check: Check, holder: &Holder) {
        if path.is_empty() && !matches!(check, Check::Packed) || self.out.len() >= MAX_DEPENDENCIES {
            return;
        }
        // Reported as Blender reads it (`\` becomes `/`), judged as stored (a UNC path stays absolute).
        let shown = blender_path(&path);
        if !self.seen.insert((kind, shown.clone(), holder.label.clone())) {
            return;
        }
        let status = self.status(&path, &check, holder);
        self.out.push(Dependency { kind, path: shown, status, library: holder.label.clone() });
    }

    fn libraries_of(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"LI\0\0") {
            let Some(lib) = file.view_block_as(block, "Library") else {
                continue;
            };
            // On disk the field is still called `name` (runtime name `filepath`). 5.0's archive
            // libraries hold packed linked data inside the file itself.
            let path = lib.string("name").unwrap_or_default();
            let packed = is_packed(&lib) || lib.ptr("archive_parent_library").is_some_and(|p| p != 0);
            let location = (!packed).then(|| self.locate_in_project(&path, holder)).flatten();
            if let Some(loc) = &location
                && !self.libraries.insert(loc.clone())
            {
                // Reached before (the main file links it directly, or another library does).
                continue;
            }
            let check = if packed { Check::Packed } else { Check::File };
            let before = self.out.len();
            self.push(DependencyKind::Library, path, check, holder);
            let listed_present = self.out.get(before).is_some_and(|d| d.status == DependencyStatus::Present);
            if let Some(loc) = location
                && listed_present
            {
                let label = self.label(&loc);
                self.queue.push_back((loc, label));
            }
        }
    }

    fn images(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"IM\0\0") {
            let Some(image) = file.view_block_as(block, "Image") else {
                continue;
            };
            // A linked image is a placeholder: the library lists it (relative to itself).
            if is_linked(&image) {
                continue;
            }
            let source = image.int("source").unwrap_or(0);
            if !FILE_IMAGE_SOURCES.contains(&source) {
                continue;
            }
            let path = image.string("name").unwrap_or_default();
            let check = if is_packed(&image) {
                Check::Packed
            } else if source == IMAGE_SOURCE_TILED {
                let tiles = image.list("tiles", "ImageTile", MAX_LIST_ITEMS);
                Check::Tiles(tiles.iter().filter_map(|t| t.int("tile_number")).collect())
            } else {
                Check::File
            };
            self.push(DependencyKind::Image, path, check, holder);
        }
    }

    /// An ID type with one path field and an optional `packedfile`.
    fn simple(
        &mut self,
        file: &BlendFile<'_>,
        holder: &Holder,
        code: &[u8; 4],
        struct_name: &str,
        field: &str,
        kind: DependencyKind,
    ) {
        for block in file.blocks.with_code(code) {
            let Some(id) = file.view_block_as(block, struct_name) else {
                continue;
            };
            if is_linked(&id) {
                continue;
            }
            let path = id.string(field).unwrap_or_default();
            // Text objects without a font file of their own use Blender's built-in font.
            if kind == DependencyKind::Font && path == "<builtin>" {
                continue;
            }
            let check = if is_packed(&id) { Check::Packed } else { Check::File };
            self.push(kind, path, check, holder);
        }
    }

    fn texts(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"TX\0\0") {
            let Some(text) = file.view_block_as(block, "Text") else {
                continue;
            };
            if is_linked(&text) || text.int("flags").is_some_and(|f| f & TEXT_IN_MEMORY != 0) {
                continue;
            }
            // `Text.name` (runtime `filepath`) is a `char *`, not an array.
            let path = text.string_ptr("name").unwrap_or_default();
            self.push(DependencyKind::Text, path, Check::File, holder);
        }
    }

    /// Image and movie strips of every local scene's sequencer (sound strips use `SO` sounds).
    fn strips(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"SC\0\0") {
            let Some(scene) = file.view_block_as(block, "Scene") else {
                continue;
            };
            if is_linked(&scene) {
                continue;
            }
            let Some(ed) = scene.ptr("ed").filter(|&p| p != 0).and_then(|p| file.deref_as(p, "Editing")) else {
                continue;
            };
            let mut paths = Vec::new();
            strip_paths(&ed, 0, &mut paths);
            for path in paths {
                self.push(DependencyKind::Strip, path, Check::File, holder);
            }
        }
    }

    /// Disk caches and cache files of local objects' modifiers and particle systems.
    fn objects(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"OB\0\0") {
            let Some(ob) = file.view_block_as(block, "Object") else {
                continue;
            };
            if is_linked(&ob) {
                continue;
            }
            let mut caches = Vec::new();
            for m in ob.list_typed("modifiers", MAX_LIST_ITEMS) {
                match m.struct_name().unwrap_or("") {
                    "ClothModifierData" => caches.extend(m.ptr("point_cache")),
                    "SoftbodyModifierData" => {
                        let soft = ob.ptr("soft").and_then(|p| file.deref_as(p, "SoftBody"));
                        let shared =
                            soft.and_then(|s| s.ptr("shared")).and_then(|p| file.deref_as(p, "SoftBody_Shared"));
                        caches.extend(shared.or(soft).and_then(|s| s.ptr("pointcache")));
                    }
                    "DynamicPaintModifierData" => {
                        let canvas = m.ptr("canvas").and_then(|p| file.deref_as(p, "DynamicPaintCanvasSettings"));
                        for surface in
                            canvas.map(|c| c.list("surfaces", "DynamicPaintSurface", 1_000)).unwrap_or_default()
                        {
                            caches.extend(surface.ptr("pointcache"));
                        }
                    }
                    "FluidModifierData" if m.int("type").is_some_and(|t| t & FLUID_DOMAIN != 0) => {
                        let domain = m.ptr("domain").and_then(|p| file.deref_as(p, "FluidDomainSettings"));
                        let dir = domain.and_then(|d| d.string("cache_directory")).unwrap_or_default();
                        self.push(DependencyKind::FluidCache, dir, Check::Dir, holder);
                    }
                    "MeshCacheModifierData" => {
                        let path = m.string("filepath").unwrap_or_default();
                        self.push(DependencyKind::MeshCache, path, Check::File, holder);
                    }
                    "OceanModifierData" if m.int("cached").is_some_and(|c| c != 0) => {
                        let path = m.string("cachepath").unwrap_or_default();
                        self.push(DependencyKind::OceanCache, path, Check::Dir, holder);
                    }
                    "NodesModifierData" => {
                        for path in node_bake_paths(&m) {
                            self.push(DependencyKind::GeometryNodesBake, path, Check::Dir, holder);
                        }
                    }
                    _ => {}
                }
            }
            for psys in ob.list("particlesystem", "ParticleSystem", MAX_LIST_ITEMS) {
                caches.extend(psys.ptr("pointcache"));
            }
            for ptr in caches {
                let Some(pc) = file.deref_as(ptr, "PointCache") else {
                    continue;
                };
                let flag = pc.int("flag").unwrap_or(0);
                if flag & PTCACHE_DISK_CACHE == 0 {
                    continue;
                }
                // Blender's `ptcache_path`: an external cache names its directory, otherwise it
                // is `blendcache_<file name>` beside the .blend that owns the object.
                let path = if flag & PTCACHE_EXTERNAL != 0 {
                    pc.string("path").unwrap_or_default()
                } else {
                    format!("//blendcache_{}/", holder.stem)
                };
                self.push(DependencyKind::PointCache, path, Check::Dir, holder);
            }
        }
    }

    /// IES textures and OSL scripts in external mode, in every local node tree.
    fn node_trees(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        let mut seen = HashSet::new();
        let mut trees = Vec::new();
        for block in file.blocks.with_code(b"NT\0\0") {
            if seen.insert(block.old) {
                trees.push(*block);
            }
        }
        for &(code, struct_name) in NODE_TREE_OWNERS {
            for block in file.blocks.with_code(code) {
                let Some(owner) = file.view_block_as(block, struct_name) else {
                    continue;
                };
                if is_linked(&owner) {
                    continue;
                }
                let ptr = owner.ptr("nodetree").unwrap_or(0);
                if let Some(tree) = file.blocks.by_old(ptr)
                    && seen.insert(ptr)
                {
                    trees.push(*tree);
                }
            }
        }
        for block in trees {
            let Some(tree) = file.view_block_as(&block, "bNodeTree") else {
                continue;
            };
            if is_linked(&tree) {
                continue;
            }
            for node in tree.list("nodes", "bNode", MAX_LIST_ITEMS) {
                let (kind, storage) = match node.string("idname").as_deref() {
                    Some("ShaderNodeTexIES") => (DependencyKind::IesProfile, "NodeShaderTexIES"),
                    Some("ShaderNodeScript") => (DependencyKind::OslScript, "NodeShaderScript"),
                    _ => continue,
                };
                let Some(data) = node.ptr("storage").and_then(|p| file.deref_as(p, storage)) else {
                    continue;
                };
                if data.int("mode") != Some(NODE_MODE_EXTERNAL) {
                    continue;
                }
                let path = data.string("filepath").unwrap_or_default();
                self.push(kind, path, Check::File, holder);
            }
        }
    }

    /// Multires displacement stored in an external file (`CustomDataExternal`).
    fn meshes(&mut self, file: &BlendFile<'_>, holder: &Holder) {
        for block in file.blocks.with_code(b"ME\0\0") {
            let Some(mesh) = file.view_block_as(block, "Mesh") else {
                continue;
            };
            if is_linked(&mesh) {
                continue;
            }
            for layers in ["ldata", "fdata"] {
                let external = mesh.sub(layers).and_then(|cd| cd.ptr("external"));
                let Some(ext) = external.and_then(|p| file.deref_as(p, "CustomDataExternal")) else {
                    continue;
                };
                let path = ext.string("filename").unwrap_or_default();
                self.push(DependencyKind::MeshDisplacement, path, Check::File, holder);
            }
        }
    }

    /// Where a stored path points in the project, as segments from its root; `None` for an
    /// absolute path or one that climbs out of the project.
    fn locate_in_project(&self, path: &str, holder: &Holder) -> Option<Vec<String>> {
        let Location::Relative(rel) = locate(path) else {
            return None;
        };
        normalize(&holder.dir, &rel)
    }

    fn status(&self, path: &str, check: &Check, holder: &Holder) -> DependencyStatus {
        if matches!(check, Check::Packed) {
            return DependencyStatus::Packed;
        }
        let Some(parts) = self.locate_in_project(path, holder) else {
            return DependencyStatus::OutsideProject;
        };
        if parts.is_empty() {
            return DependencyStatus::Missing;
        }
        let joined = parts.join("/");
        let project = self.project;
        let found = match check {
            Check::Packed => true,
            Check::File => project.has_file(&joined),
            Check::Dir => project.has_dir(&joined),
            Check::Tiles(tiles) => !tiles.is_empty() && tiles.iter().all(|&t| project.has_file(&tile_path(&joined, t))),
        };
        if found { DependencyStatus::Present } else { DependencyStatus::Missing }
    }

    /// A library's bytes, under the same size cap as the main file.
    fn read_library(&self, location: &[String]) -> Result<Vec<u8>, AnalyzeError> {
        self.project.read_library(&location.join("/"), self.opts.max_decompressed_bytes)
    }

    /// A project location as a path relative to the main file: `//lib/x.blend`, `//../libs/x.blend`.
    fn label(&self, location: &[String]) -> String {
        relative_to(&self.main_dir, location)
    }
}

impl Project for Directory<'_> {
    fn has_file(&self, path: &str) -> bool {
        self.0.join(path).is_file()
    }

    fn has_dir(&self, path: &str) -> bool {
        self.0.join(path).is_dir()
    }

    fn read_library(&self, path: &str, limit: u64) -> Result<Vec<u8>, AnalyzeError> {
        let path = self.0.join(path);
        let io_err = |source| AnalyzeError::Io { path: path.clone(), source };
        let file = File::open(&path).map_err(io_err)?;
        if file.metadata().map_err(io_err)?.len() > limit {
            return Err(AnalyzeError::TooLarge { limit });
        }
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
        Ok(bytes)
    }
}

impl Project for Detached {
    fn has_file(&self, _path: &str) -> bool {
        false
    }

    fn has_dir(&self, _path: &str) -> bool {
        false
    }

    fn read_library(&self, _path: &str, _limit: u64) -> Result<Vec<u8>, AnalyzeError> {
        Err(AnalyzeError::corrupt("no project to read the library from"))
    }
}

/// Paths of the image and movie strips in an `Editing` (or a meta strip), meta strips included.
fn strip_paths(owner: &StructView<'_>, depth: usize, out: &mut Vec<String>) {
    let file = owner.file();
    for seq in owner.list("seqbase", "Sequence", MAX_LIST_ITEMS) {
        let kind = seq.int("type").unwrap_or(-1);
        if kind == STRIP_META && depth < MAX_META_DEPTH {
            strip_paths(&seq, depth + 1, out);
            continue;
        }
        if kind != STRIP_IMAGE && kind != STRIP_MOVIE {
            continue;
        }
        let Some(strip) = seq.ptr("strip").and_then(|p| file.deref_as(p, "Strip")) else {
            continue;
        };
        let dir = strip.string("dir").unwrap_or_default();
        let cap = if kind == STRIP_MOVIE { 1 } else { MAX_LIST_ITEMS };
        for elem in strip.ptr("stripdata").map(|p| file.deref_array(p, "StripElem", cap)).unwrap_or_default() {
            let name = elem.string("name").unwrap_or_default();
            if !name.is_empty() {
                out.push(format!("{dir}{name}"));
            }
        }
    }
}

/// The directories a geometry-nodes modifier's bakes are read from (Blender's `get_node_bake_path`).
///
/// Only bakes that target the disk and are not packed; 4.0, which has no per-bake list, bakes into
/// the modifier's directory.
fn node_bake_paths(modifier: &StructView<'_>) -> Vec<String> {
    let file = modifier.file();
    let base = modifier
        .string_ptr("simulation_bake_directory")
        .or_else(|| modifier.string_ptr("bake_directory"))
        .unwrap_or_default();
    let Some(bakes_ptr) = modifier.ptr("bakes") else {
        return if base.is_empty() { Vec::new() } else { vec![base] };
    };
    let n_bakes = modifier.int("bakes_num").and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let modifier_target = modifier.int("bake_target");
    let mut out = Vec::new();
    for bake in file.deref_array(bakes_ptr, "NodesModifierBake", n_bakes.min(MAX_BAKES)) {
        if bake.ptr("packed").is_some_and(|p| p != 0) {
            continue;
        }
        // Before 4.2 there are no targets: every bake goes to disk.
        let target = match (bake.int("bake_target"), modifier_target) {
            (Some(t), _) if t != 0 => t,
            (_, Some(t)) if t != 0 => t,
            (None, None) => BAKE_TARGET_DISK,
            _ => BAKE_TARGET_PACKED,
        };
        if target != BAKE_TARGET_DISK {
            continue;
        }
        let path = if bake.int("flag").is_some_and(|f| f & BAKE_CUSTOM_PATH != 0) {
            bake.string_ptr("directory").unwrap_or_default()
        } else if base.is_empty() {
            String::new()
        } else {
            let id = bake.int("id").unwrap_or(0);
            format!("{}/{id}", base.trim_end_matches(['/', '\\']))
        };
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

/// `packedfile` set, or (5.x) a non-empty `packedfiles` list.
fn is_packed(view: &StructView<'_>) -> bool {
    view.ptr("packedfile").is_some_and(|p| p != 0)
        || view.sub("packedfiles").and_then(|lb| lb.ptr("first")).is_some_and(|p| p != 0)
}
