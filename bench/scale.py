"""Server memory and paged reads with a big history: 100k jobs and 1M tasks seeded straight
into the database, then `orchard serve` (release) answers list, progress and job requests.
Prints the server's resident memory, request latencies, and the query plans that keep the
request paths index-backed.

    python3 bench/scale.py [--jobs 100000] [--tasks-per-job 10]
    python3 bench/scale.py --backend postgres --postgres-url postgres://postgres@127.0.0.1:5432/postgres

SQLite (the embedded default), or PostgreSQL: `--postgres-url` is an admin URL of a server where
the script may create a database; it creates a fresh one, seeds it with `psql` (which must be
installed), runs `vacuum analyze`, prints `explain (analyze, buffers)` of the statements the
server runs (the PostgreSQL store's own SQL, with realistic parameters, as prepared statements:
custom plan, the plan after 10 executions, generic plan; and GET /jobs/progress with 500 running
tasks), and drops the database at the end. Needs a release build
(`cargo build --release -p orchard`).
"""

import argparse
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHARD = os.path.join(ROOT, "target", "release", "orchard")
STATUSES = ["completed"] * 8 + ["failed", "canceled"]


def orchard(*args, data, database_url=None):
    extra = ["--database-url", database_url] if database_url else []
    out = subprocess.run([ORCHARD, *args, "--data", data, *extra], check=True, capture_output=True, text=True)
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
    # Job creation keeps each workspace's count; a seed straight into the tables must too.
    db.execute("insert or replace into workspace_job_counts (workspace_id, jobs) "
               "select workspace_id, count(*) from jobs group by workspace_id")
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
    ("GET /jobs total", "select jobs from workspace_job_counts where workspace_id = ?", lambda ws: (ws,)),
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


# PostgreSQL: the store's own statements, read out of its source (so that what is explained is
# what runs): JOB_COLUMNS (whose `frames_rendering` is a correlated subquery over the job's
# running tasks), the single claim, and the batched claim and completion.
STORE_SOURCE = os.path.join(ROOT, "crates", "store", "src")


def rust_sql(file, start):
    """The Rust string literal in `file` (under STORE_SOURCE) that begins with `start`, as the
    compiler reads it: a backslash at a line's end joins it to the next line's text."""
    with open(os.path.join(STORE_SOURCE, file)) as f:
        source = f.read()
    match = re.search(r'"(' + re.escape(start) + r'(?:[^"\\]|\\.)*)"', source, re.S)
    if not match:
        raise SystemExit(f"scale.py: no statement starting {start!r} in {file}")
    return re.sub(r"\\\n\s*", "", match.group(1))


PG_JOB_COLUMNS = rust_sql("jobs.rs", "id, workspace_id, user_id, upload_slug")
PG_CLAIM = rust_sql("postgres/hot.rs", "with next as (")
PG_COMPLETE_BATCH = rust_sql("postgres/hot.rs", "with input as (")
PG_CLAIM_BATCH = rust_sql("postgres/hot.rs", "with members as (")
RUNNING = ["booting", "rendering", "finalizing"]

