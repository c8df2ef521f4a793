#!/bin/sh
# build.sh - the one image recipe for sysbus: builds the binaries for each
# target platform (natively, or cross-compiled with gcc-aarch64-linux-gnu and
# Debian's arm64 multiarch -dev packages), assembles a minimal root filesystem
# per architecture (rootfs.sh) and builds `FROM scratch` images on it with
# whichever builder is here: docker buildx, buildah or podman. The images of
# all platforms become one multi-arch manifest list, optionally pushed.
#
# Usage: deploy/image/build.sh [OPTIONS] worker|sysbusd
#   --platforms LIST  comma-separated (default linux/amd64,linux/arm64)
#   --tag REF         image reference to tag (repeatable), e.g.
#                     ghcr.io/joelhooks/system-bus-worker:20261127-120000
#   --push            push every tag (the whole manifest list)
#   --digest-file F   write the pushed manifest list's digest (sha256:...) to F
#   --builder B       docker | buildah | podman (default: the first found)
#   --skip-compile    reuse binaries already in build/img-<arch>/bin
#   --rootfs-only     compile and assemble build/image/<target>/<arch>, no image
#   --skip-rootfs     reuse build/image/<target>/<arch> (from --rootfs-only)
# Environment:
#   REGISTRY_TLS_VERIFY  false to push to a plain-HTTP registry (a local test
#                        registry on 127.0.0.1); default true
#   DOCKER_CONFIG / REGISTRY_AUTH_FILE  registry credentials (see publish script)
# Exit codes: 0 ok, 1 build or push failed, 2 usage.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }

platforms=linux/amd64,linux/arm64
tags=""
push=0
digest_file=""
builder=""
compile=1
rootfs=1
image=1
target=""
while [ $# -gt 0 ]; do
    case "$1" in
    --platforms) platforms=${2:?--platforms needs a value}; shift ;;
    --tag) tags="$tags ${2:?--tag needs a value}"; shift ;;
    --push) push=1 ;;
    --digest-file) digest_file=${2:?--digest-file needs a value}; shift ;;
    --builder) builder=${2:?--builder needs a value}; shift ;;
    --skip-compile) compile=0 ;;
    --skip-rootfs) compile=0; rootfs=0 ;;
    --rootfs-only) image=0 ;;
    -h | --help) usage 0 ;;
    worker | sysbusd) target=$1 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
    shift
done
[ -n "$target" ] || { echo "build.sh: say which image: worker or sysbusd" >&2; usage 2; }
[ -n "$tags" ] || tags="localhost/sysbus-$target:dev"
tls_verify=${REGISTRY_TLS_VERIFY:-true}

if [ -z "$builder" ] && [ "$image" = 1 ]; then
    if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
        builder=docker
    elif command -v buildah >/dev/null 2>&1; then
        builder=buildah
    elif command -v podman >/dev/null 2>&1; then
        builder=podman
    else
        die "no image builder: install docker with buildx, or buildah (apt-get install buildah)"
    fi
fi

case "$target" in
worker) bins="system-bus-worker" ;;
sysbusd) bins="sysbusd sysbus" ;;
esac

native=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$native" in x86_64) native=amd64 ;; aarch64) native=arm64 ;; esac

ctx="$ROOT/build/image/$target"
if [ "$rootfs" = 1 ]; then
    rm -rf "$ctx"
    mkdir -p "$ctx"
fi
archs=""
for p in $(echo "$platforms" | tr ',' ' '); do
    case "$p" in
    linux/amd64) arch=amd64 triplet=x86_64-linux-gnu ;;
    linux/arm64) arch=arm64 triplet=aarch64-linux-gnu ;;
    *) die "unsupported platform '$p' (linux/amd64 or linux/arm64)" ;;
    esac
    archs="$archs $arch"
    out="$ROOT/build/img-$arch"
    outbins=$(for b in $bins; do printf '%s ' "$out/bin/$b"; done)
    if [ "$compile" = 1 ]; then
        echo "build.sh: compiling for $p" >&2
        if [ "$arch" = "$native" ]; then
            # shellcheck disable=SC2086 # outbins is a list of paths without spaces
            make -C "$ROOT" -s -j2 BUILD="$out" OPT=-O2 $outbins >&2
        else
            command -v "$triplet-gcc" >/dev/null 2>&1 ||
                die "cross-compiler $triplet-gcc missing: apt-get install gcc-$triplet (and the :$arch -dev packages, see deploy/README.md)"
            # shellcheck disable=SC2086
            PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig" \
                make -C "$ROOT" -s -j2 BUILD="$out" OPT=-O2 CC="$triplet-gcc" $outbins >&2
        fi
    fi
    if [ "$rootfs" = 1 ]; then
        # shellcheck disable=SC2086
        "$ROOT/deploy/image/rootfs.sh" "$arch" "$ctx/$arch" $outbins
    else
        [ -d "$ctx/$arch" ] || die "no root filesystem in $ctx/$arch (run with --rootfs-only first)"
    fi
done
if [ "$image" = 0 ]; then
    echo "build.sh: root filesystems for $target in $ctx" >&2
    exit 0
fi
file="$ROOT/deploy/image/$target.Containerfile"
first_tag=$(echo "$tags" | awk '{print $1}')

case "$builder" in
docker)
    set -- docker buildx build --platform "$platforms" -f "$file"
    # The default "docker" driver cannot build several platforms at once
    # (without the containerd image store): use a docker-container builder.
    case "$platforms" in
    *,*)
        driver=$(docker buildx inspect 2>/dev/null | sed -n 's/^Driver: *//p' | head -n 1)
        if [ "$driver" = docker ]; then
            docker buildx inspect sysbus-multiarch >/dev/null 2>&1 ||
                docker buildx create --name sysbus-multiarch --driver docker-container >/dev/null ||
                die "cannot create a docker-container buildx builder for $platforms"
            set -- "$@" --builder sysbus-multiarch
        fi ;;
    esac
    for t in $tags; do set -- "$@" -t "$t"; done
    meta=$(mktemp)
    if [ "$push" = 1 ]; then set -- "$@" --push --metadata-file "$meta"; fi
    "$@" "$ctx" >&2 || die "docker buildx build failed"
    if [ "$push" = 1 ] && [ -n "$digest_file" ]; then
        sed -n 's/.*"containerimage.digest": *"\([^"]*\)".*/\1/p' "$meta" >"$digest_file"
    fi
    ;;
buildah | podman)
    list="localhost/sysbus-$target-build:$$"
    "$builder" manifest rm "$list" >/dev/null 2>&1 || true
    "$builder" manifest create "$list" >/dev/null || die "$builder manifest create failed"
    for arch in $archs; do
        echo "build.sh: building linux/$arch image with $builder" >&2
        "$builder" build --platform "linux/$arch" --manifest "$list" -f "$file" "$ctx" >&2 ||
            die "$builder build for linux/$arch failed"
    done
    for t in $tags; do "$builder" tag "$list" "$t" >/dev/null 2>&1 || true; done
    if [ "$push" = 1 ]; then
        for t in $tags; do
            echo "build.sh: pushing $t" >&2
            df="$ctx/digest"
            "$builder" manifest push --all --tls-verify="$tls_verify" --digestfile "$df" "$list" "docker://$t" >&2 ||
                die "push of $t failed"
            if [ "$t" = "$first_tag" ] && [ -n "$digest_file" ]; then cp "$df" "$digest_file"; fi
        done
    fi
    ;;
*) die "unknown builder '$builder' (docker, buildah or podman)" ;;
esac
echo "build.sh: built $target for $platforms with $builder: $tags" >&2
