"""End-to-end test of the add-on, in real Blender, headless, against a running farm.

    blender -b --factory-startup --python addon/tests/run_addon_test.py -- \
        --server URL --key RJ-… --zip orchard.zip --fixtures DIR --out DIR [--install legacy|extension]
    BPY_PYTHON addon/tests/run_addon_test.py --server URL … (PyPI's `bpy` as a module)

DIR of `--fixtures` is what `make_scenes.py` wrote. The test:

1. installs the add-on from the zip into a private user folder (`BLENDER_USER_*` point under
   `--out`: the user's own Blender is not touched) — as a legacy add-on, or as an extension on
   4.2+ (`--install`, default: extension where Blender has them) — and sets its preferences;
2. copies the project to `--out` and opens `shots/shot.blend`, which links a library through
   `//../assets/props.blend` and uses a texture by an absolute path outside the project;
3. with a wrong key, `bpy.ops.orchard.submit()` is refused with a clear message, no traceback;
4. `bpy.ops.orchard.submit()` → `{'FINISHED'}`, `scene.orchard.job_id` set, the session's
   paths and file untouched; the job completes; `bpy.ops.orchard.download()` writes the frames
   to `renders/<job>/` beside the `.blend`; each shows the library's red prop on the left and
   the green texture on the right (pixel check); the `.blend` is byte-identical;
5. `missing.blend`: `bpy.ops.orchard.check()` names `missing_wood.png`, and so does the farm's
   own analysis (`check(upload=True)`).

Exits 0 when every check passed, 1 otherwise (each check printed as `ok` / `FAIL`).
"""

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time

# Set by the parent run: this process is the isolated one.
CHILD_FLAG = "ORCHARD_ADDON_TEST_CHILD"
RUNNING_IN_BLENDER = "bpy" in sys.modules


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(prog="run_addon_test.py")
    parser.add_argument("--server", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--zip", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--install", choices=("auto", "legacy", "extension"), default="auto")
    parser.add_argument("--timeout", type=float, default=300.0)
    return parser.parse_args(argv)


def isolated_environment(out):
    """Blender's user folders under `out`: installing the add-on leaves the user's alone."""
    home = os.path.join(os.path.abspath(out), "blender-user")
    env = {
        "BLENDER_USER_CONFIG": os.path.join(home, "config"),
        "BLENDER_USER_SCRIPTS": os.path.join(home, "scripts"),
        "BLENDER_USER_DATAFILES": os.path.join(home, "datafiles"),
        "BLENDER_USER_RESOURCES": os.path.join(home, "resources"),
        "BLENDER_USER_EXTENSIONS": os.path.join(home, "extensions"),
    }
    for path in env.values():
        os.makedirs(path, exist_ok=True)
    return env


ARGS = parse_args()
if RUNNING_IN_BLENDER and os.environ.get(CHILD_FLAG) != "1":
    # The Blender binary read its user folders at start: run again with private ones.
    import bpy
    env = dict(os.environ, **isolated_environment(ARGS.out))
    env[CHILD_FLAG] = "1"
    command = [bpy.app.binary_path, "-b", "--factory-startup", "--python-exit-code", "1",
               "--python", os.path.abspath(__file__), "--"] + sys.argv[sys.argv.index("--") + 1:]
    sys.exit(subprocess.call(command, env=env))
if not RUNNING_IN_BLENDER:
    os.environ.update(isolated_environment(ARGS.out))

import bpy  # noqa: E402  (after the environment is set, for `bpy` as a module)

results = []


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else ": %s" % (detail,)), flush=True)
    return bool(condition)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def install(zip_path, mode):
    """Installs and enables the add-on; returns its module name."""
    extensions = bpy.app.version >= (4, 2, 0)
    if mode == "auto":
        mode = "extension" if extensions else "legacy"
    if mode == "extension":
        result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                          enable_on_install=True)
        module = "bl_ext.user_default.orchard"
    else:
        result = bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
        module = "orchard"
        if "FINISHED" in result:
            result = bpy.ops.preferences.addon_enable(module=module)
    check("the add-on installs from the zip as %s (%s)" % (mode, result), "FINISHED" in result)
    check("the add-on is enabled as %s" % module, module in bpy.context.preferences.addons,
          list(bpy.context.preferences.addons.keys()))
    return module


def set_preferences(module, server, key):
    preferences = bpy.context.preferences.addons[module].preferences
    preferences.server = server
    preferences.api_key = key


def call_operator(operator, **kwargs):
    """Runs an operator; returns (result or None, the error's text, what went to stderr)."""
    captured = io.StringIO()
    result, error = None, ""
    with contextlib.redirect_stderr(captured):
        try:
            result = operator(**kwargs)
        except RuntimeError as e:  # Blender raises the operator's ERROR report.
            error = str(e)
    return result, error, captured.getvalue()


