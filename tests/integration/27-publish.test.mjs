// 27-publish: deploy/publish-system-bus-worker.sh end to end against a real
// OCI registry on 127.0.0.1 (Debian's docker-registry with htpasswd auth),
// images built with buildah, auth leased from a real `secrets` daemon, the
// re-sync checked against a real sysbusd with the real system-bus-worker, and
// the receipt written by the real `slog`.
//
// Stand-ins (tests/integration/standins/): `kubectl`, because these machines
// have no Kubernetes API server; it records every call so the exact sequence
// (and the rollback path) is asserted, and its "pod proxy" answers with the
// real worker's health endpoint. `gh`, because `gh auth token` needs a GitHub
// login. Both are put first on PATH for these tests only.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { BIN, ROOT, SIGNING_KEY, sleep, startCWorker, startSysbusd, tmpdir, until } from "./lib.mjs";

const STANDINS = path.join(ROOT, "tests/integration/standins");
const USER = "joelhooks";
const GOOD = "good-registry-token-7f3a";
const READONLY = "read-only-token-2b9c"; // authenticates, cannot push (as a PAT without write:packages)
let registry, regPort, proxy, proxyPort, secretsd, secretsSock, server, worker, base;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function secrets(args, input) {
  return spawnSync(path.join(BIN, "secrets"), [...args, "--socket", secretsSock], { input, encoding: "utf8", timeout: 15000 });
}

