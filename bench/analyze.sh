#!/usr/bin/env bash
# Whole-process `orchard analyze` vs launching Blender to read the same settings, and vs Blender Asset
# Tracer 1.23 listing dependencies, on the same files; ratios from one run. See BENCHMARKS.md.
#
#   bench/analyze.sh [RUNS]
#
# Needs: Debian's `blender` (3.4), PyPI bpy 4.5 and 5.0 venvs (BPY45, BPY50; default /tmp/bpy45, /tmp/bpy50,
# made as in fixtures/README.md), `zstd`, GNU time. BAT is installed into $BAT_VENV (default /tmp/bat) if
# missing: `pip install blender-asset-tracer==1.23 zstandard` (zstandard lets BAT read zstd files).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
bpy45=${BPY45:-/tmp/bpy45}/bin/python
bpy50=${BPY50:-/tmp/bpy50}/bin/python
bat_venv=${BAT_VENV:-/tmp/bat}
for tool in blender zstd /usr/bin/time "$bpy45" "$bpy50"; do
  command -v "$tool" >/dev/null || { echo "analyze.sh: $tool is missing" >&2; exit 2; }
done
if [ ! -x "$bat_venv/bin/bat" ]; then
  python3 -m venv "$bat_venv"
  "$bat_venv/bin/pip" install -q 'blender-asset-tracer==1.23' zstandard
fi
cargo build --release -q -p orchard
target=${CARGO_TARGET_DIR:-target}
echo "machine: $(nproc) cores, $(uname -sr); $(blender -b --version 2>/dev/null | head -n1); bpy $("$bpy45" -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null | tail -n1) / $("$bpy50" -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null | tail -n1); $("$bat_venv/bin/bat" version 2>&1 | tail -n1)"
python3 bench/analyze.py --orchard "$target/release/orchard" --blender blender --bpy45 "$bpy45" --bpy50 "$bpy50" \
  --bat "$bat_venv/bin/bat" --runs "$runs"
