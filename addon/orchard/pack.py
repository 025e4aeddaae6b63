"""Packing the open scene for the farm: a copy of the file, the files it needs, one `.zip`.

The approach is the one of the farm's own packer (`crates/blend/src/pack.rs`), done inside
Blender with what Blender knows of the scene:

- The closure: every path the file and its libraries use (libraries, images with their
  sequences and UDIM tiles, sounds, fonts, movie clips, volumes, Alembic/USD caches, strips,
  IES and OSL nodes, point, fluid and ocean caches), each resolved against the file that stores
  it (the main file, or the library it comes from).
- The archive's root is the deepest folder holding the main file and everything reached by
  relative paths, so `//../assets/props.blend` still resolves inside the archive.
- Files reached by absolute paths go under `_external/` (their absolute path mirrored, so
  files beside each other stay beside each other), and the main file's paths to them are
  rewritten, in the copy only, to relative ones.
- The copy is written with `save_as_mainfile(copy=True, relative_remap=False)`, the rewritten
  paths set on their datablocks just for that save and restored right after: the artist's file
  on disk, `bpy.data.filepath` and every path in the session end as they were. Images take
  `filepath_raw`, which does not reload them.

What cannot be mapped is reported, not hidden: a library's own absolute paths (the library is
shipped as it is), a modifier cache named by an absolute path. Missing files are reported by
name.

`collect` and `save_copy` use `bpy` and run on Blender's main thread; `write_zip` does not and
may run in a thread.
"""

import os
import posixpath
import re
import zipfile

import bpy

# The folder of the archive that holds files reached by absolute paths (as the farm's packer).
EXTERNAL_DIR = "_external"
# Most files one archive may hold (the farm's limit on a project's entries).
MAX_FILES = 100000
# Already compressed: stored as they are.
STORED_EXTENSIONS = {
    ".blend", ".png", ".jpg", ".jpeg", ".webp", ".mp4", ".mov", ".mkv", ".avi", ".zip", ".gz",
    ".zst", ".ogg", ".mp3", ".flac", ".m4a", ".jp2", ".exr", ".vdb", ".abc", ".usdz",
}
# A run of digits: the frame number of a sequence, the tile of a UDIM set.
_DIGITS = re.compile(r"\d+")
# Blender's tile tokens in a tiled image's name.
_TILE_TOKEN = re.compile(r"<UDIM>|<UVTILE>", re.IGNORECASE)


class PackError(Exception):
    """Why the scene could not be packed, for a person."""


class Reference:
    """One path the scene uses."""

    def __init__(self, kind, label, stored, owner, *, is_dir=False, expand=None, setter=None, getter=None):
        # What it is ("image", "library"…) and which datablock uses it ("Image 'wall'").
        self.kind = kind
        self.label = label
        # The path as stored in its file.
        self.stored = stored
        # The library whose file stores it, or None for the main file.
        self.owner = owner
        self.is_dir = is_dir
        # "sequence" or "tiles": the stored name stands for a set of files beside it.
        self.expand = expand
        # Set and read the stored path in the session (main file's paths only); None when the
        # path cannot be rewritten.
        self.setter = setter
        self.getter = getter
        self.absolute = None
        # A path found only by Blender's list: not reported when its file does not exist.
        self.optional = False
        # Files on disk it brings (absolute paths).
        self.files = []


class Plan:
    """What goes into the archive, decided before anything is written."""

    def __init__(self):
        # The main `.blend`'s name in the archive (`mainFile` of the job).
        self.main_name = ""
        # Every other file: name in the archive → absolute path on disk.
        self.files = {}
        # (reference, the path to store in the copy) for the main file's paths to rewrite.
        self.rewrites = []
        # (label, stored path) of paths whose files were not found.
        self.missing = []
        # (label, stored path, why) of paths the farm will not find even though the file exists.
        self.unmapped = []
        # The folder on disk that the archive's root stands for.
        self.root = ""
        self.references = []

    def is_single_file(self):
        """Whether the main file needs nothing beside it: the `.blend` alone is the upload."""
        return not self.files

    def total_bytes(self):
        """Bytes of the files beside the main one."""
        total = 0
        for path in self.files.values():
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total

    def missing_names(self):
        """The missing files' names, for a sentence."""
        return sorted({file_name(stored) for _, stored in self.missing})


