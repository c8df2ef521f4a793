// 26-deploy: what ships. Every script passes shellcheck; the Kubernetes
// manifests render with `kubectl kustomize` and every rendered object is
// checked against the Kubernetes schema (the kubernetes-models npm package's
// validators) and against the deploy rules (rolling update, probes,
// security context, resources, service names that cannot collide with
// sysbusd's SYSBUS_* settings); the CI workflow parses and names only
// GitHub-hosted runners; the images build FROM scratch with buildah, run
// under podman (runc) and answer their health endpoints; the arm64 worker
// binary runs under qemu-user from its own root filesystem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { ROOT, COMPAT, sleep, tmpdir } from "./lib.mjs";

const require = createRequire(path.join(COMPAT, "package.json"));
const YAML = require("yaml");

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20, ...opts });
}

// ---- scripts ---------------------------------------------------------------

test("every shell script passes shellcheck", () => {
  const files = sh("git", ["ls-files", "--cached", "--others", "--exclude-standard"]).split("\n")
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)) && !f.includes("node_modules"))
    .filter((f) => {
      if (f.endsWith(".sh")) return true;
      const head = fs.readFileSync(path.join(ROOT, f)).subarray(0, 64).toString();
      return /^#!\s*\/bin\/(ba)?sh\b|^#!\/usr\/bin\/env (ba)?sh\b/.test(head);
    });
  for (const must of ["deploy/publish-system-bus-worker.sh", "deploy/image/build.sh", "deploy/image/rootfs.sh",
    "scripts/deps.sh", ".ci/run", "tests/integration/standins/kubectl"])
    assert.ok(files.includes(must), `${must} is checked`);
  const r = spawnSync("shellcheck", ["-x", ...files], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, `shellcheck:\n${r.stdout}${r.stderr}`);
});

// ---- manifests ---------------------------------------------------------------

// kubectl's built-in kustomize renders the manifests; so must the one a
// fresh Debian 12 gets (kubectl 1.20, unpacked by scripts/deps.sh).
const DEBIAN12_KUBECTL = path.join(ROOT, "build/tools/debian12-kubectl/usr/bin/kubectl");

function render(dir, kubectl = "kubectl") {
  const r = spawnSync(kubectl, ["kustomize", dir], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, `${kubectl} kustomize ${dir}: ${r.error ?? ""}${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJSON()).filter(Boolean);
}

const byName = (objs) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();

test("Debian 12's kubectl (1.20) renders the same objects", () => {
  assert.ok(fs.existsSync(DEBIAN12_KUBECTL), `${DEBIAN12_KUBECTL} is missing: run scripts/deps.sh`);
  for (const dir of ["deploy/k8s/base", "deploy/k8s/overlays/joelclaw"]) {
    const old = render(dir, DEBIAN12_KUBECTL), cur = render(dir);
    assert.deepEqual(byName(old), byName(cur), dir);
    const sorted = (objs) => [...objs].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    assert.deepEqual(sorted(old), sorted(cur), `${dir}: the objects differ`);
  }
});

async function validateSchema(obj) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : [null, obj.apiVersion];
  // The package's exports are import-only: load the model's file directly.
  const file = path.join(COMPAT, "node_modules/kubernetes-models", group || "", version, `${obj.kind}.js`);
  assert.ok(fs.existsSync(file), `a schema for ${obj.apiVersion} ${obj.kind}`);
  const mod = await import(pathToFileURL(file).href);
  const Model = mod[obj.kind] || mod.default;
  new Model(obj).validate(); // throws with the schema violations
}

const overlay = "deploy/k8s/overlays/joelclaw";

test("the manifests render and every object passes the Kubernetes schema", async () => {
  for (const dir of ["deploy/k8s/base", overlay]) {
    const objs = render(dir);
    assert.ok(objs.length >= 6, `${dir} renders ${objs.length} objects`);
    for (const o of objs) await validateSchema(o);
  }
  // The checker really checks: a wrong type is refused.
  const bad = structuredClone(render(overlay).find((o) => o.kind === "Deployment"));
  bad.spec.replicas = "two";
  await assert.rejects(async () => validateSchema(bad));
});

test("the overlay puts everything in namespace joelclaw", () => {
  const objs = render(overlay);
  for (const o of objs) {
    if (o.kind === "Namespace") assert.equal(o.metadata.name, "joelclaw");
    else assert.equal(o.metadata.namespace, "joelclaw", `${o.kind}/${o.metadata.name}`);
  }
});

function find(objs, kind, name) {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} exists`);
  return o;
}
const envOf = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
const seconds = (s) => { const m = /^(\d+)(ms|s|m)?$/.exec(s); return m[2] === "m" ? +m[1] * 60 : m[2] === "ms" ? +m[1] / 1000 : +m[1]; };