def pixel(image, x, y):
    width = image.size[0]
    index = (y * width + x) * image.channels
    return tuple(image.pixels[index:index + 3])


def close(color, expected, tolerance=0.1):
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected))


def test_wrong_key(module):
    set_preferences(module, ARGS.server, "RJ-00000000000000000000000000000000")
    result, error, stderr = call_operator(bpy.ops.orchard.submit)
    message = bpy.context.scene.orchard.message
    check("a wrong key: submit returns CANCELLED", result == {"CANCELLED"}, (result, error))
    check("a wrong key: no exception into the script", error == "", error)
    check("a wrong key: stderr says the key was refused", "Orchard error: The farm refused the API key" in stderr,
          stderr)
    check("a wrong key: no traceback", "Traceback" not in stderr, stderr)
    check("a wrong key: scene.orchard.message holds it", "API key" in message, message)
    check("a wrong key: no job id", bpy.context.scene.orchard.job_id == "")
    check("a wrong key: the key is not in the message", "RJ-0000" not in message + stderr)
    set_preferences(module, ARGS.server, ARGS.key)


def test_scripted_wrong_key(module, shot):
    """`blender -b file --python-expr "bpy.ops.orchard.submit()"` with a wrong key: the message,
    no traceback, the artist's file untouched. Needs the Blender binary (not `bpy` as a module)."""
    if not bpy.app.binary_path or "python" in os.path.basename(bpy.app.binary_path):
        return
    expression = ("import bpy, addon_utils; addon_utils.enable(%r, default_set=True); "
                  "p = bpy.context.preferences.addons[%r].preferences; p.server = %r; p.api_key = 'RJ-nope'; "
                  "print('RESULT', bpy.ops.orchard.submit())") % (module, module, ARGS.server)
    before = sha256(shot)
    run = subprocess.run([bpy.app.binary_path, "-b", shot, "--python-exit-code", "1", "--python-expr", expression],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    output = run.stdout
    check("scripted, a wrong key: the operator returns CANCELLED", "RESULT {'CANCELLED'}" in output, output)
    check("scripted, a wrong key: the output says the key was refused",
          "The farm refused the API key" in output, output)
    check("scripted, a wrong key: no traceback", "Traceback" not in output, output)
    check("scripted, a wrong key: the file is untouched", sha256(shot) == before)


def session_paths():
    return ([library.filepath for library in bpy.data.libraries],
            [image.filepath for image in bpy.data.images],
            [obj.name for obj in bpy.data.objects])


def submit_and_download(shot, expected, what):
    """Submits the open `shot`, waits, downloads; checks each frame's left and right halves
    against `expected` colours and the file and session against what they were."""
    before = sha256(shot)
    paths_before = session_paths()
    result, error, stderr = call_operator(bpy.ops.orchard.submit)
    settings = bpy.context.scene.orchard
    check("%s: submit returns FINISHED" % what, result == {"FINISHED"}, error or result)
    check("%s: submit stores the job id" % what, len(settings.job_id) == 36, settings.job_id)
    check("%s: submit leaves bpy.data.filepath" % what, bpy.data.filepath == shot, bpy.data.filepath)
    check("%s: submit leaves the session's paths" % what, session_paths() == paths_before,
          (session_paths(), paths_before))
    check("%s: submit leaves the file on disk" % what, sha256(shot) == before)
    if not settings.job_id:
        return
    print("job", settings.job_id, settings.dashboard_url, flush=True)
    deadline = time.monotonic() + ARGS.timeout
    while settings.job_status not in ("completed", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(1.0)
        bpy.ops.orchard.refresh()
    check("%s: the job completes" % what, settings.job_status == "completed",
          "%s %s" % (settings.job_status, settings.failed_reason))
    check("%s: the status shows every frame done" % what, settings.frames_done == settings.frames_total == 2,
          (settings.frames_done, settings.frames_total))
    result, error, stderr = call_operator(bpy.ops.orchard.download)
    check("%s: download returns FINISHED" % what, result == {"FINISHED"}, error or result)
    folder = os.path.join(os.path.dirname(shot), "renders", settings.job_id)
    frames = sorted(name for name in os.listdir(folder) if name.endswith(".png")) if os.path.isdir(folder) else []
    check("%s: download writes both frames beside the .blend" % what, len(frames) == 2, (folder, frames))
    for name in frames:
        image = bpy.data.images.load(os.path.join(folder, name), check_existing=False)
        width, height = image.size
        check("%s: %s is 64x48" % (what, name), (width, height) == (64, 48), (width, height))
        left, right = pixel(image, width // 4, height // 2), pixel(image, 3 * width // 4, height // 2)
        for side, color, (want, meaning) in (("left", left, expected[0]), ("right", right, expected[1])):
            check("%s: %s shows %s on the %s" % (what, name, meaning, side), close(color, want), color)
        bpy.data.images.remove(image)
    check("%s: the artist's .blend is byte-identical" % what, sha256(shot) == before)


def test_submit_and_download(module, shot):
    submit_and_download(shot, [((1.0, 0.0, 0.0), "the library's red prop"),
                               ((0.0, 1.0, 0.0), "the outside texture's green")], "shot")


def test_external_library(external):
    """A library named by an absolute path, its own texture relative to it: both mirrored under
    `_external/`, the main file's path to the library rewritten in the copy only."""
    bpy.ops.wm.open_mainfile(filepath=external)
    submit_and_download(external, [((0.0, 0.0, 1.0), "the outside library's blue texture"),
                                   ((0.0, 0.0, 0.0), "black")], "external library")


def test_pack_sets(module, out):
    """Image sequences and UDIM sets bring every file of the set (no farm needed)."""
    pack = sys.modules[module + ".pack"]
    folder = os.path.join(out, "sets")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "seq"))
    os.makedirs(os.path.join(folder, "udim"))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(folder, "sets.blend"))
    source = bpy.data.images.new("source", 4, 4)
    for name in ("seq/frame_0001.png", "seq/frame_0002.png", "seq/frame_0003.png", "seq/other_0001.png",
                 "udim/wood.1001.png", "udim/wood.1002.png", "udim/wood.1011.png"):
        source.filepath_raw = os.path.join(folder, name)
        source.file_format = "PNG"
        source.save()
    sequence = bpy.data.images.load(os.path.join(folder, "seq", "frame_0001.png"))
    sequence.source = "SEQUENCE"
    sequence.filepath = "//seq/frame_0001.png"
    tiles = bpy.data.images.load(os.path.join(folder, "udim", "wood.1001.png"))
    tiles.source = "TILED"
    tiles.filepath = os.path.join(folder, "udim", "wood.<UDIM>.png")
    plan = pack.collect()
    names = sorted(plan.files)
    check("a sequence brings its frames, not its neighbours",
          [it for it in names if it.startswith("seq/")] == ["seq/frame_0001.png", "seq/frame_0002.png",
                                                            "seq/frame_0003.png"], names)
    check("a UDIM set by an absolute path brings every tile",
          names.count("udim/wood.1001.png") + names.count("udim/wood.1002.png") + names.count("udim/wood.1011.png") == 3,
          names)
    rewrites = {ref.label: new for ref, new in plan.rewrites}
    check("the UDIM set's path becomes relative, token kept",
          rewrites.get("Image 'wood.1001.png'") == "//udim/wood.<UDIM>.png", rewrites)


