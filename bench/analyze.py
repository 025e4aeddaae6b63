"""Whole-process `orchard analyze` against the two other ways to learn the same things about a .blend:
launching Blender to read the settings, and Blender Asset Tracer 1.23 (dependencies only).

Run through bench/analyze.sh, which builds orchard and finds the tools. Every command is a fresh process,
timed from spawn to exit (median of several runs); peak memory is the max RSS GNU time reports.
Ratios come from one run of this script, so the machine cancels out.

    python3 bench/analyze.py --orchard target/release/orchard --blender blender \\
        --bpy45 /tmp/bpy45/bin/python --bpy50 /tmp/bpy50/bin/python --bat /tmp/bat/bin/bat [--runs 15]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "blend", "tests", "fixtures")

# What "reading the same settings" means for Blender: open the file and print, for every scene, what
# `orchard analyze` reports (frames, fps, engine, resolution, format, samples, denoising, camera, view
# transform, view layers), plus the external paths. Printed as JSON so the work is comparable.
READ_SETTINGS = r"""
import bpy, json, sys
path = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.open_mainfile(filepath=path, load_ui=False)
out = []
for s in bpy.data.scenes:
    r = s.render
    c = s.cycles
    out.append({
        "name": s.name, "frames": [s.frame_start, s.frame_end, s.frame_step], "fps": r.fps / r.fps_base,
        "engine": r.engine, "resolution": [r.resolution_x, r.resolution_y, r.resolution_percentage],
        "format": r.image_settings.file_format, "samples": c.samples, "denoise": c.use_denoising,
        "device": c.device, "camera": s.camera.name if s.camera else None,
        "view": [s.view_settings.view_transform, s.view_settings.look], "output": r.filepath,
        "layers": [(v.name, v.use) for v in s.view_layers],
    })
print("ORCHARD-BENCH", json.dumps({"scenes": out, "paths": bpy.utils.blend_paths()}), flush=True)
# Skip Blender's teardown: some simulation modifiers abort in it, and it is not reading the file.
import os
os._exit(0)
"""

MAKE_BIG = r"""
import bpy, sys
out = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.read_factory_settings(use_empty=False)
bpy.context.preferences.filepaths.save_version = 0
bpy.ops.mesh.primitive_grid_add(x_subdivisions=1400, y_subdivisions=1400, size=10)
bpy.ops.wm.save_as_mainfile(filepath=out + "/big_uncompressed.blend", compress=False)
bpy.ops.wm.save_as_mainfile(filepath=out + "/big.blend", compress=True)
"""


def run(cmd):
    """Wall seconds (spawn to exit) of one process, which must succeed: posix_spawn + wait4, with no
    shell or `time` wrapper between the clock and the process."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    err = tempfile.TemporaryFile()
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        err.seek(0)
        sys.exit("failed (%d): %s\n%s" % (os.waitstatus_to_exitcode(status), " ".join(cmd), err.read().decode(errors="replace")[-2000:]))
    err.close()
    return wall, usage


