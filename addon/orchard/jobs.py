"""What the operators do on the farm, as plain functions: no `bpy`, safe in a thread.

Each takes a `client.Farm`, plain values, and `report(text, fraction)` for progress (fraction in
0–1, or None when unknown), and returns plain values for the main thread to show.
"""

import os
import re
import shutil
import time

from . import client, pack

# `frameRanges` items the farm accepts: `7`, `1-250`, `1-250x5`.
_FRAME_RANGE = re.compile(r"^([+-]?\d+)(?:-([+-]?\d+))?(?:[xX]\+?(\d+))?$")
# Blender versions as workers report them: `3.4.1`, `4.5.15 LTS`.
_VERSION = re.compile(r"^(\d+)\.(\d+)")


def parse_frame_list(text):
    """`"1-10, 15 20-40x2"` → `["1-10", "15", "20-40x2"]`; raises ValueError naming a bad item."""
    normalized = re.sub(r"\s*([-xX])\s*", r"\1", text.strip())
    items = [item for item in re.split(r"[,;\s]+", normalized) if item]
    if not items:
        raise ValueError("The frame list is empty")
    for item in items:
        match = _FRAME_RANGE.match(item)
        if match is None:
            raise ValueError("'%s' is not a frame or a range (write 7, 1-250 or 1-250x5)" % item)
        if match.group(2) is not None and int(match.group(2)) < int(match.group(1)):
            raise ValueError("'%s' runs backwards" % item)
        if match.group(3) is not None and int(match.group(3)) == 0:
            raise ValueError("'%s' has a step of 0" % item)
    return items


def count_frames(frame_ranges):
    """How many frames the union of `frameRanges` holds."""
    frames = set()
    for item in frame_ranges:
        match = _FRAME_RANGE.match(item)
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        frames.update(range(first, last + 1, step))
    return len(frames)


def submit(farm, plan, main_copy, stage_dir, config, part_bytes, report):
    """Packs (when the scene needs more than its `.blend`), uploads, creates, validates and
    starts the render. Returns the job as the render answered it, and the analysis warnings.

    Removes `stage_dir` whatever happens.
    """
    try:
        report("Connecting to %s" % farm.server, None)
        farm.check_access()
        upload_path, file_name, file_type = _archive(plan, main_copy, stage_dir, report)
        size = os.path.getsize(upload_path)
        report("Uploading %s" % _bytes(size), 0.0)
        slug = farm.upload_file(
            upload_path, file_name, file_type, part_bytes=part_bytes,
            on_progress=lambda sent, total: report("Uploading %s of %s" % (_bytes(sent), _bytes(total)),
                                                   sent / total if total else 1.0))
        report("Creating the job", None)
        job = farm.create_job(slug, main_file=plan.main_name if file_type == "zip" else None)
        report("The farm is analysing the scene", None)
        job = farm.wait_validated(farm.validate(job["id"]))
        if job.get("status") == "failed":
            raise client.FarmError("The farm could not read the scene: %s" % failed_text(job))
        warnings = [warning.get("message", "") for warning in (job.get("analysis") or {}).get("warnings", [])]
        report("Starting the render", None)
        job = farm.render(job["id"], config)
        return {"job": job, "warnings": warnings}
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)


def check_on_farm(farm, plan, main_copy, stage_dir, part_bytes, report):
    """Uploads the packed scene, lets the farm analyse it, and deletes the job: the farm's own
    word on the scene without rendering. Returns the analysis."""
    try:
        farm.check_access()
        upload_path, file_name, file_type = _archive(plan, main_copy, stage_dir, report)
        report("Uploading for the check", 0.0)
        slug = farm.upload_file(upload_path, file_name, file_type, part_bytes=part_bytes,
                                on_progress=lambda sent, total: report("Uploading for the check",
                                                                       sent / total if total else 1.0))
        job = farm.create_job(slug, main_file=plan.main_name if file_type == "zip" else None)
        try:
            job = farm.wait_validated(farm.validate(job["id"]))
        finally:
            try:
                farm.delete_job(job["id"])
            except client.FarmError:
                pass  # The check's job stays in `validated`: harmless, and listed on the dashboard.
        if job.get("status") == "failed":
            raise client.FarmError("The farm could not read the scene: %s" % failed_text(job))
        return job.get("analysis") or {}
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)


def status(farm, job_id):
    """The job and its progress counters (None when it is not running)."""
    job = farm.get_job(job_id)
    progress = None
    if job.get("status") in ("booting", "rendering", "finalizing", "suspended"):
        progress = farm.progress(job_id)
    return {"job": job, "progress": progress}


