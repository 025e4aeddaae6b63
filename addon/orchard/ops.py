"""The operators: `orchard.submit`, `orchard.check`, `orchard.download`, and the panel's
helpers (`orchard.refresh`, `orchard.cancel`, `orchard.open_dashboard`).

In the interface the network work runs in a thread (`background.start`) and the operator
returns at once; in background mode (`blender -b`) it runs in place and the operator returns
when it is done, so a script can go on with `scene.orchard.job_id`. A refusal becomes the
operator's report and `scene.orchard.message`, never a traceback: `{'ERROR'}` in the interface;
in background mode a `{'WARNING'}` report, `Orchard error: …` on stderr and `{'CANCELLED'}`
returned (an ERROR report would make `bpy.ops` raise into the calling script).
"""

import os
import sys
import tempfile

import bpy
from bpy.props import BoolProperty, StringProperty

from . import background, client, jobs, pack, prefs
from .props import scene_denoising, scene_samples


def _frame_ranges(scene, settings):
    if settings.frame_mode == "LIST":
        return jobs.parse_frame_list(settings.frame_list)
    text = "%d-%d" % (scene.frame_start, scene.frame_end)
    if scene.frame_end < scene.frame_start:
        raise ValueError("The scene's frame range %s runs backwards" % text)
    if scene.frame_step > 1:
        text += "x%d" % scene.frame_step
    return [text]


def render_config(scene, settings):
    """`requestedRenderConfig`: the frames, the priority and the overrides asked for."""
    config = {
        "colorManagementPreset": settings.color_management,
        "frameRanges": _frame_ranges(scene, settings),
        "priority": settings.priority,
    }
    if settings.override_samples and scene_samples(scene) is not None:
        config["sampleCount"] = settings.samples
    if settings.override_percentage:
        config["resolutionPercentage"] = settings.resolution_percentage
    if settings.override_format:
        config["outputFormat"] = settings.output_format
    if settings.override_denoising and scene_denoising(scene) is not None:
        config["denoisingEnabled"] = settings.denoising
    return config


def scene_needs(scene, settings):
    """What a worker needs to render the scene as it would be submitted."""
    engine = scene.render.engine
    denoising = scene_denoising(scene)
    if settings.override_denoising and denoising is not None:
        denoising = settings.denoising
    return {
        "version": tuple(bpy.app.version[:2]),
        "engine": engine,
        "eevee": engine.startswith("BLENDER_EEVEE"),
        "oidn": bool(denoising) and getattr(scene.cycles, "denoiser", "") == "OPENIMAGEDENOISE",
        "gpu": engine == "CYCLES" and scene.cycles.device == "GPU",
    }


def _describe_needs(needs):
    engine = {"CYCLES": "Cycles", "BLENDER_WORKBENCH": "Workbench"}.get(needs["engine"], "EEVEE")
    parts = ["%s on %s" % (engine, "GPU" if needs["gpu"] else "CPU")]
    if needs["oidn"]:
        parts.append("denoising with OpenImageDenoise")
    parts.append("Blender %d.%d or later" % needs["version"])
    return "Needs: " + ", ".join(parts)


def _plan_lines(plan):
    """What packing found, one line each, missing files first and by name."""
    lines = []
    for label, stored in plan.missing:
        lines.append("Missing: %s (%s, %s)" % (pack.file_name(stored), label, stored))
    for label, stored, why in plan.unmapped:
        lines.append("Not found by the farm: %s (%s: %s)" % (pack.file_name(stored), label, why))
    if plan.is_single_file():
        lines.append("Upload: the .blend alone")
    else:
        lines.append("Upload: the .blend and %d files (%.1f MiB) as a .zip"
                     % (len(plan.files), plan.total_bytes() / (1024.0 * 1024.0)))
    return lines


