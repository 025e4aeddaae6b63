#!/usr/bin/env bash
# Benchmark: `GET /api/external/v1/jobs/{id}` throughput, Orchard against a bare axum
# hello-world (bench/hello-axum) built and measured in the same run. Prints both rates and
# their ratio; the ratio is what BENCHMARKS.md records.
#
#   bench/get_job.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release --locked -q -p orchard -p hello-axum
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

orchard=./target/release/orchard
ORCHARD_LOG=warn $orchard serve --listen 127.0.0.1:7891 --data "$work/data" >/dev/null 2>&1 &
pids+=($!)
./target/release/hello-axum 127.0.0.1:7892 >/dev/null &
pids+=($!)
# The key once the server answers: it has migrated the new database by then.
for _ in $(seq 50); do curl -sf http://127.0.0.1:7891/healthz >/dev/null && break; sleep 0.1; done
key=$($orchard keys create --workspace bench --data "$work/data" 2>/dev/null | tail -n 1)

# One real job: upload the example scene, create and validate it.
api=http://127.0.0.1:7891/api/external/v1
auth="Authorization: Bearer $key"
upload=$(curl -sf -H "$auth" -H 'Content-Type: application/json' -d '{"fileName":"cube.blend","fileType":"blend"}' $api/uploads)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
curl -sf -X PUT --data-binary @examples/cube.blend "$(echo "$upload" | field uploadUrl)" >/dev/null
job=$(curl -sf -H "$auth" -H 'Content-Type: application/json' -d "{\"slug\":\"$(echo "$upload" | field slug)\"}" $api/jobs | field id)
curl -sf -X POST -H "$auth" $api/jobs/$job/validate >/dev/null

rate() { wrk -t2 -c"$connections" -d"${duration}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
orchard_rps=$(rate -H "$auth" "$api/jobs/$job")
hello_rps=$(rate "http://127.0.0.1:7892/api/external/v1/jobs/$job")
python3 - "$orchard_rps" "$hello_rps" "$duration" "$connections" <<'PY'
import sys
orchard, hello, duration, connections = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"GET /jobs/{{id}} ({duration}s, {connections} connections, wrk -t2, this machine)")
print(f"  orchard      {orchard:10.0f} req/s   (auth + SQLite read + analysis JSON + signed URLs)")
print(f"  hello-axum   {hello:10.0f} req/s   (fixed body)")
print(f"  ratio        {orchard / hello:10.3f}   (orchard / hello-axum)")
PY
