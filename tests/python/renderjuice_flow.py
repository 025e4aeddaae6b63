"""A Renderjuice API client written from Renderjuice's public docs, using only Python's
standard library. It runs the documented happy path against any server:

    RJ_BASE_URL=http://127.0.0.1:7800/api/external/v1 RJ_API_KEY=RJ-... RJ_SCENE=scene.blend \
        python3 tests/python/renderjuice_flow.py

Steps (https://www.renderjuice.com/docs/api/job-lifecycle): POST /uploads, PUT uploadUrl,
POST /jobs, POST /jobs/{id}/validate and poll until validated, POST /jobs/{id}/render,
poll until completed, GET /jobs/{id}/downloads, fetch every frame.
"""

import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ["RJ_BASE_URL"].rstrip("/")
KEY = os.environ["RJ_API_KEY"]
SCENE = os.environ["RJ_SCENE"]
TIMEOUT_S = float(os.environ.get("RJ_TIMEOUT_S", "300"))

results = []


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"), flush=True)
    return condition


def poll(job_id, wanted, stop):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        _, _, body = call("GET", f"/jobs/{job_id}")
        job = body["data"]
        if job["status"] in wanted or job["status"] in stop:
            return job
        time.sleep(0.5)
    return job


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


def main():
    file_name = os.path.basename(SCENE)
    status, _, upload = call("POST", "/uploads", {"fileName": file_name, "fileType": "blend"})
    check("POST /uploads answers 200 with uploadUrl, slug, expiresAt",
          status == 200 and {"uploadUrl", "slug", "expiresAt"} <= set(upload), upload)

    with open(SCENE, "rb") as f:
        put = urllib.request.Request(upload["uploadUrl"], data=f.read(), method="PUT")
    with urllib.request.urlopen(put, timeout=60) as response:
        check("PUT uploadUrl stores the file", response.status == 200, response.status)

    status, _, job = call("POST", "/jobs", {"slug": upload["slug"]})
    check("POST /jobs returns a bare job in created", status == 200 and job.get("status") == "created", job)
    job_id = job["id"]
    status, headers, again = call("POST", "/jobs", {"slug": upload["slug"]})
    check("POST /jobs again replays the same job", again.get("id") == job_id, again)

    status, _, _ = call("POST", f"/jobs/{job_id}/validate")
    check("POST /validate answers 200", status == 200, status)
    job = poll(job_id, {"validated"}, {"failed"})
    check("the job becomes validated", job["status"] == "validated", job.get("failedReason"))
    status, _, body = call("POST", f"/jobs/{job_id}/validate")
    check("validating twice is a 400", status == 400, body)

    config = {
        "colorManagementPreset": "default",
        "frameRanges": ["1-3"],
        "renderEngine": "CYCLES",
        "sampleCount": 2,
        "denoisingEnabled": False,
        "resolution": [64, 48],
        "resolutionPercentage": 100,
        "outputFormat": "PNG",
    }
    status, headers, job = call("POST", f"/jobs/{job_id}/render", {"requestedRenderConfig": config})
    check("POST /render answers 200 with the job", status == 200 and job.get("id") == job_id, job)
    status, headers, _ = call("POST", f"/jobs/{job_id}/render", {"requestedRenderConfig": config})
    replay = {k.lower(): v for k, v in headers.items()}.get("x-idempotent-replay")
    check("a second /render is an idempotent replay", status == 200 and replay == "true", headers)

    status, _, progress = call("GET", "/jobs/progress")
    check("GET /jobs/progress answers an array", status == 200 and isinstance(progress, list), progress)

    job = poll(job_id, {"completed"}, {"failed", "canceled"})
    check("the job completes", job["status"] == "completed", job.get("failedReason"))

    status, _, downloads = call("GET", f"/jobs/{job_id}/downloads")
    check("GET /downloads has the documented keys",
          status == 200 and {"frames", "compositeNodes", "transforms", "frameOutputs", "compositeNodeOutputs"} <= set(downloads),
          downloads)
    frames = downloads.get("frames", [])
    check("three frames are listed", len(frames) == 3, frames)
    for url in frames:
        with urllib.request.urlopen(url, timeout=60) as response:
            check(f"frame {url.split('?')[0].rsplit('/', 1)[-1]} is a 64x48 PNG", png_size(response.read()) == (64, 48))

    status, _, listing = call("GET", "/jobs?page=1&pageSize=10&status=completed")
    check("GET /jobs lists it among completed jobs",
          status == 200 and any(it["id"] == job_id for it in listing["jobs"]), listing.get("pagination"))

    failed = sum(1 for _, ok in results if not ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
