#!/bin/sh
# A throwaway PostgreSQL cluster for tests outside Node (C unit tests: the
# store's tests read SYSBUS_TEST_PG_URL). The cluster lives in DIR: its data,
# socket dir, log and port; it listens on 127.0.0.1 only (trust auth there and
# on its own socket dir) and runs as the postgres user when we are root
# (initdb and the server refuse root). The integration tests use
# tests/integration/pg.mjs instead (docs/internals/tests-postgres.md).
# Usage: scripts/pg-test-cluster.sh start DIR     (prints the URL of DB sysbus_test)
#        scripts/pg-test-cluster.sh url DIR [DB]  (creates DB when missing, prints its URL)
#        scripts/pg-test-cluster.sh stop DIR      (stops it by its PID, removes DIR)
# DIR must not exist or be empty. SYSBUS_PG_BIN: the server binaries
# (default: the newest /usr/lib/postgresql/*/bin).
set -eu

die() { echo "pg-test-cluster: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 start|url|stop DIR [DB]"
cmd=$1
dir=$2
db=${3:-sysbus_test}

bin=${SYSBUS_PG_BIN:-}
if [ -z "$bin" ]; then
    major=0
    for b in /usr/lib/postgresql/*/bin; do
        m=${b#/usr/lib/postgresql/}
        m=${m%/bin}
        case "$m" in '' | *[!0-9]*) continue ;; esac
        if [ -x "$b/initdb" ] && [ "$m" -gt "$major" ]; then major=$m bin=$b; fi
    done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/psql" ]; then
    die "PostgreSQL not found (${bin:-no /usr/lib/postgresql/*/bin/initdb}): install postgresql (scripts/deps.sh) or set SYSBUS_PG_BIN"
fi

# Runs a command as the postgres user when we are root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid postgres --regid postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

# The environment of the PostgreSQL tools: none of the caller's PG* settings.
pg_env() { env -i PATH="$PATH" LC_ALL=C PGCONNECT_TIMEOUT=5 "$@"; }

sql() {
    pg_env "$bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$dir/port")" \
        -U postgres -d postgres -c "$1"
}

url() {
    case "$db" in
    '' | [!a-z_]* | *[!a-z0-9_]*) die "not a database name: '$db' (lower case letters, digits, _)" ;;
    esac
    [ -f "$dir/port" ] || die "no cluster in $dir (start it first)"
    [ "$(sql "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] || sql "CREATE DATABASE $db" >/dev/null
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/$db"
}

start() {
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir is not empty"; fi
    mkdir -p "$dir/sock"
    : >"$dir/.pg-test-cluster" # what stop checks before it removes the dir
    [ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
    as_pg env -i PATH="$PATH" LC_ALL=C "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/pg_hba.conf"
    # A random port that is taken makes the server fail to bind: try another.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
        if as_pg env -i PATH="$PATH" LC_ALL=C "$bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
            -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/sock" >/dev/null; then
            echo "$port" >"$dir/port"
            url
            return 0
        fi
        grep -q "could not bind\|could not create listen socket" "$dir/postgres.log" 2>/dev/null ||
            { cat "$dir/postgres.log" >&2; die "PostgreSQL did not start in $dir"; }
    done
    die "no free port found for PostgreSQL in 10 tries"
}

# An immediate shutdown (the data is thrown away) by the PID in its PID
# file, waiting (up to 10 s) for the postmaster to remove that file, its
# last act; then the dir goes.
stop() {
    [ -e "$dir" ] || return 0
    if [ -z "$(ls -A "$dir")" ]; then rmdir "$dir"; return 0; fi # start failed before its first file
    [ -e "$dir/.pg-test-cluster" ] || die "$dir is not a cluster of this script: not removed"
    pidfile="$dir/data/postmaster.pid"
    if [ -f "$pidfile" ]; then
        pid=$(head -n 1 "$pidfile")
        kill -QUIT "$pid" 2>/dev/null || true
        i=0
        while [ -e "$pidfile" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        [ ! -e "$pidfile" ] || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

case "$cmd" in
start) start ;;
url) url ;;
stop) stop ;;
*) die "unknown command '$cmd': start, url or stop" ;;
esac
