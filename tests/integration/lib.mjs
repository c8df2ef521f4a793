// lib.mjs - helpers for integration tests: start real sysbusd processes and
// real workers (the official inngest SDK) on free loopback ports with
// temporary data directories, talk to them over HTTP, stop them by PID.
// Every process started here is killed when the test process exits.
// SYSBUS_TEST_STORE picks the store of every sysbusd started here: sqlite
// (the default: --data-dir's sysbus.db) or postgres (a database per data dir
// on a throwaway cluster of pg.mjs; docs/internals/tests-postgres.md).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { storeUrlFor } from "./pg.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "../..");
export const BIN = process.env.SYSBUS_BIN_DIR || path.join(ROOT, "build/bin");
export const COMPAT = path.join(ROOT, "tests/compat");
export const SIGNING_KEY = "signkey-test-8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3c";
export const EVENT_KEY = "test-event-key";

// The store the tests run against: "sqlite" or "postgres" (the URL scheme,
// also /health's store.kind).
export const STORE = process.env.SYSBUS_TEST_STORE || "sqlite";
if (!["sqlite", "postgres"].includes(STORE))
  throw new Error(`SYSBUS_TEST_STORE=${STORE}: the tests know sqlite (the default) and postgres`);

// A test's `skip` option for what only the SQLite store can do (reading or
// planting rows in sysbus.db with the sqlite3 shell, ...): false in sqlite
// mode, else the reason, which the test report shows.
export function sqliteOnly(why) {
  return STORE === "sqlite" ? false : `SQLite store only (SYSBUS_TEST_STORE=${STORE}): ${why}`;
}

// The flags that put sysbusd on the store of the tests' mode, for a sysbusd
// on dataDir: none for sqlite (--data-dir says it), and none when the test
// chose a store itself (--store or --store-file in args, SYSBUS_STORE or
// SYSBUS_STORE_FILE in env); for postgres,
// --store with the data dir's own database (created when missing; the same
// dir always gets the same database, so restarts find their data).
export async function storeArgs(dataDir, args = [], env = {}, store = STORE) {
  if (store !== "postgres") return [];
  if (args.some((a) => /^--store(-file)?(=|$)/.test(a)) ||
      env.SYSBUS_STORE !== undefined || env.SYSBUS_STORE_FILE !== undefined) return [];
  return ["--store", await storeUrlFor(dataDir)];
}

// The data dir of a sysbusd command line (--data-dir DIR or --data-dir=DIR).
function dataDirArg(args) {
  const i = args.indexOf("--data-dir");
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith("--data-dir="));
  return eq ? eq.slice("--data-dir=".length) : null;
}

const children = new Set();
process.on("exit", () => { for (const c of children) try { c.kill("SIGKILL"); } catch {} });

