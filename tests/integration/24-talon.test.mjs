// 24-talon: talon supervising the real system-bus-worker against a real
// sysbusd (and a real secrets daemon): config validation and --dry-run,
// secret injection (only into the worker's environment), restarts with
// backoff after a crash, restarts after failed health checks, the crash-loop
// guard and its bus event, a port held by a foreign process (refused, then
// --takeover), the lock between two talons, the drain on SIGTERM, the
// zero-downtime restart under a stream of runs, the watchdog's fields and
// reload, and log rotation. Every wait polls with a deadline.
import { test } from "node:test";
import crypto from "node:crypto";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import {
  api, BIN, notifySocket, readDiagLog, sendEvents, sleep, startSysbusd, tmpdir, until, waitEventRuns, SANITIZER, toolEnv,
} from "./lib.mjs";

const TALON = path.join(BIN, "talon");
const WORKER = path.join(BIN, "system-bus-worker");
const SECRETS = path.join(BIN, "secrets");
const procs = new Set();
process.on("exit", () => { for (const p of procs) try { p.kill("SIGKILL"); } catch {} });


async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

async function freePorts(n) {
  const out = new Set();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

function ini(sections) {
  return Object.entries(sections).map(([name, kv]) =>
    `[${name}]\n` + Object.entries(kv).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} = ${v}`).join("\n"),
  ).join("\n\n") + "\n";
}

// One-shot talon run: {code, stdout, stderr, json}.
function runTalon(args, timeoutMs = 60000) {
  return new Promise((resolve) => {
    execFile(TALON, args, { env: toolEnv(), timeout: timeoutMs }, (err, stdout, stderr) => {
      let code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      let json;
      try { json = JSON.parse(stdout); } catch {}
      if (SANITIZER.test(stderr)) code = `sanitizer report: ${stderr}`; // fails any code check
      resolve({ code, stdout, stderr, json });
    });
  });
}

// A talon world: sysbusd, a config for talon supervising the real worker on
// free ports, and helpers. overrides: {worker, secrets, health, probes, bus}.
async function world(overrides = {}, { server = true } = {}) {
  const dir = tmpdir("talon-");
  const s = server ? await startSysbusd() : null;
  const [port, alt, hport] = await freePorts(3);
  const envFile = path.join(dir, "worker.env");
  const diagLog = path.join(dir, "diag.log");
  fs.writeFileSync(envFile, [
    "# the worker's environment",
    `export INNGEST_BASE_URL="${s ? s.url : "http://127.0.0.1:9"}"`,
    "INNGEST_DEV=1",
    "HOST=127.0.0.1",
    `SYSBUS_DIAG_LOG=${diagLog}`,
    "LOG_LEVEL=info",
  ].join("\n") + "\n");
  const sections = {
    worker: {
      command: WORKER, port, alt_port: alt, env_file: envFile,
      log_stdout: path.join(dir, "worker.out"), log_stderr: path.join(dir, "worker.err"),
      drain_timeout_secs: 5, health_interval_secs: 1, health_failures_before_restart: 3,
      http_timeout_secs: 2, startup_sync_delay_secs: 1, ...overrides.worker,
    },
    health: { bind: `127.0.0.1:${hport}`, state_dir: path.join(dir, "state"), log_file: path.join(dir, "talon.log"), ...overrides.health },
  };
  for (const k of ["secrets", "probes", "bus"]) if (overrides[k]) sections[k] = overrides[k];
  if (overrides.bus === "self") sections.bus = { url: s.url, event_key: "dev-key" };
  const cfg = path.join(dir, "talon.ini");
  fs.writeFileSync(cfg, ini(sections));
  const w = {
    dir, s, port, alt, cfg, envFile, diagLog, healthUrl: `http://127.0.0.1:${hport}`,
    logFile: sections.health.log_file, talons: [],
    start(args = [], env = {}) {
      const proc = spawn(TALON, ["--config", cfg, ...args], { env: { ...toolEnv(), ...env } });
      procs.add(proc);
      const t = { proc, lines: [], exited: null };
      t.exit = new Promise((resolve) => proc.on("exit", (code, signal) => {
        procs.delete(proc);
        t.exited = { code, signal };
        resolve(t.exited);
      }));
      for (const st of [proc.stdout, proc.stderr])
        readline.createInterface({ input: st }).on("line", (l) => {
          t.lines.push(l);
          if (process.env.SYSBUS_TEST_VERBOSE) console.error(`[talon ${proc.pid}] ${l}`);
        });
      w.talons.push(t);
      return t;
    },
    async health() {
      const r = await fetch(`${w.healthUrl}/health`, { signal: AbortSignal.timeout(5000) });
      return { status: r.status, ...(await r.json()) };
    },
    // Waits for /health to satisfy pred; returns it.
    async waitHealth(pred, what, timeoutMs = 20000) {
      return until(async () => { const h = await w.health(); return pred(h) ? h : null; }, what, timeoutMs);
    },
    running(notPid) {
      return w.waitHealth((h) => h.worker_state === "running" && h.worker_pid && h.worker_pid !== notPid,
        notPid ? `a worker other than ${notPid} running` : "the worker running");
    },
    log() {
      if (!fs.existsSync(w.logFile)) return [];
      return fs.readFileSync(w.logFile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    },
    async stop(t) {
      if (!t.exited) { t.proc.kill("SIGTERM"); }
      const timer = setTimeout(() => t.proc.kill("SIGKILL"), 30000);
      const r = await t.exit;
      clearTimeout(timer);
      const text = t.lines.join("\n") + (fs.existsSync(w.logFile) ? fs.readFileSync(w.logFile, "utf8") : "");
      if (SANITIZER.test(text)) throw new Error(`sanitizer report from talon:\n${text.slice(-4000)}`);
      return r;
    },
    async close() {
      for (const t of w.talons) if (!t.exited) await w.stop(t);
      if (s) await s.stop();
      const werr = path.join(dir, "worker.err");
      if (fs.existsSync(werr) && SANITIZER.test(fs.readFileSync(werr, "utf8")))
        throw new Error(`sanitizer report from the worker:\n${fs.readFileSync(werr, "utf8").slice(-4000)}`);
    },
  };
  return w;
}