def peak_rss(cmd):
    """Max RSS in bytes, from GNU time: wait4 on a child that Python spawned would also count the
    Python process the child started as (Linux carries the pre-exec high-water mark over exec)."""
    p = subprocess.run(["/usr/bin/time", "-f", "ORCHARD-RSS %M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    lines = [l for l in p.stderr.decode(errors="replace").splitlines() if l.startswith("ORCHARD-RSS")]
    return int(lines[-1].split()[1]) * 1024


def measure(cmd, runs):
    """Median wall time of `runs` runs, and the peak RSS of one more."""
    walls = [run(cmd)[0] for _ in range(runs)]
    return statistics.median(walls), peak_rss(cmd)


def decompressed(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"BLENDER"):
        return data
    if data.startswith(b"\x1f\x8b"):
        return zlib.decompress(data, 31)
    return subprocess.run(["zstd", "-dc", path], stdout=subprocess.PIPE, check=True).stdout


def blender_for(path, args):
    """The Blender that opens this file: Debian's 3.4 for files up to 3.4, else the bpy venv of its line."""
    head = decompressed(path)[:17]
    version = int(head[9:12] if head[7:8] in (b"-", b"_") else head[13:17])
    script = os.path.join(tempfile.gettempdir(), "orchard_bench_read.py")
    with open(script, "w") as f:
        f.write(READ_SETTINGS)
    if version <= 304:
        return [args.blender, "-b", "--factory-startup", "--python", script, "--", path]
    python = args.bpy45 if version < 500 else args.bpy50
    return [python, script, "--", path]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orchard", required=True)
    ap.add_argument("--blender", default="blender")
    ap.add_argument("--bpy45", required=True)
    ap.add_argument("--bpy50", required=True)
    ap.add_argument("--bat", required=True)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--blender-runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "orchard-bench"))
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    if not os.path.exists(os.path.join(args.work, "big.blend")):
        script = os.path.join(args.work, "make_big.py")
        with open(script, "w") as f:
            f.write(MAKE_BIG)
        subprocess.run([args.blender, "-b", "--factory-startup", "--python", script, "--", args.work],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    # Copies, so nothing a tool writes beside a file (caches, backups) lands in the repository.
    copies = os.path.join(args.work, "fixtures")
    shutil.rmtree(copies, ignore_errors=True)
    shutil.copytree(FIXTURES, copies)
    files = [
        ("3.4 cube (zstd)", os.path.join(copies, "v3_4", "cube.blend")),
        ("3.4 deps + 2 libraries", os.path.join(copies, "v3_4", "deps", "deps.blend")),
        ("4.5 formats, 16 scenes", os.path.join(copies, "v4_5", "formats.blend")),
        ("5.0 cube (zstd)", os.path.join(copies, "v5_0", "cube.blend")),
        ("5.0 deps + 2 libraries", os.path.join(copies, "v5_0", "deps", "deps.blend")),
        ("3.4 2M-vertex mesh (zstd)", os.path.join(args.work, "big.blend")),
        ("3.4 2M-vertex mesh (plain)", os.path.join(args.work, "big_uncompressed.blend")),
    ]
    rows = []
    baseline = measure([args.orchard, "--version"], args.runs)
    for label, path in files:
        o_wall, o_rss = measure([args.orchard, "analyze", path, "--json"], args.runs)
        b_wall, b_rss = measure(blender_for(path, args), args.blender_runs)
        t_wall, t_rss = measure([args.bat, "list", path], args.runs)
        rows.append({
            "file": label,
            "size": os.path.getsize(path),
            "decompressed": len(decompressed(path)),
            "orchard_ms": o_wall * 1000,
            "orchard_rss": o_rss,
            "blender_ms": b_wall * 1000,
            "blender_rss": b_rss,
            "bat_ms": t_wall * 1000,
            "bat_rss": t_rss,
        })

    mb = 1024 * 1024
    print("orchard --version: %.1f ms, %.1f MB RSS (process baseline)" % (baseline[0] * 1000, baseline[1] / mb))
    print()
    print("| file | size | decompressed | orchard analyze | Blender read | × | BAT 1.23 list | × | orchard peak RSS | RSS / decompressed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.2f MB | %.1f MB | %.1f ms | %.0f ms | %.0f× | %.0f ms | %.1f× | %.1f MB | %.2f |" % (
            r["file"], r["size"] / mb, r["decompressed"] / mb, r["orchard_ms"], r["blender_ms"],
            r["blender_ms"] / r["orchard_ms"], r["bat_ms"], r["bat_ms"] / r["orchard_ms"], r["orchard_rss"] / mb,
            r["orchard_rss"] / r["decompressed"]))
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump({"baseline_ms": baseline[0] * 1000, "baseline_rss": baseline[1], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
