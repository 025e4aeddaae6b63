"""Orchard's Blender driver.

Blender runs it after loading the scene:

    blender -b --disable-autoexec --factory-startup SCENE.blend --python orchard_driver.py -- TASK.json

It applies the job's final render config to the scene, renders the task's frames one by one
and prints one JSON line per event on stdout, prefixed with ``ORCHARD ``:

    ORCHARD {"event": "started", "blender": "3.4.1", "scene": "Scene"}
    ORCHARD {"event": "frame", "frame": 1, "path": "/…/0001.png", "seconds": 0.41,
             "composites": [{"node": "File Output", "path": "/…/composite/0/depth0001.png",
                             "relativePath": "depth0001.png"}]}
    ORCHARD {"event": "done"}
    ORCHARD {"event": "error", "message": "…"}     (then exit status 3)

Warm sessions: when the task has ``"warm": true``, Blender stays open after ``done`` with the
scene loaded and the config applied, and reads further tasks of the same job from stdin, one
JSON object a line (``{"frames": [...], "outputDir": "..."}``); each ends with ``done``.
End of input, or ``{"cmd": "quit"}``, exits.

Probe: ``blender -b --factory-startup --python orchard_driver.py -- --probe`` prints
``{"event": "capabilities", "version": ..., "oidn": ..., "gpuBackends": [...]}``.

Blender as a Python module (PyPI ``bpy``) runs the same driver as a script:

    python orchard_driver.py --scene SCENE.blend [--threads N] -- TASK.json

It opens the scene with scripts disabled (``use_scripts=False``, as ``--disable-autoexec``).

Blender's own output is not parsed: its format changes between versions.
"""

import json
import math
import os
import sys
import time
import traceback

import bpy

PREFIX = "ORCHARD "
EXIT_CONFIG_ERROR = 3


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(PREFIX + json.dumps(fields) + "\n")
    sys.stdout.flush()


class ConfigError(Exception):
    pass


def enum_items(owner, prop):
    """The values an enum accepts now, including ones filled at run time (OCIO views)."""
    try:
        setattr(owner, prop, "\x01orchard-probe")
    except TypeError as e:
        # Blender lists the valid items in the message: ... not found in ('A', 'B')
        text = str(e)
        start, end = text.rfind("("), text.rfind(")")
        if 0 <= start < end:
            return [item.strip().strip("'") for item in text[start + 1 : end].split(",") if item.strip()]
    return [item.identifier for item in owner.bl_rna.properties[prop].enum_items]


def set_enum(owner, prop, value, field):
    # Some enums (engines, devices) are filled at run time, so ask Blender rather than RNA.
    try:
        setattr(owner, prop, value)
    except TypeError as e:
        raise ConfigError(f"{field}: this Blender cannot use {value!r} ({e})") from None


def apply_engine(scene, engine):
    render = scene.render
    try:
        render.engine = engine
    except TypeError:
        # EEVEE's identifier changed in 4.2 and back in 5.0; the engine is the same.
        aliases = {"BLENDER_EEVEE": "BLENDER_EEVEE_NEXT", "BLENDER_EEVEE_NEXT": "BLENDER_EEVEE"}
        set_enum(render, "engine", aliases.get(engine, engine), "renderEngine")


def apply_devices(scene, config):
    backend = config.get("computeDeviceType")
    if scene.render.engine != "CYCLES":
        return
    if not backend or backend == "NONE":
        scene.cycles.device = "CPU"
        return
    prefs = bpy.context.preferences.addons["cycles"].preferences
    set_enum(prefs, "compute_device_type", backend, "computeDeviceType")
    prefs.get_devices()
    gpus = [d for d in prefs.devices if d.type == backend]
    if not gpus:
        raise ConfigError(f"computeDeviceType: no {backend} device on this worker")
    wanted = config.get("gpuCount") or len(gpus)
    for idx, device in enumerate(gpus):
        device.use = idx < wanted
    scene.cycles.device = "GPU"