def collect():
    """Finds every file the open scene needs and decides the archive's layout."""
    main_path = bpy.data.filepath
    main_dir = os.path.dirname(os.path.abspath(main_path)) if main_path else ""
    references = list(_references())
    known = {ref.stored for ref in references if ref.owner is None}
    references += list(_unknown_references(known))
    plan = Plan()
    plan.references = references

    # Which libraries live at a place reached by relative paths from the main file: their own
    # relative paths then keep their meaning only if the archive mirrors that layout.
    anchored = {}

    def is_anchored(owner):
        if owner is None:
            return True
        key = owner.as_pointer()
        if key not in anchored:
            anchored[key] = False  # Cut cycles.
            anchored[key] = owner.filepath.startswith("//") and is_anchored(_parent(owner))
        return anchored[key]

    for ref in references:
        ref.absolute = _resolve(ref.stored, ref.owner)
        if ref.absolute is None:
            if not ref.optional:
                plan.missing.append((ref.label, ref.stored))
            continue
        ref.files = _files_of(ref)
        if not ref.files and not ref.optional:
            plan.missing.append((ref.label, ref.stored))

    # The root: the main file's folder and everything reached relatively from it.
    anchors = [main_dir] if main_dir else []
    for ref in references:
        if ref.files and ref.stored.startswith("//") and is_anchored(ref.owner):
            anchors.append(ref.absolute if ref.is_dir else os.path.dirname(ref.absolute))
    plan.root = _common_dir(anchors) if anchors else ""
    if main_path:
        plan.main_name = _archive_relative(os.path.abspath(main_path), plan.root)
    else:
        plan.main_name = "untitled.blend"

    main_archive_dir = posixpath.dirname(plan.main_name)
    for ref in references:
        if not ref.files:
            continue
        relative = ref.stored.startswith("//")
        if ref.owner is not None and not relative:
            # The path is in a library's file, which goes up as it is.
            plan.unmapped.append((ref.label, ref.stored, "an absolute path inside the library %s"
                                  % file_name(ref.owner.filepath)))
            continue
        if relative and is_anchored(ref.owner):
            place = lambda path: _archive_relative(path, plan.root)  # noqa: E731
        elif relative or _inside(ref.absolute, plan.root) is None:
            place = _external_name
        else:
            place = lambda path: _archive_relative(path, plan.root)  # noqa: E731
        for path in ref.files:
            plan.files.setdefault(place(path), path)
        if relative:
            continue
        # A main file's absolute path: rewrite it to where the archive puts it.
        if ref.setter is None:
            plan.unmapped.append((ref.label, ref.stored, "an absolute path the add-on cannot rewrite"))
            continue
        target = place(ref.absolute if ref.is_dir else os.path.join(os.path.dirname(ref.absolute), "x"))
        if not ref.is_dir:
            target = posixpath.join(posixpath.dirname(target), file_name(ref.stored))
        new_path = "//" + posixpath.relpath(target, main_archive_dir or ".")
        if ref.is_dir and ref.stored.endswith(("/", "\\")):
            new_path += "/"
        plan.rewrites.append((ref, new_path))

    plan.files.pop(plan.main_name, None)
    if len(plan.files) + 1 > MAX_FILES:
        raise PackError("The scene needs more than %d files: more than a farm project may hold" % MAX_FILES)
    return plan


def save_copy(plan, stage_dir):
    """Saves the open scene into `stage_dir` at its place in the archive; returns the path.

    The main file's absolute paths are set to their archive places for the save only: whatever
    happens, the session's paths end as they were. The artist's file is not written.
    """
    destination = os.path.join(stage_dir, *plan.main_name.split("/"))
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    applied = []
    try:
        for ref, new_path in plan.rewrites:
            old_path = ref.getter()
            ref.setter(new_path)
            applied.append((ref, old_path))
        result = bpy.ops.wm.save_as_mainfile(filepath=destination, copy=True, relative_remap=False,
                                             compress=True, check_existing=False)
    finally:
        for ref, old_path in reversed(applied):
            ref.setter(old_path)
    if "FINISHED" not in result or not os.path.isfile(destination):
        raise PackError("Blender could not save a copy of the scene to %s" % destination)
    return destination


def write_zip(plan, main_copy, zip_path, on_progress=None):
    """Writes the archive: the saved copy at `plan.main_name`, the other files at theirs.

    Needs no `bpy`: safe in a thread. `on_progress(done_bytes, total_bytes)` after every file.
    """
    entries = [(plan.main_name, main_copy)] + sorted(plan.files.items())
    total = 0
    for _, path in entries:
        total += os.path.getsize(path)
    done = 0
    with zipfile.ZipFile(zip_path, "w", allowZip64=True) as archive:
        for name, path in entries:
            extension = os.path.splitext(name)[1].lower()
            method = zipfile.ZIP_STORED if extension in STORED_EXTENSIONS else zipfile.ZIP_DEFLATED
            try:
                archive.write(path, name, compress_type=method)
            except OSError as error:
                raise PackError("Cannot read %s: %s" % (path, error.strerror or error)) from None
            done += os.path.getsize(path)
            if on_progress is not None:
                on_progress(done, total)
    return zip_path


