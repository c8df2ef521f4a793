#!/usr/bin/env bash
# sysbusd memory with many stored runs: sends RUNS events (default 100000) in
# batches of 1000 to a function without steps (at most 20000 running at
# once), waits until every run has ended, then reports sysbusd's resident
# memory at that moment and 11 s later (after the janitor returned freed
# memory), its peak (VmHWM), the store's size and the time it took.
# Node inngest worker.
#
#   RUNS=100000 bench/rss.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
RUNS="${RUNS:-100000}"
BIN="${SYSBUS_BIN_DIR:-$ROOT/build/bin}"
TMP="$(mktemp -d /tmp/sysbus-rss.XXXXXX)"
SPID=""; WPID=""
cleanup() {
  if [[ -n "$WPID" ]]; then kill "$WPID" 2>/dev/null || true; fi
  if [[ -n "$SPID" ]]; then kill "$SPID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
PORT=18601; WPORT=18602
# shellcheck disable=SC2086 # SYSBUSD_ARGS is a list of flags
"$BIN/sysbusd" --dev --host 127.0.0.1 --port $PORT --data-dir "$TMP/data" --log-level warn \
  --sync-interval 0 2>"$TMP/sysbusd.log" &
SPID=$!
URL="http://127.0.0.1:$PORT"
until curl -fsS "$URL/health" >/dev/null 2>&1; do sleep 0.05; done
SDK=v4 PORT=$WPORT SYSBUS_URL="$URL" APP_ID=rss node "$ROOT/tests/compat/worker.mjs" >"$TMP/worker.log" 2>&1 &
WPID=$!
until grep -q listening "$TMP/worker.log" 2>/dev/null; do sleep 0.05; done
curl -fsS -X POST "$URL/v1/apps" -d "{\"url\":\"http://127.0.0.1:$WPORT/api/inngest\"}" >/dev/null
t0=$(date +%s.%N)
# shellcheck disable=SC2016 # JavaScript template literals, not shell
node -e '
const crypto = require("crypto");
const [url, total] = [process.argv[1], Number(process.argv[2])];
// Every request has a timeout; a timed-out send is retried with the same
// x-inngest-event-id-seed, so the retry cannot create duplicate events.
async function call(what, p, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url + p, { ...opts, signal: AbortSignal.timeout(30000) });
      if (r.status !== 200) throw new Error(`${what}: HTTP ${r.status}`);
      return await r.json();
    } catch (e) {
      console.error(JSON.stringify({ stuck: what, attempt, error: String(e), at: new Date().toISOString() }));
      if (attempt >= 3) throw e;
    }
  }
}
(async () => {
  for (let sent = 0; sent < total; sent += 1000) {
    const n = Math.min(1000, total - sent);
    const body = JSON.stringify(Array.from({ length: n }, (_, i) => ({ name: "compat/noop", data: { n: sent + i } })));
    const seed = `${Date.now()},${crypto.randomBytes(10).toString("base64")}`;
    await call(`send batch ${sent / 1000}`, "/e/rss", { method: "POST", body, headers: { "x-inngest-event-id-seed": seed } });
    // keep the backlog bounded: wait while more than 20000 runs are running
    for (;;) {
      const h = await call("health", "/health");
      if (h.queue.runs_running < 20000) break;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });' "$URL" "$RUNS"
while :; do
  running=$(curl -fsS "$URL/health" | sed -n 's/.*"runs_running":\([0-9]*\).*/\1/p')
  [[ "$running" == "0" ]] && break
  sleep 0.5
done
t1=$(date +%s.%N)
completed=$(curl -fsS "$URL/metrics" | awk '/^sysbus_runs_completed_total/ {print $2}')
rss_now=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
sleep 11   # one janitor period: memory freed after the burst goes back
rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
hwm=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
db=$(du -sm "$TMP/data" | cut -f1)
printf '{"runs":%s,"completed":%s,"seconds":%.1f,"server_rss_mb_at_end":%s,"server_rss_mb_settled":%s,"server_peak_rss_mb":%s,"store_mb":%s,"date":"%s"}\n' \
  "$RUNS" "$completed" "$(echo "$t1 - $t0" | bc)" "$rss_now" "$rss" "$hwm" "$db" "$(date -u +%FT%TZ)"