class FakeLayout:
    """Stands for `UILayout` in background mode, where nothing draws: records the labels and
    checks that every `prop` names a real property."""

    def __init__(self, record):
        self._record = record

    def label(self, text="", **kwargs):
        self._record.append(text)
        return FakeLayout(self._record)

    def prop(self, data, name, **kwargs):
        if name not in data.bl_rna.properties:
            self._record.append("NO PROPERTY %s" % name)
        return FakeLayout(self._record)

    def operator(self, idname, **kwargs):
        category, name = idname.split(".")
        if not hasattr(getattr(bpy.ops, category), name):
            self._record.append("NO OPERATOR %s" % idname)
        return FakeLayout(self._record)

    def __getattr__(self, name):
        return lambda *args, **kwargs: FakeLayout(self._record)


def draw_panel(module):
    """The panel's and the status bar's text, drawn into a FakeLayout."""
    import types
    ui = sys.modules[module + ".ui"]
    background = sys.modules[module + ".background"]
    record = []
    panel = types.SimpleNamespace(layout=FakeLayout(record))
    panel._draw_job = lambda layout, settings: ui.ORCHARD_PT_render._draw_job(panel, layout, settings)
    ui.ORCHARD_PT_render.draw(panel, bpy.context)
    background.draw_status_bar(types.SimpleNamespace(layout=FakeLayout(record)), bpy.context)
    return record