def apply_output(scene, config):
    settings = scene.render.image_settings
    fmt = config["outputFormat"]
    if fmt == "OPEN_EXR_MULTILAYER" and hasattr(settings, "media_type"):
        # Blender 5.x moved multilayer EXR to a media type.
        settings.media_type = "MULTI_LAYER_IMAGE"
    else:
        set_enum(settings, "file_format", fmt, "outputFormat")
    out = config.get("outputSettings") or {}
    if out.get("colorMode"):
        set_enum(settings, "color_mode", out["colorMode"], "outputSettings.colorMode")
    if out.get("colorDepth"):
        set_enum(settings, "color_depth", out["colorDepth"], "outputSettings.colorDepth")
    if out.get("exrCodec") and fmt.startswith("OPEN_EXR"):
        set_enum(settings, "exr_codec", out["exrCodec"], "outputSettings.exrCodec")
    if out.get("tiffCodec") and fmt == "TIFF":
        set_enum(settings, "tiff_codec", out["tiffCodec"], "outputSettings.tiffCodec")
    if out.get("compression") is not None:
        settings.compression = int(out["compression"])
    if out.get("quality") is not None:
        settings.quality = int(out["quality"])


def apply_color_management(scene, preset):
    if preset != "aces":
        return
    view = scene.view_settings
    aces = [name for name in enum_items(view, "view_transform") if name.upper().startswith("ACES")]
    if not aces:
        raise ConfigError(
            "colorManagementPreset: 'aces' needs an OCIO config with an ACES view transform on the worker"
        )
    view.view_transform = aces[-1]


def apply_config(scene, config):
    render = scene.render
    apply_engine(scene, config["renderEngine"])
    width, height = config["resolution"]
    render.resolution_x = int(width)
    render.resolution_y = int(height)
    render.resolution_percentage = int(config.get("resolutionPercentage") or 100)
    fps = config.get("fps")
    if fps:
        whole = math.ceil(fps)
        render.fps = whole
        render.fps_base = whole / fps
    samples = config.get("sampleCount")
    if render.engine == "CYCLES":
        cycles = scene.cycles
        if samples:
            cycles.samples = int(samples)
        if config.get("denoisingEnabled") is not None:
            cycles.use_denoising = bool(config["denoisingEnabled"])
        # The denoiser matters only when denoising is on; a build without OIDN refuses even
        # to name it.
        if config.get("denoiserType") and cycles.use_denoising:
            set_enum(cycles, "denoiser", config["denoiserType"], "denoiserType")
        if config.get("useTiling") is not None and hasattr(cycles, "use_auto_tile"):
            cycles.use_auto_tile = bool(config["useTiling"])
        if config.get("tileSize") and hasattr(cycles, "tile_size"):
            cycles.tile_size = int(config["tileSize"])
    elif render.engine.startswith("BLENDER_EEVEE") and samples:
        scene.eevee.taa_render_samples = int(samples)
    apply_devices(scene, config)
    if config.get("compositorDevice") and hasattr(render, "compositor_device"):
        set_enum(render, "compositor_device", config["compositorDevice"], "compositorDevice")
    apply_output(scene, config)
    apply_color_management(scene, config.get("colorManagementPreset"))
    render.use_file_extension = True
    render.use_overwrite = True
    render.use_placeholder = False


def probe():
    """What this Blender can do, without touching the GPU module (it crashes 3.4 in -b)."""
    import _cycles

    backends = []
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"):
        try:
            devices = prefs.get_devices_for_type(backend)
        except (TypeError, ValueError, AttributeError):
            continue
        if any(device.type == backend for device in devices):
            backends.append(backend)
    emit(
        "capabilities",
        version=bpy.app.version_string,
        oidn=bool(getattr(_cycles, "with_openimagedenoise", False)),
        gpuBackends=backends,
    )


