#!/usr/bin/env bash
# Benchmark: how far speed factors can be trusted. Two identical workers on one machine must
# get the same factor, and the factor of one measured alone.
#
#   bench/speed.sh [ROUNDS]
#
# Each round measures (`orchard blender speed`, as a worker does at registration):
#   alone     one measurement, nothing else running: the baseline;
#   together  two at once, each with its own temporary folder, so they do not take turns:
#             how two workers started together were measured before (each sees the other's load);
#   turns     two at once sharing the temporary folder: they take turns (the machine-wide lock),
#             as workers do now.
# Printed: each factor and its ratio to the round's baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${THREADS:-2}
cargo build --release --locked -q -p orchard
orchard=./target/release/orchard
factor() { "$orchard" blender speed --threads "$threads" | sed -n 's/.*speed factor \([0-9.]*\).*/\1/p'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
for round in $(seq "$rounds"); do
    alone=$(factor)
    a=$(mktemp -d) b=$(mktemp -d) shared=$(mktemp -d)
    TMPDIR=$a factor >"$a/out" & TMPDIR=$b factor >"$b/out" & wait
    together=("$(cat "$a/out")" "$(cat "$b/out")")
    TMPDIR=$shared factor >"$a/out" & TMPDIR=$shared factor >"$b/out" & wait
    turns=("$(cat "$a/out")" "$(cat "$b/out")")
    rm -rf "$a" "$b" "$shared"
    echo "round $round: alone $alone" \
        "| together ${together[0]} ${together[1]} (ratio $(ratio "${together[0]}" "$alone") $(ratio "${together[1]}" "$alone"))" \
        "| turns ${turns[0]} ${turns[1]} (ratio $(ratio "${turns[0]}" "$alone") $(ratio "${turns[1]}" "$alone"))"
done