# (name, statement, parameter types, parameters given the context, whether it writes: run in a
# rolled-back transaction, after the statements it returns if it is a function). Parameters are
# what the server binds for the timed requests.
PG_QUERIES = [
    ("GET /jobs (page 1)", f"select {PG_JOB_COLUMNS} from jobs where workspace_id = $1 "
     "order by created_at desc, id desc limit $2 offset $3", ["text", "int8", "int8"],
     lambda c: [c["ws"], 10, 0], False),
    ("GET /jobs (page 5000)", f"select {PG_JOB_COLUMNS} from jobs where workspace_id = $1 "
     "order by created_at desc, id desc limit $2 offset $3", ["text", "int8", "int8"],
     lambda c: [c["ws"], 20, 4999 * 20], False),
    ("GET /jobs total", "select jobs from workspace_job_counts where workspace_id = $1", ["text"], lambda c: [c["ws"]],
     False),
    ("GET /jobs?status=rendering", f"select {PG_JOB_COLUMNS} from jobs where workspace_id = $1 and status = any($2) "
     "order by created_at desc, id desc limit $3 offset $4", ["text", "text[]", "int8", "int8"],
     lambda c: [c["ws"], ["rendering"], 100, 0], False),
    ("GET /jobs?status=rendering count", "select count(*) from jobs where workspace_id = $1 and status = any($2)",
     ["text", "text[]"], lambda c: [c["ws"], ["rendering"]], False),
    ("GET /jobs?status=completed (page 1)", f"select {PG_JOB_COLUMNS} from jobs where workspace_id = $1 "
     "and status = any($2) order by created_at desc, id desc limit $3 offset $4", ["text", "text[]", "int8", "int8"],
     lambda c: [c["ws"], ["completed"], 20, 0], False),
    ("GET /jobs/progress", f"select {PG_JOB_COLUMNS} from jobs where status = any($1) "
     "and ($2::text is null or workspace_id = $2) order by created_at desc limit $3", ["text[]", "text", "int8"],
     lambda c: [RUNNING, c["ws"], 1000], False),
    ("GET /jobs/{id} (/progress)", f"select {PG_JOB_COLUMNS} from jobs where id = $1 and workspace_id = $2",
     ["text", "text"], lambda c: [c["newest"], c["ws"]], False),
    ("runnable jobs (claims)", "select id from jobs j where status in ($1, $2) and exists (select 1 from tasks t "
     "where t.job_id = j.id and t.status = $3) order by created_at limit $4", ["text", "text", "text", "int8"],
     lambda c: ["booting", "rendering", "queued", 200], False),
    ("claim statement", PG_CLAIM,
     ["text", "text", "text", "text[]", "text", "text", "text", "int8", "int8", "text", "int8", "int8"],
     lambda c: ["queued", "booting", "rendering", c["runnable"], None, "running", "scale-worker",
                c["now"] + 60_000, c["now"], "rendering", 3, 0], True),
    ("claim batch (8 workers)", PG_CLAIM_BATCH,
     ["text[]", "int8[]", "int8[]", "text[]", "text", "text", "int8", "text", "text", "int8", "int8", "text", "text",
      "int8"],
     lambda c: [[f"scale-worker-{i}" for i in range(8)], [c["now"] + 60_000] * 8, [c["now"]] * 8, c["runnable"],
                "booting", "rendering", 3, None, "queued", 0, 8, "running", "rendering", c["now"]], True),
    ("completion batch (16 tasks of 2 jobs)", PG_COMPLETE_BATCH,
     ["text[]", "int8[]", "float8[]", "float8[]", "int8[]", "text", "text", "text[]", "text[]", "text[]", "int4[]",
      "text[]", "text[]", "int8[]", "text", "text", "text", "int8[]"],
     lambda c: [c["batch"], [1] * 16, [0.5] * 16, [0.5] * 16, [c["now"]] * 16, "completed", "running",
                c["batch"], [f"scale-output-{i}" for i in range(16)], ["frame"] * 16, list(range(1, 17)),
                [f"{i:04}.png" for i in range(16)], [f"k/{i}" for i in range(16)], [100] * 16,
                "booting", "rendering", "finalizing", [1] * 16],
     lambda c: "update tasks set status = 'running', attempt = 1 where id = any(" + pg_literal(c["batch"]) + ");\n"),
]


def pg_literal(value):
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return pg_literal("{" + ",".join('"' + str(v) + '"' for v in value) + "}")
    return "'" + str(value).replace("'", "''") + "'"


def psql(url, sql):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url], input=sql,
                         check=True, capture_output=True, text=True)
    return out.stdout


def database_url(admin_url, name):
    return urllib.parse.urlsplit(admin_url)._replace(path="/" + name).geturl()