def compositor_tree(scene):
    """The scene's compositor node tree, if it composites (5.0 keeps it in a node group)."""
    if hasattr(scene, "compositing_node_group"):
        # 5.0+: no `Scene.node_tree` any more; None when the scene does not composite.
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def safe_subpath(path):
    """A slot's path made relative and kept inside its base: no root, no ``..``."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


# File Output nodes' base paths as the file had them, by (scene, node).
ORIGINAL_BASES = {}


def reroot_file_outputs(scene, out_dir):
    """Points every File Output node of the scene's compositor under ``out_dir``: a .blend must
    not write where it likes on a worker. Returns [(node name, its folder)] in node order."""
    tree = compositor_tree(scene)
    if tree is None:
        return []
    rooted = []
    for index, node in enumerate(n for n in tree.nodes if n.type == "OUTPUT_FILE" and not n.mute):
        # As the file had it (a warm session re-roots again for each task): a base path that
        # does not end in a separator ends in a file name prefix, which is kept.
        original = ORIGINAL_BASES.setdefault((scene.name, node.name), node.base_path)
        prefix = "" if original.endswith(("/", "\\")) else safe_subpath(original.replace("\\", "/").rsplit("/", 1)[-1])
        base = os.path.join(out_dir, "composite", str(index))
        node.base_path = os.path.join(base, prefix)
        for slot in getattr(node, "file_slots", []):
            slot.path = safe_subpath(slot.path) or "image_"
        for slot in getattr(node, "layer_slots", []):
            slot.name = safe_subpath(slot.name) or "layer"
        rooted.append((node.name, base))
    return rooted


def files_under(folder):
    found = set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            found.add(os.path.join(root, name))
    return found


def written_views(scene):
    """The views a render writes a file each for, as [(name, file suffix)]: a multiview scene
    whose images are saved as individual files (`_L`, `_R`, a custom view's suffix); `[]` when
    it writes one file per frame (no multiview, or views combined into one stereo image)."""
    render = scene.render
    if not render.use_multiview or render.image_settings.views_format != "INDIVIDUAL":
        return []
    if render.views_format == "STEREO_3D":
        return [(v.name, v.file_suffix) for v in render.views if v.name in ("left", "right")]
    return [(v.name, v.file_suffix) for v in render.views if v.use]


def view_of(path, views):
    """The view a file written for it belongs to, by its suffix (`rgb_0001_L.png` → left)."""
    stem = os.path.splitext(path)[0]
    for name, suffix in views:
        if suffix and stem.endswith(suffix):
            return name
    return ""


def render_frames(scene, frames, out_dir, output_name=None):
    ext = scene.render.file_extension
    nodes = reroot_file_outputs(scene, out_dir)
    views = written_views(scene)
    seen = set()
    for frame in frames:
        started = time.monotonic()
        scene.frame_set(frame)
        if output_name:
            # The scene's own name for its frames (`shot_####` → shot_0001.png), in the task's folder.
            # A still render does not expand `#`: the frame's path is asked for, then written.
            scene.render.filepath = os.path.join(out_dir, output_name)
            path = scene.render.frame_path(frame=frame)
            scene.render.filepath = os.path.splitext(path)[0]
        else:
            scene.render.filepath = os.path.join(out_dir, "%04d" % frame)
            path = os.path.join(out_dir, "%04d%s" % (frame, ext))
        bpy.ops.render.render(write_still=True, scene=scene.name)
        # A multiview scene writes a file per view: `name` + the view's suffix + extension.
        stem = os.path.splitext(path)[0]
        written = [{"view": name, "path": stem + suffix + ext} for name, suffix in views]
        if written:
            path = written[0]["path"]
        # What the File Output nodes wrote for this frame: the files new since the last one.
        composites = []
        for name, base in nodes:
            for written_file in sorted(files_under(base) - seen):
                seen.add(written_file)
                relative = os.path.relpath(written_file, base).replace(os.sep, "/")
                composites.append(
                    {"node": name, "path": written_file, "relativePath": relative, "view": view_of(written_file, views)}
                )
        emit(
            "frame",
            frame=frame,
            path=path,
            seconds=round(time.monotonic() - started, 3),
            composites=composites,
            views=written,
        )
    emit("done")


def has_sound(scene):
    """Whether the scene plays anything: an unmuted sound strip, or a speaker with a sound."""
    editor = scene.sequence_editor
    if editor is not None:
        strips = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", [])
        if any(strip.type == "SOUND" and not strip.mute and strip.sound for strip in strips):
            return True
    return any(obj.type == "SPEAKER" and obj.data.sound and not obj.data.muted for obj in scene.objects)


def package(scene, task):
    """A video's inputs: the scene's sound mixed down once for the job's frame range (chunked
    renders never have it), and frames that are not 8-bit PNG or JPEG converted through the
    scene's view transform (EXR and 16-bit frames are linear or deep: ffmpeg would not tone
    map them as Blender shows them)."""
    out_dir = task["outputDir"]
    frames = task["frames"]
    fps = task.get("fps")
    if fps:
        # The video's rate: the sound must last as long as the frames do.
        whole = math.ceil(fps)
        scene.render.fps = whole
        scene.render.fps_base = whole / fps
    audio = None
    first, last = frames[0]["frame"], frames[-1]["frame"]
    if has_sound(scene):
        scene.frame_start, scene.frame_end = first, last
        audio = os.path.join(out_dir, "sound.flac")
        bpy.ops.sound.mixdown(filepath=audio, container="FLAC", codec="FLAC", format="S16", check_existing=False)
        if not os.path.exists(audio):
            raise ConfigError("the sound mixdown wrote nothing")
    converted = []
    if task.get("convert"):
        settings = scene.render.image_settings
        if hasattr(settings, "media_type"):
            settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGB"
        settings.color_depth = "8"
        for index, source in enumerate(frames):
            image = bpy.data.images.load(source["path"])
            target = os.path.join(out_dir, "f_%06d.png" % (index + 1))
            image.save_render(target, scene=scene)
            bpy.data.images.remove(image)
            converted.append(target)
    emit("packaged", audio=audio, frames=converted)
    emit("done")


def module_mode(argv):
    """Under PyPI ``bpy`` there is no Blender command line: open the scene ourselves."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    if "--scene" in own:
        scene = own[own.index("--scene") + 1]
        bpy.ops.wm.open_mainfile(filepath=scene, load_ui=False, use_scripts=False)
    if "--threads" in own:
        threads = int(own[own.index("--threads") + 1])
        for scene in bpy.data.scenes:
            scene.render.threads_mode = "FIXED"
            scene.render.threads = threads


