// 24c-talon-secrets: talon fails closed on secrets, with a real signed
// sysbusd, the real system-bus-worker and a real secrets daemon. A required
// secret (INNGEST_SIGNING_KEY) that cannot be leased keeps the worker from
// starting (it would come up unsigned): /health is 503 and says why and when
// the next lease round is, systemd's STATUS= says it too, the crash-loop
// escalation reaches the bus, and the worker starts, signed, as soon as the
// daemon is back. An optional secret that cannot be leased is left out. A
// running worker whose replacement cannot lease keeps running (zero-downtime
// restart aborted, health restart blocked). A daemon that accepts and never
// answers is treated like a stopped one. Every wait polls with a deadline.
import { test } from "node:test";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import {
  api, BIN, EVENT_KEY, notifySocket, SIGNING_KEY, sendEvents, startSysbusd, tmpdir, until, waitEventRuns, SANITIZER, toolEnv,
} from "./lib.mjs";

const TALON = path.join(BIN, "talon");
const WORKER = path.join(BIN, "system-bus-worker");
const SECRETS = path.join(BIN, "secrets");
const procs = new Set();
process.on("exit", () => { for (const p of procs) try { p.kill("SIGKILL"); } catch {} });


async function freePorts(n) {
  const out = new Set();
  while (out.size < n) {
    out.add(await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.on("error", reject);
      srv.listen(0, "127.0.0.1", () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
    }));
  }
  return [...out];
}

function run(cmd, args, { input, env = toolEnv() } = {}) {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { env, timeout: 60000 }, (err, stdout, stderr) => {
      let code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      if (SANITIZER.test(stderr)) code = `sanitizer report: ${stderr}`;
      let json;
      try { json = JSON.parse(stdout); } catch {}
      resolve({ code, stdout, stderr, json });
    });
    p.stdin.end(input ?? "");
  });
}

// The secrets daemon on sock (its store created once, with the signing key).
async function startDaemon(store, sock) {
  const p = spawn(SECRETS, ["serve", "--store", store, "--socket", sock], { env: toolEnv() });
  procs.add(p);
  const d = { proc: p, log: "", exited: null };
  p.stdout.on("data", (b) => (d.log += b));
  p.stderr.on("data", (b) => (d.log += b));
  d.exit = new Promise((resolve) => p.on("exit", (code, signal) => { procs.delete(p); resolve((d.exited = { code, signal })); }));
  await until(() => d.exited || /"event":"listening"/.test(d.log), "the secrets daemon to listen");
  assert.equal(d.exited, null, d.log);
  d.stop = async () => {
    if (!d.exited) p.kill("SIGTERM");
    const r = await d.exit;
    assert.ok(!SANITIZER.test(d.log), d.log);
    return r;
  };
  return d;
}

async function secretsStore(dir) {
  const store = path.join(dir, "store"), sock = path.join(dir, "s.sock");
  assert.equal((await run(SECRETS, ["init", "--store", store])).code, 0);
  const d = await startDaemon(store, sock);
  const add = await run(SECRETS, ["add", "inngest_signing_key", "--socket", sock], { input: SIGNING_KEY });
  assert.equal(add.code, 0, add.stderr);
  return { store, sock, daemon: d };
}

