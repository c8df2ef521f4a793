// 24b-talon-watchdog: talon's watchdog with a real talon, a real
// system-bus-worker and a real secrets daemon. http, tcp and script probes
// fail and recover (targets owned by this test: a Node HTTP server, a Node
// TCP listener, a flag file); the state moves through Healthy, Degraded,
// Failed and Critical as GET /health shows; the heal command runs once per
// cooldown; the notify command gets the leased token in its environment and
// not in its argv, and the message on stdin; the probe file is hot-reloaded
// (mtime and SIGHUP, a bad file keeps the old probes); the state survives a
// restart; `talon --check` reports every probe. Every process listens on
// 127.0.0.1 and is killed by PID.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import {
  BIN, sleep, tmpdir, until, SANITIZER,
} from "./lib.mjs";

const TALON = path.join(BIN, "talon");
const SECRETS = path.join(BIN, "secrets");
const WORKER = path.join(BIN, "system-bus-worker");

const children = new Set();
process.on("exit", () => { for (const c of children) try { c.kill("SIGKILL"); } catch {} });

// The binaries this test needs may be built by others while it waits.
async function needBinaries() {
  for (const b of [TALON, SECRETS, WORKER])
    await until(`${b} to exist`, () => fs.existsSync(b), Number(process.env.TALON_WAIT_BIN_MS || 60000));
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

function startProc(cmd, args, env, name) {
  const proc = spawn(cmd, args, { env });
  children.add(proc);
  const out = { proc, lines: [], exited: null, text: () => out.lines.join("\n") };
  out.exit = new Promise((resolve) => proc.on("exit", (code, signal) => {
    children.delete(proc);
    out.exited = { code, signal };
    resolve(out.exited);
  }));
  for (const s of [proc.stdout, proc.stderr])
    readline.createInterface({ input: s }).on("line", (l) => {
      out.lines.push(l);
      if (process.env.SYSBUS_TEST_VERBOSE) console.error(`[${name}] ${l}`);
    });
  out.events = (ev) => out.lines.map((l) => { try { return JSON.parse(l); } catch { return null; } })
    .filter((j) => j && j.event === ev);
  out.stop = async () => {
    if (out.exited) return out.exited;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 20000);
    const r = await out.exit;
    clearTimeout(t);
    return r;
  };
  return out;
}

// Async, so this process's own servers (the probe targets) keep answering.
function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env });
    children.add(p);
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`${cmd} ${args.join(" ")} hung`)); }, 30000);
    p.on("exit", (code) => { clearTimeout(timer); children.delete(p); resolve({ code, stdout, stderr }); });
  });
}

function runSync(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30000, ...opts });
  return { code: r.status, stdout: r.stdout || "", stderr: r.stderr || "" };
}

// A real secrets daemon on a socket in dir, holding sos_token = token.
async function startSecrets(dir, token) {
  const store = path.join(dir, "store"), sock = path.join(dir, "secrets.sock");
  let r = runSync(SECRETS, ["init", "--store", store]);
  assert.equal(r.code, 0, r.stderr);
  const daemon = startProc(SECRETS, ["serve", "--socket", sock, "--store", store], { PATH: process.env.PATH }, "secrets");
  await until("secrets daemon listening", () => daemon.events("listening").length > 0 || (daemon.exited && new Error(daemon.text())));
  r = runSync(SECRETS, ["add", "sos_token", "--socket", sock], { input: token });
  assert.equal(r.code, 0, r.stderr);
  return { daemon, sock };
}

// Targets the probes look at, each switchable.
async function startTargets() {
  const web = { status: 200 };
  web.server = http.createServer((req, res) => { res.writeHead(web.status); res.end("x"); });
  await new Promise((r) => web.server.listen(0, "127.0.0.1", r));
  web.port = web.server.address().port;
  const db = { server: null, port: await freePort() };
  db.up = () => new Promise((r) => { db.server = net.createServer((c) => c.end()); db.server.listen(db.port, "127.0.0.1", r); });
  db.down = () => new Promise((r) => db.server.close(r));
  await db.up();
  return { web, db, close: async () => { web.server.close(); if (db.server.listening) await db.down(); } };
}

function probeFile(d, t) {
  return `# probes of test 24b
[probe web]
type = http
url = http://127.0.0.1:${t.web.port}/health
timeout_secs = 2

[probe db]
type = tcp
host = 127.0.0.1
port = ${t.db.port}
critical = true
timeout_secs = 2

[probe flag]
type = script
command = test ! -e '${d}/flag.down'
failure_threshold = 2
`;
}

async function health(bind) {
  const res = await fetch(`http://${bind}/health`, { signal: AbortSignal.timeout(5000) });
  const j = await res.json();
  return j.state !== undefined ? j : j.watchdog; // the watchdog's fields, wherever main puts them
}

