#!/usr/bin/env bash
# Benchmark: `GET /api/external/v1/jobs/{id}` throughput, Orchard against a bare axum
# hello-world (bench/hello-axum) built and measured in the same run. Prints both rates and
# their ratio; the ratio is what BENCHMARKS.md records.
#
#   bench/get_job.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#
# The two are measured in turn, ROUNDS times (default 3), and the median of each round's
# ratio is reported: the host's speed drifts by tens of per cent over a minute here.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-32}
rounds=${3:-3}
# The per-key rate limit the server runs with: by default on but never reached, so that its
# cost is in the numbers; RATE_LIMIT=0 turns it off (the baseline of BENCHMARKS.md's row).
rate_limit=${RATE_LIMIT:-100000000}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release --locked -q -p orchard -p hello-axum
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

orchard=./target/release/orchard
ORCHARD_LOG=warn $orchard serve --listen 127.0.0.1:7891 --data "$work/data" --rate-limit "$rate_limit" >/dev/null 2>&1 &
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
results=()
for _ in $(seq "$rounds"); do
  orchard_rps=$(rate -H "$auth" "$api/jobs/$job")
  hello_rps=$(rate "http://127.0.0.1:7892/api/external/v1/jobs/$job")
  results+=("$orchard_rps:$hello_rps")
done
python3 - "$duration" "$connections" "${results[@]}" <<'PY'
import statistics, sys
duration, connections, rounds = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"GET /jobs/{{id}} ({duration}s per measure, {connections} connections, wrk -t2, this machine)")
ratios = []
for i, pair in enumerate(rounds, 1):
    orchard, hello = (float(it) for it in pair.split(":"))
    ratios.append(orchard / hello)
    print(f"  round {i}: orchard {orchard:8.0f} req/s   hello-axum {hello:8.0f} req/s   ratio {orchard / hello:.3f}")
print(f"  median ratio {statistics.median(ratios):.3f}   (orchard / hello-axum; orchard: auth + job read + analysis JSON)")
PY