# The closure, datablock by datablock.

def _references():
    """Every path the session's data uses, with how to rewrite the main file's own."""
    for library in bpy.data.libraries:
        if _is_packed(library):
            continue
        yield Reference("library", "Library '%s'" % library.name, library.filepath, _parent(library),
                        setter=_attr_setter(library, "filepath"), getter=_attr_getter(library, "filepath"))
    for image in bpy.data.images:
        if image.source not in ("FILE", "SEQUENCE", "MOVIE", "TILED") or _is_packed(image) or not image.filepath:
            continue
        expand = {"SEQUENCE": "sequence", "TILED": "tiles"}.get(image.source)
        yield Reference("image", "Image '%s'" % image.name, image.filepath, image.library, expand=expand,
                        setter=_attr_setter(image, "filepath_raw"), getter=_attr_getter(image, "filepath_raw"))
    for sound in bpy.data.sounds:
        if not _is_packed(sound) and sound.filepath:
            yield _id_reference("sound", "Sound", sound)
    for font in bpy.data.fonts:
        if not _is_packed(font) and font.filepath and font.filepath != "<builtin>":
            yield _id_reference("font", "Font", font)
    for clip in bpy.data.movieclips:
        if clip.filepath:
            expand = "sequence" if clip.source == "SEQUENCE" else None
            yield _id_reference("clip", "Movie clip", clip, expand=expand)
    for volume in getattr(bpy.data, "volumes", ()):
        if not _is_packed(volume) and volume.filepath:
            expand = "sequence" if getattr(volume, "is_sequence", False) else None
            yield _id_reference("volume", "Volume", volume, expand=expand)
    for cache in bpy.data.cache_files:
        if cache.filepath:
            expand = "sequence" if getattr(cache, "is_sequence", False) else None
            yield _id_reference("cache", "Cache file", cache, expand=expand)
    yield from _strip_references()
    yield from _node_references()
    yield from _modifier_references()


def _unknown_references(known):
    """Paths Blender lists for the main file that the walkers above do not know (a datablock
    type added later, an add-on's path): shipped when their file exists, never rewritten."""
    try:
        paths = bpy.utils.blend_paths(absolute=False, packed=False, local=True)
    except Exception:  # An older signature: the walkers' paths are all there is.
        return
    for stored in paths:
        if not stored or stored in known:
            continue
        ref = Reference("other", "Path", stored, None)
        ref.optional = True
        yield ref


def _id_reference(kind, what, datablock, expand=None):
    return Reference(kind, "%s '%s'" % (what, datablock.name), datablock.filepath, datablock.library,
                     expand=expand, setter=_attr_setter(datablock, "filepath"),
                     getter=_attr_getter(datablock, "filepath"))


def _strip_references():
    for scene in bpy.data.scenes:
        editor = scene.sequence_editor
        if editor is None:
            continue
        strips = getattr(editor, "strips_all", None)
        if strips is None:
            strips = getattr(editor, "sequences_all", ())
        for strip in strips:
            label = "Strip '%s' of scene '%s'" % (strip.name, scene.name)
            if strip.type == "IMAGE" and strip.directory:
                for element in strip.elements:
                    stored = strip.directory.rstrip("/\\") + "/" + element.filename
                    yield Reference("strip", label, stored, scene.library,
                                    setter=_strip_directory_setter(strip, element.filename),
                                    getter=_strip_directory_getter(strip, element.filename))
            elif strip.type == "MOVIE" and strip.filepath:
                yield Reference("strip", label, strip.filepath, scene.library,
                                setter=_attr_setter(strip, "filepath"), getter=_attr_getter(strip, "filepath"))


def _node_references():
    """IES lights and OSL scripts read from files, in every node tree."""
    trees = [tree for tree in bpy.data.node_groups]
    for collection in (bpy.data.materials, bpy.data.worlds, bpy.data.lights):
        for datablock in collection:
            tree = getattr(datablock, "node_tree", None)
            if tree is not None:
                trees.append(tree)
    for tree in trees:
        owner = tree.library if tree.library is not None else getattr(tree.id_data, "library", None)
        for node in tree.nodes:
            if node.bl_idname in ("ShaderNodeTexIES", "ShaderNodeScript") and getattr(node, "mode", "") == "EXTERNAL":
                if node.filepath:
                    label = "Node '%s' of '%s'" % (node.name, tree.id_data.name)
                    yield Reference("node", label, node.filepath, owner,
                                    setter=_attr_setter(node, "filepath"), getter=_attr_getter(node, "filepath"))


