#!/usr/bin/env bash
# Benchmark: a slow-loris flood against `orchard serve` (release build), and the memory it
# leaves behind. See bench/flood.py; BENCHMARKS.md records a run.
#
#   bench/flood.sh [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-9000}
cargo build --release --locked -q -p orchard
work=$(mktemp -d)
ORCHARD_LOG=warn ./target/release/orchard serve --listen 127.0.0.1:7896 --data "$work/data" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:7896/healthz >/dev/null && break; sleep 0.1; done
python3 bench/flood.py 7896 "$pid" "$connections"