// A process that runs (a zombie nobody reaped yet does not count: an orphan's
// new parent may be slow to reap it).
function alive(pid) {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

function procEnv(pid) {
  return fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
}

test("validate names bad keys and values; --dry-run prints the plan and starts nothing", { timeout: 60000 }, async () => {
  const w = await world({ worker: { command: `${WORKER} --flag "two words"` }, secrets: { claude_oauth_token: "CLAUDE_CODE_OAUTH_TOKEN" } }, { server: false });
  const good = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(good.json.ok, true);
  assert.equal(good.json.settings.worker.port, w.port);
  assert.equal(good.json.settings.worker.alt_port, w.alt);
  assert.equal(good.json.settings.worker.drain_timeout_secs, 5);
  assert.equal(good.json.settings.worker.crashloop_threshold, 5, "defaults of the original");
  assert.deepEqual(good.json.settings.secrets.mappings, { claude_oauth_token: "CLAUDE_CODE_OAUTH_TOKEN" });
  assert.equal(good.json.settings.secrets.ttl, "1d");

  const text = fs.readFileSync(w.cfg, "utf8");
  fs.writeFileSync(w.cfg, text.replace("[worker]\n", "[worker]\nrestart_bakoff = 3\n"));
  const unknown = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, new RegExp(`${w.cfg}:2: unknown key 'restart_bakoff' in \\[worker\\]`));
  fs.writeFileSync(w.cfg, text.replace("[worker]\n", "[worker]\nhealth_interval_secs = soon\n"));
  const bad = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`${w.cfg}:2, \\[worker\\] health_interval_secs\\): 'soon' is not an integer`));
  fs.writeFileSync(w.cfg, text + "\n[secrets]\nx = not-an-env-name\n");
  const badMap = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(badMap.code, 1);
  assert.match(badMap.stderr, /\[secrets\] x\): x = 'not-an-env-name' is not an environment variable name/);
  const supervise = await runTalon(["--config", w.cfg]);
  assert.equal(supervise.code, 2, "a config error is permanent: exit 2");
  fs.writeFileSync(w.cfg, text + "\n[secrets]\nx = X_ENV sometimes\n");
  const badFlag = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /\[secrets\] x\): x = 'X_ENV sometimes' has an unknown flag 'sometimes' after the variable name \(only 'optional' or 'required'\)/);
  fs.writeFileSync(w.cfg, text + "\n[secrets]\nx = X_ENV optional\n");
  const optional = await runTalon(["--config", w.cfg, "validate"]);
  assert.equal(optional.code, 0, optional.stderr);
  assert.deepEqual(optional.json.settings.secrets.mappings, { claude_oauth_token: "CLAUDE_CODE_OAUTH_TOKEN", x: "X_ENV" });
  assert.deepEqual(optional.json.settings.secrets.optional, ["x"]);
  fs.writeFileSync(w.cfg, text);
  const probes = path.join(w.dir, "probes.ini");
  fs.writeFileSync(probes, "[probe db]\ntype = tcp\nhost = 127.0.0.1\n");
  const badProbes = await runTalon(["--config", w.cfg, "--probes-file", probes, "validate"]);
  assert.equal(badProbes.code, 1);
  assert.match(badProbes.stderr, new RegExp(`\\[probes\\] file: ${probes}:1: `));

  const plan = await runTalon(["--config", w.cfg, "--dry-run"]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.deepEqual(plan.json.command, [WORKER, "--flag", "two words"], "quotes honoured, no shell");
  assert.equal(plan.json.command_path, WORKER);
  assert.equal(plan.json.port, w.port);
  assert.deepEqual(plan.json.secrets, { claude_oauth_token: "CLAUDE_CODE_OAUTH_TOKEN" });
  const env = Object.fromEntries(plan.json.env.map((e) => [e.name, e.source]));
  assert.equal(env.PATH, "[worker] path");
  assert.equal(env.PORT, "[worker] port");
  assert.equal(env.WORKER_ROLE, "talon default");
  assert.equal(env.INNGEST_BASE_URL, `env file ${w.envFile}:2`);
  assert.equal(env.CLAUDE_CODE_OAUTH_TOKEN, "secret claude_oauth_token");
  assert.ok(plan.json.env.every((e) => Object.keys(e).sort().join() === "name,source"), "names and sources only");
  assert.equal(plan.json.log_stderr, path.join(w.dir, "worker.err"));
  assert.ok(!fs.existsSync(path.join(w.dir, "state")), "nothing started, no state written");
  const missing = await runTalon(["--config", w.cfg, "--dry-run", "--worker-command", "no-such-binary-xyz"]);
  assert.equal(missing.code, 1);
  assert.match(missing.json.command_error, /not found in the worker's PATH \(\/usr\/local\/bin:\/usr\/bin:\/bin\)/);
  await w.close();
});

