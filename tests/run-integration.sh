#!/bin/sh
# Runs the integration tests (tests/integration/*.test.mjs) with Node's test
# runner, one file at a time (each file starts its own processes). Installs
# the tests' npm packages (the official inngest SDK, v4 and v3, and ajv for
# JSON schemas) when missing. SYSBUS_BIN_DIR selects the binaries (default build/bin).
set -eu
cd "$(dirname "$0")/.."
if [ ! -d tests/compat/node_modules/inngest ] || [ ! -d tests/compat/node_modules/inngest-v3 ] ||
    [ ! -d tests/compat/node_modules/ajv ]; then
    (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error)
fi
files=${SYSBUS_TESTS:-$(ls tests/integration/*.test.mjs)}
# shellcheck disable=SC2086
exec node --test --test-concurrency=1 --test-reporter=spec $files
