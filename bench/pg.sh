#!/usr/bin/env bash
# The 3-step benchmark (bench/run-sysbusd.sh) on the PostgreSQL store and on
# SQLite, alternating, ROUNDS times: a throwaway PostgreSQL cluster
# (scripts/pg-test-cluster.sh: 127.0.0.1 only, fsync and synchronous_commit
# on, as shipped) and a fresh database per round. For each PostgreSQL round
# it also prints the server's transactions and WAL flushes per run
# (pg_stat_database.xact_commit and pg_stat_wal.wal_sync deltas, divided by
# the runs of the round, warm-up included).
#
#   ROUNDS=3 WORKER=c N=3000 C=50 SEQ_N=200 bench/pg.sh
#
# Everything listens on 127.0.0.1; the cluster is stopped at the end.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
export WORKER="${WORKER:-c}" N="${N:-3000}" C="${C:-50}" SEQ_N="${SEQ_N:-200}"
WARMUP="${WARMUP:-100}"
export WARMUP
DIR="$(mktemp -d /tmp/sysbus-pgbench.XXXXXX)"
trap '"$ROOT/scripts/pg-test-cluster.sh" stop "$DIR" >/dev/null 2>&1 || true' EXIT
"$ROOT/scripts/pg-test-cluster.sh" start "$DIR" >/dev/null

# one number from the cluster's sysbus_test database
q() { psql -X -A -t -q "$("$ROOT/scripts/pg-test-cluster.sh" url "$DIR")" -c "$1"; }

for r in $(seq "$ROUNDS"); do
  echo "== round $r sqlite"
  "$HERE/run-sysbusd.sh" | tail -1
  db="bench_$r"
  url=$("$ROOT/scripts/pg-test-cluster.sh" url "$DIR" "$db")
  x0=$(q "SELECT sum(xact_commit) FROM pg_stat_database")
  w0=$(q "SELECT wal_sync FROM pg_stat_wal")
  echo "== round $r postgres"
  SYSBUSD_ARGS="--store $url" "$HERE/run-sysbusd.sh" | tail -1
  x1=$(q "SELECT sum(xact_commit) FROM pg_stat_database")
  w1=$(q "SELECT wal_sync FROM pg_stat_wal")
  runs=$((N + SEQ_N + WARMUP))
  echo "postgres: $(( (x1 - x0) * 100 / runs ))/100 transactions per run, $(( (w1 - w0) * 100 / runs ))/100 WAL syncs per run ($runs runs)"
done