def test_interface_paths(module, shot):
    """The interface's way: the work in a thread, the timer applying it (pumped by hand here,
    as timers do not run in background mode), the status polled, the panel drawn."""
    background = sys.modules[module + ".background"]
    settings = bpy.context.scene.orchard
    previous_job = settings.job_id
    before = sha256(shot)
    background.force_threads = True
    try:
        settings.frame_mode = "LIST"
        settings.frame_list = "2"
        settings.override_percentage = True
        check("an override starts at the scene's value", settings.resolution_percentage == 100,
              settings.resolution_percentage)
        settings.resolution_percentage = 50
        started = time.monotonic()
        result = bpy.ops.orchard.submit()
        check("threaded submit returns at once", result == {"FINISHED"} and time.monotonic() - started < 5.0,
              result)
        seen = set()
        deadline = time.monotonic() + ARGS.timeout
        while background.busy() and time.monotonic() < deadline:
            if background.activity["text"]:
                seen.add(background.activity["text"].split(" ")[0])
                seen.update(line for line in draw_panel(module) if line.startswith("Orchard:"))
            background.tick()
            time.sleep(0.02)
        check("threaded submit sets a new job id", settings.job_id and settings.job_id != previous_job,
              settings.message)
        check("the status bar followed the steps", len({it for it in seen if not it.startswith("Orchard:")}) >= 2,
              seen)
        check("the status bar drew its text", any(text.startswith("Orchard:") for text in seen), seen)
        while settings.job_status not in ("completed", "failed", "canceled") and time.monotonic() < deadline:
            background.poll_jobs()
            time.sleep(0.5)
        check("the status poller sees the job complete", settings.job_status == "completed",
              (settings.job_status, settings.failed_reason, settings.message))
        check("the status shows the one frame", (settings.frames_done, settings.frames_total) == (1, 1),
              (settings.frames_done, settings.frames_total))
        lines = draw_panel(module)
        problems = [line for line in lines if line.startswith("NO ")]
        check("the panel draws with real properties and operators", not problems, problems)
        check("the panel shows the job and its status", "Job %s" % settings.job_id in lines
              and "Status: completed" in lines and "Frames: 1 / 1   ETA: –" in lines, lines)
        result = bpy.ops.orchard.download(wait=False)
        while background.busy() and time.monotonic() < deadline:
            background.tick()
            time.sleep(0.02)
        folder = os.path.join(os.path.dirname(shot), "renders", settings.job_id)
        frames = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        check("threaded download writes the frame", frames == ["frame_0002.png"], (frames, settings.message))
        if frames:
            image = bpy.data.images.load(os.path.join(folder, frames[0]), check_existing=False)
            check("the override halved the resolution", tuple(image.size) == (32, 24), tuple(image.size))
            bpy.data.images.remove(image)
        check("the artist's .blend is still byte-identical", sha256(shot) == before)
    finally:
        background.force_threads = False
        settings.frame_mode = "SCENE"
        settings.override_percentage = False


def test_missing(missing):
    bpy.ops.wm.open_mainfile(filepath=missing)
    result, error, stderr = call_operator(bpy.ops.orchard.check)
    settings = bpy.context.scene.orchard
    check("check returns FINISHED", result == {"FINISHED"}, error or result)
    check("check names the missing texture", "missing_wood.png" in settings.message, settings.message)
    check("check's report names it too", "missing_wood.png" in settings.check_report, settings.check_report)
    check("check lists the workers", "Workers that can take it" in settings.check_report, settings.check_report)
    print(settings.check_report, flush=True)
    result, error, stderr = call_operator(bpy.ops.orchard.check, upload=True)
    check("check on the farm returns FINISHED", result == {"FINISHED"}, error or result)
    farm_lines = [line for line in settings.check_report.split("\n") if line.startswith("Farm:")]
    check("the farm's analysis names the missing texture", any("missing_wood.png" in line for line in farm_lines),
          farm_lines)
    check("nothing of the check was written beside the .blend",
          sorted(set(os.listdir(os.path.dirname(missing))) - {"renders"})
          == ["external.blend", "missing.blend", "shot.blend"],
          os.listdir(os.path.dirname(missing)))


def main():
    print("Blender", bpy.app.version_string, "background" if bpy.app.background else "", flush=True)
    out = os.path.abspath(ARGS.out)
    project = os.path.join(out, "project")
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(os.path.join(os.path.abspath(ARGS.fixtures), "project"), project)
    module = install(os.path.abspath(ARGS.zip), ARGS.install)
    if module not in bpy.context.preferences.addons:
        return 1
    shot = os.path.join(project, "shots", "shot.blend")
    missing = os.path.join(project, "shots", "missing.blend")
    bpy.ops.wm.open_mainfile(filepath=shot)
    test_wrong_key(module)
    test_scripted_wrong_key(module, shot)
    test_submit_and_download(module, shot)
    test_interface_paths(module, shot)
    test_external_library(os.path.join(project, "shots", "external.blend"))
    test_missing(missing)
    test_pack_sets(module, out)
    shutil.rmtree(os.path.join(project, "shots", "renders"), ignore_errors=True)
    failed = [name for name, passed in results if not passed]
    print("%d checks, %d failed" % (len(results), len(failed)), flush=True)
    for name in failed:
        print("FAILED:", name, flush=True)
    return 1 if failed else 0


if __name__ == "__main__" or RUNNING_IN_BLENDER:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if not RUNNING_IN_BLENDER:
        # `bpy` as a module can hang in its exit handlers (a thread of its own waiting on a
        # condition being destroyed): the test is over, leave without them.
        os._exit(code)
    sys.exit(code)