def _stage_copy(plan):
    """Saves the scene's copy into a fresh folder; returns (folder, copy)."""
    stage_dir = tempfile.mkdtemp(prefix="orchard-")
    try:
        return stage_dir, pack.save_copy(plan, stage_dir)
    except BaseException:
        import shutil
        shutil.rmtree(stage_dir, ignore_errors=True)
        raise


def _part_bytes(context):
    return prefs.get(context).part_size_mib * 1024 * 1024


class _FarmOperator:
    """Shared handling of refusals: the report and `scene.orchard.message`."""

    def fail(self, settings, message):
        if settings is not None:
            settings.message = message
        if bpy.app.background:
            # An ERROR report makes `bpy.ops` raise into the calling script, and Blender prints
            # that script's traceback: in background mode the operator returns CANCELLED
            # instead, the message on stderr and in its report.
            print("Orchard error: %s" % message, file=sys.stderr, flush=True)
            self.report({"WARNING"}, message)
        else:
            self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def unexpected(self, settings, error):
        import traceback
        traceback.print_exc()
        return self.fail(settings, "Orchard failed unexpectedly: %s: %s" % (type(error).__name__, error))

    def run(self, context, title, work, done, *, popup=True, say=True, level="INFO", failed=None):
        """Runs `work(report)`, then `done(settings, result)` with the settings of the scene it
        ran for: in place in background mode (reporting `settings.message` at `level` when
        `say`), else in a thread with its progress in the status bar (the scene found again by
        name when it ends; a failure shown in a popup when `popup`). `failed(settings, message)`
        records a failure beside the message."""
        settings = context.scene.orchard
        if not background.use_threads():
            try:
                result = work(background.print_progress)
            except background.EXPECTED_ERRORS as error:
                if failed is not None:
                    failed(settings, str(error))
                return self.fail(settings, str(error))
            except Exception as error:
                return self.unexpected(settings, error)
            done(settings, result)
            if say:
                self.report({level}, settings.message)
            return {"FINISHED"}
        scene_name = context.scene.name

        def on_done(result):
            target = bpy.data.scenes.get(scene_name)
            if target is not None:
                done(target.orchard, result)

        def on_error(message):
            target = bpy.data.scenes.get(scene_name)
            if target is not None:
                target.orchard.message = message
                if failed is not None:
                    failed(target.orchard, message)
            if popup:
                _popup(message, "ERROR")

        try:
            background.start(title, work, on_done, on_error)
        except client.FarmError as error:
            return self.fail(settings, str(error))
        return {"FINISHED"}


class ORCHARD_OT_submit(_FarmOperator, bpy.types.Operator):
    """Render this scene on the Orchard farm: pack the file and what it uses, upload, render"""

    bl_idname = "orchard.submit"
    bl_label = "Submit to Orchard"

    def execute(self, context):
        scene = context.scene
        settings = scene.orchard
        if background.busy():
            return self.fail(settings, "Orchard is busy: %s" % background.activity["title"])
        try:
            farm = background.farm_from_preferences()
            config = render_config(scene, settings)
            if not background.use_threads():
                farm.check_access()  # A wrong key or farm is refused before the scene is saved.
            plan = pack.collect()
            if settings.strict and (plan.missing or plan.unmapped):
                return self.fail(settings, "Not submitted: " + "; ".join(_plan_lines(plan)[:-1]))
            stage_dir, main_copy = _stage_copy(plan)
        except background.EXPECTED_ERRORS as error:
            return self.fail(settings, str(error))
        except Exception as error:
            return self.unexpected(settings, error)
        if plan.missing:
            self.report({"WARNING"}, "Missing files: %s" % ", ".join(plan.missing_names()))
        part_bytes = _part_bytes(context)
        n_frames = jobs.count_frames(config["frameRanges"])

        def work(report):
            return jobs.submit(farm, plan, main_copy, stage_dir, config, part_bytes, report)

        def done(target, result):
            _submitted(target, farm, result, n_frames)

        if background.use_threads():
            settings.message = "Submitting…"
            self.report({"INFO"}, "Orchard: submitting in the background")
        return self.run(context, "Submitting", work, done)


