#!/usr/bin/env bash
# The sysbusd side of the 3-step benchmark, shaped like the Restate peer's
# run.sh: start sysbusd (fresh temp data dir, dev mode, 127.0.0.1) and a
# worker, register it, warm up, then a concurrent phase (N runs, C in flight,
# closed loop) and a sequential phase (SEQ_N runs at C=1). Prints one JSON
# record and a summary line.
#
#   N=2000 C=50 SEQ_N=200 WARMUP=100 WORKER=node-v4 bench/run-sysbusd.sh
#
# WORKER: node-v4 | node-v3 (bench/worker.mjs on the official inngest SDK),
#         c (system-bus-worker, diag-three-steps).
# SYSBUSD_ARGS: extra sysbusd flags (e.g. --no-checkpoint).
# RESULTS=file appends the JSON record. Everything listens on 127.0.0.1 and is
# stopped by PID at the end.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
N="${N:-2000}"; C="${C:-50}"; SEQ_N="${SEQ_N:-200}"; WARMUP="${WARMUP:-100}"
WORKER="${WORKER:-node-v4}"
BIN="${SYSBUS_BIN_DIR:-$ROOT/build/bin}"
TMP="$(mktemp -d /tmp/sysbus-bench.XXXXXX)"
SPID=""; WPID=""
cleanup() {
  if [[ -n "$WPID" ]]; then kill "$WPID" 2>/dev/null || true; fi
  if [[ -n "$SPID" ]]; then kill "$SPID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  [[ "${KEEP_DATA:-0}" == "1" ]] || rm -rf "$TMP"
}
trap cleanup EXIT

calib_start=$(date +%s%N)
head -c 20000000 /dev/zero | sha256sum >/dev/null
calib_ms=$(( ($(date +%s%N) - calib_start) / 1000000 ))

# shellcheck disable=SC2086 # SYSBUSD_ARGS is a list of flags
"$BIN/sysbusd" --dev --host 127.0.0.1 --port 0 --data-dir "$TMP/data" --log-level warn \
  --sync-interval 0 ${SYSBUSD_ARGS:-} 2>"$TMP/sysbusd.log" &
SPID=$!
for _ in $(seq 200); do
  grep -q '"listening"' "$TMP/sysbusd.log" 2>/dev/null && break
  sleep 0.05
done
# listening is logged at info; read the port from /proc instead when quiet
PORT=$(ss -ltnpH 2>/dev/null | awk -v pid="pid=$SPID," '$0 ~ pid {split($4,a,":"); print a[2]; exit}')
for _ in $(seq 200); do
  [[ -n "$PORT" ]] && curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.05
  PORT=$(ss -ltnpH 2>/dev/null | awk -v pid="pid=$SPID," '$0 ~ pid {split($4,a,":"); print a[2]; exit}')
done
URL="http://127.0.0.1:$PORT"

case "$WORKER" in
  node-v4|node-v3)
    [[ -d "$ROOT/tests/compat/node_modules/inngest" ]] || (cd "$ROOT/tests/compat" && npm ci --no-audit --no-fund --loglevel=error)
    SDK="${WORKER#node-}" PORT=0 SYSBUS_URL="$URL" node "$HERE/worker.mjs" >"$TMP/worker.log" 2>&1 &
    WPID=$! ;;
  c)
    # system-bus-worker (the C SDK); it registers itself
    HOST=127.0.0.1 PORT=0 INNGEST_DEV=1 INNGEST_BASE_URL="$URL" "$BIN/system-bus-worker" \
      >"$TMP/worker.log" 2>&1 &
    WPID=$! ;;
  *) echo "unknown WORKER=$WORKER" >&2; exit 2 ;;