def seed_postgres(url, n_jobs, tasks_per_job):
    """The rows seed_rows makes for SQLite, made by the server itself with generate_series."""
    workspace, user = psql(url, "select workspace_id, user_id from api_keys limit 1").strip().split("|")
    ws, us = pg_literal(workspace), pg_literal(user)
    now = int(time.time() * 1000)
    statuses = "array[" + ", ".join(pg_literal(s) for s in STATUSES) + "]"
    uid = "lpad(to_hex({}), 32, '0')::uuid::text"  # str(uuid.UUID(int=N))
    psql(url, f"""
begin;
create temporary table seed on commit drop as
    select i, {uid.format("i + 1")} as id, i >= {n_jobs} - 100 as live,
           {now} - ({n_jobs} - i)::bigint * 1000 as created
    from generate_series(0, {n_jobs} - 1) as i;
insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key, expires_at, created_at,
                     uploaded_at, size)
    select 'slug-' || i, {ws}, {us}, 'shot.blend', 'blend', 'uploads/slug-' || i, 0, created, created, 1000 from seed;
insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size, main_file,
                  status, created_at, updated_at, frames_total, frames_done)
    select id, {ws}, {us}, 'slug-' || i, 'shot.blend', 'blend', 'uploads/slug-' || i, 1000, null,
           case when live then 'rendering' else ({statuses})[i % {len(STATUSES)} + 1] end, created, created,
           {tasks_per_job}, case when live then 0 else {tasks_per_job} end
    from seed;
insert into tasks (id, job_id, seq, frames, n_frames, status, attempt)
    select {uid.format("(i + 1)::bigint * 1000 + t")}, id, t, '[' || (t + 1) || ']', 1,
           case when live then 'queued' else 'completed' end, case when live then 0 else 1 end
    from seed cross join generate_series(0, {tasks_per_job} - 1) as t
    order by i, t;
-- Job creation keeps each workspace's count; a seed straight into the tables must too.
insert into workspace_job_counts (workspace_id, jobs) select workspace_id, count(*) from jobs group by workspace_id
    on conflict (workspace_id) do update set jobs = excluded.jobs;
commit;
vacuum analyze;
""")
    newest = psql(url, "select id from jobs order by created_at desc limit 1").strip()
    runnable = psql(url, "select id from jobs where status = 'rendering' order by created_at limit 200").split()
    batch = psql(url, "select id from tasks where status = 'queued' order by status, job_id, seq limit 16").split()
    return {"ws": workspace, "newest": newest, "runnable": runnable, "now": now, "batch": batch}


def explain(url, sql, types, args, mode="force_custom_plan", runs=0, before="", writes=False):
    """explain (analyze, buffers) of `sql` as a prepared statement, after `runs` executions of it
    (a pooled connection of the server prepares each statement once and runs it many times),
    in a transaction rolled back when the statement writes or `before` changes rows."""
    values = ", ".join(pg_literal(v) for v in args)
    rollback = writes or bool(before)
    script = (f"set plan_cache_mode = {mode};\n" + ("begin;\n" if rollback else "") + before +
              f"prepare q ({', '.join(types)}) as {sql};\n" +
              ("\\o /dev/null\n" + f"execute q ({values});\n" * runs + "\\o\n" if runs else "") +
              f"explain (analyze, buffers, format json) execute q ({values});\n" +
              ("rollback;\n" if rollback else ""))
    return json.loads(psql(url, script))[0]


def explain_postgres(url, context):
    """Per statement: (name, custom plan, the plan after 10 executions where it differs, the
    generic plan where it differs from both, findings)."""
    results = []
    for name, sql, types, params, writes in PG_QUERIES:
        args = params(context)
        before = writes(context) if callable(writes) else ""
        writes = bool(writes)
        custom = explain(url, sql, types, args, writes=writes, before=before)
        settled = explain(url, sql, types, args, mode="auto", runs=10, writes=writes, before=before)
        generic = explain(url, sql, types, args, mode="force_generic_plan", writes=writes, before=before)
        shapes = [plan_shape(p["Plan"]) for p in (custom, settled, generic)]
        findings = sorted(set(plan_findings(custom["Plan"])) | set(plan_findings(settled["Plan"])))
        findings += [f"generic plan only: {f}" for f in sorted(set(plan_findings(generic["Plan"])) - set(findings))]
        results.append((name, condense(custom), None if shapes[1] == shapes[0] else condense(settled),
                        None if shapes[2] in shapes[:2] else condense(generic), findings))
    return results