def _modifier_references():
    """Caches of modifiers and particle systems: shipped, but rewritten only when relative."""
    for obj in bpy.data.objects:
        for modifier in obj.modifiers:
            label = "Modifier '%s' of '%s'" % (modifier.name, obj.name)
            if modifier.type == "FLUID" and modifier.fluid_type == "DOMAIN":
                path = modifier.domain_settings.cache_directory
                if path:
                    yield Reference("cache", label, path, obj.library, is_dir=True)
            elif modifier.type == "OCEAN" and getattr(modifier, "is_cached", False) and modifier.filepath:
                yield Reference("cache", label, modifier.filepath, obj.library, is_dir=True)
            elif modifier.type == "MESH_CACHE" and modifier.filepath:
                yield Reference("cache", label, modifier.filepath, obj.library)
            point_cache = getattr(modifier, "point_cache", None)
            if point_cache is not None and point_cache.use_external and point_cache.filepath:
                yield Reference("cache", label, point_cache.filepath, obj.library, is_dir=True)
        for system in obj.particle_systems:
            point_cache = system.point_cache
            if point_cache.use_external and point_cache.filepath:
                label = "Particles '%s' of '%s'" % (system.name, obj.name)
                yield Reference("cache", label, point_cache.filepath, obj.library, is_dir=True)


# Paths.

def _resolve(stored, owner):
    """The absolute path a stored path names, or None when it cannot be known."""
    if stored.startswith("//"):
        base = bpy.path.abspath(owner.filepath, library=_parent(owner)) if owner is not None else bpy.data.filepath
        if not base:
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(base)), stored[2:].replace("\\", os.sep))
    else:
        path = stored
    return os.path.normpath(os.path.abspath(path))


def _files_of(ref):
    """The files on disk a reference brings; empty when none exist."""
    path = ref.absolute
    if ref.is_dir:
        if not os.path.isdir(path):
            return []
        found = []
        for folder, _, names in os.walk(path):
            for name in sorted(names):
                found.append(os.path.join(folder, name))
                if len(found) > MAX_FILES:
                    raise PackError("%s holds more than %d files" % (path, MAX_FILES))
        return found
    if ref.expand is None:
        return [path] if os.path.isfile(path) else []
    folder, name = os.path.split(path)
    pattern = _set_pattern(name, ref.expand)
    if pattern is None or not os.path.isdir(folder):
        return [path] if os.path.isfile(path) else []
    return [os.path.join(folder, it) for it in sorted(os.listdir(folder)) if pattern.fullmatch(it)]


def _set_pattern(name, expand):
    """The names of a set's files: the tile token or the last run of digits, any number."""
    if expand == "tiles" and _TILE_TOKEN.search(name):
        parts = _TILE_TOKEN.split(name)
        return re.compile(r"\d+".join(re.escape(part) for part in parts))
    runs = list(_DIGITS.finditer(name))
    if not runs:
        return None
    last = runs[-1]
    return re.compile(re.escape(name[:last.start()]) + r"\d+" + re.escape(name[last.end():]))


def _common_dir(paths):
    try:
        return os.path.commonpath([os.path.abspath(path) for path in paths])
    except ValueError:  # Different drives: the main file's folder, the rest goes external.
        return os.path.abspath(paths[0])


def _inside(path, root):
    """`path` relative to `root` when it is inside, else None."""
    if not root:
        return None
    try:
        relative = os.path.relpath(path, root)
    except ValueError:
        return None
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return None
    return relative


def _archive_relative(path, root):
    relative = _inside(path, root)
    if relative is None:
        return _external_name(path)
    return relative.replace(os.sep, "/")


def _external_name(path):
    """`_external/` + the absolute path mirrored: `C:\\tex\\a.png` → `_external/C/tex/a.png`."""
    drive, rest = os.path.splitdrive(os.path.abspath(path))
    parts = [drive.strip("\\/:").replace(":", "")] if drive else []
    parts += [part for part in rest.replace("\\", "/").split("/") if part]
    return "/".join([EXTERNAL_DIR] + [part for part in parts if part])


def file_name(stored):
    """The last part of a stored path (`//textures/wood.png` → `wood.png`), for messages."""
    return stored.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _parent(library):
    return getattr(library, "parent", None)


def _is_packed(datablock):
    packed = getattr(datablock, "packed_file", None)
    if packed is not None:
        return True
    return bool(getattr(datablock, "packed_files", None))


def _attr_setter(target, name):
    return lambda value: setattr(target, name, value)


def _attr_getter(target, name):
    return lambda: getattr(target, name)


def _strip_directory_setter(strip, filename):
    # A strip's stored path is its directory; the element's name stays.
    return lambda value: setattr(strip, "directory", posixpath.dirname(value) + "/")


def _strip_directory_getter(strip, filename):
    directory = strip.directory
    return lambda: directory.rstrip("/\\") + "/" + filename
