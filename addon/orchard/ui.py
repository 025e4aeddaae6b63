"""The Orchard panel, in the Render properties: what to render, a check, Submit, and the last
job's state (kept up to date by `background.poll_jobs`)."""

import bpy

from . import background
from .props import scene_denoising, scene_samples


def _eta_text(seconds):
    if seconds < 0:
        return "…"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "%dh %02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm %02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _override_row(layout, settings, toggle, value, scene_value):
    """A checkbox, then the override when on, or the scene's own value greyed out when off."""
    row = layout.row(align=True)
    row.prop(settings, toggle, text="")
    if getattr(settings, toggle):
        row.prop(settings, value)
    else:
        sub = row.row()
        sub.enabled = False
        label = settings.bl_rna.properties[value].name
        sub.label(text="%s: %s (scene)" % (label, scene_value))


class ORCHARD_PT_render(bpy.types.Panel):
    bl_label = "Orchard Render Farm"
    bl_idname = "ORCHARD_PT_render"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.orchard

        column = layout.column()
        column.prop(settings, "frame_mode", expand=True)
        if settings.frame_mode == "LIST":
            column.prop(settings, "frame_list", text="")
        else:
            step = " every %d" % scene.frame_step if scene.frame_step > 1 else ""
            column.label(text="Frames %d to %d%s" % (scene.frame_start, scene.frame_end, step))

        box = layout.box()
        box.label(text="Overrides")
        samples = scene_samples(scene)
        if samples is not None:
            _override_row(box, settings, "override_samples", "samples", samples)
        _override_row(box, settings, "override_percentage", "resolution_percentage",
                      "%d%%" % scene.render.resolution_percentage)
        _override_row(box, settings, "override_format", "output_format", scene.render.image_settings.file_format)
        denoising = scene_denoising(scene)
        if denoising is not None:
            _override_row(box, settings, "override_denoising", "denoising", "on" if denoising else "off")
        box.prop(settings, "color_management")
        box.prop(settings, "priority")
        box.prop(settings, "strict")

        busy = background.busy()
        row = layout.row(align=True)
        row.enabled = not busy
        row.operator("orchard.check", icon="VIEWZOOM").upload = False
        row.operator("orchard.check", text="Ask the Farm", icon="URL").upload = True
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = not busy
        row.operator("orchard.submit", icon="RENDER_ANIMATION")
        if busy:
            activity = background.activity
            text = activity["text"]
            if activity["fraction"] is not None:
                text += " (%d%%)" % round(activity["fraction"] * 100)
            layout.label(text=text, icon="TIME")

        if settings.check_report:
            box = layout.box()
            for line in settings.check_report.split("\n"):
                icon = "ERROR" if line.startswith(("Missing", "Not found", "No connected", "Cannot")) else "DOT"
                box.label(text=line, icon=icon)

        if settings.job_id:
            self._draw_job(layout, settings)
        if settings.message:
            layout.label(text=settings.message, icon="INFO")

    def _draw_job(self, layout, settings):
        box = layout.box()
        box.label(text="Job %s" % settings.job_id, icon="RENDERLAYERS")
        status = settings.job_status or "unknown"
        box.label(text="Status: %s" % status)
        if settings.frames_total:
            box.label(text="Frames: %d / %d   ETA: %s" % (
                settings.frames_done, settings.frames_total,
                _eta_text(settings.eta_seconds) if status not in ("completed", "failed", "canceled") else "–"))
        if settings.waiting_reason:
            box.label(text="Waiting: %s" % settings.waiting_reason, icon="PAUSE")
        if settings.failed_reason:
            for index, line in enumerate(settings.failed_reason.splitlines()[:6]):
                box.label(text=line, icon="ERROR" if index == 0 else "BLANK1")
        row = box.row(align=True)
        row.operator("orchard.refresh", icon="FILE_REFRESH")
        row.operator("orchard.open_dashboard", icon="URL")
        row = box.row(align=True)
        row.operator("orchard.download", icon="IMPORT").wait = False
        sub = row.row(align=True)
        sub.enabled = status not in ("completed", "failed", "canceled")
        sub.operator("orchard.cancel", icon="CANCEL")
        box.prop(settings, "download_dir")


CLASSES = (ORCHARD_PT_render,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
