"""Farm overhead: a job's wall time on Orchard against one `blender -b -a` over the same
frames with the same threads, measured in the same run, with warm sessions (and, with
`--cold`, with Blender started per task).

    python3 bench/farm_overhead.py [--frames 24] [--threads 2] [--pairs 3] [--cold] [--video]

The host's speed drifts by several per cent over minutes, more than the overhead measured: the
baseline and Orchard run in pairs, in alternating order (baseline first, then Orchard first),
and the median of the pairs' ratios is the result.

Needs a release build (`cargo build --release -p orchard`) and Blender on PATH. The job's
wall time runs from the render request to `completed` (polled every 50 ms): scheduling,
Blender start-up, rendering, output checks and uploads, and finalizing (the contact sheet and
preview; with `--video`, the job also asks for its video, which the farm's worker makes with
ffmpeg while the job is `finalizing`: its cost is the finalizing time printed).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHARD = os.path.join(ROOT, "target", "release", "orchard")
SCENE = os.path.join(ROOT, "examples", "cube.blend")
WIDTH, HEIGHT, SAMPLES = 320, 240, 64


def baseline(frames, threads, out):
    expr = (
        "import bpy; s = bpy.context.scene; s.render.engine = 'CYCLES'; "
        f"s.render.resolution_x = {WIDTH}; s.render.resolution_y = {HEIGHT}; s.render.resolution_percentage = 100; "
        f"s.cycles.samples = {SAMPLES}; s.cycles.use_denoising = False; s.cycles.device = 'CPU'"
    )
    started = time.monotonic()
    subprocess.run(
        ["blender", "-b", "--factory-startup", SCENE, "--python-expr", expr, "-o", os.path.join(out, "####"),
         "-F", "PNG", "-t", str(threads), "-s", "1", "-e", str(frames), "-a"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def call(base, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/external/v1" + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def farm(frames, threads, warm, video=False):
    data = tempfile.mkdtemp(prefix="orchard-bench-")
    port = 7931 if warm else 7932
    args = [ORCHARD, "up", "--listen", f"127.0.0.1:{port}", "--data", data, "--workers", "1",
            "--threads", str(threads), "--speed-factor", "1", "--blender", shutil.which("blender")]
    if not warm:
        args.append("--no-warm-sessions")
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()
        key = open(os.path.join(data, "admin.key")).read().strip()
        base = f"http://127.0.0.1:{port}"
        upload = call(base, key, "POST", "/uploads", {"fileName": "cube.blend", "fileType": "blend"})
        with open(SCENE, "rb") as f:
            urllib.request.urlopen(urllib.request.Request(upload["uploadUrl"], data=f.read(), method="PUT")).read()
        job = call(base, key, "POST", "/jobs", {"slug": upload["slug"]})
        call(base, key, "POST", f"/jobs/{job['id']}/validate")
        # Let the worker finish registering (its Blender probe) before the clock starts, as on a
        # farm that is already running.
        time.sleep(3)
        config = {"colorManagementPreset": "default", "frameRanges": [f"1-{frames}"], "renderEngine": "CYCLES",
                  "resolution": [WIDTH, HEIGHT], "resolutionPercentage": 100, "sampleCount": SAMPLES,
                  "denoisingEnabled": False, "outputFormat": "PNG"}
        if video:
            config["video"] = True
        started = time.monotonic()
        finalizing = None
        call(base, key, "POST", f"/jobs/{job['id']}/render", {"requestedRenderConfig": config})
        while True:
            status = call(base, key, "GET", f"/jobs/{job['id']}")["data"]["status"]
            if status == "finalizing" and finalizing is None:
                finalizing = time.monotonic()
            if status in ("completed", "failed", "canceled"):
                break
            time.sleep(0.05)
        ended = time.monotonic()
        elapsed = ended - started
        if status != "completed":
            sys.exit(f"the job {status}")
        if video and not call(base, key, "GET", f"/jobs/{job['id']}/downloads")["transforms"]["video"].get("url"):
            sys.exit("the job completed without its video (is ffmpeg installed?)")
        n_tasks = len(call(base, key, "GET", f"/jobs/{job['id']}/tasks"))
        return elapsed, n_tasks, ended - (finalizing or ended)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also measure Blender started per task")
    parser.add_argument("--video", action="store_true", help="the job also makes its video (ffmpeg)")
    args = parser.parse_args()

    def blender_run():
        out = tempfile.mkdtemp(prefix="orchard-baseline-")
        try:
            return baseline(args.frames, args.threads, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    ratios, tasks, finalizing = [], 0, []
    print(f"{args.frames} frames, {WIDTH}x{HEIGHT}, Cycles {SAMPLES} samples, {args.threads} threads")
    for pair in range(args.pairs):
        if pair % 2 == 0:
            blender_s = blender_run()
            warm_s, tasks, final_s = farm(args.frames, args.threads, warm=True, video=args.video)
        else:
            warm_s, tasks, final_s = farm(args.frames, args.threads, warm=True, video=args.video)
            blender_s = blender_run()
        ratios.append(warm_s / blender_s)
        finalizing.append(final_s / blender_s)
        print(f"  pair {pair + 1}: blender -b -a {blender_s:7.2f} s, orchard (warm, {tasks} tasks) {warm_s:7.2f} s, "
              f"ratio {warm_s / blender_s:.3f}; finalizing{' with the video' if args.video else ''} {final_s:.2f} s")
    ratios.sort()
    finalizing.sort()
    print(f"  median ratio over {len(ratios)} pairs: {ratios[len(ratios) // 2]:.3f}; finalizing "
          f"{finalizing[len(finalizing) // 2]:.3f} of the render")
    if args.cold:
        blender_s = blender_run()
        cold_s, _, _ = farm(args.frames, args.threads, warm=False)
        print(f"  Blender per task: {cold_s:7.2f} s against {blender_s:7.2f} s, ratio {cold_s / blender_s:.3f}")


if __name__ == "__main__":
    main()