test("sysbusd: one-replica StatefulSet with a data volume, /health probes, a service name without collisions", () => {
  const objs = render(overlay);
  const sts = find(objs, "StatefulSet", "sysbusd");
  assert.equal(sts.spec.replicas, 1);
  const pod = sts.spec.template.spec;
  assert.equal(pod.enableServiceLinks, false);
  const c = pod.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, "/health");
  assert.equal(c.livenessProbe.httpGet.path, "/health");
  const dataMount = c.volumeMounts.find((m) => m.mountPath === envOf(c).SYSBUS_DATA_DIR);
  assert.ok(dataMount, "the data dir is a mounted volume");
  assert.ok(sts.spec.volumeClaimTemplates.some((v) => v.metadata.name === dataMount.name), "backed by a PVC");
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  // Service links would inject <NAME>_PORT etc.: no Service may produce a
  // SYSBUS_* or INNGEST_* variable (sysbusd and the SDK read those).
  for (const svc of objs.filter((o) => o.kind === "Service")) {
    const prefix = svc.metadata.name.toUpperCase().replace(/-/g, "_") + "_";
    assert.ok(!prefix.startsWith("SYSBUS_") && !prefix.startsWith("INNGEST_"), `service ${svc.metadata.name}`);
  }
  const svc = find(objs, "Service", "sysbusd");
  assert.ok(svc.spec.ports.some((p) => p.port === 8288));
});

test("system-bus-worker: rolling update, probes, drain inside the grace period, resources, locked down", () => {
  const objs = render(overlay);
  const dep = find(objs, "Deployment", "system-bus-worker");
  assert.equal(dep.spec.strategy.type, "RollingUpdate");
  assert.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0);
  assert.equal(dep.spec.strategy.rollingUpdate.maxSurge, 1);
  const pod = dep.spec.template.spec;
  assert.equal(pod.enableServiceLinks, false);
  const c = pod.containers.find((x) => x.name === "worker");
  for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    assert.equal(c[p].httpGet.path, "/", p);
    assert.ok([3111, "http"].includes(c[p].httpGet.port), p);
  }
  const env = envOf(c);
  const drain = seconds(env.SYSBUS_DRAIN_GRACE || "25s");
  assert.ok(pod.terminationGracePeriodSeconds > drain, `grace ${pod.terminationGracePeriodSeconds} > drain ${drain}`);
  assert.deepEqual(c.resources, { requests: { cpu: "50m", memory: "32Mi" }, limits: { cpu: "1", memory: "256Mi" } });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 1000);
  assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
  assert.ok(c.envFrom.some((e) => e.secretRef?.name === "system-bus-env"));
  // The server and serve URLs point at the Services that exist.
  const server = new URL(env.INNGEST_BASE_URL);
  const sysbusd = find(objs, "Service", server.hostname);
  assert.ok(sysbusd.spec.ports.some((p) => p.port === +server.port));
  const serve = new URL(env.INNGEST_SERVE_HOST);
  const wsvc = find(objs, "Service", serve.hostname);
  assert.ok(wsvc.spec.ports.some((p) => p.port === +serve.port));
  assert.deepEqual(wsvc.spec.selector, dep.spec.selector.matchLabels);
  const pdb = find(objs, "PodDisruptionBudget", "system-bus-worker");
  assert.deepEqual(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  assert.ok(pdb.spec.minAvailable < dep.spec.replicas, "the PDB lets a drain evict one pod at a time");
  assert.match(c.image, /system-bus-worker/);
});

// ---- CI workflow -------------------------------------------------------------

test("the deploy workflow parses and names only GitHub-hosted runners", () => {
  const file = path.join(ROOT, ".github/workflows/system-bus-worker-deploy.yml");
  const wf = YAML.parse(fs.readFileSync(file, "utf8"));
  const hosted = /^(ubuntu|windows|macos)-(latest|\d+\.\d+(-arm)?|\d+(-arm)?)$/;
  const jobs = Object.entries(wf.jobs);
  assert.ok(jobs.length >= 3);
  for (const [name, job] of jobs) {
    const labels = [job["runs-on"]].flat();
    for (const l of labels) assert.match(String(l), hosted, `job ${name} runs on ${l}`);
    assert.ok(job["timeout-minutes"] > 0, `job ${name} has a timeout`);
  }
  assert.ok(wf.jobs.image.permissions.packages === "write", "the image job can push packages");
  assert.match(wf.jobs.deploy.if, /has_kubeconfig == 'true'/, "deploy runs only with a kubeconfig");
  assert.match(wf.jobs["deploy-instructions"].if, /has_kubeconfig != 'true'/);
  const text = JSON.stringify(wf.jobs["deploy-instructions"]);
  assert.match(text, /publish-system-bus-worker\.sh --no-build/, "names the local command");
});

// ---- images ------------------------------------------------------------------

const podmanArgs = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];

