"""The add-on's farm client (`orchard/client.py`, no `bpy`) against a running farm, with plain
Python:

    python3 addon/tests/test_client.py --server URL --key RJ-… --fixtures DIR

- a project bigger than the part size goes up in parts (`POST /uploads` with `parts`, one PUT
  per part, `POST /uploads/{slug}/complete`), and the farm validates the job made from it;
- refusals read as sentences: a wrong key, an unknown job, a farm that is not there; the key
  appears in none of them.

Exits 0 when every check passed.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("orchard_client", os.path.join(HERE, "..", "orchard", "client.py"))
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)

results = []


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else ": %s" % (detail,)), flush=True)


def error_of(function):
    try:
        function()
    except client.FarmError as error:
        return error
    return None


def test_multipart(farm, fixtures):
    """An 11 MiB project in 5 MiB parts: three PUTs, then complete."""
    with tempfile.TemporaryDirectory() as folder:
        project = os.path.join(folder, "big.zip")
        with zipfile.ZipFile(project, "w") as archive:
            archive.write(os.path.join(fixtures, "project", "shots", "shot.blend"), "shots/shot.blend")
            archive.write(os.path.join(fixtures, "project", "assets", "props.blend"), "assets/props.blend")
            archive.writestr("padding.bin", os.urandom(11 * 1024 * 1024))
        progress = []
        slug = farm.upload_file(project, "big.zip", "zip", part_bytes=client.MIN_PART_BYTES,
                                on_progress=lambda sent, total: progress.append((sent, total)))
        size = os.path.getsize(project)
        check("a multipart upload reports every byte", progress and progress[-1] == (size, size), progress[-1:])
        job = farm.create_job(slug, main_file="shots/shot.blend")
        check("a job is made from the parts", job.get("status") == "created", job)
        job = farm.wait_validated(farm.validate(job["id"]))
        check("the farm validates the reassembled project", job.get("status") == "validated",
              (job.get("status"), job.get("failedReason")))
        scenes = (job.get("analysis") or {}).get("scenes") or [{}]
        check("the farm read the main file named (its camera)", scenes[0].get("camera") == "Camera", scenes)
        farm.delete_job(job["id"])


def test_refusals(server, key):
    wrong = client.Farm(server, "RJ-wrong-key-0000")
    error = error_of(wrong.check_access)
    check("a wrong key is refused with a sentence", error is not None and "API key" in str(error), error)
    check("the refusal does not carry the key", error is not None and "wrong-key" not in str(error), error)
    check("the farm's repr does not carry the key", key not in repr(client.Farm(server, key)))
    farm = client.Farm(server, key)
    error = error_of(lambda: farm.get_job("00000000-0000-0000-0000-000000000000"))
    check("an unknown job is the farm's 404 message", error is not None and error.status == 404, error)
    error = error_of(lambda: farm.render("00000000-0000-0000-0000-000000000000", {}))
    check("a refused render carries the farm's message", error is not None and "refused" in str(error), error)
    nowhere = client.Farm("http://127.0.0.1:9", key)
    error = error_of(nowhere.check_access)
    check("an unreachable farm says so", error is not None and "Cannot reach the farm" in str(error), error)
    check("no key, no call", error_of(lambda: client.Farm(server, "")) is not None)
    check("no URL, no call", error_of(lambda: client.Farm("", key)) is not None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--fixtures", required=True)
    args = parser.parse_args()
    farm = client.Farm(args.server, args.key)
    test_multipart(farm, os.path.abspath(args.fixtures))
    test_refusals(args.server, args.key)
    failed = [name for name, passed in results if not passed]
    print("%d checks, %d failed" % (len(results), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