esac
for _ in $(seq 200); do grep -q '"listening"' "$TMP/worker.log" 2>/dev/null && break; sleep 0.05; done
WPORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$TMP/worker.log" | head -1)
EVENT=compat/three-steps
if [[ "$WORKER" == c ]]; then
  EVENT=diag/three-steps
  for _ in $(seq 200); do grep -q '"registered"' "$TMP/worker.log" 2>/dev/null && break; sleep 0.05; done
else
  curl -fsS -X POST "$URL/v1/apps" -d "{\"url\":\"http://127.0.0.1:$WPORT/api/inngest\"}" >/dev/null
fi

cpu_s() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
node "$HERE/loadgen.mjs" --base "$URL" --event "$EVENT" --n "$WARMUP" --c "$C" >/dev/null
s0=$(cpu_s "$SPID"); w0=$(cpu_s "$WPID")
conc=$(node "$HERE/loadgen.mjs" --base "$URL" --event "$EVENT" --n "$N" --c "$C")
s1=$(cpu_s "$SPID"); w1=$(cpu_s "$WPID")
seq=$(node "$HERE/loadgen.mjs" --base "$URL" --event "$EVENT" --n "$SEQ_N" --c 1)
metrics=$(curl -fsS "$URL/metrics")
server_rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SPID/status")
worker_rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$WPID/status")

# shellcheck disable=SC2016 # JavaScript template literals, not shell
record=$(node -e '
const [conc, seq, metrics, srss, wrss, s0, s1, w0, w1, worker, calib] = process.argv.slice(1);
const c = JSON.parse(conc), q = JSON.parse(seq);
// step hand-off quantiles from the histogram (linear inside a bucket)
const b = [...metrics.matchAll(/sysbus_step_handoff_seconds_bucket\{le="([^"]+)"\} (\d+)/g)]
  .map((m) => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])]);
const total = b.length ? b[b.length - 1][1] : 0;
const quant = (p) => { let prev = [0, 0]; for (const [le, n] of b) { if (n >= p * total) {
  const lo = prev[0], hi = le === Infinity ? lo : le; const f = n === prev[1] ? 0 : (p * total - prev[1]) / (n - prev[1]);
  return Math.round((lo + f * (hi - lo)) * 1e6) / 1e3; } prev = [le, n]; } return null; };
console.log(JSON.stringify({ engine: "sysbusd", worker, args: process.env.SYSBUSD_ARGS || "", n: c.n, c: c.c, wall_s: c.wall_s, runs_per_s: c.runs_per_s,
  p50_ms: c.p50_ms, p90_ms: c.p90_ms, p99_ms: c.p99_ms, seq_p50_ms: q.p50_ms, seq_p99_ms: q.p99_ms,
  handoff_p50_ms: quant(0.5), handoff_p99_ms: quant(0.99),
  server_rss_mb: Number(srss), worker_rss_mb: Number(wrss),
  server_cpu_s: Math.round((s1 - s0) * 100) / 100, worker_cpu_s: Math.round((w1 - w0) * 100) / 100,
  loadgen_cpu_s: c.loadgen_cpu_s, errors: c.errors + q.errors, first_error: c.first_error || q.first_error,
  calib_ms: Number(calib), date: new Date().toISOString() }));
' "$conc" "$seq" "$metrics" "$server_rss" "$worker_rss" "$s0" "$s1" "$w0" "$w1" "$WORKER" "$calib_ms")
echo "$record"
[[ -n "${RESULTS:-}" ]] && echo "$record" >> "$RESULTS"
# shellcheck disable=SC2016 # JavaScript template literals, not shell
node -e 'const r=JSON.parse(process.argv[1]);console.log(`sysbusd(${r.worker}): wall_s=${r.wall_s} runs_per_s=${r.runs_per_s} p50_ms=${r.p50_ms} p99_ms=${r.p99_ms} seq_p50_ms=${r.seq_p50_ms} handoff_p50_ms=${r.handoff_p50_ms} server_rss_mb=${r.server_rss_mb} worker_rss_mb=${r.worker_rss_mb} errors=${r.errors}`)' "$record"