test("secrets reach only the worker's environment; a missing optional one is named in /health", { timeout: 90000 }, async () => {
  const secretsBin = await until(() => fs.existsSync(SECRETS), "the secrets binary", 60000);
  assert.ok(secretsBin);
  const sdir = tmpdir("talon-secrets-");
  const store = path.join(sdir, "store"), sock = path.join(sdir, "s.sock");
  const value = `tok-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  assert.equal((await new Promise((r) => execFile(SECRETS, ["init", "--store", store], (e) => r(e ? e.code : 0)))), 0);
  const daemon = spawn(SECRETS, ["serve", "--socket", sock, "--store", store], { env: toolEnv() });
  procs.add(daemon);
  try {
    await until(() => fs.existsSync(sock), "the secrets socket");
    await new Promise((resolve, reject) => {
      const p = execFile(SECRETS, ["add", "claude_oauth_token", "--socket", sock], (e) => (e ? reject(e) : resolve()));
      p.stdin.end(value);
    });
    const w = await world({
      secrets: { socket: sock, timeout_secs: 2, claude_oauth_token: "CLAUDE_CODE_OAUTH_TOKEN", front_api_token: "FRONT_API_TOKEN optional" },
    });
    const t = w.start();
    const h = await w.running();
    assert.deepEqual(h.secret_failures, ["front_api_token"], "the missing secret is named");
    assert.equal(h.ok, true, "the worker still starts without an optional secret");
    const env = procEnv(h.worker_pid);
    assert.ok(env.includes(`CLAUDE_CODE_OAUTH_TOKEN=${value}`), "the leased value is in the worker's environment");
    assert.ok(!env.some((e) => e.startsWith("FRONT_API_TOKEN=")));
    assert.ok(env.includes("PATH=/usr/local/bin:/usr/bin:/bin"));
    assert.ok(env.includes(`PORT=${w.port}`));
    assert.ok(env.includes("WORKER_ROLE=host"));
    assert.ok(env.includes(`INNGEST_BASE_URL=${w.s.url}`), "the env file, quotes stripped");
    assert.ok(!env.some((e) => e.startsWith("TALON_")));
    for (const f of [`/proc/${t.proc.pid}/environ`, `/proc/${t.proc.pid}/cmdline`])
      assert.ok(!fs.readFileSync(f, "utf8").includes(value), `${f} does not hold the secret`);
    const apps = await until(async () => {
      const a = (await api(w.s, "/v1/apps")).json.data;
      return a.length === 1 && a[0].url.includes(`:${w.port}/`) && a;
    }, "the worker registered");
    assert.equal(apps[0].id, "system-bus-host");
    // The worker's own diagnostic sees the injected secret (by hash) and not the missing one.
    const [evId] = await sendEvents(w.s, [{ name: "diag/env", data: { names: ["CLAUDE_CODE_OAUTH_TOKEN", "FRONT_API_TOKEN"] } }]);
    const [envRun] = await waitEventRuns(w.s, evId);
    assert.equal(envRun.status, "Completed", JSON.stringify(envRun));
    const sha = crypto.createHash("sha256").update(value).digest("hex");
    assert.deepEqual(envRun.output, { CLAUDE_CODE_OAUTH_TOKEN: { set: true, sha256: sha }, FRONT_API_TOKEN: { set: false } });
    await until(() => w.log().some((l) => l.event === "worker_synced"), "the startup sync PUT");
    const failed = w.log().find((l) => l.event === "secret_lease_failed");
    assert.equal(failed.secret, "front_api_token");
    assert.equal((await w.stop(t)).code, 0);
    const all = fs.readFileSync(w.logFile, "utf8") + t.lines.join("\n");
    assert.ok(!all.includes(value), "the value is in no log line");
    await w.close();
  } finally {
    daemon.kill("SIGTERM");
  }
});

test("a secrets daemon that never answers costs one timeout, not one per secret (optional secrets: the worker starts)", { timeout: 60000 }, async () => {
  // A socket that accepts and never answers, standing where the daemon should be.
  const sock = path.join(tmpdir("talon-stuck-"), "s.sock");
  const held = [];
  const stuck = net.createServer((c) => held.push(c)).listen(sock);
  await new Promise((r) => stuck.once("listening", r));
  const w = await world({ secrets: { socket: sock, timeout_secs: 1, a_token: "A_TOKEN optional", b_token: "B_TOKEN optional", c_token: "C_TOKEN optional" } });
  const t = w.start();
  try {
    const h = await w.running();
    assert.deepEqual(h.secret_failures, ["a_token", "b_token", "c_token"]);
    const failed = w.log().filter((l) => l.event === "secret_lease_failed");
    assert.equal(failed.filter((l) => l.code === "TIMEOUT" && !/not tried/.test(l.error)).length, 1, "one lease waited");
    assert.equal(failed.filter((l) => /not tried/.test(l.error)).length, 2, "the others were not tried");
    assert.equal(held.length, 1, "one connection reached the stuck daemon");
    assert.equal((await w.stop(t)).code, 0);
    await w.close();
  } finally {
    for (const c of held) c.destroy();
    stuck.close();
  }
});

test("a crashed worker is restarted with growing backoff", { timeout: 90000 }, async () => {
  const w = await world({ worker: { health_interval_secs: 10 } });
  const t = w.start();
  try {
    const h1 = await w.running();
    process.kill(h1.worker_pid, "SIGKILL");
    const h2 = await w.running(h1.worker_pid);
    process.kill(h2.worker_pid, "SIGKILL");
    const h3 = await w.running(h2.worker_pid);
    assert.equal(h3.worker_restarts, 2);
    assert.equal(h3.last_exit, "signal 9");
    const backoffs = w.log().filter((l) => l.event === "worker_backoff").map((l) => l.delay_ms);
    assert.deepEqual(backoffs, [1000, 2000], "1 s, then 2 s");
    const exits = w.log().filter((l) => l.event === "worker_exited").map((l) => Date.parse(l.ts));
    const starts = w.log().filter((l) => l.event === "worker_started").map((l) => Date.parse(l.ts));
    assert.ok(starts[1] - exits[0] >= 1000 && starts[2] - exits[1] >= 2000, "the delays were waited");
  } finally {
    await w.close();
  }
});

test("failed health checks get the worker killed and restarted", { timeout: 90000 }, async () => {
  const w = await world({ worker: { health_failures_before_restart: 2, http_timeout_secs: 1, drain_timeout_secs: 1 } });
  w.start();
  try {
    const h1 = await w.running();
    process.kill(h1.worker_pid, "SIGSTOP"); // alive, holding its port, answering nothing
    const h2 = await w.running(h1.worker_pid);
    assert.match(h2.last_exit, /^signal 9 \(killed: health checks failed\)$/);
    assert.ok(!alive(h1.worker_pid), "the stopped worker is gone");
    const events = w.log().map((l) => l.event);
    assert.ok(events.includes("worker_unhealthy") && events.includes("worker_killed"));
    assert.equal(w.log().filter((l) => l.event === "worker_health_failed").length >= 2, true);
  } finally {
    await w.close();
  }
});

test("the crash-loop guard stops restarting, reports, tells the bus; talon restart clears it", { timeout: 90000 }, async () => {
  const flag = path.join(tmpdir("talon-flag-"), "flag");
  const w = await world({
    worker: {
      command: `/bin/sh -c 'if [ -f ${flag} ]; then exec ${WORKER}; fi; echo "boom: no flag file" >&2; exit 3'`,
      crashloop_threshold: 3, restart_backoff_max_secs: 1,
    },
    bus: "self",
  });
  const t = w.start();
  try {
    const h = await w.waitHealth((x) => x.worker_state === "crashloop", "crashloop");
    assert.equal(h.status, 503);
    assert.equal(h.ok, false);
    assert.equal(h.last_exit, "exit 3");
    assert.match(h.stderr_tail, /boom: no flag file/);
    assert.equal(h.worker_pid, null);
    const ev = await until(async () => {
      const r = await api(w.s, "/v1/events?limit=50");
      return r.json.data.find((e) => e.name === "talon/worker.crashloop");
    }, "the crashloop event in sysbusd");
    assert.equal(ev.data.exits, 3);
    assert.equal(ev.data.reason, "crashloop", "the same event also reports secrets_unavailable (24c)");
    assert.equal(ev.data.last_exit, "exit 3");
    assert.match(ev.data.stderr_tail, /boom: no flag file/);
    const restarts = h.worker_restarts;
    await sleep(2500);
    assert.equal((await w.health()).worker_restarts, restarts, "no more restarts");
    assert.equal((await runTalon(["--config", w.cfg, "--status"])).code, 1, "--status: not ok");
    fs.writeFileSync(flag, "");
    const r = await runTalon(["--config", w.cfg, "restart"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json.ok, true);
    const after = await w.running();
    assert.equal(after.ok, true);
    assert.equal(after.stderr_tail, undefined, "the tail is only shown for a failed worker");
    const st = await runTalon(["--config", w.cfg, "--status"]);
    assert.equal(st.code, 0);
    assert.equal(st.json.worker_state, "running");
  } finally {
    await w.close();
  }
  assert.equal(t.exited.code, 0);
});

test("a port held by another process is refused by pid, --takeover stops it; a second talon is refused", { timeout: 90000 }, async () => {
  const w = await world();
  const holder = spawn(process.execPath, ["-e",
    `require('net').createServer().listen(${w.port}, '127.0.0.1', () => console.log('up'))`]);
  procs.add(holder);
  const holderExit = new Promise((r) => holder.on("exit", (code, signal) => r({ code, signal })));
  try {
    await new Promise((r) => holder.stdout.once("data", r));
    const refused = await runTalon(["--config", w.cfg]);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, new RegExp(`port ${w.port} is held by pid ${holder.pid} \\(${process.execPath} -e`));
    assert.ok(alive(holder.pid));
    const t = w.start(["--takeover"]);
    assert.deepEqual(await holderExit, { code: null, signal: "SIGTERM" }, "the holder got SIGTERM");
    const h = await w.running();
    assert.equal(h.worker_port, w.port);
    const second = await runTalon(["--config", w.cfg, "--health-bind", "127.0.0.1:0"]);
    assert.equal(second.code, 3);
    assert.match(second.stderr, new RegExp(`another talon \\(pid ${t.proc.pid}\\) supervises this worker`));
    assert.equal((await w.health()).worker_pid, h.worker_pid, "the first talon's worker is untouched");
    assert.equal((await w.stop(t)).code, 0);
  } finally {
    holder.kill("SIGKILL");
    await w.close();
  }
});

test("SIGTERM drains the worker: the call in flight completes, talon exits 0 after it", { timeout: 90000 }, async () => {
  const w = await world();
  const t = w.start();
  try {
    const h = await w.running();
    await until(async () => (await api(w.s, "/v1/apps")).json.data.length === 1, "registered");
    const [id] = await sendEvents(w.s, [{ name: "diag/slow", data: { ms: 2000 } }]);
    await until(() => readDiagLog(w.diagLog).some((l) => l.fn === "diag-slow"), "the slow step running");
    const t0 = Date.now();
    const r = await w.stop(t); // one SIGTERM (a second one means: kill now)
    assert.equal(r.code, 0);
    assert.ok(Date.now() - t0 >= 1000, "talon waited for the drain");
    assert.ok(!alive(h.worker_pid), "the worker exited before talon");
    const exited = w.log().find((l) => l.event === "worker_exited");
    assert.equal(exited.last_exit, "exit 0", "it drained and exited by itself");
    assert.ok(fs.readFileSync(path.join(w.dir, "worker.err"), "utf8").includes('"event":"stopped"'),
      "the worker's stderr was appended to log_stderr");
    // the call in flight finished: its step is stored, although no worker runs now
    const runId = (await api(w.s, `/v1/events/${id}/runs`)).json.data[0].run_id;
    const steps = (await api(w.s, `/v1/runs/${runId}/steps`)).json.data;
    assert.ok(steps.some((st) => JSON.stringify(st).includes("slept_ms")), JSON.stringify(steps));
    // a new talon finishes the run without running the step again
    w.start();
    const [run] = await waitEventRuns(w.s, id);
    assert.equal(run.status, "Completed");
    assert.deepEqual(run.output, { slept_ms: 2000 });
    assert.equal(readDiagLog(w.diagLog).filter((l) => l.run === runId).length, 1, "the step ran once");
  } finally {
    await w.close();
  }
});

test("after talon is SIGKILLed its worker drains by itself; the next talon reclaims the port", { timeout: 90000 }, async () => {
  const w = await world();
  const t1 = w.start();
  try {
    const h1 = await w.running();
    await until(async () => (await api(w.s, "/v1/apps")).json.data.length === 1, "registered");
    const [id] = await sendEvents(w.s, [{ name: "diag/slow", data: { ms: 2500 } }]);
    await until(() => readDiagLog(w.diagLog).some((l) => l.fn === "diag-slow"), "the slow step running");
    t1.proc.kill("SIGKILL"); // no drain by talon: the worker gets SIGTERM from PR_SET_PDEATHSIG
    await t1.exit;
    assert.ok(alive(h1.worker_pid), "the orphan is still draining, holding the port");
    w.start(); // without --takeover: it recognises its predecessor's worker
    const h2 = await w.running(h1.worker_pid);
    assert.equal(h2.worker_port, w.port);
    assert.ok(!alive(h1.worker_pid));
    const take = w.log().find((l) => l.event === "port_takeover");
    assert.equal(take.pid, h1.worker_pid);
    assert.equal(take.orphan, true);
    const [run] = await waitEventRuns(w.s, id);
    assert.equal(run.status, "Completed");
    const runId = run.run_id;
    assert.equal(readDiagLog(w.diagLog).filter((l) => l.run === runId).length, 1, "the orphan finished its call");
  } finally {
    await w.close();
  }
});

test("zero-downtime restart under a stream of runs: every run completes, the app moves to the alternate port", { timeout: 120000 }, async () => {
  const w = await world();
  w.start();
  let stop = false;
  try {
    const h1 = await w.running();
    await until(async () => (await api(w.s, "/v1/apps")).json.data[0]?.url.includes(`:${w.port}/`), "registered on the port");
    const ids = [];
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        ids.push(...(await sendEvents(w.s, [{ name: "diag/slow", data: { ms: 300, i } }])));
        await sleep(40);
      }
    })();
    await until(() => readDiagLog(w.diagLog).some((l) => l.fn === "diag-slow"), "calls in flight on the old worker");
    const r = await runTalon(["--config", w.cfg, "restart"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json.ok, true);
    assert.equal(r.json.drained, true, "the old worker drained and exited 0");
    assert.equal(r.json.old_pid, h1.worker_pid);
    assert.equal(r.json.worker_port, w.alt);
    await sleep(800); // runs after the swap, on the new worker
    stop = true;
    await stream;
    assert.ok(ids.length >= 10, `a stream of runs (${ids.length})`);
    const h2 = await w.health();
    assert.notEqual(h2.worker_pid, h1.worker_pid);
    assert.equal(h2.worker_port, w.alt);
    assert.equal(h2.restart_in_progress, false);
    assert.ok(!alive(h1.worker_pid));
    const apps = (await api(w.s, "/v1/apps")).json.data;
    assert.equal(apps.length, 1);
    assert.equal(apps[0].url, `http://127.0.0.1:${w.alt}/api/inngest`, "sysbusd now calls the new worker");
    for (const id of ids) {
      const [run] = await waitEventRuns(w.s, id, 60000);
      assert.equal(run.status, "Completed", `run ${run.run_id}: ${JSON.stringify(run.error)}`);
    }
    const metric = (await api(w.s, "/metrics")).text.match(/^sysbus_transport_failures_total (\d+)$/m);
    assert.equal(Number(metric[1]), 0, "no call was refused (no 503 from a draining worker, no refused connection)");
    const perRun = new Map();
    for (const l of readDiagLog(w.diagLog).filter((x) => x.fn === "diag-slow")) perRun.set(l.run, (perRun.get(l.run) || 0) + 1);
    assert.equal(perRun.size, ids.length);
    for (const [run, n] of perRun) assert.equal(n, 1, `run ${run}'s step ran once (no call was cut)`);
    // the ports swap roles: the next restart goes back to the first port
    const back = await runTalon(["--config", w.cfg, "restart"]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.equal(back.json.worker_port, w.port);
    assert.equal((await api(w.s, "/v1/apps")).json.data[0].url, `http://127.0.0.1:${w.port}/api/inngest`);
    assert.equal((await w.health()).worker_restarts, 2);
  } finally {
    stop = true;
    await w.close();
  }
});

test("a restart whose new worker fails keeps the old one serving and reports why", { timeout: 90000 }, async () => {
  const [alt] = await freePorts(1);
  const w = await world({
    worker: {
      alt_port: alt,
      command: `/bin/sh -c 'if [ "$PORT" = "${alt}" ]; then echo "refusing the alternate port" >&2; exit 7; fi; exec ${WORKER}'`,
    },
  });
  w.start();
  try {
    const h1 = await w.running();
    await until(async () => (await api(w.s, "/v1/apps")).json.data[0]?.url.includes(`:${w.port}/`), "registered");
    const r = await runTalon(["--config", w.cfg, "restart"]);
    assert.equal(r.code, 1);
    assert.equal(r.json.ok, false);
    assert.match(r.json.error, /the new worker exited \(exit 7\) before it was registered; stderr: refusing the alternate port/);
    const h2 = await w.health();
    assert.equal(h2.worker_pid, h1.worker_pid, "the old worker still serves");
    assert.equal(h2.worker_port, w.port);
    assert.equal(h2.ok, true);
    assert.equal(h2.restart_in_progress, false);
    assert.equal((await api(w.s, "/v1/apps")).json.data[0].url, `http://127.0.0.1:${w.port}/api/inngest`);
    const [id] = await sendEvents(w.s, [{ name: "diag/three-steps", data: { n: 1 } }]);
    assert.equal((await waitEventRuns(w.s, id))[0].status, "Completed");
    // sysbus status --talon reads this /health (ok: 200; not ok: 503)
    const st = await new Promise((resolve) => execFile(path.join(BIN, "sysbus"),
      ["status", "--talon", w.healthUrl], { env: { ...toolEnv(), SYSBUS_URL: w.s.url } },
      (err, stdout) => resolve({ code: err ? err.code : 0, env: JSON.parse(stdout.trim().split("\n").pop()) })));
    const check = st.env.result.checks.find((c) => c.name === "talon");
    assert.equal(check.ok, true, JSON.stringify(st.env));
  } finally {
    await w.close();
  }
});

test("watchdog fields in /health, --check, SIGHUP reloads the probes", { timeout: 90000 }, async () => {
  const [closed] = await freePorts(1);
  const w = await world({}, {});
  const probes = path.join(w.dir, "probes.ini");
  const up = `[probe bus]\ntype = tcp\nhost = 127.0.0.1\nport = ${new URL(w.s.url).port}\ncritical = true\n`;
  const down = `\n[probe gone]\ntype = tcp\nhost = 127.0.0.1\nport = ${closed}\ncritical = true\ntimeout_secs = 1\n`;
  fs.writeFileSync(probes, up + down);
  fs.appendFileSync(w.cfg, ini({ probes: { file: probes, interval_secs: 1 } }));
  const before = await runTalon(["--config", w.cfg, "--check"]);
  assert.equal(before.code, 1, "no worker yet, one probe down");
  assert.equal(before.json.worker.ok, false);
  assert.equal(before.json.probes.probes.length, 2);
  const t = w.start();
  try {
    const failed = await w.waitHealth((h) => h.worker_state === "running" && h.state === "Failed", "state Failed");
    assert.equal(failed.ok, false, "a failed critical probe makes talon not ok");
    assert.equal(failed.status, 503);
    assert.deepEqual(failed.failed_probes, ["gone"]);
    assert.equal(failed.probe_count, 2);
    fs.writeFileSync(probes, up);
    t.proc.kill("SIGHUP");
    const healthy = await w.waitHealth((h) => h.ok && h.probe_count === 1, "reloaded probes, ok");
    assert.equal(healthy.state, "Healthy");
    assert.ok(w.log().some((l) => l.event === "reload"));
    const check = await runTalon(["--config", w.cfg, "--check"]);
    assert.equal(check.code, 0, check.stdout);
    assert.equal(check.json.worker.ok, true);
  } finally {
    await w.close();
  }
});

test("talon's log is JSON lines, rotated at 10 MB keeping one .1", { timeout: 60000 }, async () => {
  const w = await world();
  const junk = "#".repeat(1023) + "\n";
  fs.writeFileSync(w.logFile, junk.repeat(10 * 1024 - 1)); // 1 KiB short of 10 MiB
  const t = w.start();
  try {
    await w.running();
    await until(() => fs.existsSync(w.logFile + ".1"), "the rotated file");
    assert.equal((await w.stop(t)).code, 0);
    const old = fs.readFileSync(w.logFile + ".1", "utf8");
    assert.ok(old.startsWith("####"), "the old content moved to .1");
    assert.ok(old.length <= 10 * 1024 * 1024, "it never passed 10 MiB");
    const oldTalon = old.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.equal(oldTalon[0].event, "listening", "talon's first lines filled the old file up to the limit");
    const lines = w.log(); // throws on a line that is not JSON
    assert.ok(lines.length > 0 && lines.some((l) => l.event === "stopped"));
    assert.ok([...oldTalon, ...lines].every((l) => l.comp === "talon" && l.ts && l.level && l.event));
    assert.equal(t.lines.filter((l) => l.includes('"comp":"talon"')).length, 0, "not on stderr when a file is set and stderr is no tty");
  } finally {
    await w.close();
  }
});

test("systemd: READY=1 once the worker is healthy, STATUS on changes, STOPPING=1 at shutdown", { timeout: 60000 }, async (t) => {
  const ns = await notifySocket(t);
  const w = await world();
  const tl = w.start([], { NOTIFY_SOCKET: ns.path });
  try {
    const h = await w.running();
    await until(() => ns.datagrams().includes("READY=1"), "READY=1");
    const dg = ns.datagrams();
    assert.ok(dg.slice(0, dg.indexOf("READY=1")).some((d) => d.startsWith("STATUS=worker starting (pid ")),
      "not ready before the worker was started and healthy");
    await until(() => ns.datagrams().some((d) => d === `STATUS=worker running (pid ${h.worker_pid}, port ${w.port})`), "STATUS running");
    assert.ok(!procEnv(h.worker_pid).some((e) => e.startsWith("NOTIFY_SOCKET=")), "the worker does not get talon's notify socket");
    assert.equal((await w.stop(tl)).code, 0);
    await until(() => ns.datagrams().includes("STOPPING=1"), "STOPPING=1");
    assert.equal(ns.datagrams().filter((d) => d === "READY=1").length, 1, "READY=1 once");
  } finally {
    await w.close();
  }
});