def wait_finished(farm, job_id, report, timeout_s=24 * 3600.0, poll_s=1.0):
    """Polls until the job is completed, failed or canceled; returns the job."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = status(farm, job_id)
        job = state["job"]
        if job.get("status") in client.TERMINAL_STATUSES:
            return job
        if time.monotonic() > deadline:
            raise client.FarmError("The job %s did not finish in %d s" % (job_id, timeout_s))
        counters = state["progress"] or {}
        total = counters.get("framesTotal") or 0
        done = counters.get("framesDone") or 0
        report("Job %s: %s, %d/%d frames" % (job_id[:8], job.get("status"), done, total),
               done / total if total else None)
        time.sleep(poll_s)


def download(farm, job_id, directory, wait, report):
    """Fetches the job's frames (and compositor outputs) into `directory`; returns the paths."""
    job = farm.get_job(job_id)
    if wait and job.get("status") not in client.TERMINAL_STATUSES:
        job = wait_finished(farm, job_id, report)
    listing = farm.downloads(job_id)
    wanted = []
    for output in listing.get("frameOutputs") or []:
        wanted.append((output["url"], _safe_join(directory, output.get("relativePath") or output["fileName"])))
    for output in listing.get("compositeNodeOutputs") or []:
        relative = output.get("relativePath") or output["fileName"]
        node = output.get("compositeNodeName") or "compositor"
        wanted.append((output["url"], _safe_join(directory, "compositor/%s/%s" % (node, relative))))
    if not wanted:
        raise client.FarmError("The job %s has no frames to download yet (status: %s)" % (job_id, job.get("status")))
    written = []
    for index, (url, destination) in enumerate(wanted):
        report("Downloading %s" % os.path.basename(destination), index / len(wanted))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        farm.fetch(url, destination)
        written.append(destination)
    return {"job": job, "files": written}


def workers_for(farm, needs):
    """Which of the farm's workers could take a job with these needs.

    `needs`: `version` (major, minor), `eevee`, `oidn`, `gpu` (booleans). Returns
    (able names, unable (name, why) pairs).
    """
    able, unable = [], []
    for worker in farm.workers():
        name = worker.get("name") or worker.get("id", "?")
        if worker.get("status") == "offline":
            unable.append((name, "offline"))
            continue
        why = "no Blender"
        for build in worker.get("blenders") or []:
            why = _build_refusal(build, needs)
            if why is None:
                break
        if why is None:
            able.append(name + (" (draining)" if worker.get("draining") else ""))
        else:
            unable.append((name, why))
    return able, unable


def failed_text(job):
    """The job's `failedReason` as a sentence."""
    reason = job.get("failedReason") or {}
    text = reason.get("message") or reason.get("name") or "no reason given"
    return text.strip()


def _build_refusal(build, needs):
    """Why a worker's Blender cannot render the job, or None when it can."""
    match = _VERSION.match(build.get("version") or "")
    if match is None:
        return "an unknown Blender version"
    version = (int(match.group(1)), int(match.group(2)))
    if version < tuple(needs["version"]):
        return "Blender %s is older than the file (%d.%d)" % (build.get("version"), *needs["version"])
    if needs.get("eevee") and not build.get("eevee"):
        return "cannot render EEVEE"
    if needs.get("oidn") and not build.get("oidn"):
        return "Blender %s lacks OpenImageDenoise" % build.get("version")
    if needs.get("gpu") and not build.get("gpuBackends"):
        return "no GPU"
    return None


def _archive(plan, main_copy, stage_dir, report):
    """The file to upload: the saved copy alone, or a `.zip` of it and its files."""
    stem = os.path.splitext(os.path.basename(plan.main_name))[0] or "scene"
    if plan.is_single_file():
        return main_copy, stem + ".blend", "blend"
    zip_path = os.path.join(stage_dir, stem + ".zip")
    report("Packing %d files" % (len(plan.files) + 1), 0.0)
    pack.write_zip(plan, main_copy, zip_path,
                   on_progress=lambda done, total: report("Packing", done / total if total else 1.0))
    return zip_path, stem + ".zip", "zip"


def _safe_join(directory, relative):
    """`relative` under `directory`, refusing names that would climb out of it."""
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    if not parts:
        raise client.FarmError("The farm named an output with no file name")
    return os.path.join(directory, *parts)


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%d B" % n