def _submitted(settings, farm, result, n_frames):
    job = result["job"]
    settings.job_id = job["id"]
    settings.dashboard_url = farm.dashboard_url(job["id"])
    settings.frames_total = n_frames
    settings.frames_done = 0
    background.apply_status(settings, job, None)
    text = "Orchard: job %s is rendering %d frames: %s" % (job["id"], n_frames, settings.dashboard_url)
    if result["warnings"]:
        text += " (the farm warns: %s)" % "; ".join(result["warnings"])
    settings.message = text


class ORCHARD_OT_check(_FarmOperator, bpy.types.Operator):
    """What the farm will make of this scene: missing files, what it needs, which workers can take it"""

    bl_idname = "orchard.check"
    bl_label = "Check"

    upload: BoolProperty(
        name="Ask the Farm",
        description="Also upload the packed scene and let the farm analyse it (the check's job is deleted)",
        default=False)

    def execute(self, context):
        scene = context.scene
        settings = scene.orchard
        try:
            plan = pack.collect()
        except background.EXPECTED_ERRORS as error:
            return self.fail(settings, str(error))
        except Exception as error:
            return self.unexpected(settings, error)
        needs = scene_needs(scene, settings)
        lines = _plan_lines(plan) + [_describe_needs(needs)]
        try:
            farm = background.farm_from_preferences()
        except client.FarmError as error:
            farm = None
            lines.append("Workers: unknown (%s)" % error)
        settings.check_report = "\n".join(lines)

        def summary():
            if plan.missing:
                return "Missing files: %s" % ", ".join(plan.missing_names())
            if plan.unmapped:
                return "Files the farm will not find: %s" % ", ".join(
                    sorted({pack.file_name(stored) for _, stored, _ in plan.unmapped}))
            return "No missing files"

        upload = self.upload  # The operator is gone by the time the thread runs.

        def work(report):
            found = {"workers": _workers_lines(farm, needs), "analysis": None}
            if upload:
                found["analysis"] = jobs.check_on_farm(farm, plan, main_copy, stage_dir, part_bytes, report)
            return found

        stage_dir = main_copy = None
        part_bytes = _part_bytes(context)
        if farm is not None and upload:
            try:
                stage_dir, main_copy = _stage_copy(plan)
            except background.EXPECTED_ERRORS as error:
                return self.fail(settings, str(error))

        def done(target, found):
            extra = found["workers"] + _analysis_lines(found["analysis"])
            target.check_report = "\n".join(lines + extra)
            target.message = "Check: " + summary()

        def failed(target, message):
            target.check_report = "\n".join(lines + ["Farm: %s" % message])
            if background.use_threads():
                target.message = "Check: " + summary()

        level = "WARNING" if plan.missing or plan.unmapped else "INFO"
        settings.message = "Check: " + summary()
        if farm is None or background.use_threads():
            self.report({level}, settings.message)
        if farm is None:
            return {"FINISHED"}
        return self.run(context, "Checking", work, done, popup=False, level=level, failed=failed)


def _workers_lines(farm, needs):
    try:
        able, unable = jobs.workers_for(farm, needs)
    except client.FarmError as error:
        return ["Workers: unknown (%s)" % error]
    lines = []
    if able:
        lines.append("Workers that can take it: %s" % ", ".join(able))
    else:
        lines.append("No connected worker can take it")
    for name, why in unable:
        lines.append("Cannot take it: %s (%s)" % (name, why))
    return lines


def _analysis_lines(analysis):
    if analysis is None:
        return []
    lines = []
    for warning in analysis.get("warnings") or []:
        lines.append("Farm: %s" % (warning.get("message") or warning.get("code")))
    if not lines:
        lines.append("Farm: no warnings")
    return lines