export function tmpdir(prefix = "sysbus-test-") {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sanitizer reports that must fail a test even when the exit code is 0.
export const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

function track(proc, name) {
  children.add(proc);
  const out = { lines: [], exited: null };
  out.exit = new Promise((resolve) => proc.on("exit", (code, signal) => {
    children.delete(proc);
    out.exited = { code, signal };
    resolve(out.exited);
  }));
  for (const stream of [proc.stdout, proc.stderr]) {
    readline.createInterface({ input: stream }).on("line", (l) => {
      out.lines.push(l);
      if (process.env.SYSBUS_TEST_VERBOSE) console.error(`[${name}] ${l}`);
    });
  }
  return out;
}

async function waitForLine(out, pred, what, timeoutMs = 15000) {
  const t0 = Date.now();
  for (;;) {
    for (const l of out.lines) {
      let j;
      try { j = JSON.parse(l); } catch { continue; }
      if (pred(j)) return j;
    }
    if (out.exited) throw new Error(`${what} exited early (${JSON.stringify(out.exited)}):\n${out.lines.join("\n")}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} did not start in ${timeoutMs} ms:\n${out.lines.join("\n")}`);
    await sleep(20);
  }
}

// Runs sysbusd to completion (for flag tests). Returns {code, stdout, stderr}.
// With a --data-dir, on the store of the tests' mode (storeArgs).
export async function runSysbusd(args, env = {}) {
  const dir = dataDirArg(args);
  const fullArgs = dir === null ? args : [...args, ...await storeArgs(dir, args, env)];
  return new Promise((resolve) => {
    const p = spawn(path.join(BIN, "sysbusd"), fullArgs, { env: { ...cleanEnv(), ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 15000);
    p.on("exit", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

// The environment without SYSBUS_* / INNGEST_* variables of the caller.
export function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("SYSBUS_") && !k.startsWith("INNGEST_")) env[k] = v;
  return env;
}

// The environment the host tools (talon, secrets) run with in tests: none of
// the caller's sysbus settings, and an empty XDG_CONFIG_HOME so that no
// default config file is read.
export function toolEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(SYSBUS_|INNGEST_|TALON_|SECRETS_)/.test(k)) env[k] = v;
  env.XDG_CONFIG_HOME = tmpdir("talon-xdg-");
  return env;
}

// Signed (dev: false): the keys come from the environment, as in production
// (a key given as a flag is readable by every user in /proc/PID/cmdline);
// signingKey picks another key (any form; null: no keys in the environment,
// the caller gives them), env overrides either.
export async function startSysbusd({ dev = true, args = [], env = {}, dataDir, signingKey = SIGNING_KEY } = {}) {
  dataDir = dataDir || tmpdir("sysbusd-");
  const base = ["--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--retry-base", "20ms",
    "--sync-interval", "0", "--log-level", "info"];
  if (dev) base.push("--dev");
  const keys = dev || signingKey === null ? {} : { SYSBUS_SIGNING_KEY: signingKey, SYSBUS_EVENT_KEY: EVENT_KEY };
  const store = await storeArgs(dataDir, args, env);
  const fullArgs = [...base, ...store, ...args];
  const proc = spawn(path.join(BIN, "sysbusd"), fullArgs, { env: { ...cleanEnv(), ...keys, ...env } });
  const out = track(proc, "sysbusd");
  const ready = await waitForLine(out, (j) => j.event === "listening", "sysbusd");
  if (store.length) await checkStoreKind(proc, ready.port);
  const server = {
    proc, out, dataDir, dev, args, env,
    port: ready.port,
    url: `http://127.0.0.1:${ready.port}`,
    token: dev ? undefined : signingKey,
    eventKey: dev ? "dev-key" : EVENT_KEY,
    // Graceful stop; fails on a non-zero exit or a sanitizer report.
    async stop() {
      if (out.exited) return out.exited;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 20000);
      const r = await out.exit;
      clearTimeout(timer);
      const log = out.lines.join("\n");
      if (SANITIZER.test(log)) throw new Error(`sanitizer report from sysbusd:\n${log}`);
      if (r.code !== 0) throw new Error(`sysbusd exited with ${JSON.stringify(r)}:\n${log.slice(-4000)}`);
      return r;
    },
    async kill9() {
      if (out.exited) return out.exited;
      proc.kill("SIGKILL");
      return out.exit;
    },
    // A new process on the same data directory (and port when free).
    async restart(extraArgs = []) {
      return startSysbusd({ dev, args: [...args, ...extraArgs], env, dataDir, signingKey });
    },
  };
  return server;
}

// A suite meant for another store must not pass on SQLite unnoticed: the
// sysbusd given a --store of the tests' mode says it runs on that store.
async function checkStoreKind(proc, port) {
  const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10000) });
  const kind = (await r.json()).store?.kind;
  if (kind !== STORE) {
    proc.kill("SIGKILL");
    throw new Error(`sysbusd runs on store '${kind}', not '${STORE}' (SYSBUS_TEST_STORE)`);
  }
}

