#!/bin/sh
# Installs the Debian packages sysbus builds and tests with; only what is
# missing, so a second run does nothing. Needs root (or sudo) when something
# is missing. socat, systemd (systemd-analyze, systemd-sysusers) and
# libxml2-utils (xmllint) are for tests/integration/25-sdnotify.test.mjs;
# sqlite3 (the shell) lets tests/integration/05c-hostile-worker.test.mjs plant
# data that an older sysbusd could have stored. postgresql (the server, run
# by the tests as throwaway clusters: docs/internals/tests-postgres.md) and
# libpq-dev (the PostgreSQL store's client library) are in the build and test
# sets, not in --image's: the images do not link libpq.
# Usage: scripts/deps.sh [--check] [--bench] [--build | --image]
#   --check  list what is missing and exit 1 (installs nothing)
#   --bench  also the benchmark tools (wrk)
#   --build  the build and unit/integration test packages, without the
#            deploy tests' image builders, registry and cross-compiler
#   --image  only what deploy/image/build.sh needs to compile for amd64 and
#            arm64 and assemble root filesystems (no image builder)
# Default: everything the tests need, including the deploy tests' tools
# (buildah, podman with runc, skopeo, Debian's docker-registry, qemu-user,
# the arm64 cross-compiler and Debian's arm64 multiarch -dev packages).
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
libssl-dev libsodium-dev libcmocka-dev
nodejs npm ca-certificates curl procps
socat systemd libxml2-utils sqlite3 postgresql libpq-dev"

# Cross-building arm64 images: the cross-compiler and the arm64 -dev packages.
CROSS_PKGS="gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu binutils
libmicrohttpd-dev:arm64 libcurl4-openssl-dev:arm64 libjansson-dev:arm64
libsqlite3-dev:arm64 libssl-dev:arm64 libsodium-dev:arm64"
# The deploy tests: image builders, a local OCI registry, qemu-user, linters.
DEPLOY_PKGS="buildah podman runc skopeo docker-registry apache2-utils
qemu-user-static shellcheck jq git"

CHECK=0
MODE=all
for a in "$@"; do
    case "$a" in
    --check) CHECK=1 ;;
    --bench) PKGS="$PKGS wrk" ;;
    --build) MODE=build ;;
    --image) MODE=image ;;
    *) echo "deps.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
case "$MODE" in
all) PKGS="$PKGS $CROSS_PKGS $DEPLOY_PKGS" ;;
image) PKGS="build-essential pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
libsqlite3-dev libssl-dev libsodium-dev ca-certificates $CROSS_PKGS" ;;
esac
case "$PKGS" in
*:arm64*)
    if [ "$(dpkg --print-architecture)" != arm64 ] &&
        ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$CHECK" = 1 ]; then
            echo "missing: the arm64 architecture (dpkg --add-architecture arm64)" >&2
            exit 1
        fi
        echo "deps: adding the arm64 architecture (for the arm64 -dev packages)" >&2
        if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
    fi ;;
esac

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
# kubectl (its built-in kustomize renders deploy/k8s): any kubectl will do;
# Debian's is the kubernetes-client package.
if [ "$MODE" = all ] && ! command -v kubectl >/dev/null 2>&1; then
    missing="$missing kubernetes-client"
fi
missing=$(echo "$missing" | tr -s ' ' | sed 's/^ //; s/ $//')

# The deploy tests also render the manifests with the kubectl a fresh
# Debian 12 gets (1.20, from kubernetes-client), whatever kubectl is
# installed: it is unpacked, not installed, into build/tools/.
OLD_KUBECTL="$(cd "$(dirname "$0")/.." && pwd)/build/tools/debian12-kubectl"
old_kubectl() {
    [ "$MODE" = all ] && [ ! -x "$OLD_KUBECTL/usr/bin/kubectl" ] || return 0
    if [ "$CHECK" = 1 ]; then
        echo "missing: Debian 12's kubectl in $OLD_KUBECTL" >&2
        return 1
    fi
    tmp=$(mktemp -d)
    # (apt's warning that root downloads unsandboxed is noise here)
    (cd "$tmp" && apt-get download kubernetes-client >/dev/null 2>&1) &&
        mkdir -p "$OLD_KUBECTL" && dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$OLD_KUBECTL"
    rc=$?
    [ $rc -eq 0 ] || echo "deps: cannot download Debian's kubernetes-client into $OLD_KUBECTL" >&2
    rm -rf "$tmp"
    return $rc
}

# The tests need Node.js >= 20 (the inngest v4 SDK); Debian 12 ships 18.
# An older one is kept and Node 20 from the npm registry (package "node") is
# put in build/tools/node, which tests/run-integration.sh puts first on PATH.
NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/build/tools/node"
new_enough_node() {
    [ "$MODE" = all ] || return 0
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    [ "$major" -ge 20 ] || [ -x "$NODE_DIR/node_modules/.bin/node" ] && return 0
    if [ "$CHECK" = 1 ]; then
        echo "missing: Node.js >= 20 (found ${major:-none})" >&2
        return 1
    fi
    echo "deps: Node.js $major is too old for the inngest v4 SDK: Node 20 from npm into $NODE_DIR" >&2
    npm install --no-audit --no-fund --loglevel=error --prefix "$NODE_DIR" node@20
}

if [ -z "$missing" ]; then
    old_kubectl && new_enough_node
    exit $?
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
old_kubectl && new_enough_node
