#!/bin/bash
# image.sh - image size and time-to-ready of the system-bus-worker image.
# Builds the worker and sysbusd images (deploy/image/build.sh, buildah), then
# reports for each architecture the root filesystem's size uncompressed and
# as pushed (gzip layer, pushed to an OCI directory), and the worker's time
# from start to the first 200 on GET / : the bare binary (N=20 runs) and the
# image under podman (N=5 runs; includes podman's own container setup).
# Medians. Needs buildah, podman (runc), node.
# Usage: bench/image.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for target in worker sysbusd; do
    "$ROOT/deploy/image/build.sh" --builder buildah --tag "localhost/bench-$target:latest" "$target" 2>/dev/null
    for arch in amd64 arm64; do
        img=$(buildah manifest inspect "localhost/bench-$target:latest" |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s).manifests.find(x=>x.platform.architecture===process.argv[1]);console.log(m.digest)})' "$arch")
        rm -rf "$TMP/oci"
        buildah push --quiet --compression-format gzip "localhost/bench-$target:latest@$img" "oci:$TMP/oci" >/dev/null 2>&1 ||
            skopeo copy --quiet --dest-compress-format gzip "containers-storage:localhost/bench-$target:latest@$img" "oci:$TMP/oci"
        pushed=$(du -sb "$TMP/oci/blobs" | cut -f1)
        raw=$(du -sb "$ROOT/build/image/$target/$arch" | cut -f1)
        printf 'image %-8s %-6s uncompressed_mb=%.1f pushed_mb=%.1f\n' "$target" "$arch" \
            "$(echo "$raw / 1000000" | bc -l)" "$(echo "$pushed / 1000000" | bc -l)"
    done
done

# shellcheck disable=SC2016 # JavaScript template literals, not shell
node - "$ROOT/build/image/worker/amd64/usr/local/bin/system-bus-worker" <<'JS'
const { spawn, execFileSync } = require("node:child_process");
const bin = process.argv[2];
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
async function ready(url, t0) {
  for (;;) {
    try { const r = await fetch(url); if (r.status === 200) return performance.now() - t0; } catch {}
    await new Promise((r) => setTimeout(r, 1));
  }
}
(async () => {
  const bare = [];
  for (let i = 0; i < 20; i++) {
    const port = 30000 + i;
    const t0 = performance.now();
    const p = spawn(bin, [], { env: { PORT: String(port), HOST: "127.0.0.1", INNGEST_DEV: "1", INNGEST_BASE_URL: "http://127.0.0.1:9" }, stdio: "ignore" });
    bare.push(await ready(`http://127.0.0.1:${port}/`, t0));
    p.kill("SIGKILL");
  }
  console.log(`worker binary: start -> first 200 on GET / : p50 ${med(bare).toFixed(1)} ms (n=20)`);
  const pod = [];
  for (let i = 0; i < 5; i++) {
    const port = 30100 + i, name = `bench-img-${process.pid}-${i}`;
    const t0 = performance.now();
    execFileSync("podman", ["run", "-d", "--rm", "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
      "--network", "host", "--read-only", "--name", name, "-e", `PORT=${port}`, "-e", "HOST=127.0.0.1", "-e", "INNGEST_DEV=1",
      "-e", "INNGEST_BASE_URL=http://127.0.0.1:9", "localhost/bench-worker:latest"], { stdio: "ignore" });
    pod.push(await ready(`http://127.0.0.1:${port}/`, t0));
    execFileSync("podman", ["rm", "-f", "-t", "0", name], { stdio: "ignore" });
  }
  console.log(`worker image under podman: podman run -> first 200: p50 ${med(pod).toFixed(0)} ms (n=5)`);
})();
JS
