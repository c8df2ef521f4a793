#!/bin/sh
# Runs the integration tests (tests/integration/*.test.mjs) with Node's test
# runner, one file at a time (each file starts its own processes). Installs
# the tests' npm packages (the official inngest SDK, v4 and v3, ajv for JSON
# schemas, yaml and kubernetes-models for the deploy manifests) when missing. SYSBUS_BIN_DIR selects the binaries (default build/bin).
# SYSBUS_TESTS: the files to run (default: all). SYSBUS_TEST_STORE=postgres:
# every sysbusd on a database of a throwaway PostgreSQL cluster instead of its
# SQLite file (tests/integration/pg.mjs, docs/internals/tests-postgres.md).
set -eu
cd "$(dirname "$0")/.."
case "${SYSBUS_TEST_STORE:-sqlite}" in
sqlite | postgres) ;;
*) echo "run-integration: SYSBUS_TEST_STORE=$SYSBUS_TEST_STORE: sqlite (the default) or postgres" >&2; exit 2 ;;
esac
# a Node.js new enough for the inngest v4 SDK, when scripts/deps.sh had to
# fetch one (the system's is older)
if [ -x build/tools/node/node_modules/.bin/node ]; then
    PATH="$PWD/build/tools/node/node_modules/.bin:$PATH"
    export PATH
fi
missing=0
for m in inngest inngest-v3 ajv yaml kubernetes-models; do
    [ -d "tests/compat/node_modules/$m" ] || missing=1
done
if [ "$missing" = 1 ]; then
    (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error)
fi
files=${SYSBUS_TESTS:-$(ls tests/integration/*.test.mjs)}
# shellcheck disable=SC2086
exec node --test --test-concurrency=1 --test-reporter=spec $files
