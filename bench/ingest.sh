#!/usr/bin/env bash
# Event ingest rate of sysbusd (dev mode, fresh data dir, no functions):
# wrk posts single events (64 connections) and batches of 100 (16
# connections) for DURATION seconds each, ROUNDS times; prints one JSON
# record per round with events/s. Every answer must be 200 (counted).
#   ROUNDS=3 DURATION=8 bench/ingest.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="${SYSBUS_BIN_DIR:-$ROOT/build/bin}"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-8}"
command -v wrk >/dev/null || { echo "wrk is missing: scripts/deps.sh --bench" >&2; exit 2; }
for r in $(seq "$ROUNDS"); do
  TMP="$(mktemp -d /tmp/sysbus-ingest.XXXXXX)"
  "$BIN/sysbusd" --dev --host 127.0.0.1 --port 18700 --data-dir "$TMP" --log-level warn 2>/dev/null &
  SPID=$!
  until curl -fsS http://127.0.0.1:18700/health >/dev/null 2>&1; do sleep 0.05; done
  single=$(wrk -t2 -c64 -d"${DURATION}s" -s "$HERE/ingest.lua" http://127.0.0.1:18700/e/bench | tail -1)
  batch=$(BATCH=100 wrk -t2 -c16 -d"${DURATION}s" -s "$HERE/ingest.lua" http://127.0.0.1:18700/e/bench | tail -1)
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$SPID/status)
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
  rm -rf "$TMP"
  node -e '
const s = JSON.parse(process.argv[1]), b = JSON.parse(process.argv[2]);
console.log(JSON.stringify({ round: +process.argv[3],
  single_events_per_s: Math.round(s.requests / s.duration_s), single_p50_ms: s.p50_ms, single_p99_ms: s.p99_ms,
  batch100_events_per_s: Math.round(b.requests * 100 / b.duration_s), batch100_p50_ms: b.p50_ms,
  non200: s.non200 + b.non200, server_peak_rss_mb: +process.argv[4], date: new Date().toISOString() }));
' "$single" "$batch" "$r" "$rss"
done