const waitHealth = (bind, what, pred, ms) => until(what, async () => { const h = await health(bind); return pred(h) && h; }, ms);
const lines = (f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean) : []);

test("talon's watchdog: probes, states, escalation, token handling, reload, restart, --check",
  { timeout: 240000 }, async () => {
    await needBinaries();
    const d = tmpdir("talon-wd-");
    const token = `tok-${process.pid}-${Date.now()}-secret`;
    const sec = await startSecrets(d, token);
    const t = await startTargets();
    const bind = `127.0.0.1:${await freePort()}`;
    const probes = path.join(d, "probes.ini");
    fs.writeFileSync(probes, probeFile(d, t));
    const notify = path.join(d, "notify.sh");
    fs.writeFileSync(notify, `#!/bin/sh
env > '${d}/notify.env'
for a in "$0" "$@"; do echo "$a"; done > '${d}/notify.argv'
cat > '${d}/notify.stdin'
echo sent >> '${d}/notify.count'
`, { mode: 0o755 });
    const config = path.join(d, "talon.ini");
    // a development worker: without INNGEST_DEV=1 (or a key) it refuses to start
    const workerEnv = path.join(d, "worker.env");
    fs.writeFileSync(workerEnv, "INNGEST_DEV=1\n");
    fs.writeFileSync(config, `[worker]
command = ${WORKER}
port = ${await freePort()}
env_file = ${workerEnv}
[probes]
file = ${probes}
interval_secs = 1
[escalation]
heal_command = /bin/sh -c 'echo "healed $TALON_FAILED_PROBES" >> ${d}/heal.log'
heal_cooldown_secs = 600
notify_command = ${notify} --channel ops
notify_secret = sos_token
notify_cooldown_secs = 600
critical_after_secs = 2
[health]
bind = ${bind}
state_dir = ${d}/state
`);
    const env = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: d, SECRETS_SOCKET: sec.sock };
    let talon = startProc(TALON, ["--config", config], env, "talon");
    try {
      let h = await waitHealth(bind, "talon Healthy with 3 probes", (x) => x.state === "Healthy" && x.probe_count === 3);
      assert.equal(h.failed_probe_count, 0);
      assert.deepEqual(h.failed_probes, []);
      assert.equal(typeof h.updated_at_unix, "number");

      // http (non-critical): Degraded, then back
      t.web.status = 503;
      h = await waitHealth(bind, "Degraded by web", (x) => x.state === "Degraded");
      assert.deepEqual(h.failed_probes, ["web"]);
      t.web.status = 200;
      await waitHealth(bind, "Healthy after web", (x) => x.state === "Healthy");

      // script (non-critical, threshold 2): Degraded only after two failed checks
      fs.writeFileSync(path.join(d, "flag.down"), "");
      h = await waitHealth(bind, "a failed flag check", (x) => x.consecutive_failures >= 1);
      if (h.consecutive_failures === 1) assert.equal(h.state, "Healthy", "below the threshold");
      h = await waitHealth(bind, "Degraded by flag", (x) => x.state === "Degraded");
      assert.deepEqual(h.failed_probes, ["flag"]);
      fs.unlinkSync(path.join(d, "flag.down"));
      await waitHealth(bind, "Healthy after flag", (x) => x.state === "Healthy" && x.consecutive_failures === 0);
      assert.equal(lines(path.join(d, "heal.log")).length, 0, "no heal for non-critical probes");

      // tcp (critical): Failed + heal, then Critical + notify with the token
      await t.db.down();
      h = await waitHealth(bind, "Failed or beyond by db", (x) => x.state === "Failed" || x.state === "Critical");
      assert.deepEqual(h.failed_probes, ["db"]);
      await waitHealth(bind, "Critical", (x) => x.state === "Critical");
      await until("notify ran", () => lines(path.join(d, "notify.count")).length === 1);
      const cf = (await health(bind)).consecutive_failures;
      await waitHealth(bind, "four more failing rounds", (x) => x.consecutive_failures >= cf + 4);
      assert.deepEqual(lines(path.join(d, "heal.log")), ["healed db"], "heal once per cooldown");
      assert.equal(lines(path.join(d, "notify.count")).length, 1, "notify once per cooldown");
      const nenv = fs.readFileSync(path.join(d, "notify.env"), "utf8");
      assert.ok(nenv.split("\n").includes(`TALON_NOTIFY_TOKEN=${token}`), "token in the notify env");
      assert.ok(nenv.split("\n").includes("PATH=/usr/local/bin:/usr/bin:/bin"));
      assert.ok(!/SECRETS_SOCKET|HOME=/.test(nenv), "talon's own environment is not inherited");
      const argv = lines(path.join(d, "notify.argv"));
      assert.deepEqual(argv, [notify, "--channel", "ops"]);
      assert.ok(!argv.join(" ").includes(token), "token not in argv");
      const msg = JSON.parse(fs.readFileSync(path.join(d, "notify.stdin"), "utf8"));
      assert.equal(msg.state, "Critical");
      assert.deepEqual(msg.failed_probes, ["db"]);
      assert.ok(Date.parse(msg.since) > 0 && typeof msg.host === "string" && msg.host.length > 0);
      assert.ok(!talon.text().includes(token), "the token never reaches talon's log");
      for (const ev of ["probe_failed", "state_changed", "heal_ran", "notify_sent", "notify_skipped_cooldown"])
        assert.ok(talon.events(ev).length > 0, `logged ${ev}`);
      assert.ok(talon.events("state_changed").some((e) => e.from === "Failed" && e.to === "Critical"));

      // the state survives a restart: still Critical, no second heal or notify
      const st = JSON.parse(fs.readFileSync(path.join(d, "state", "state.json"), "utf8"));
      assert.equal(st.state, "Critical");
      assert.ok(st.last_heal_unix_ms > 0 && st.last_notify_unix_ms > 0);
      assert.equal(JSON.parse(fs.readFileSync(path.join(d, "state", "last-probe.json"), "utf8")).probes.length, 3);
      const r = await talon.stop();
      assert.ok(!SANITIZER.test(talon.text()), talon.text());
      assert.equal(r.code, 0, talon.text().slice(-3000));
      talon = startProc(TALON, ["--config", config], env, "talon-2");
      await waitHealth(bind, "restarted talon reports the watchdog", (x) => x.probe_count === 3 && x.consecutive_failures >= 3);
      assert.equal((await health(bind)).state, "Critical");
      assert.equal(lines(path.join(d, "heal.log")).length, 1);
      assert.equal(lines(path.join(d, "notify.count")).length, 1);

      await t.db.up();
      await waitHealth(bind, "Healthy after db", (x) => x.state === "Healthy" && x.failed_probe_count === 0);

      // hot reload on mtime: a bad file keeps the probes, a good one replaces them
      fs.writeFileSync(probes, probeFile(d, t) + "\n[probe extra]\ntype = tcp\nhots = 127.0.0.1\n");
      await until("reload failure logged", () => talon.events("probes_reload_failed").length > 0);
      assert.match(talon.events("probes_reload_failed")[0].error, /probes\.ini:\d+: unknown key 'hots'/);
      assert.equal((await health(bind)).probe_count, 3);
      fs.writeFileSync(probes, probeFile(d, t) + `\n[probe extra]\ntype = script\ncritical = true\ncommand = test ! -e '${d}/extra.down'\n`);
      fs.writeFileSync(path.join(d, "extra.down"), "");
      h = await waitHealth(bind, "reloaded extra fails", (x) => x.probe_count === 4 && x.state !== "Healthy");
      assert.deepEqual(h.failed_probes, ["extra"]);
      fs.unlinkSync(path.join(d, "extra.down"));
      await waitHealth(bind, "Healthy with 4", (x) => x.state === "Healthy" && x.probe_count === 4);

      // SIGHUP reloads even an unchanged file
      const before = talon.events("probes_reloaded").length;
      talon.proc.kill("SIGHUP");
      await until("SIGHUP reload", () => talon.events("probes_reloaded").length > before);
      assert.equal(talon.exited, null);

      // talon --check: every probe once, as JSON; a failing probe fails it
      let c = await run(TALON, ["--config", config, "--check"], env);
      const findProbes = (o) => (o && typeof o === "object" ? (Array.isArray(o.probes) ? o.probes
        : Object.values(o).map(findProbes).find(Boolean)) : undefined);
      let rep = findProbes(JSON.parse(c.stdout));
      assert.deepEqual(rep.map((p) => [p.name, p.ok]), [["web", true], ["db", true], ["flag", true], ["extra", true]], c.stdout);
      assert.equal(c.code, 0, c.stdout + c.stderr);
      t.web.status = 500;
      c = await run(TALON, ["--config", config, "--check"], env);
      rep = findProbes(JSON.parse(c.stdout));
      const web = rep.find((p) => p.name === "web");
      assert.equal(web.ok, false);
      assert.match(web.error, /HTTP 500/);
      assert.equal(web.type, "http");
      assert.equal(c.code, 1, c.stdout + c.stderr);
      t.web.status = 200;
    } finally {
      const r = await talon.stop();
      await sec.daemon.stop();
      await t.close();
      assert.ok(!SANITIZER.test(talon.text()), talon.text());
      if (r.code !== 0) throw new Error(`talon exited with ${JSON.stringify(r)}:\n${talon.text().slice(-3000)}`);
    }
    fs.rmSync(d, { recursive: true, force: true }); // kept for inspection when the test failed
  });
