#!/bin/sh
# The main job on a fresh machine: install what is missing, build, start
# sysbusd (embedded SQLite store in .sysbus/, dev mode, 127.0.0.1:8288), start
# system-bus-worker (the C reference worker), send a demo event and show its run completing step by step. Then
# keeps both running until Ctrl-C (or SIGTERM), and stops them by PID.
#
# Environment: SYSBUS_PORT (8288), WORKER_PORT (3111), SYSBUS_DATA_DIR (.sysbus).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --build # what building and running need, not the deploy tests' tools
make -j2 all >/dev/null

PORT=${SYSBUS_PORT:-8288}
WPORT=${WORKER_PORT:-3111}
DATA=${SYSBUS_DATA_DIR:-.sysbus}
URL="http://127.0.0.1:$PORT"
mkdir -p "$DATA"

SERVER_PID=""
WORKER_PID=""
cleanup() {
    if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

build/bin/sysbusd --dev --port "$PORT" --data-dir "$DATA" 2>>"$DATA/sysbusd.log" &
SERVER_PID=$!
i=0
until curl -fsS "$URL/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "sysbusd did not start; see $DATA/sysbusd.log" >&2
        tail -5 "$DATA/sysbusd.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "sysbusd is up: $URL (log: $DATA/sysbusd.log)"

# The reference worker, system-bus-worker (C SDK): it registers itself.
: >"$DATA/worker.log"
HOST=127.0.0.1 PORT="$WPORT" INNGEST_DEV=1 INNGEST_BASE_URL="$URL" WORKER_ROLE=host \
    build/bin/system-bus-worker >>"$DATA/worker.log" 2>&1 &
WORKER_PID=$!
i=0
until grep -q '"registered"' "$DATA/worker.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$WORKER_PID" 2>/dev/null; then
        echo "system-bus-worker did not register; see $DATA/worker.log" >&2
        tail -5 "$DATA/worker.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "system-bus-worker registered: http://127.0.0.1:$WPORT/api/inngest (health: http://127.0.0.1:$WPORT/)"

EVENT=$(curl -fsS -X POST "$URL/e/demo" -d '{"name":"diag/three-steps","data":{"n":42}}' |
    sed -n 's/.*"ids":\["\([0-9A-Z]*\)".*/\1/p')
echo "sent diag/three-steps, event $EVENT; waiting for its run..."
RUNS=$(curl -fsS "$URL/v1/events/$EVENT/runs?wait_ms=10000")
RUN=$(echo "$RUNS" | sed -n 's/.*"run_id":"\([0-9A-Z]*\)".*/\1/p')
echo "run $RUN:"
# shellcheck disable=SC2016 # JavaScript template literals, not shell
curl -fsS "$URL/v1/runs/$RUN" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).data;console.log(`  status ${r.status}, output ${JSON.stringify(r.output)}`)})'
# shellcheck disable=SC2016 # JavaScript template literals, not shell
curl -fsS "$URL/v1/runs/$RUN/steps" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const x of JSON.parse(s).data)console.log(`  step ${x.name}: ${x.status} in ${x.duration_ms} ms, output ${JSON.stringify(x.output)}`)})'
echo
echo "Running. Try:  curl -X POST $URL/e/demo -d '{\"name\":\"diag/flaky\",\"data\":{\"fail_times\":2}}'"
echo "               curl $URL/v1/runs"
echo "Ctrl-C stops sysbusd and the worker."
wait "$SERVER_PID"