// talon over the worker against sysbusd s (signed), leasing from sock.
async function world(s, sock, { secrets = {}, worker = {} } = {}) {
  const dir = tmpdir("talon-secrets-");
  const [port, alt, hport] = await freePorts(3);
  const envFile = path.join(dir, "worker.env");
  // No INNGEST_DEV: without its signing key the worker would start in dev
  // mode, unsigned. That is what talon must not let happen.
  fs.writeFileSync(envFile, [`INNGEST_BASE_URL=${s.url}`, `INNGEST_EVENT_KEY=${EVENT_KEY}`, "HOST=127.0.0.1",
    `SYSBUS_DIAG_LOG=${path.join(dir, "diag.log")}`, "LOG_LEVEL=info"].join("\n") + "\n");
  const logFile = path.join(dir, "talon.log");
  const sections = {
    worker: {
      command: WORKER, port, alt_port: alt, env_file: envFile, log_stderr: path.join(dir, "worker.err"),
      drain_timeout_secs: 2, health_interval_secs: 1, health_failures_before_restart: 2, http_timeout_secs: 1,
      startup_sync_delay_secs: 1, crashloop_threshold: 3, restart_backoff_max_secs: 1, ...worker,
    },
    secrets: { socket: sock, timeout_secs: 1, retry_max_secs: 1, inngest_signing_key: "INNGEST_SIGNING_KEY", ...secrets },
    health: { bind: `127.0.0.1:${hport}`, state_dir: path.join(dir, "state"), log_file: logFile },
    bus: { url: s.url, event_key: EVENT_KEY },
  };
  const cfg = path.join(dir, "talon.ini");
  fs.writeFileSync(cfg, Object.entries(sections).map(([name, kv]) =>
    `[${name}]\n` + Object.entries(kv).map(([k, v]) => `${k} = ${v}`).join("\n")).join("\n\n") + "\n");
  const w = {
    dir, cfg, port, alt, healthUrl: `http://127.0.0.1:${hport}`, talon: null,
    start(env = {}) {
      const proc = spawn(TALON, ["--config", cfg], { env: { ...toolEnv(), ...env } });
      procs.add(proc);
      const t = { proc, lines: [], exited: null };
      t.exit = new Promise((resolve) => proc.on("exit", (code, signal) => { procs.delete(proc); resolve((t.exited = { code, signal })); }));
      for (const st of [proc.stdout, proc.stderr])
        readline.createInterface({ input: st }).on("line", (l) => t.lines.push(l));
      w.talon = t;
      return t;
    },
    async health() {
      const r = await fetch(`${w.healthUrl}/health`, { signal: AbortSignal.timeout(5000) });
      return { status: r.status, ...(await r.json()) };
    },
    waitHealth(pred, what, timeoutMs = 20000) {
      return until(async () => { const h = await w.health(); return pred(h) ? h : null; }, what, timeoutMs);
    },
    log() {
      if (!fs.existsSync(logFile)) return [];
      return fs.readFileSync(logFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    },
    async close() {
      const t = w.talon;
      if (t && !t.exited) t.proc.kill("SIGTERM");
      const timer = setTimeout(() => t && t.proc.kill("SIGKILL"), 30000);
      const r = t ? await t.exit : null;
      clearTimeout(timer);
      const text = (t ? t.lines.join("\n") : "") + (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
      if (SANITIZER.test(text)) throw new Error(`sanitizer report from talon:\n${text.slice(-4000)}`);
      const werr = path.join(dir, "worker.err");
      if (fs.existsSync(werr) && SANITIZER.test(fs.readFileSync(werr, "utf8")))
        throw new Error(`sanitizer report from the worker:\n${fs.readFileSync(werr, "utf8").slice(-4000)}`);
      return r;
    },
  };
  return w;
}

const sha = (v) => crypto.createHash("sha256").update(v).digest("hex");

// What the running worker sees, through a signed call from sysbusd.
async function workerEnv(s, names) {
  const [id] = await sendEvents(s, [{ name: "diag/env", data: { names } }]);
  const [r] = await waitEventRuns(s, id);
  assert.equal(r.status, "Completed", JSON.stringify(r));
  return r.output;
}

const registeredOn = (s, port) => until(async () => {
  const a = (await api(s, "/v1/apps")).json.data;
  return a.length === 1 && a[0].url.includes(`:${port}/`) && a;
}, `the worker registered on port ${port}`);

test("a required secret that cannot be leased keeps the worker down, reported; it starts signed once the daemon is back", { timeout: 120000 }, async (t) => {
  const s = await startSysbusd({ dev: false });
  const sdir = tmpdir("talon-sd-");
  const { store, sock, daemon } = await secretsStore(sdir);
  const ns = await notifySocket(t);
  const w = await world(s, sock, { secrets: { front_api_token: "FRONT_API_TOKEN optional" } });
  let d2;
  try {
    w.start({ NOTIFY_SOCKET: ns.path });
    const h1 = await w.waitHealth((h) => h.worker_state === "running", "the worker running");
    assert.equal(h1.ok, true);
    assert.deepEqual(h1.secret_failures, ["front_api_token"], "the optional secret is named");
    await registeredOn(s, w.port);
    assert.deepEqual(await workerEnv(s, ["INNGEST_SIGNING_KEY", "FRONT_API_TOKEN"]),
      { INNGEST_SIGNING_KEY: { set: true, sha256: sha(SIGNING_KEY) }, FRONT_API_TOKEN: { set: false } },
      "signed, and started without the optional secret");

    await daemon.stop();
    process.kill(h1.worker_pid, "SIGKILL");
    const down = await w.waitHealth((h) => h.worker_state === "secrets_unavailable", "secrets_unavailable");
    assert.equal(down.status, 503);
    assert.equal(down.ok, false);
    assert.equal(down.worker_pid, null, "no worker runs");
    assert.match(down.reason, /^worker not started: secrets unavailable: inngest_signing_key \(UNAVAIL: daemon not running/);
    assert.ok(!/front_api_token/.test(down.reason), "an optional secret does not block the start");
    assert.deepEqual(down.secrets_unavailable.map((u) => [u.name, u.env, u.code]),
      [["inngest_signing_key", "INNGEST_SIGNING_KEY", "UNAVAIL"]]);
    assert.ok(down.next_retry_unix_ms > Date.now() - 5000 && down.next_retry_unix_ms < Date.now() + 5000,
      `next retry within [secrets] retry_max_secs (${down.next_retry_unix_ms})`);
    // retried with backoff, and escalated like a crash loop after crashloop_threshold rounds
    const later = await w.waitHealth((h) => h.lease_attempts >= 3, "three lease rounds");
    assert.equal(later.worker_state, "secrets_unavailable");
    const ev = await until(async () => (await api(s, "/v1/events?limit=50")).json.data
      .find((e) => e.name === "talon/worker.crashloop"), "the escalation event in sysbusd");
    assert.equal(ev.data.reason, "secrets_unavailable");
    assert.equal(ev.data.last_exit, "worker not started: secrets unavailable: inngest_signing_key");
    assert.deepEqual(ev.data.secrets, ["inngest_signing_key"]);
    assert.equal(ev.data.attempts, 3);
    assert.ok(w.log().some((l) => l.event === "worker_secrets_escalated" && l.level === "error"));
    await until(() => ns.datagrams().some((x) =>
      /^STATUS=worker not started: secrets unavailable: inngest_signing_key \(UNAVAIL: /.test(x)), "STATUS= says why");
    assert.equal(w.log().filter((l) => l.event === "worker_started").length, 1, "nothing was started without the key");
    assert.equal((await run(TALON, ["--config", w.cfg, "--status"])).code, 1, "--status: not ok");

    d2 = await startDaemon(store, sock);
    const up = await w.waitHealth((h) => h.worker_state === "running" && h.worker_pid, "the worker running again");
    assert.equal(up.ok, true);
    assert.equal(up.status, 200);
    assert.equal(up.reason, undefined);
    await registeredOn(s, w.port);
    assert.deepEqual((await workerEnv(s, ["INNGEST_SIGNING_KEY"])).INNGEST_SIGNING_KEY,
      { set: true, sha256: sha(SIGNING_KEY) }, "the new worker has the key and answers signed calls");
    assert.ok(w.log().some((l) => l.event === "worker_secrets_available"));
    const all = fs.readFileSync(path.join(w.dir, "talon.log"), "utf8") + ns.datagrams().join("\n");
    assert.ok(!all.includes(SIGNING_KEY), "the key is in no log line and no STATUS=");
    assert.equal((await w.close()).code, 0);
  } finally {
    await w.close();
    await daemon.stop();
    if (d2) await d2.stop();
    await s.stop();
  }
});

test("a running worker whose replacement cannot lease keeps running: restart aborted, health restart blocked", { timeout: 120000 }, async () => {
  const s = await startSysbusd({ dev: false });
  const { store, sock, daemon } = await secretsStore(tmpdir("talon-sd-"));
  const w = await world(s, sock);
  let d2;
  try {
    w.start();
    const h1 = await w.waitHealth((h) => h.worker_state === "running", "the worker running");
    await registeredOn(s, w.port);
    await daemon.stop();

    const r = await run(TALON, ["--config", w.cfg, "restart"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.json.ok, false);
    assert.match(r.json.error, new RegExp(`^cannot start the new worker on port ${w.alt}: secrets unavailable: inngest_signing_key \\(UNAVAIL: `));
    const h2 = await w.health();
    assert.equal(h2.worker_pid, h1.worker_pid, "the old worker still serves");
    assert.equal(h2.ok, true);
    assert.ok(w.log().some((l) => l.event === "restart_failed"));
    assert.equal((await workerEnv(s, ["INNGEST_SIGNING_KEY"])).INNGEST_SIGNING_KEY.set, true);

    process.kill(h1.worker_pid, "SIGSTOP"); // alive, holding its port, answering nothing
    const held = await w.waitHealth((h) => h.worker_state === "restart_blocked", "restart_blocked");
    assert.equal(held.status, 503);
    assert.equal(held.worker_pid, h1.worker_pid, "not killed");
    assert.match(held.reason, new RegExp(`^worker pid ${h1.worker_pid} failed its health checks and is not restarted: secrets unavailable: inngest_signing_key`));
    process.kill(h1.worker_pid, "SIGCONT");
    const back = await w.waitHealth((h) => h.worker_state === "running", "running again");
    assert.equal(back.worker_pid, h1.worker_pid, "the same worker, recovered");
    assert.equal(back.ok, true);

    // blocked again; the daemon comes back: then the health restart goes ahead
    process.kill(h1.worker_pid, "SIGSTOP");
    await w.waitHealth((h) => h.worker_state === "restart_blocked", "restart_blocked again");
    d2 = await startDaemon(store, sock);
    const fresh = await w.waitHealth((h) => h.worker_state === "running" && h.worker_pid !== h1.worker_pid, "a new worker");
    assert.match(fresh.last_exit, /killed: health checks failed/);
    await registeredOn(s, w.port);
    assert.equal((await workerEnv(s, ["INNGEST_SIGNING_KEY"])).INNGEST_SIGNING_KEY.set, true);
  } finally {
    await w.close();
    await daemon.stop();
    if (d2) await d2.stop();
    await s.stop();
  }
});

test("a secrets daemon that accepts and never answers is treated like a stopped one", { timeout: 120000 }, async () => {
  const s = await startSysbusd({ dev: false });
  const sdir = tmpdir("talon-stuck-");
  const { store, sock, daemon } = await secretsStore(sdir);
  await daemon.stop();
  // a stand-in on the daemon's socket: it accepts and never answers
  const held = [];
  const stuck = net.createServer((c) => held.push(c)).listen(sock);
  await new Promise((r) => stuck.once("listening", r));
  const w = await world(s, sock);
  let d2;
  try {
    w.start();
    const h = await w.waitHealth((x) => x.worker_state === "secrets_unavailable" && x.lease_attempts >= 2, "secrets_unavailable, retried");
    assert.equal(h.status, 503);
    assert.equal(h.worker_pid, null);
    assert.match(h.reason, /^worker not started: secrets unavailable: inngest_signing_key \(TIMEOUT: /);
    assert.equal(h.secrets_unavailable[0].code, "TIMEOUT");
    assert.ok(!w.log().some((l) => l.event === "worker_started"), "nothing started");
    assert.ok(held.length >= 2, "each lease round asked once");
    for (const c of held) c.destroy();
    await new Promise((r) => stuck.close(r));
    d2 = await startDaemon(store, sock);
    const up = await w.waitHealth((x) => x.worker_state === "running", "the worker running once the daemon answers");
    assert.equal(up.ok, true);
    await registeredOn(s, w.port);
    assert.deepEqual((await workerEnv(s, ["INNGEST_SIGNING_KEY"])).INNGEST_SIGNING_KEY,
      { set: true, sha256: sha(SIGNING_KEY) });
  } finally {
    for (const c of held) c.destroy();
    stuck.close();
    await w.close();
    await daemon.stop();
    if (d2) await d2.stop();
    await s.stop();
  }
});