def explain_running(url, context):
    """frames_rendering counts the job's running tasks when a job is read. The seed has none:
    mark half the queued tasks running (5 per rendering job), as a farm with 500 busy workers,
    and explain GET /jobs/progress with the statistics of before (as until autovacuum analyzes
    tasks) and after `analyze tasks`."""
    name, sql, types, params, _ = next(q for q in PG_QUERIES if q[0] == "GET /jobs/progress")
    running = "update tasks set status = 'running', attempt = 1 where status = 'queued' and seq < 5;\n"
    results = []
    for label, before in [("500 running tasks, statistics without them", running),
                          ("500 running tasks, after analyze tasks", running + "analyze tasks;\n")]:
        explained = explain(url, sql, types, params(context), before=before)
        results.append((f"{name} ({label})", condense(explained), sorted(set(plan_findings(explained["Plan"])))))
    return results


def walk(node, depth=0):
    yield node, depth
    for child in node.get("Plans", []):
        yield from walk(child, depth + 1)


def plan_shape(plan):
    return [(node["Node Type"], node.get("Index Name"), node.get("Relation Name"), depth) for node, depth in walk(plan)]


def short(text):
    """Conditions without the long literals (ids, arrays of ids)."""
    text = re.sub(r"'[^']{24,}'", "'…'", text)
    return re.sub(r"\(?'\{[^']*\}'::text\[\]\)?", "$array", text)


def condense(explained):
    """One line: the plan's nodes in order (depth as dots), then time and buffers."""
    parts = []
    for node, depth in walk(explained["Plan"]):
        text = node["Node Type"]
        if node.get("Parent Relationship") in ("SubPlan", "InitPlan"):
            text = f"{node.get('Subplan Name', node['Parent Relationship'])}: {text}"
        if "Index Name" in node:
            text += f" {node['Index Name']}"
        if "Relation Name" in node:
            text += f" on {node['Relation Name']}"
        for key in ["Index Cond", "Recheck Cond", "Filter", "Sort Key", "Hash Cond", "Join Filter"]:
            if key in node:
                value = ", ".join(node[key]) if isinstance(node[key], list) else node[key]
                text += f" [{key.lower()}: {short(value)}]"
        if "Sort Method" in node:
            text += f" [{node['Sort Method']}]"
        if node.get("Actual Loops", 1) == 0:
            text += " (never executed)"
        else:
            loops = node.get("Actual Loops", 1)
            rows = f"rows {node.get('Actual Rows', 0)}" + (f"×{loops}" if loops != 1 else "")
            removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            if removed:
                rows += f", {removed}" + (f"×{loops}" if loops != 1 else "") + " removed"
            if node.get("Heap Fetches"):
                rows += f", {node['Heap Fetches']} heap fetches"
            text += f" ({rows})"
        parts.append("·" * depth + text)
    top = explained["Plan"]
    buffers = f"{top.get('Shared Hit Blocks', 0)} hit / {top.get('Shared Read Blocks', 0)} read"
    return " → ".join(parts) + f" | {explained['Execution Time']:.2f} ms, buffers {buffers}"


def plan_findings(plan):
    """What makes a plan not index-backed: a scan of a whole big table, a sort of many rows, or
    many rows read and dropped."""
    for node, _ in walk(plan):
        kind, table = node["Node Type"], node.get("Relation Name")
        loops = node.get("Actual Loops", 1)
        rows = node.get("Actual Rows", 0) * loops
        removed = (node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)) * loops
        if kind == "Seq Scan" and table in ("jobs", "tasks"):
            yield f"Seq Scan on {table} ({rows} rows, {removed} removed)"
        if kind in ("Sort", "Incremental Sort"):
            sorted_rows = sum(c.get("Actual Rows", 0) * c.get("Actual Loops", 1) for c in node.get("Plans", []))
            if sorted_rows > 1000:
                yield f"{kind} of {sorted_rows} rows ({node.get('Sort Method', '?')})"
        if table in ("jobs", "tasks") and rows + removed > 10_000:
            yield f"{kind} on {table} reads {rows + removed} rows"


