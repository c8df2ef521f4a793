#!/bin/sh
# Installs the Debian packages sysbus builds and tests with; only what is
# missing, so a second run does nothing. Needs root (or sudo) when something
# is missing.
# Usage: scripts/deps.sh [--check] [--bench]
#   --check  list what is missing and exit 1 (installs nothing)
#   --bench  also the benchmark tools (wrk)
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
libssl-dev libsodium-dev libcmocka-dev
nodejs npm ca-certificates curl procps"

CHECK=0
for a in "$@"; do
    case "$a" in
    --check) CHECK=1 ;;
    --bench) PKGS="$PKGS wrk" ;;
    *) echo "deps.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# node may come from elsewhere (nodesource, nvm): accept any node >= 18 with npm.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo "$missing" | tr -s ' ' | sed 's/^ //; s/ $//')

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$CHECK" = 1 ]; then
    echo "missing packages: $missing" >&2
    exit 1
fi
echo "deps: installing $missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || $SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
