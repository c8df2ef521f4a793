#!/usr/bin/env bash
# sysbusd (Node inngest worker) against the Restate peer on the same 3-step
# workload, interleaved A, B, A, B ... in one session (the machine is noisy:
# compare within a run, not across days). ROUNDS pairs (default 3). Appends
# every record to $RESULTS (default bench/out/compare-<date>.jsonl) and prints
# medians and the ratio sysbusd/Restate.
#
#   ROUNDS=3 WORKER=node-v4 bench/compare-restate.sh
# Restate is started only through its own run.sh, which cuts its network.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER="${RESTATE_PEER:-$HERE/../../shared/peers/restate}"
ROUNDS="${ROUNDS:-3}"
mkdir -p "$HERE/out"
RESULTS="${RESULTS:-$HERE/out/compare-$(date -u +%Y%m%dT%H%M%SZ).jsonl}"
[[ -x "$PEER/run.sh" ]] || { echo "Restate peer not found at $PEER (set RESTATE_PEER)" >&2; exit 2; }
for r in $(seq "$ROUNDS"); do
  echo "== round $r: restate" >&2
  RESULTS="$RESULTS" "$PEER/run.sh" >/dev/null 2>&1
  echo "== round $r: sysbusd" >&2
  RESULTS="$RESULTS" "$HERE/run-sysbusd.sh" >/dev/null
done
node -e '
const fs = require("fs");
const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { xs = xs.filter((x) => x != null).sort((a, b) => a - b); return xs.length ? xs[Math.floor(xs.length / 2)] : null; };
const by = (e) => rows.filter((r) => r.engine === e);
const keys = ["runs_per_s", "p50_ms", "p99_ms", "seq_p50_ms", "server_rss_mb"];
const out = {};
for (const e of ["sysbusd", "restate"]) out[e] = Object.fromEntries(keys.map((k) => [k, med(by(e).map((r) => r[k]))]));
out.ratio_runs_per_s = Math.round(out.sysbusd.runs_per_s / out.restate.runs_per_s * 100) / 100;
out.ratio_seq_p50 = Math.round(out.sysbusd.seq_p50_ms / out.restate.seq_p50_ms * 100) / 100;
out.rounds = by("sysbusd").length;
console.log(JSON.stringify(out, null, 1));
' "$RESULTS"
echo "records: $RESULTS" >&2
