"""Server memory and paged reads with a big history: 100k jobs and 1M tasks seeded straight
into the database, then `orchard serve` (release) answers list, progress and job requests.
Prints the server's resident memory, request latencies, and the query plans that keep the
request paths index-backed.

    python3 bench/scale.py [--jobs 100000] [--tasks-per-job 10]

SQLite (the embedded default). Needs a release build (`cargo build --release -p orchard`).
"""

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHARD = os.path.join(ROOT, "target", "release", "orchard")
STATUSES = ["completed"] * 8 + ["failed", "canceled"]


def orchard(*args, data):
    out = subprocess.run([ORCHARD, *args, "--data", data], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def seed_rows(n_jobs, tasks_per_job, workspace, user):
    """Yields (jobs, tasks) rows; the newest 100 jobs are rendering with queued tasks."""
    now = int(time.time() * 1000)
    for i in range(n_jobs):
        job_id = str(uuid.UUID(int=i + 1))
        live = i >= n_jobs - 100
        status = "rendering" if live else STATUSES[i % len(STATUSES)]
        created = now - (n_jobs - i) * 1000
        job = (job_id, workspace, user, f"slug-{i}", "shot.blend", "blend", f"uploads/slug-{i}", 1000, None, status,
               created, created, tasks_per_job, 0 if live else tasks_per_job)
        tasks = [(str(uuid.UUID(int=(i + 1) * 1000 + t)), job_id, t, json.dumps([t + 1]), 1,
                  "queued" if live else "completed", 1 if not live else 0) for t in range(tasks_per_job)]
        yield job, tasks


JOB_SQL = ("insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size, "
           "main_file, status, created_at, updated_at, frames_total, frames_done) values ({})")
TASK_SQL = "insert into tasks (id, job_id, seq, frames, n_frames, status, attempt) values ({})"
UPLOAD_SQL = ("insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key, expires_at, "
              "created_at, uploaded_at, size) values ({})")


def seed_sqlite(path, n_jobs, tasks_per_job):
    db = sqlite3.connect(path)
    workspace, user = db.execute("select workspace_id, user_id from api_keys limit 1").fetchone()
    marks = lambda n: ", ".join("?" * n)
    for job, tasks in seed_rows(n_jobs, tasks_per_job, workspace, user):
        db.execute(UPLOAD_SQL.format(marks(10)), (job[3], workspace, user, "shot.blend", "blend", job[6], 0, job[10], job[10], 1000))
        db.execute(JOB_SQL.format(marks(14)), job)
        db.executemany(TASK_SQL.format(marks(7)), tasks)
    db.commit()
    plans = {}
    for name, sql, args in QUERIES:
        rows = db.execute("explain query plan " + sql, args(workspace)).fetchall()
        plans[name] = "; ".join(row[-1] for row in rows)
    db.close()
    return plans


QUERIES = [
    ("GET /jobs (page 1)", "select * from jobs where workspace_id = ? order by created_at desc, id desc limit 10 offset 0",
     lambda ws: (ws,)),
    ("GET /jobs count", "select count(*) from jobs where workspace_id = ?", lambda ws: (ws,)),
    ("GET /jobs/progress", "select * from jobs indexed by jobs_by_workspace_status where status in (?, ?, ?) "
     "and workspace_id = ? order by created_at desc limit 1000",
     lambda ws: ("booting", "rendering", "finalizing", ws)),
    ("runnable jobs (claims)", "select * from jobs j where status in (?, ?) and exists (select 1 from tasks t where "
     "t.job_id = j.id and t.status = ?) order by created_at limit 200", lambda ws: ("booting", "rendering", "queued")),
    ("claim: a job's first queued task", "select id from tasks where status = ? and job_id = ? order by seq limit 1",
     lambda ws: ("queued", str(uuid.UUID(int=1)))),
]


def get(base, key, path):
    request = urllib.request.Request(base + "/api/external/v1" + path)
    request.add_header("Authorization", f"Bearer {key}")
    started = time.monotonic()
    with urllib.request.urlopen(request) as response:
        body = json.loads(response.read())
    return body, (time.monotonic() - started) * 1000


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tasks-per-job", type=int, default=10)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="orchard-scale-")
    key = orchard("keys", "create", "--workspace", "studio", data=data)
    started = time.monotonic()
    plans = seed_sqlite(os.path.join(data, "orchard.db"), args.jobs, args.tasks_per_job)
    print(f"seeded {args.jobs} jobs, {args.jobs * args.tasks_per_job} tasks in {time.monotonic() - started:.0f} s (SQLite)")
    port = 7941
    server = subprocess.Popen([ORCHARD, "serve", "--listen", f"127.0.0.1:{port}", "--data", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        idle = rss_mb(server.pid)
        timings = {}
        for name, path in [("GET /jobs?page=1", "/jobs?page=1&pageSize=10"),
                           ("GET /jobs?page=5000", "/jobs?page=5000&pageSize=20"),
                           ("GET /jobs?status=rendering", "/jobs?status=rendering&pageSize=100"),
                           ("GET /jobs/progress", "/jobs/progress")]:
            samples = [get(base, key, path)[1] for _ in range(20)]
            timings[name] = sorted(samples)[len(samples) // 2]
        body, _ = get(base, key, "/jobs?page=1&pageSize=1")
        job_id = body["jobs"][0]["id"]
        timings["GET /jobs/{id}/progress"] = sorted(get(base, key, f"/jobs/{job_id}/progress")[1] for _ in range(20))[10]
        busy = rss_mb(server.pid)
        print(f"server RSS: {idle:.0f} MB after start, {busy:.0f} MB after the requests")
        for name, ms in timings.items():
            print(f"  {name:32} median {ms:6.1f} ms")
        print("query plans (SQLite):")
        for name, plan in plans.items():
            print(f"  {name}: {plan}")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