before(async () => {
  base = tmpdir("publish-");
  // The registry, with one user whose password is GOOD.
  regPort = await freePort();
  const htpasswd = execFileSync("htpasswd", ["-Bbn", USER, GOOD], { encoding: "utf8" });
  fs.writeFileSync(path.join(base, "htpasswd"), htpasswd);
  fs.writeFileSync(path.join(base, "registry.yml"), [
    "version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:", `    rootdirectory: ${base}/registry`,
    "http:", `  addr: 127.0.0.1:${regPort}`, "auth:", "  htpasswd:", "    realm: test", `    path: ${base}/htpasswd`, "",
  ].join("\n"));
  registry = spawn("docker-registry", ["serve", path.join(base, "registry.yml")], { stdio: "ignore" });
  await until(async () => {
    try { return (await fetch(`http://127.0.0.1:${regPort}/v2/`)).status === 401; } catch { return false; }
  }, "the registry");
  // A pass-through proxy in front of it that gives READONLY read access and
  // answers its writes with 403, as GHCR does for a token without write:packages.
  proxy = http.createServer((req, res) => {
    const auth = req.headers.authorization || "";
    const user = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : "";
    const headers = { ...req.headers, host: `127.0.0.1:${regPort}` };
    if (user === `${USER}:${READONLY}`) {
      if (!["GET", "HEAD"].includes(req.method)) {
        res.writeHead(403, { "content-type": "application/json" });
        res.end('{"errors":[{"code":"DENIED","message":"permission_denied: write_package"}]}');
        return;
      }
      headers.authorization = "Basic " + Buffer.from(`${USER}:${GOOD}`).toString("base64");
    }
    const up = http.request({ host: "127.0.0.1", port: regPort, method: req.method, path: req.url, headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  proxyPort = proxy.address().port;
  // The secrets daemon holding ghcr_pat.
  secretsSock = path.join(base, "secrets.sock");
  const store = path.join(base, "secrets-store");
  let r = spawnSync(path.join(BIN, "secrets"), ["init", "--store", store], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  secretsd = spawn(path.join(BIN, "secrets"), ["serve", "--socket", secretsSock, "--store", store], { stdio: "ignore" });
  await until(() => secrets(["status"]).status === 0, "the secrets daemon");
  r = secrets(["add", "ghcr_pat"], GOOD + "\n");
  assert.equal(r.status, 0, r.stderr);
  // sysbusd (signed, as in the cluster) and the worker the "new pod" is.
  server = await startSysbusd({ dev: false });
  worker = await startCWorker({ server });
});

after(async () => {
  await worker?.kill("SIGTERM");
  await server?.stop();
  secretsd?.kill("SIGTERM");
  registry?.kill("SIGTERM");
  proxy?.close();
});

// Runs the publish script (asynchronously: the registry proxy lives in this
// process) in a copy of the manifests; resolves to its outcome and what it touched.
async function publish(args, env = {}, { port = regPort } = {}) {
  const dir = tmpdir("publish-run-");
  fs.cpSync(path.join(ROOT, "deploy/k8s"), path.join(dir, "k8s"), { recursive: true });
  const manifest = path.join(dir, "k8s/overlays/joelclaw/system-bus-worker-image.yaml");
  const image = `127.0.0.1:${port}/${USER}/system-bus-worker`;
  fs.writeFileSync(manifest, fs.readFileSync(manifest, "utf8").replace("ghcr.io/joelhooks/system-bus-worker", image));
  const before = fs.readFileSync(manifest, "utf8");
  const kubectlLog = path.join(dir, "kubectl.log");
  const slogFile = path.join(dir, "slog.jsonl");
  fs.writeFileSync(kubectlLog, "");
  const fullEnv = {
    ...process.env,
    PATH: `${STANDINS}:${BIN}:${process.env.PATH}`,
    REGISTRY: `127.0.0.1:${port}`, REGISTRY_TLS_VERIFY: "false", BUILDER: "buildah",
    MANIFEST: manifest, KUBECTL_LOG: kubectlLog, GH_LOG: path.join(dir, "gh.log"),
    FAKE_NODE_ARCHS: "arm64", FAKE_WORKER_URL: worker.origin, FAKE_OLD_WORKER_URL: worker.origin,
    FAKE_SIGNING_KEY: SIGNING_KEY, // the publish script reads it from the cluster's Secret
    SYSBUS_URL: server.url, SLOG_FILE: slogFile, SECRETS_SOCKET: secretsSock,
    GHCR_TOKEN: "", FAKE_GH_TOKEN: "",
    ...env,
  };
  const r = await new Promise((resolve) => {
    const p = spawn(path.join(ROOT, "deploy/publish-system-bus-worker.sh"), args, { env: fullEnv, cwd: dir });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 600000);
    p.on("close", (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
  const calls = fs.readFileSync(kubectlLog, "utf8").split("\n").filter(Boolean)
    .filter((l) => !l.startsWith('"}')) // the jsonpath of `get nodes` spans two lines
    .map((l) => l.replace(/ -o jsonpath=.*/, " -o jsonpath").replace(/ -o json$/, " -o json"));
  return {
    status: r.status, out: r.stdout, err: r.stderr, calls, image, manifest, before,
    after: fs.readFileSync(manifest, "utf8"),
    slog: fs.existsSync(slogFile) ? fs.readFileSync(slogFile, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [],
  };
}

function rawManifest(ref) {
  const r = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", `${USER}:${GOOD}`, `docker://${ref}`],
    { encoding: "utf8" });
  assert.equal(r.status, 0, `skopeo inspect ${ref}: ${r.stderr}`);
  return r.stdout;
}
const sha256 = (s) => "sha256:" + execFileSync("sha256sum", { input: s, encoding: "utf8" }).split(" ")[0];

const REVISION = "-n joelclaw get deployment system-bus-worker -o jsonpath";
const UNDO = ["-n joelclaw rollout undo deployment/system-bus-worker --to-revision=2",
  "-n joelclaw rollout status deployment/system-bus-worker --timeout=180s"];
const HAPPY_CALLS = [
  "get nodes -o jsonpath",
  REVISION, // the revision to roll back to
  "apply -k", // + the overlay directory
  "-n joelclaw rollout status deployment/system-bus-worker --timeout=180s",
  "-n joelclaw get deployment system-bus-worker -o jsonpath",
  "-n joelclaw get deployment system-bus-worker -o json",
  "-n joelclaw get rs -l app.kubernetes.io/name=system-bus-worker -o json",
  "-n joelclaw get pods -l app.kubernetes.io/name=system-bus-worker,pod-template-hash=newhash -o json",
  "-n joelclaw get --raw /api/v1/namespaces/joelclaw/pods/system-bus-worker-new-2:3111/proxy/",
  "-n joelclaw get secret sysbusd-env -o jsonpath", // the signing key for sysbus refresh
];
const prefixes = (calls) => calls.map((c, i) => (HAPPY_CALLS[i] && c.startsWith(HAPPY_CALLS[i]) ? HAPPY_CALLS[i] : c));

test("--dry-run prints the plan and changes nothing", async () => {
  const r = await publish(["--dry-run", "t-dry"]);
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /plan \(dry run/);
  assert.match(r.out, /rollout status deployment\/system-bus-worker --timeout=180s/);
  assert.deepEqual(r.calls, []);
  assert.equal(r.after, r.before);
});

test("a missing tool is named with how to install it", async () => {
  const r = await publish(["t-missing"], { PATH: `${STANDINS}:${process.env.PATH}` }); // no build/bin: no sysbus, slog
  assert.equal(r.status, 1);
  assert.match(r.err, /missing tools:[\s\S]*sysbus: [\s\S]*slog: /);
  assert.deepEqual(r.calls, []);
});

test("publishes: a bad GHCR_TOKEN falls through to the secrets lease; both tags, the digest, both architectures; manifest pinned; receipt", async () => {
  const t0 = Date.now();
  const r = await publish(["t1"], { GHCR_TOKEN: "expired-token" });
  assert.equal(r.status, 0, r.err);
  // Auth order, with which source won.
  assert.match(r.err, /GHCR_TOKEN: token rejected by 127\.0\.0\.1:\d+ .*fix: create a token with write:packages/);
  assert.match(r.err, /auth: using secrets lease ghcr_pat/);
  const audit = secrets(["audit"]).stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(audit.some((a) => a.action === "lease" && a.client_id === "publish-system-bus-worker" && a.success));
  // Both tags and the digest.
  const raw = rawManifest(`${r.image}:t1`);
  const digest = sha256(raw);
  assert.equal(sha256(rawManifest(`${r.image}:latest`)), digest);
  const list = JSON.parse(raw);
  assert.deepEqual(list.manifests.map((m) => m.platform.architecture).sort(), ["amd64", "arm64"]);
  assert.match(r.out, new RegExp(`digest: +${digest}`));
  assert.match(r.out, /duration: +\d+s/);
  // The manifest is pinned to tag and digest.
  assert.match(r.after, new RegExp(`image: ${r.image.replace(/\./g, "\\.")}:t1@${digest}\\n`));
  // The cluster calls, in order, the new ReplicaSet's pod probed.
  assert.deepEqual(prefixes(r.calls), HAPPY_CALLS);
  assert.ok(!r.calls.some((c) => c.includes("rollout undo")));
  assert.match(r.err, /signing key: from Secret sysbusd-env/);
  // The receipt.
  assert.equal(r.slog.length, 1);
  assert.equal(r.slog[0].action, "deploy");
  assert.equal(r.slog[0].tool, "system-bus-worker");
  assert.equal(r.slog[0].detail, `${r.image}@${digest}`);
  assert.match(r.slog[0].reason, /rollout .* ok/);
  console.log(`publish (compile + 2 images + push + deploy) took ${Date.now() - t0} ms`);
});

test("falls back to gh auth token when GHCR_TOKEN and the secrets daemon give nothing", async () => {
  const r = await publish(["t2"], { SECRETS_SOCKET: path.join(base, "no-such.sock"), FAKE_GH_TOKEN: GOOD, SKIP_COMPILE: "1" });
  assert.equal(r.status, 0, r.err);
  assert.match(r.err, /GHCR_TOKEN: no token/);
  assert.match(r.err, /secrets lease ghcr_pat: no token/);
  assert.match(r.err, /auth: using gh auth token/);
  rawManifest(`${r.image}:t2`);
});

test("a token that logs in but cannot push (403) is reported with the fix, and the next source pushes", async () => {
  const r = await publish(["t2b"], { GHCR_TOKEN: READONLY, SKIP_COMPILE: "1" }, { port: proxyPort });
  assert.equal(r.status, 0, r.err);
  assert.match(r.err, /auth: using GHCR_TOKEN/);
  // buildah 1.28 exits 0 on a refused blob upload: the read-back catches it.
  assert.match(r.err, /GHCR_TOKEN: (the registry refused the push \(403\)|the builder reported success but the registry does not serve :t2b .*): the token lacks write:packages; trying the next source/);
  assert.match(r.err, /auth: using secrets lease ghcr_pat/);
  assert.match(r.out, /digest: +sha256:/);
  rawManifest(`127.0.0.1:${regPort}/${USER}/system-bus-worker:t2b`);
});

test("no working token: fails before touching the cluster", async () => {
  const r = await publish(["t3"], { GHCR_TOKEN: "nope", SECRETS_SOCKET: path.join(base, "no-such.sock"), FAKE_GH_TOKEN: "also-bad", SKIP_COMPILE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.err, /no auth source worked/);
  assert.match(r.err, /gh auth token: token rejected/);
  assert.deepEqual(r.calls, []);
  assert.equal(r.after, r.before);
});

test("refuses a node architecture the image does not have (no exec format error)", async () => {
  const r = await publish(["t4"], { PLATFORMS: "linux/amd64", FAKE_NODE_ARCHS: "arm64", SKIP_COMPILE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.err, /arm64 nodes but PLATFORMS=linux\/amd64 has no linux\/arm64/);
  assert.deepEqual(r.calls, ["get nodes -o jsonpath"]);
  assert.equal(r.after, r.before);
});

test("a rollout that times out is rolled back and the manifest restored", async () => {
  const r = await publish(["t5"], { FAKE_ROLLOUT: "timeout", SKIP_COMPILE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.err, /rollout of deployment\/system-bus-worker did not finish in 180s/);
  assert.deepEqual(prefixes(r.calls), [...HAPPY_CALLS.slice(0, 4), REVISION, ...UNDO]);
  assert.match(r.err, /rolled back to revision 2/);
  assert.equal(r.after, r.before);
  assert.equal(r.slog.length, 0, "no receipt for a failed deploy");
});

test("a new pod whose health endpoint fails is rolled back (the old pod is never asked)", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const r = await publish(["t6"], { FAKE_WORKER_URL: dead, SKIP_COMPILE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.err, /health endpoint of pod system-bus-worker-new-2 did not answer 200/);
  assert.deepEqual(r.calls.slice(-2), UNDO);
  assert.ok(!r.calls.some((c) => c.includes("system-bus-worker-old-1")));
  assert.equal(r.after, r.before);
});

test("an unexpected error after the apply (a failing kubectl call mid-verification) still rolls back", async () => {
  const r = await publish(["t7"], { FAKE_FAIL: " get rs ", SKIP_COMPILE: "1" });
  assert.notEqual(r.status, 0);
  assert.deepEqual(r.calls.slice(-2), UNDO);
  assert.equal(r.after, r.before);
  assert.equal(r.slog.length, 0);
});