def main(argv):
    args = argv[argv.index("--") + 1 :]
    module_mode(argv)
    if args and args[0] == "--probe":
        probe()
        return
    with open(args[0], encoding="utf-8") as f:
        task = json.load(f)
    scene_name = task.get("scene")
    scene = bpy.data.scenes.get(scene_name) if scene_name else bpy.context.scene
    if scene is None:
        raise ConfigError(f"scene {scene_name!r} is not in this file")
    if task.get("mode") == "package":
        package(scene, task)
        return
    apply_config(scene, task["config"])
    # A border render cropped to its border writes smaller images than the resolution says.
    cropped = bool(scene.render.use_border and scene.render.use_crop_to_border)
    emit("started", blender=bpy.app.version_string, scene=scene.name, cropped=cropped)
    output_name = task["config"].get("outputName")
    render_frames(scene, task["frames"], task["outputDir"], output_name)
    if not task.get("warm"):
        return
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            return
        render_frames(scene, command["frames"], command["outputDir"], output_name)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ConfigError as e:
        emit("error", message=str(e))
        sys.stdout.flush()
        os._exit(EXIT_CONFIG_ERROR)
    except Exception as e:  # noqa: BLE001 - any failure must reach the worker as an event
        emit("error", message=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-2000:])
        sys.stdout.flush()
        os._exit(EXIT_CONFIG_ERROR)
    sys.stdout.flush()
