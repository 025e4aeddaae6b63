"""Network work off Blender's main thread, and what the interface shows of it.

One operation at a time (`start`) runs in a thread; it may only report progress and hand back
plain values, never touch `bpy`. A `bpy.app.timers` callback on the main thread drains its
messages: it keeps `activity` (drawn in the status bar), then calls the operation's `on_done`
or `on_error` there, where `bpy` may be used. Jobs' statuses are polled the same way, every few
seconds, while a scene's job runs (`poll_jobs`).

In background mode (`blender -b`) none of this runs: the operators do their work in place.
"""

import queue
import sys
import threading
import time
import traceback

import bpy

from . import client, jobs, pack

# Seconds between two looks at the running jobs.
POLL_INTERVAL_S = 3.0
# Seconds between two drains of an operation's messages.
TICK_S = 0.2

# What the status bar shows: the operation's text and how far it is (0–1, or None).
activity = {"title": "", "text": "", "fraction": None}
# The operation in flight, or None.
_current = None
# Whether a status poll is in flight (one at a time).
_poll_busy = False
_poll_results = queue.Queue()
# Tests set this to run the interface's threaded paths in background mode (pumping `tick`).
force_threads = False
# Errors a person should see; anything else is a bug and keeps its traceback on stderr.
EXPECTED_ERRORS = (client.FarmError, pack.PackError, ValueError)


class _Work:
    """One operation: a thread and the messages it sends to the main thread."""

    def __init__(self, title, function, on_done, on_error):
        self.title = title
        self.function = function
        self.on_done = on_done
        self.on_error = on_error
        self.messages = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="orchard-" + title, daemon=True)

    def _run(self):
        try:
            result = self.function(self._report)
        except EXPECTED_ERRORS as error:
            self.messages.put(("error", str(error)))
        except Exception as error:  # A bug: keep the trace for the report, show a sentence.
            traceback.print_exc()
            self.messages.put(("error", "Orchard failed unexpectedly: %s: %s" % (type(error).__name__, error)))
        else:
            self.messages.put(("done", result))

    def _report(self, text, fraction):
        self.messages.put(("progress", text, fraction))


def use_threads():
    """Whether operators hand their network work to a thread (the interface) or do it in place
    (`blender -b`, scripts)."""
    return force_threads or not bpy.app.background


def busy():
    """Whether an operation is in flight."""
    return _current is not None


def start(title, function, on_done, on_error):
    """Runs `function(report)` in a thread; `on_done(result)` or `on_error(message)` follow on
    the main thread."""
    global _current
    if _current is not None:
        raise client.FarmError("Orchard is busy: %s" % _current.title)
    _current = _Work(title, function, on_done, on_error)
    activity.update(title=title, text=title, fraction=None)
    _current.thread.start()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_S)
    _redraw()


def tick():
    global _current
    work = _current
    if work is None:
        return None
    finished = None
    while True:
        try:
            message = work.messages.get_nowait()
        except queue.Empty:
            break
        if message[0] == "progress":
            activity.update(text=message[1], fraction=message[2])
        else:
            finished = message
    if finished is None:
        _redraw()
        return TICK_S
    _current = None
    activity.update(title="", text="", fraction=None)
    try:
        if finished[0] == "done":
            work.on_done(finished[1])
        else:
            work.on_error(finished[1])
    except Exception:  # A bug in a callback must not kill the timer silently.
        traceback.print_exc()
    _redraw()
    return None


def poll_jobs():
    """Timer: looks at the running jobs of every scene, off the main thread."""
    global _poll_busy
    _apply_poll_results()
    if not use_threads():
        return None
    running = [(scene.name, scene.orchard.job_id) for scene in bpy.data.scenes
               if scene.orchard.job_id and scene.orchard.job_status not in client.TERMINAL_STATUSES]
    if running and not _poll_busy:
        try:
            farm = farm_from_preferences()
        except client.FarmError:
            return POLL_INTERVAL_S
        _poll_busy = True
        threading.Thread(target=_poll, args=(farm, running), name="orchard-status", daemon=True).start()
    return POLL_INTERVAL_S if running or _poll_busy else POLL_INTERVAL_S * 2


def _poll(farm, running):
    global _poll_busy
    try:
        for scene_name, job_id in running:
            try:
                _poll_results.put((scene_name, job_id, jobs.status(farm, job_id), None))
            except client.FarmError as error:
                _poll_results.put((scene_name, job_id, None, str(error)))
    finally:
        _poll_busy = False


def _apply_poll_results():
    changed = False
    while True:
        try:
            scene_name, job_id, state, error = _poll_results.get_nowait()
        except queue.Empty:
            break
        scene = bpy.data.scenes.get(scene_name)
        if scene is None or scene.orchard.job_id != job_id:
            continue  # Another file, or another job since.
        if state is None:
            scene.orchard.message = error
        else:
            apply_status(scene.orchard, state["job"], state["progress"])
        changed = True
    if changed:
        _redraw()


def apply_status(settings, job, progress):
    """Shows a job's state in `scene.orchard`."""
    settings.job_status = job.get("status") or ""
    settings.waiting_reason = job.get("waitingReason") or ""
    settings.failed_reason = jobs.failed_text(job) if job.get("status") == "failed" else ""
    if progress:
        settings.frames_done = int(progress.get("framesDone") or 0)
        settings.frames_total = int(progress.get("framesTotal") or 0)
        eta = progress.get("etaSeconds")
        settings.eta_seconds = -1.0 if eta is None else float(eta)
    elif job.get("status") == "completed":
        settings.frames_done = settings.frames_total
        settings.eta_seconds = 0.0
    else:
        settings.eta_seconds = -1.0


def farm_from_preferences():
    """A `Farm` for the add-on's preferences; raises FarmError when they are not set."""
    from . import prefs
    preferences = prefs.get()
    return client.Farm(preferences.server, preferences.api_key)


def print_progress(text, fraction):
    """`report` for background mode: progress lines on stdout, at most one a second per step
    (and each step's first and last)."""
    now = time.monotonic()
    last_text, last_time = _printed
    step = text.split(" ")[0]
    if step == last_text and now - last_time < 1.0 and fraction not in (None, 1.0):
        return
    _printed[:] = [step, now]
    percent = "" if fraction is None else " (%d%%)" % round(fraction * 100)
    print("Orchard: %s%s" % (text, percent), file=sys.stdout, flush=True)


_printed = ["", 0.0]


def draw_status_bar(self, context):
    """Drawn into Blender's status bar while an operation runs."""
    if not activity["title"]:
        return
    layout = self.layout
    text = "Orchard: " + activity["text"]
    fraction = activity["fraction"]
    if fraction is not None and hasattr(layout, "progress"):  # `UILayout.progress` is 4.0+.
        layout.progress(factor=fraction, type="BAR", text=text)
    elif fraction is not None:
        layout.label(text="%s %d%%" % (text, round(fraction * 100)), icon="EXPORT")
    else:
        layout.label(text=text, icon="EXPORT")


def _redraw():
    manager = bpy.context.window_manager
    if manager is None:
        return
    for window in manager.windows:
        for area in window.screen.areas:
            if area.type in ("PROPERTIES", "STATUSBAR"):
                area.tag_redraw()


def register():
    bpy.types.STATUSBAR_HT_header.append(draw_status_bar)
    if not bpy.app.background:
        bpy.app.timers.register(poll_jobs, first_interval=POLL_INTERVAL_S, persistent=True)


def unregister():
    global _current
    bpy.types.STATUSBAR_HT_header.remove(draw_status_bar)
    for timer in (poll_jobs, tick):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    _current = None