function buildImage(target, tag) {
  sh("deploy/image/build.sh", ["--builder", "buildah", "--tag", tag, target], { stdio: ["ignore", "pipe", "pipe"] });
}

async function waitHttp(url, ms) {
  const t0 = Date.now();
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return { ms: Date.now() - t0, body: await r.json() };
    } catch {}
    if (Date.now() - t0 > ms) throw new Error(`${url} not healthy in ${ms} ms`);
    await sleep(5);
  }
}

function freePort() {
  return 20000 + Math.floor(Math.random() * 20000);
}

test("the worker image: FROM scratch, both architectures, runs under podman and answers its health endpoint", async () => {
  const tag = "localhost/sysbus-worker:test";
  buildImage("worker", tag);
  // One manifest list with both variants.
  const list = JSON.parse(sh("buildah", ["manifest", "inspect", tag]));
  const archs = list.manifests.map((m) => m.platform.architecture).sort();
  assert.deepEqual(archs, ["amd64", "arm64"]);
  // The root filesystem is exactly: the binary, its libraries, CA certificates, passwd/group.
  const rootfs = path.join(ROOT, "build/image/worker/amd64");
  const files = sh("find", [rootfs, "-type", "f"]).trim().split("\n").map((f) => path.relative(rootfs, f)).sort();
  assert.ok(files.includes("usr/local/bin/system-bus-worker"));
  assert.ok(files.includes("etc/ssl/certs/ca-certificates.crt"));
  assert.ok(files.every((f) => /^(usr\/local\/bin\/system-bus-worker|lib\/|lib64\/|etc\/(passwd|group|ssl\/certs\/ca-certificates\.crt))/.test(f)), files.join(" "));
  assert.match(fs.readFileSync(path.join(rootfs, "etc/passwd"), "utf8"), /:1000:1000:/);
  const size = Number(sh("du", ["-sb", rootfs]).split("\t")[0]);
  console.log(`worker rootfs (amd64): ${(size / 1e6).toFixed(1)} MB uncompressed`);

  const port = freePort();
  const name = `sbw-test-${process.pid}`;
  const t0 = Date.now();
  sh("podman", ["run", "-d", "--rm", ...podmanArgs, "--network", "host", "--name", name,
    "-e", `PORT=${port}`, "-e", "HOST=127.0.0.1", "-e", "INNGEST_DEV=1",
    "-e", "INNGEST_BASE_URL=http://127.0.0.1:9", "--read-only", "--cap-drop", "ALL", tag]);
  try {
    const h = await waitHttp(`http://127.0.0.1:${port}/`, 20000);
    console.log(`worker container healthy ${Date.now() - t0} ms after podman run`);
    assert.equal(h.body.worker.hasDuplicateFunctionIds, false);
    assert.ok(h.body.count > 0);
    const user = sh("podman", ["inspect", "--format", "{{.Config.User}}", name]).trim();
    assert.equal(user, "1000:1000");
  } finally {
    spawnSync("podman", ["rm", "-f", "-t", "2", name]);
  }
});

test("the sysbusd image runs under podman and answers /health", async () => {
  const tag = "localhost/sysbusd:test";
  buildImage("sysbusd", tag);
  const port = freePort();
  const name = `sbd-test-${process.pid}`;
  const data = tmpdir("sysbusd-image-data-");
  fs.chmodSync(data, 0o777); // the image runs as uid 1000 (Kubernetes sets fsGroup instead)
  sh("podman", ["run", "-d", "--rm", ...podmanArgs, "--network", "host", "--name", name, "--read-only",
    "-v", `${data}:/data:rw`, "--tmpfs", "/tmp", "-e", "SYSBUS_HOST=127.0.0.1", "-e", `SYSBUS_PORT=${port}`,
    "-e", "SYSBUS_DEV=true", tag]);
  try {
    await waitHttp(`http://127.0.0.1:${port}/health`, 20000);
    // The CLI in the same image reaches it.
    const out = sh("podman", ["exec", "-e", `SYSBUS_URL=http://127.0.0.1:${port}`, name, "/usr/local/bin/sysbus", "functions"]);
    assert.equal(JSON.parse(out).ok, true);
  } finally {
    spawnSync("podman", ["rm", "-f", "-t", "2", name]);
  }
});

test("the arm64 worker binary runs under qemu-user from its own root filesystem", () => {
  const rootfs = path.join(ROOT, "build/image/worker/arm64");
  assert.ok(fs.existsSync(path.join(rootfs, "usr/local/bin/system-bus-worker")), "built by the image test");
  const info = sh("readelf", ["-h", path.join(rootfs, "usr/local/bin/system-bus-worker")]);
  assert.match(info, /AArch64/);
  const out = sh("qemu-aarch64-static", ["-L", rootfs, path.join(rootfs, "usr/local/bin/system-bus-worker"), "--version"]);
  assert.match(out, /^system-bus-worker \S+/);
});