export async function startWorker({ sdk = "v4", server, appId, execLog, signed, env = {}, port = 0, signingKey = SIGNING_KEY } = {}) {
  signed = signed ?? (server && !server.dev);
  const wenv = {
    ...cleanEnv(), SDK: sdk, PORT: String(port), SYSBUS_URL: server.url,
    APP_ID: appId || `compat-${sdk}`,
  };
  if (signed) { wenv.SIGNING_KEY = signingKey; wenv.EVENT_KEY = EVENT_KEY; }
  if (execLog) wenv.EXEC_LOG = execLog;
  Object.assign(wenv, env); // the caller's overrides win
  const proc = spawn(process.execPath, [path.join(COMPAT, "worker.mjs")], { env: wenv, cwd: COMPAT });
  const out = track(proc, `worker-${sdk}`);
  const ready = await waitForLine(out, (j) => j.event === "listening", "worker");
  return {
    proc, out, port: ready.port, appId: ready.appId,
    url: `http://127.0.0.1:${ready.port}/api/inngest`,
    async kill(signal = "SIGKILL") {
      if (out.exited) return out.exited;
      proc.kill(signal);
      return out.exit;
    },
  };
}

// Starts system-bus-worker (the C worker) against server: signed when the
// server is (with signingKey), on a free loopback port; resolves once it has
// registered. Dev mode is asked for explicitly (INNGEST_DEV=1): without it
// and without a key the worker refuses to start.
export async function startCWorker({ server, role, appId, diagLog, env = {}, waitRegistered = true, signingKey = SIGNING_KEY } = {}) {
  const wenv = { ...cleanEnv(), HOST: "127.0.0.1", PORT: "0", INNGEST_BASE_URL: server.url, LOG_LEVEL: "debug" };
  if (server.dev) wenv.INNGEST_DEV = "1";
  else Object.assign(wenv, { INNGEST_DEV: "0", INNGEST_SIGNING_KEY: signingKey, INNGEST_EVENT_KEY: EVENT_KEY });
  if (role) wenv.WORKER_ROLE = role;
  if (appId) wenv.INNGEST_APP_ID = appId;
  if (diagLog) wenv.SYSBUS_DIAG_LOG = diagLog;
  Object.assign(wenv, env);
  const proc = spawn(path.join(BIN, "system-bus-worker"), [], { env: wenv });
  const out = track(proc, "system-bus-worker");
  const ready = await waitForLine(out, (j) => j.event === "listening", "system-bus-worker");
  if (waitRegistered) await waitForLine(out, (j) => j.event === "registered", "system-bus-worker registration");
  return {
    proc, out, port: ready.port, appId: ready.app_id,
    origin: `http://127.0.0.1:${ready.port}`,
    url: `http://127.0.0.1:${ready.port}/api/inngest`,
    async kill(signal = "SIGKILL") {
      if (out.exited) return out.exited;
      proc.kill(signal);
      return out.exit;
    },
    // SIGTERM and the exit; fails on a sanitizer report.
    async stop() {
      const r = await this.kill("SIGTERM");
      const log = out.lines.join("\n");
      if (SANITIZER.test(log)) throw new Error(`sanitizer report from system-bus-worker:\n${log}`);
      return r;
    },
  };
}

// Starts tests/hostile/worker.mjs (a protocol-speaking worker with hostile
// answers) against server; resolves once it has registered. callLog: a
// file where it appends "<function> <run_id>" per call.
export async function startHostileWorker(server, { callLog, appId } = {}) {
  const env = { ...cleanEnv(), SYSBUS_URL: server.url, PORT: "0" };
  if (callLog) env.CALL_LOG = callLog;
  if (appId) env.APP_ID = appId;
  const proc = spawn(process.execPath, [path.join(ROOT, "tests/hostile/worker.mjs")], { env });
  const out = track(proc, "hostile-worker");
  await waitForLine(out, (j) => j.event === "registered" || j.event === "register_failed", "hostile worker");
  if (out.lines.some((l) => l.includes("register_failed"))) throw new Error(`hostile worker: ${out.lines.join("\n")}`);
  return { proc, out, kill: () => { if (!out.exited) proc.kill("SIGKILL"); } };
}

// Lines of a SYSBUS_DIAG_LOG file: [{run, fn, step, attempt}].
export function readDiagLog(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => {
    const [run, fn, step, attempt] = l.split(" ");
    return { run, fn, step, attempt: Number(attempt) };
  });
}

