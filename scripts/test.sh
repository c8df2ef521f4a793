#!/bin/sh
# The whole test suite, as CI runs it: installs missing Debian packages,
# builds with warnings as errors, runs unit and integration tests, then the
# same tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then
# each fuzz target for a short while on its seed corpus.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j2 WERROR=1 all
make WERROR=1 test
# The same tests against the PostgreSQL store (docs/internals/tests-postgres.md);
# enabled once sysbusd has it:
# make WERROR=1 unit-pg integration-pg
make WERROR=1 asan
make WERROR=1 fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
echo "all tests passed"
