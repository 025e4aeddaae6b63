#!/bin/sh
# The add-on's whole test, on a farm of its own:
#
#   addon/tests/run.sh ORCHARD_BINARY [BPY_PYTHON]
#
# makes the fixture scenes with Debian's Blender 3.4, starts `orchard up` in a temporary folder,
# fetches the add-on from its /addon.zip, runs the client test, the Blender 3.4 test and, when
# BPY_PYTHON is given (a Python with PyPI's `bpy`, e.g. the one `orchard blender list` shows for
# 4.5), the bpy test (as an extension, then as a legacy add-on); stops the farm. Exits non-zero
# when any part failed.
set -eu
ORCHARD=$1
BPY_PYTHON=${2:-}
BLENDER=${BLENDER:-/usr/bin/blender}
HERE=$(cd "$(dirname "$0")" && pwd)
ADDON=$(dirname "$HERE")
WORK=$(mktemp -d /tmp/orchard-addon-test.XXXXXX)
PORT=${ORCHARD_ADDON_TEST_PORT:-7911}
SERVER=http://127.0.0.1:$PORT

"$BLENDER" -b --factory-startup --python "$HERE/make_scenes.py" -- "$WORK/fixtures" >"$WORK/fixtures.log" 2>&1 \
    || { cat "$WORK/fixtures.log"; exit 1; }

"$ORCHARD" up --data "$WORK/farm" --listen "127.0.0.1:$PORT" >"$WORK/farm.log" 2>&1 &
FARM=$!
trap 'kill $FARM 2>/dev/null; wait $FARM 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
    [ -s "$WORK/farm/admin.key" ] && curl -sf "$SERVER/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
KEY=$(cat "$WORK/farm/admin.key")
curl -sf "$SERVER/addon.zip" -o "$WORK/orchard.zip"

status=0
python3 "$HERE/test_client.py" --server "$SERVER" --key "$KEY" --fixtures "$WORK/fixtures" || status=1
"$BLENDER" -b --factory-startup --python "$HERE/run_addon_test.py" -- --server "$SERVER" --key "$KEY" \
    --zip "$WORK/orchard.zip" --fixtures "$WORK/fixtures" --out "$WORK/out-3.4" || status=1
if [ -n "$BPY_PYTHON" ]; then
    "$BPY_PYTHON" "$HERE/run_addon_test.py" --server "$SERVER" --key "$KEY" --zip "$WORK/orchard.zip" \
        --fixtures "$WORK/fixtures" --out "$WORK/out-bpy" --install extension || status=1
    "$BPY_PYTHON" "$HERE/run_addon_test.py" --server "$SERVER" --key "$KEY" --zip "$WORK/orchard.zip" \
        --fixtures "$WORK/fixtures" --out "$WORK/out-bpy-legacy" --install legacy || status=1
fi
if [ $status -eq 0 ]; then
    rm -rf "$WORK"
    echo "add-on tests passed"
else
    echo "add-on tests FAILED (files kept in $WORK)"
fi
exit $status
