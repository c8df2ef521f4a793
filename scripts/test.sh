#!/bin/sh
# The whole test suite, as CI runs it: installs missing Debian packages,
# builds with warnings as errors, runs unit and integration tests, the store's
# unit tests and the integration tests on PostgreSQL, then the unit and
# integration tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then
# each fuzz target for a short while on its seed corpus.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j2 WERROR=1 all
make WERROR=1 test
# The store's unit tests and the integration suite again on the PostgreSQL
# store (docs/internals/tests-postgres.md); once, not again under ASan (the
# server code is the same; the PostgreSQL backend's unit tests run under ASan
# by hand: see the README).
make WERROR=1 unit-pg integration-pg
make WERROR=1 asan
make WERROR=1 fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
echo "all tests passed"
