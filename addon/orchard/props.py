"""`scene.orchard`: what to submit, and the last job's state.

Saved with the `.blend` (the job id survives a reopen, so the panel follows the job again).
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

# Blender's `file_format`s a farm renders (the farm refuses video: `FFMPEG`).
OUTPUT_FORMATS = [
    ("PNG", "PNG", ""),
    ("JPEG", "JPEG", ""),
    ("OPEN_EXR", "OpenEXR", ""),
    ("OPEN_EXR_MULTILAYER", "OpenEXR MultiLayer", ""),
    ("TIFF", "TIFF", ""),
    ("WEBP", "WebP", ""),
    ("BMP", "BMP", ""),
    ("TARGA", "Targa", ""),
    ("TARGA_RAW", "Targa Raw", ""),
    ("IRIS", "Iris", ""),
    ("CINEON", "Cineon", ""),
    ("DPX", "DPX", ""),
    ("JPEG2000", "JPEG 2000", ""),
    ("HDR", "Radiance HDR", ""),
]
_FORMAT_IDS = {item[0] for item in OUTPUT_FORMATS}


def scene_samples(scene):
    """The sample count of the scene's engine, or None (Workbench)."""
    engine = scene.render.engine
    if engine == "CYCLES":
        return scene.cycles.samples
    if engine.startswith("BLENDER_EEVEE"):
        return scene.eevee.taa_render_samples
    return None


def scene_denoising(scene):
    """Cycles' render denoising, or None for other engines."""
    if scene.render.engine == "CYCLES":
        return bool(scene.cycles.use_denoising)
    return None


def _take_samples(settings, context):
    if settings.override_samples:
        settings.samples = scene_samples(settings.id_data) or settings.samples


def _take_percentage(settings, context):
    if settings.override_percentage:
        settings.resolution_percentage = settings.id_data.render.resolution_percentage


def _take_format(settings, context):
    if settings.override_format:
        current = settings.id_data.render.image_settings.file_format
        if current in _FORMAT_IDS:
            settings.output_format = current


def _take_denoising(settings, context):
    if settings.override_denoising:
        settings.denoising = bool(scene_denoising(settings.id_data))


class OrchardSceneSettings(bpy.types.PropertyGroup):
    """Orchard's settings and job state of one scene."""

    frame_mode: EnumProperty(
        name="Frames",
        items=[("SCENE", "Scene Range", "The scene's frame range and step"),
               ("LIST", "Frame List", "The frames listed: 1-10, 15, 20-40x2")],
        default="SCENE")
    frame_list: StringProperty(
        name="Frame List",
        description="Frames and ranges separated by commas: 1-10, 15, 20-40x2 (every 2nd)",
        default="")

    override_samples: BoolProperty(name="Samples", description="Render with another sample count",
                                   update=_take_samples)
    samples: IntProperty(name="Samples", min=1, max=16777216, default=128)
    override_percentage: BoolProperty(name="Resolution %", description="Render at another resolution percentage",
                                      update=_take_percentage)
    resolution_percentage: IntProperty(name="Resolution %", min=1, max=32767, default=100, subtype="PERCENTAGE")
    override_format: BoolProperty(name="Format", description="Render to another file format",
                                  update=_take_format)
    output_format: EnumProperty(name="Format", items=OUTPUT_FORMATS, default="PNG")
    override_denoising: BoolProperty(name="Denoising", description="Turn Cycles' denoising on or off",
                                     update=_take_denoising)
    denoising: BoolProperty(name="Denoise", default=False)
    color_management: EnumProperty(
        name="Color",
        items=[("default", "Blender", "Blender's colour management, as the scene sets it"),
               ("aces", "ACES", "The project uses ACES colour management")],
        default="default")
    priority: IntProperty(name="Priority", description="Higher goes first (0 to 100)", min=0, max=100, default=50)
    strict: BoolProperty(name="Refuse Missing Files",
                         description="Do not submit a scene with missing files, or files the farm will not find")

    download_dir: StringProperty(
        name="Download To",
        description="Where Download puts the frames (empty: renders/<job> beside the .blend)",
        subtype="DIR_PATH")

    # The last job.
    job_id: StringProperty(name="Job", description="The last job submitted from this scene")
    job_status: StringProperty(name="Status")
    frames_done: IntProperty(name="Frames Done")
    frames_total: IntProperty(name="Frames")
    eta_seconds: FloatProperty(name="ETA", default=-1.0)
    waiting_reason: StringProperty(name="Waiting Because")
    failed_reason: StringProperty(name="Failed Because")
    dashboard_url: StringProperty(name="Dashboard", subtype="NONE")
    # What the last operation said, and what the last check found (one line each).
    message: StringProperty(name="Message")
    check_report: StringProperty(name="Check")


def register():
    bpy.utils.register_class(OrchardSceneSettings)
    bpy.types.Scene.orchard = bpy.props.PointerProperty(type=OrchardSceneSettings)


def unregister():
    del bpy.types.Scene.orchard
    bpy.utils.unregister_class(OrchardSceneSettings)