def start_server(data, port, database_url=None):
    extra = ["--database-url", database_url] if database_url else []
    return subprocess.Popen([ORCHARD, "serve", "--listen", f"127.0.0.1:{port}", "--data", data, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(server, base, key, n_jobs):
    """RSS after start, RSS after the requests, and the median of each request (ms)."""
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz")
            break
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"orchard serve exited with {server.returncode}")
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
    assert body["pagination"]["total"] == n_jobs, body["pagination"]
    job_id = body["jobs"][0]["id"]
    timings["GET /jobs/{id}/progress"] = sorted(get(base, key, f"/jobs/{job_id}/progress")[1] for _ in range(20))[10]
    busy = rss_mb(server.pid)
    return idle, busy, timings


def print_measures(idle, busy, timings):
    print(f"server RSS: {idle:.0f} MB after start, {busy:.0f} MB after the requests")
    for name, ms in timings.items():
        print(f"  {name:32} median {ms:6.1f} ms")


def run_sqlite(args, port):
    data = tempfile.mkdtemp(prefix="orchard-scale-")
    key = orchard("keys", "create", "--workspace", "studio", data=data)
    started = time.monotonic()
    plans = seed_sqlite(os.path.join(data, "orchard.db"), args.jobs, args.tasks_per_job)
    print(f"seeded {args.jobs} jobs, {args.jobs * args.tasks_per_job} tasks in {time.monotonic() - started:.0f} s (SQLite)")
    server = start_server(data, port)
    try:
        print_measures(*measure(server, f"http://127.0.0.1:{port}", key, args.jobs))
        print("query plans (SQLite):")
        for name, plan in plans.items():
            print(f"  {name}: {plan}")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", data])


def run_postgres(args, port):
    name = f"orchard_scale_{os.getpid()}"
    url = database_url(args.postgres_url, name)
    data = tempfile.mkdtemp(prefix="orchard-scale-")
    psql(args.postgres_url, f"create database {name}")
    server = None
    try:
        # Creating the key migrates the new database.
        key = orchard("keys", "create", "--workspace", "studio", data=data, database_url=url)
        started = time.monotonic()
        context = seed_postgres(url, args.jobs, args.tasks_per_job)
        print(f"seeded {args.jobs} jobs, {args.jobs * args.tasks_per_job} tasks in "
              f"{time.monotonic() - started:.0f} s (PostgreSQL, then vacuum analyze)")
        server = start_server(data, port, url)
        measured = measure(server, f"http://127.0.0.1:{port}", key, args.jobs)
        server.terminate()
        server.wait()
        server = None
        print_measures(*measured)
        # After the server stopped, so that it does not run beside the plans.
        version = psql(url, "show server_version").strip()
        print(f"query plans (PostgreSQL {version}, explain (analyze, buffers) of prepared statements: the "
              "custom plan; the plan after 10 executions and the generic plan where they differ):")
        flagged = False
        for query, custom, settled, generic, findings in explain_postgres(url, context):
            print(f"  {query}: {custom}")
            if settled:
                print(f"    after 10 executions (plan_cache_mode auto): {settled}")
            if generic:
                print(f"    generic plan (plan_cache_mode force_generic_plan): {generic}")
            for finding in findings:
                flagged = flagged or not finding.startswith("generic plan only")
                print(f"    NOT INDEX-BACKED: {finding}")
        for query, plan, findings in explain_running(url, context):
            print(f"  {query}: {plan}")
            for finding in findings:
                flagged = True
                print(f"    NOT INDEX-BACKED: {finding}")
        if not flagged:
            print("  every plan is index-backed")
    finally:
        if server:
            server.terminate()
            server.wait()
        psql(args.postgres_url, f"drop database if exists {name} with (force)")
        subprocess.run(["rm", "-rf", data])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tasks-per-job", type=int, default=10)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", help="admin URL of a PostgreSQL server where a database may be created")
    args = parser.parse_args()
    if args.backend == "postgres" and not args.postgres_url:
        parser.error("--backend postgres needs --postgres-url")
    port = 7941
    if args.backend == "sqlite":
        run_sqlite(args, port)
    else:
        run_postgres(args, port)


if __name__ == "__main__":
    main()
