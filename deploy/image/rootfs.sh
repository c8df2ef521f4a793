#!/bin/sh
# rootfs.sh - assembles the minimal root filesystem of a sysbus image: the
# given binaries, exactly the shared libraries they need (followed through
# DT_NEEDED with readelf, so it works for a cross-compiled binary too), the
# dynamic loader, CA certificates, and /etc/passwd + /etc/group with the
# non-root user 1000 ("sysbus"). The image itself is then `FROM scratch` plus
# this directory (deploy/image/worker.Containerfile, sysbusd.Containerfile).
#
# Usage: deploy/image/rootfs.sh ARCH OUTDIR BINARY...
#   ARCH    amd64 | arm64 (Debian architecture of the binaries)
#   OUTDIR  created fresh; binaries land in OUTDIR/usr/local/bin
# Libraries are looked up in Debian's multiarch directories for ARCH
# (/lib/<triplet>, /usr/lib/<triplet>), which is where `apt-get install
# libfoo-dev:arm64` puts them.
set -eu

die() { echo "rootfs.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: rootfs.sh ARCH OUTDIR BINARY..."
arch=$1 out=$2
shift 2
case "$arch" in
amd64) triplet=x86_64-linux-gnu loader=/lib64/ld-linux-x86-64.so.2 ;;
arm64) triplet=aarch64-linux-gnu loader=/lib/ld-linux-aarch64.so.1 ;;
*) die "unknown architecture '$arch' (amd64 or arm64)" ;;
esac
command -v readelf >/dev/null || die "readelf not found (install binutils)"
libdirs="/lib/$triplet /usr/lib/$triplet"

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$out/data"
chmod 1777 "$out/tmp"

# needed FILE: the DT_NEEDED sonames of an ELF file
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

find_lib() {
    for d in $libdirs; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}

queue=""
for bin in "$@"; do
    [ -x "$bin" ] || die "not an executable: $bin"
    machine=$(readelf -h "$bin" | sed -n 's/.*Machine:[[:space:]]*//p')
    case "$arch:$machine" in
    amd64:*X86-64* | arm64:*AArch64*) ;;
    *) die "$bin is built for '$machine', not $arch" ;;
    esac
    install -m 0755 "$bin" "$out/usr/local/bin/"
    strip_tool="strip"
    if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then strip_tool="aarch64-linux-gnu-strip"; fi
    "$strip_tool" --strip-unneeded "$out/usr/local/bin/$(basename "$bin")" 2>/dev/null || true
    queue="$queue $(needed "$bin")"
done

# Breadth-first over DT_NEEDED; each library copied once, dereferenced.
seen=" "
while [ -n "$(echo "$queue" | tr -d ' ')" ]; do
    next=""
    for so in $queue; do
        case "$seen" in *" $so "*) continue ;; esac
        seen="$seen$so "
        path=$(find_lib "$so") || die "library $so not found for $arch in $libdirs (install its :$arch package)"
        mkdir -p "$out/lib/$triplet"
        cp -L "$path" "$out/lib/$triplet/$so"
        next="$next $(needed "$path")"
    done
    queue=$next
done

# The loader at the path the binaries name (PT_INTERP).
mkdir -p "$out$(dirname "$loader")"
cp -L "$loader" "$out$loader"

cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/" ||
    die "CA certificates missing (install ca-certificates)"
printf 'root:x:0:0:root:/:/nonexistent\nsysbus:x:1000:1000:sysbus:/data:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\nsysbus:x:1000:\n' >"$out/etc/group"
chown 1000:1000 "$out/data" 2>/dev/null || true
echo "rootfs.sh: $out: $(du -sk "$out" | cut -f1) KiB, $(echo "$seen" | wc -w) libraries" >&2
