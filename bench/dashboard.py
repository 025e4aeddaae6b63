"""The dashboard's jobs page at 100k jobs, against `GET /jobs`: seeds a workspace's history
straight into SQLite (as bench/scale.py does: the newest 100 jobs rendering), starts
`orchard serve` (release), logs in through the dashboard's form, and times, median of 20
each: the API's own `GET /jobs` with a key; the page's shell (`GET /`); and the page's data
calls as the page makes them, with the session cookie (page 1 of 25 jobs and the in-flight
counters; a status filter; a deep page).

    cargo build --release -p orchard && python3 bench/dashboard.py [--jobs N]
"""

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHARD = os.path.join(ROOT, "target", "release", "orchard")
STATUSES = ["completed"] * 8 + ["failed", "canceled"]


def orchard(*args, data):
    out = subprocess.run([ORCHARD, *args, "--data", data], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def seed_sqlite(path, n_jobs):
    """`n_jobs` jobs of the key's workspace, one task each, the newest 100 rendering (as
    bench/scale.py seeds them), straight into the database."""
    db = sqlite3.connect(path)
    workspace, user = db.execute("select workspace_id, user_id from api_keys limit 1").fetchone()
    now = int(time.time() * 1000)
    for i in range(n_jobs):
        job_id = str(uuid.UUID(int=i + 1))
        live = i >= n_jobs - 100
        status = "rendering" if live else STATUSES[i % len(STATUSES)]
        created = now - (n_jobs - i) * 1000
        db.execute("insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key, expires_at, "
                   "created_at, uploaded_at, size) values (?, ?, ?, 'shot.blend', 'blend', ?, 0, ?, ?, 1000)",
                   (f"slug-{i}", workspace, user, f"uploads/slug-{i}", created, created))
        db.execute("insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, "
                   "file_size, status, created_at, updated_at, frames_total, frames_done) "
                   "values (?, ?, ?, ?, 'shot.blend', 'blend', ?, 1000, ?, ?, ?, 1, ?)",
                   (job_id, workspace, user, f"slug-{i}", f"uploads/slug-{i}", status, created, created, 0 if live else 1))
        db.execute("insert into tasks (id, job_id, seq, frames, n_frames, status, attempt) values (?, ?, 0, '[1]', 1, ?, ?)",
                   (str(uuid.UUID(int=(i + 1) * 1000)), job_id, "queued" if live else "completed", 0 if live else 1))
    # Job creation keeps each workspace's count; a seed straight into the tables must too.
    db.execute("insert or replace into workspace_job_counts (workspace_id, jobs) "
               "select workspace_id, count(*) from jobs group by workspace_id")
    db.commit()
    db.close()


def start_server(data, port):
    server = subprocess.Popen([ORCHARD, "serve", "--listen", f"127.0.0.1:{port}", "--data", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"orchard serve exited with {server.returncode}")
            time.sleep(0.1)
    raise SystemExit("orchard serve did not answer")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def log_in(base, key):
    """The session cookie the login form sets."""
    opener = urllib.request.build_opener(NoRedirect)
    body = urllib.parse.urlencode({"key": key}).encode()
    try:
        opener.open(urllib.request.Request(base + "/login", data=body, method="POST"))
    except urllib.error.HTTPError as answer:
        if answer.code != 303:
            raise
        return answer.headers["Set-Cookie"].split(";")[0]
    raise SystemExit("the login did not redirect")


def timed(url, headers):
    request = urllib.request.Request(url, headers=headers)
    started = time.monotonic()
    with urllib.request.urlopen(request) as response:
        response.read()
    return (time.monotonic() - started) * 1000


def median(url, headers, runs=20):
    samples = sorted(timed(url, headers) for _ in range(runs))
    return samples[len(samples) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=7893)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="orchard-dashboard-")
    key = orchard("keys", "create", "--workspace", "studio", data=data)
    started = time.monotonic()
    seed_sqlite(os.path.join(data, "orchard.db"), args.jobs)
    print(f"seeded {args.jobs} jobs in {time.monotonic() - started:.0f} s (SQLite)")
    base = f"http://127.0.0.1:{args.port}"
    server = start_server(data, args.port)
    try:
        api = base + "/api/external/v1"
        with_key = {"Authorization": f"Bearer {key}"}
        with urllib.request.urlopen(urllib.request.Request(api + "/jobs?pageSize=1", headers=with_key)) as answer:
            total = json.loads(answer.read())["pagination"]["total"]
        assert total == args.jobs, total
        with_cookie = {"Cookie": log_in(base, key)}
        last_page = (args.jobs + 24) // 25
        rows = [
            ("GET /jobs (API, key; page 1 of 10)", api + "/jobs", with_key),
            ("GET /jobs?pageSize=25 (API, key)", api + "/jobs?page=1&pageSize=25", with_key),
            ("GET / (the jobs page's HTML)", base + "/", with_cookie),
            ("page data: /jobs?page=1&pageSize=25 (cookie)", api + "/jobs?page=1&pageSize=25", with_cookie),
            ("page data: /jobs/progress (cookie)", api + "/jobs/progress", with_cookie),
            ("GET /jobs?status=completed (API, key)", api + "/jobs?page=1&pageSize=25&status=completed", with_key),
            ("page data: ?status=completed (cookie)", api + "/jobs?page=1&pageSize=25&status=completed", with_cookie),
            (f"GET /jobs?page={last_page} (API, key)", api + f"/jobs?page={last_page}&pageSize=25", with_key),
            (f"page data: last page {last_page} (cookie)", api + f"/jobs?page={last_page}&pageSize=25", with_cookie),
        ]
        for name, url, headers in rows:
            print(f"  {name:48} median {median(url, headers):6.1f} ms")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