class ORCHARD_OT_download(_FarmOperator, bpy.types.Operator):
    """Download the frames of the scene's last Orchard job"""

    bl_idname = "orchard.download"
    bl_label = "Download Frames"

    directory: StringProperty(
        name="Folder",
        description="Where the frames go (default: renders/<job> beside the .blend)",
        subtype="DIR_PATH")
    wait: BoolProperty(
        name="Wait",
        description="Wait for the job to finish first (otherwise: the frames finished so far)",
        default=True)
    job_id: StringProperty(name="Job", description="The job (default: the scene's last)")

    def execute(self, context):
        settings = context.scene.orchard
        job_id = self.job_id or settings.job_id
        if not job_id:
            return self.fail(settings, "No Orchard job to download: submit the scene first")
        directory = self.directory or settings.download_dir
        if directory:
            directory = bpy.path.abspath(directory)
        elif bpy.data.filepath:
            directory = os.path.join(os.path.dirname(bpy.data.filepath), "renders", job_id)
        else:
            return self.fail(settings, "Save the file, or choose a folder to download into")
        try:
            farm = background.farm_from_preferences()
        except client.FarmError as error:
            return self.fail(settings, str(error))
        wait = self.wait

        def work(report):
            return jobs.download(farm, job_id, directory, wait, report)

        def done(target, result):
            _downloaded(target, job_id, directory, result)

        return self.run(context, "Downloading", work, done)


def _downloaded(settings, job_id, directory, result):
    if settings.job_id == job_id:
        background.apply_status(settings, result["job"], None)
    settings.message = "Orchard: %d files of job %s in %s" % (len(result["files"]), job_id, directory)


def _run_job_call(operator, context, title, call):
    """Runs `call(farm)` → job state (`{"job", "progress"}`) and shows it: in place in background
    mode, else in a thread."""
    settings = context.scene.orchard
    job_id = settings.job_id
    if not job_id:
        return operator.fail(settings, "No Orchard job: submit the scene first")
    try:
        farm = background.farm_from_preferences()
    except client.FarmError as error:
        return operator.fail(settings, str(error))

    def show(target, state):
        if target.job_id == job_id:
            background.apply_status(target, state["job"], state["progress"])

    return operator.run(context, title, lambda report: call(farm, job_id), show, popup=False, say=False)


class ORCHARD_OT_refresh(_FarmOperator, bpy.types.Operator):
    """Ask the farm how the scene's last job is doing"""

    bl_idname = "orchard.refresh"
    bl_label = "Refresh"

    def execute(self, context):
        return _run_job_call(self, context, "Refreshing", jobs.status)


class ORCHARD_OT_cancel(_FarmOperator, bpy.types.Operator):
    """Cancel the scene's last Orchard job"""

    bl_idname = "orchard.cancel"
    bl_label = "Cancel Job"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        def cancel(farm, job_id):
            return {"job": farm.cancel(job_id), "progress": None}

        return _run_job_call(self, context, "Canceling", cancel)


class ORCHARD_OT_open_dashboard(bpy.types.Operator):
    """Open the job's page on the farm's dashboard"""

    bl_idname = "orchard.open_dashboard"
    bl_label = "Open in Dashboard"

    def execute(self, context):
        url = context.scene.orchard.dashboard_url
        if not url:
            self.report({"ERROR"}, "No Orchard job: submit the scene first")
            return {"CANCELLED"}
        bpy.ops.wm.url_open(url=url)
        return {"FINISHED"}


def _popup(message, icon):
    """Shows a message where the artist looks (the operation ended after its operator)."""
    manager = bpy.context.window_manager
    if manager is None or bpy.app.background:
        print("Orchard:", message)
        return

    def draw(menu, context):
        menu.layout.label(text=message)

    manager.popup_menu(draw, title="Orchard", icon=icon)


CLASSES = (
    ORCHARD_OT_submit,
    ORCHARD_OT_check,
    ORCHARD_OT_download,
    ORCHARD_OT_refresh,
    ORCHARD_OT_cancel,
    ORCHARD_OT_open_dashboard,
)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