export async function api(server, p, { method = "GET", body, token, headers = {}, raw } = {}) {
  const h = { ...headers };
  const tok = token === undefined ? server.token : token;
  if (tok) h.authorization = `Bearer ${tok}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) { payload = JSON.stringify(body); h["content-type"] = "application/json"; }
  const res = await fetch(server.url + p, { method, headers: h, body: payload, signal: AbortSignal.timeout(60000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, json, text, headers: res.headers };
}

export async function sendEvents(server, events, { key, headers } = {}) {
  const r = await api(server, `/e/${key ?? server.eventKey}`, { method: "POST", body: events, headers, token: null });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  return r.json.ids;
}

// Registers a worker with the server (the server PUTs its URL).
export async function addApp(server, worker) {
  const r = await api(server, "/v1/apps", { method: "POST", body: { url: worker.url } });
  if (r.status !== 200) throw new Error(`add app failed: ${r.status} ${r.text}`);
  return r.json.data;
}

// Waits until every run of the event has ended; returns the runs.
export async function waitEventRuns(server, eventId, timeoutMs = 30000, { expect = 1 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const r = await api(server, `/v1/events/${eventId}/runs?wait_ms=${Math.max(0, Math.min(left, 10000))}`);
    if (r.status !== 200) throw new Error(`event runs: ${r.status} ${r.text}`);
    const runs = r.json.data;
    if (runs.length >= expect && runs.every((x) => x.status !== "Running")) return runs;
    if (Date.now() >= deadline) throw new Error(`runs of ${eventId} not ended after ${timeoutMs} ms: ${JSON.stringify(runs)}`);
  }
}

export async function waitRun(server, runId, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const r = await api(server, `/v1/runs/${runId}?wait_ms=${Math.max(0, Math.min(left, 10000))}`);
    if (r.status !== 200) throw new Error(`run: ${r.status} ${r.text}`);
    if (r.json.data.status !== "Running") return r.json.data;
    if (Date.now() >= deadline) throw new Error(`run ${runId} not ended after ${timeoutMs} ms`);
  }
}

// Execution log written by the compat worker: [{run, fn, step, attempt, ts}].
export function readExecLog(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => {
    const [run, fn, step, attempt, ts] = l.split(" ");
    return { run, fn, step, attempt: Number(attempt), ts: Number(ts) };
  });
}

// Polls pred until it returns a truthy value (returned) or the deadline
// passes (throws, naming what was awaited and the last value seen). A pred
// that throws counts as "not yet". Takes (what, pred) or (pred, what).
export async function until(a, b, timeoutMs = 15000, everyMs = 20) {
  const [what, pred] = typeof a === "function" ? [b, a] : [a, b];
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await pred(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(everyMs);
  }
}

// A systemd notify socket served by socat (Node cannot bind a Unix datagram
// socket); .datagrams() lists the datagrams received so far. Stopped when
// the test t ends.
export async function notifySocket(t) {
  const ok = spawnSync("sh", ["-c", "command -v socat"]).status === 0;
  if (!ok) throw new Error("socat is needed to receive notify datagrams: run scripts/deps.sh");
  const sock = path.join(tmpdir("sdnotify-"), "notify.sock");
  const p = spawn("socat", ["-u", "-v", `UNIX-RECV:${sock}`, "OPEN:/dev/null"], { stdio: ["ignore", "ignore", "pipe"] });
  children.add(p);
  t.after(() => p.kill("SIGKILL"));
  let log = "";
  p.stderr.on("data", (d) => (log += d));
  await until("socat to bind the notify socket", () => fs.existsSync(sock));
  return {
    path: sock,
    datagrams() {
      const out = [];
      const header = /^> \S+ \S+\s+length=(\d+) from=\d+ to=\d+\n/;
      let rest = log;
      for (let m; (m = header.exec(rest)); ) {
        const len = Number(m[1]);
        if (rest.length < m[0].length + len) break; // still arriving
        out.push(rest.slice(m[0].length, m[0].length + len));
        rest = rest.slice(m[0].length + len);
      }
      return out;
    },
  };
}
