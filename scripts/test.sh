#!/bin/sh
# The whole test suite, as CI runs it: installs missing Debian packages,
# builds with warnings as errors, runs unit and integration tests, then the
# same tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j2 WERROR=1 all
make WERROR=1 test
make WERROR=1 asan
echo "all tests passed"
