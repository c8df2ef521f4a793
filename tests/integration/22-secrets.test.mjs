// 22-secrets: the `secrets` binary end to end - a real daemon (`secrets serve`)
// on a Unix socket in a temporary directory, driven by the real client
// commands. Covers the round trips, stdin input, TTL expiry and maximum,
// revoke and the killswitch, daemon down (69), a listener that never answers
// (65), a peer whose uid is not allowed (SO_PEERCRED, via setpriv), a
// refused uid flooding the socket (closed at accept, audited at most once a
// second with every refusal counted), the per-uid connection cap and the
// slots kept for the owner, the untrusted-JSON envelope (NUL in names, long
// member names and strings, deep nesting, a deep answer), the Argon2id
// passphrase store, file permission checks, kill -9 during writes, malformed
// and slow clients, and that a secret value never reaches the daemon's log
// or the audit trail. Other uids are Node children spawned with uid/gid (we
// run as root). Every process started is killed by PID.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { BIN, sleep, tmpdir, until } from "./lib.mjs";

const SECRETS = path.join(BIN, "secrets");
const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

const procs = new Set();
process.on("exit", () => { for (const p of procs) try { process.kill(p.pid, "SIGKILL"); } catch {} });

// The caller's environment without anything that would point a client or the
// daemon somewhere else.
function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("SECRETS_") && !k.startsWith("XDG_")) env[k] = v;
  return env;
}

// Runs `secrets args...` (optionally through a wrapper such as setpriv).
// Resolves {code, stdout, stderr, ms}; fails on a sanitizer report.
function run(args, { input, env = {}, wrap = [] } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const argv = [...wrap, SECRETS, ...args];
    const p = spawn(argv[0], argv.slice(1), { env: { ...baseEnv(), ...env } });
    procs.add(p);
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.stdin.on("error", () => {});
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
    const timer = setTimeout(() => { process.kill(p.pid, "SIGKILL"); reject(new Error(`secrets ${args.join(" ")} hung`)); }, 30000);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      procs.delete(p);
      if (SANITIZER.test(stderr)) return reject(new Error(`sanitizer report from secrets ${args.join(" ")}:\n${stderr}`));
      resolve({ code: code ?? signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

// Starts `secrets serve`; resolves once it logged "listening" (rejects if it
// exits first). d.log holds its stderr.
async function startDaemon({ store, sock, args = [], env = {} }) {
  const p = spawn(SECRETS, ["serve", "--store", store, "--socket", sock, "--log-level", "debug", ...args],
    { env: { ...baseEnv(), ...env } });
  procs.add(p);
  const d = { proc: p, log: "", exited: null, sock, store };
  p.stdout.on("data", (b) => (d.log += b));
  p.stderr.on("data", (b) => (d.log += b));
  d.exit = new Promise((resolve) => p.on("exit", (code, signal) => {
    procs.delete(p);
    d.exited = { code, signal };
    resolve(d.exited);
  }));
  await until(() => d.exited || /"event":"listening"/.test(d.log), "the daemon to listen");
  if (d.exited) throw new Error(`secrets serve exited ${JSON.stringify(d.exited)}:\n${d.log}`);
  d.stop = async (signal = "SIGTERM") => {
    if (!d.exited) process.kill(p.pid, signal);
    const r = await d.exit;
    if (SANITIZER.test(d.log)) throw new Error(`sanitizer report from the daemon:\n${d.log}`);
    assert.equal(r.code, 0, `daemon exit ${JSON.stringify(r)}:\n${d.log.slice(-3000)}`);
    assert.equal(fs.existsSync(sock), false, `the socket file is removed on ${signal}`);
  };
  d.kill9 = async () => {
    if (!d.exited) process.kill(p.pid, "SIGKILL");
    return d.exit;
  };
  return d;
}

// Runs serve expecting it to fail at startup; resolves {code, stderr}.
async function serveFails({ store, sock, env = {} }) {
  const r = await run(["serve", "--store", store, "--socket", sock], { env });
  assert.notEqual(r.code, 0, `serve should have failed:\n${r.stderr}`);
  assert.equal(fs.existsSync(sock), false, "no socket is left behind");
  return r;
}

function setup(prefix) {
  const dir = tmpdir(prefix);
  return { dir, store: path.join(dir, "store"), sock: path.join(dir, "run", "secrets.sock") };
}

async function init(store, extra = [], env = {}) {
  const r = await run(["init", "--store", store, ...extra], { env });
  assert.equal(r.code, 0, r.stderr);
  return r;
}

const json = (r) => {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

// The value must appear nowhere in the daemon's log, the audit trail or the
// store file (which is encrypted).
function assertNeverLeaked(d, value) {
  assert.ok(!d.log.includes(value), "a secret value reached the daemon's log");
  const audit = fs.readFileSync(path.join(d.store, "audit.log"), "utf8");
  assert.ok(!audit.includes(value), "a secret value reached the audit trail");
  const db = fs.readFileSync(path.join(d.store, "secrets.db"));
  assert.equal(db.includes(Buffer.from(value)), false, "the store file holds the value in clear");
}

test("init, add, lease, list and rm round trip", { timeout: 60000 }, async () => {
  const { store, sock } = setup("secrets-basic-");
  const r0 = await init(store);
  assert.match(r0.stdout, /created store/);
  const again = await run(["init", "--store", store]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^secrets: a store already exists .*\(refusing to overwrite it\)\n$/);
  assert.equal(fs.statSync(path.join(store, "master.key")).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(store, "master.key")).size, 32);
  assert.equal(fs.statSync(store).mode & 0o777, 0o700);

  const d = await startDaemon({ store, sock });
  assert.equal(fs.statSync(sock).mode & 0o777, 0o660, "socket mode 0660");
  assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o750, "socket directory created 0750");
  const env = { SECRETS_SOCKET: sock };
  const VALUE = "hunter2-" + crypto.randomBytes(12).toString("hex");
  try {
    let r = await run(["add", "github_token", "--value", VALUE], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "added github_token\n");

    // the raw value, without a newline
    r = await run(["lease", "github_token"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, VALUE);

    // JSON: exactly the documented fields, default TTL 1h, client id "cli"
    const before = Date.now();
    let l = json(await run(["lease", "github_token", "--json"], { env }));
    assert.deepEqual(Object.keys(l).sort(), ["client_id", "expires_at", "lease_id", "secret_name", "ttl", "value"]);
    assert.equal(l.value, VALUE);
    assert.equal(l.secret_name, "github_token");
    assert.equal(l.ttl, 3600);
    assert.equal(l.client_id, "cli");
    assert.match(l.lease_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const exp = Date.parse(l.expires_at);
    assert.ok(Math.abs(exp - (before + 3600e3)) < 10e3, `expires_at ${l.expires_at}`);
    l = json(await run(["lease", "github_token", "--json", "--ttl", "20m", "--client-id", "talon"], { env }));
    assert.equal(l.ttl, 1200);
    assert.equal(l.client_id, "talon");

    // stdin: the first line only; an empty value is refused
    r = await run(["add", "db.password"], { env, input: "from stdin\nsecond line\n" });
    assert.equal(r.code, 0, r.stderr);
    r = await run(["lease", "db.password", "--socket", sock], { env: {} });
    assert.equal(r.stdout, "from stdin");
    for (const input of ["", "\n", "\r\n"]) {
      r = await run(["add", "empty"], { env, input });
      assert.equal(r.code, 64, `stdin ${JSON.stringify(input)}: ${r.stderr}`);
      assert.equal(r.stderr, "secrets: empty value refused\n");
    }
    r = await run(["add", "empty", "--value", ""], { env });
    assert.equal(r.code, 64);
    r = await run(["add", "bad name", "--value", "x"], { env });
    assert.equal(r.code, 64);
    assert.match(r.stderr, /^secrets: invalid secret name/);
    r = await run(["add", "big", "--value", "x".repeat(65537)], { env });
    assert.equal(r.code, 64);
    r = await run(["add", "max", "--value", "y".repeat(65536)], { env });
    assert.equal(r.code, 0, r.stderr);

    // list: names and metadata, never values
    r = await run(["list", "--json"], { env });
    const list = json(r);
    assert.ok(!r.stdout.includes(VALUE));
    assert.deepEqual(list.secrets.map((s) => s.name), ["db.password", "github_token", "max"]);
    const gh = list.secrets.find((s) => s.name === "github_token");
    assert.deepEqual(Object.keys(gh).sort(), ["active_leases", "created_at", "name", "updated_at"]);
    assert.equal(gh.active_leases, 3);
    assert.ok(!Number.isNaN(Date.parse(gh.created_at)));
    r = await run(["list"], { env });
    assert.match(r.stdout, /^NAME +CREATED +UPDATED +LEASES\n/);
    assert.match(r.stdout, /\ngithub_token +\S+ +\S+ +3\n/);

    // leases: no values
    r = await run(["leases", "--json"], { env });
    const leases = json(r).leases;
    assert.equal(leases.length, 4);
    assert.ok(!r.stdout.includes(VALUE) && !r.stdout.includes("from stdin"));
    assert.ok(leases.every((x) => x.value === undefined && x.lease_id && x.expires_at));

    // replacing keeps created_at
    r = await run(["add", "github_token", "--value", VALUE + "-2"], { env });
    assert.equal(r.stdout, "updated github_token\n");
    const gh2 = json(await run(["list", "--json"], { env })).secrets.find((s) => s.name === "github_token");
    assert.equal(gh2.created_at, gh.created_at);
    assert.ok(gh2.updated_at >= gh.updated_at);

    // status
    r = await run(["status"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^daemon: +running/);
    const st = json(await run(["status", "--json"], { env }));
    assert.equal(st.daemon, "running");
    assert.equal(st.store, store);
    assert.equal(st.secrets, 3);
    assert.equal(st.active_leases, 4);
    assert.equal(typeof st.uptime_s, "number");

    // rm: gone, its leases revoked; a second rm is "not found" (1)
    r = await run(["rm", "github_token"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed github_token \(3 active lease\(s\) revoked\)/);
    r = await run(["rm", "github_token"], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "secrets: no secret named github_token\n");
    r = await run(["lease", "github_token"], { env });
    assert.equal(r.code, 1);
    assert.equal(json(await run(["leases", "--json"], { env })).leases.length, 1);

    // usage: help everywhere, bad flags and arguments are exit 2
    for (const c of ["init", "serve", "add", "lease", "revoke", "leases", "list", "rm", "audit", "status"]) {
      r = await run([c, "--help"]);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, /^Usage: secrets /, c);
      assert.match(r.stdout, /Exit codes: 0 ok/, c);
    }
    assert.equal((await run(["--help"])).code, 0);
    assert.equal((await run([])).code, 2);
    assert.equal((await run(["frobnicate"])).code, 2);
    assert.equal((await run(["lease"], { env })).code, 2);
    assert.equal((await run(["lease", "a", "b"], { env })).code, 2);
    r = await run(["lease", "x", "--bogus"], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^secrets: unknown option '--bogus'/);
    assert.equal(r.stderr.split("\n").length, 2, "one line");
  } finally {
    await d.stop();
  }
  assertNeverLeaked(d, VALUE);
});

test("TTL expiry, the 24h maximum (refused and audited), revoke and the killswitch", { timeout: 60000 }, async () => {
  const { store, sock } = setup("secrets-ttl-");
  await init(store);
  const d = await startDaemon({ store, sock });
  const env = { SECRETS_SOCKET: sock };
  try {
    assert.equal((await run(["add", "api", "--value", "v1"], { env })).code, 0);

    // a 2 s lease disappears from `leases` once expired
    const t0 = Date.now();
    const short = json(await run(["lease", "api", "--ttl", "2s", "--json"], { env }));
    assert.equal(short.ttl, 2);
    const ids = async () => json(await run(["leases", "--json"], { env })).leases.map((x) => x.lease_id);
    assert.ok((await ids()).includes(short.lease_id));
    await until(async () => !(await ids()).includes(short.lease_id), "the 2s lease to expire", 15000, 200);
    assert.ok(Date.now() - t0 >= 1500, "the lease did not vanish before its TTL");
    // revoking an expired lease: not found
    let r = await run(["revoke", short.lease_id], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no active lease/);

    // bare seconds; 24h is the maximum; 25h is refused with 64 and audited
    assert.equal(json(await run(["lease", "api", "--ttl", "90", "--json"], { env })).ttl, 90);
    assert.equal(json(await run(["lease", "api", "--ttl", "24h", "--json"], { env })).ttl, 86400);
    r = await run(["lease", "api", "--ttl", "25h", "--client-id", "greedy"], { env });
    assert.equal(r.code, 64);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^secrets: ttl 90000s is above the maximum 86400s/);
    r = await run(["audit", "--tail", "1"], { env });
    assert.equal(r.code, 0, r.stderr);
    const refused = JSON.parse(r.stdout);
    assert.equal(refused.action, "lease");
    assert.equal(refused.success, false);
    assert.equal(refused.secret_name, "api");
    assert.equal(refused.client_id, "greedy");
    assert.equal(refused.ttl, 90000);
    assert.match(refused.reason, /maximum/);
    assert.equal(typeof refused.peer_uid, "number");
    assert.equal(typeof refused.peer_pid, "number");
    assert.ok(!Number.isNaN(Date.parse(refused.timestamp)));
    assert.equal((await run(["lease", "api", "--ttl", "soon"], { env })).code, 2);

    // revoke one
    const one = json(await run(["lease", "api", "--json"], { env }));
    assert.equal((await run(["revoke", one.lease_id], { env })).code, 0);
    assert.ok(!(await ids()).includes(one.lease_id));
    assert.equal((await run(["revoke", one.lease_id], { env })).code, 1);
    assert.equal((await run(["revoke", "not-a-lease"], { env })).code, 64);
    assert.equal((await run(["revoke"], { env })).code, 2);
    assert.equal((await run(["revoke", one.lease_id, "--all"], { env })).code, 2);

    // the killswitch
    for (let i = 0; i < 3; i++) assert.equal((await run(["lease", "api"], { env })).code, 0);
    const live = (await ids()).length;
    assert.ok(live >= 3);
    r = await run(["revoke", "--all"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `revoked ${live} active lease(s)\n`);
    assert.deepEqual(await ids(), []);
    const entries = (await run(["audit"], { env })).stdout.trim().split("\n").map((l) => JSON.parse(l));
    const ks = entries.filter((e) => e.action === "revoke_all");
    assert.equal(ks.length, 1);
    assert.equal(ks[0].success, true);
    assert.equal(ks[0].count, live);
    // every line has the documented fields
    for (const e of entries)
      for (const k of ["timestamp", "action", "secret_name", "client_id", "lease_id", "success", "peer_uid", "peer_pid"])
        assert.ok(k in e, `audit entry without ${k}: ${JSON.stringify(e)}`);
    assert.ok(entries.filter((e) => !e.success).every((e) => typeof e.reason === "string"));
  } finally {
    await d.stop();
  }
  assertNeverLeaked(d, "v1-never");
});

test("daemon down is 69; a daemon that never answers is 65; a garbled answer is 67", { timeout: 60000 }, async () => {
  const dir = tmpdir("secrets-down-");
  let r = await run(["status", "--socket", path.join(dir, "nobody-home.sock")]);
  assert.equal(r.code, 69);
  assert.match(r.stderr, /^secrets: daemon not running \(no socket at .*nobody-home\.sock\)\n$/);
  r = await run(["lease", "x"], { env: { SECRETS_SOCKET: path.join(dir, "nope.sock") } });
  assert.equal(r.code, 69);

  // a listener that accepts and never answers
  const hung = path.join(dir, "hung.sock");
  const held = [];
  const srv = net.createServer((c) => { held.push(c); c.on("error", () => {}); });
  await new Promise((res) => srv.listen(hung, res));
  // one that answers garbage
  const garbled = path.join(dir, "garbled.sock");
  const srv2 = net.createServer((c) => { c.on("error", () => {}); c.end("hello there\n"); });
  await new Promise((res) => srv2.listen(garbled, res));
  try {
    r = await run(["status", "--socket", hung, "--timeout", "1"]);
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /^secrets: no answer from the daemon within the timeout\n$/);
    assert.ok(r.ms >= 900 && r.ms < 5000, `took ${r.ms} ms`);
    r = await run(["lease", "x", "--socket", hung, "--timeout", "500ms"]);
    assert.equal(r.code, 65);
    r = await run(["list"], { env: { SECRETS_SOCKET: hung, SECRETS_TIMEOUT: "1" } });
    assert.equal(r.code, 65);
    r = await run(["status", "--socket", garbled]);
    assert.equal(r.code, 67, r.stderr);
    r = await run(["lease", "x", "--socket", garbled]);
    assert.equal(r.code, 67, r.stderr);
  } finally {
    for (const c of held) c.destroy();
    srv.close();
    srv2.close();
  }
});

// The audit trail through the client, one object per entry.
async function auditEntries(sock) {
  const r = await run(["audit", "--socket", sock]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

// How many refused connections `connect` audit lines stand for: each records
// one and carries the count of those held back by the rate limit.
const refusalsIn = (lines) => lines.reduce((n, e) => n + 1 + e.suppressed, 0);

// Lets uids other than root reach the daemon's socket, so that only the peer
// check can turn them away.
function openSocketToAll(dir, sock) {
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.dirname(sock), 0o755);
  fs.chmodSync(sock, 0o666);
}

// A Node child running as another uid that opens connections to the socket
// and prints one JSON line per event: {ev:"open"|"line"|"close"|"done", i, ...}.
// mode "hold": opens `count` connections one after the other and keeps them.
// mode "flood": keeps `count` connections in flight for `ms`, opening a new
// one whenever the daemon closes one, then prints done with the number of
// connections made (every one of them was accepted and closed by the daemon).
const PEER_SCRIPT = `
const net = require("net");
const [sock, mode, count, ms] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
let made = 0, closed = 0, started = 0, settled = 0, stop = false, said = false, i = 0;
function finish() { if (stop && !said && settled === started) { said = true; say({ ev: "done", made }); } }
function one(next) {
  if (stop) return finish();
  const id = i++;
  started++;
  const c = net.createConnection(sock);
  let connected = false, buf = "";
  c.on("connect", () => { connected = true; made++; say({ ev: "open", i: id }); next && next(); });
  c.on("data", (d) => { buf += d; let k; while ((k = buf.indexOf("\\n")) >= 0) { say({ ev: "line", i: id, line: JSON.parse(buf.slice(0, k)) }); buf = buf.slice(k + 1); } });
  c.on("error", () => {});
  c.on("close", () => {
    settled++;
    if (connected) { closed++; say({ ev: "close", i: id }); }
    if (mode === "flood") setTimeout(one, connected ? 0 : 5);
    else if (!connected) setTimeout(() => one(next), 5);
  });
}
if (mode === "hold") {
  let n = 0;
  const next = () => { if (++n < Number(count)) one(next); else say({ ev: "done", made }); };
  one(next);
  setInterval(() => {}, 1000);
} else {
  for (let k = 0; k < Number(count); k++) one();
  setTimeout(() => { stop = true; finish(); }, Number(ms));
}
`;

function peerAs(uid, gid, sock, mode, count, ms = 0) {
  const p = spawn(process.execPath, ["-e", PEER_SCRIPT, sock, mode, String(count), String(ms)],
    { uid, gid, stdio: ["ignore", "pipe", "pipe"] });
  procs.add(p);
  const peer = { proc: p, events: [], err: "" };
  let buf = "";
  p.stdout.on("data", (d) => {
    buf += d;
    let k;
    while ((k = buf.indexOf("\n")) >= 0) { peer.events.push(JSON.parse(buf.slice(0, k))); buf = buf.slice(k + 1); }
  });
  p.stderr.on("data", (d) => (peer.err += d));
  p.on("exit", () => procs.delete(p));
  peer.count = (ev) => peer.events.filter((e) => e.ev === ev).length;
  peer.done = () => peer.events.find((e) => e.ev === "done");
  // connections the daemon still holds open: opened and not closed
  peer.open = () => peer.count("open") - peer.count("close");
  peer.lines = () => peer.events.filter((e) => e.ev === "line").map((e) => e.line);
  peer.kill = () => { try { process.kill(p.pid, "SIGKILL"); } catch {} };
  return peer;
}

// Needs root: the client runs as uid 65534 through setpriv (util-linux).
const notRoot = process.getuid() !== 0 && "needs root to run the client as another user";
test("a peer whose uid is not allowed is refused (SO_PEERCRED) and audited", { timeout: 60000, skip: notRoot }, async () => {
  const { dir, store, sock } = setup("secrets-peer-");
  await init(store);
  let d = await startDaemon({ store, sock });
  openSocketToAll(dir, sock);
  const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
  try {
    assert.equal((await run(["add", "k", "--value", "v"], { env: { SECRETS_SOCKET: sock } })).code, 0);
    let r = await run(["lease", "k", "--socket", sock], { wrap: nobody });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^secrets: this peer \(uid\/gid\) is not allowed/);
    r = await run(["list", "--socket", sock], { wrap: nobody });
    assert.equal(r.code, 1);
    // two refusals within a second may share one line (rate limit): the
    // count of refusals the lines stand for is what must add up
    const refused = await until("both refusals in the audit trail", async () => {
      const lines = (await auditEntries(sock)).filter((e) => e.action === "connect");
      return refusalsIn(lines) === 2 && lines;
    });
    assert.equal(refused[0].success, false);
    assert.equal(refused[0].peer_uid, 65534);
    assert.equal(typeof refused[0].peer_pid, "number");
    assert.match(refused[0].reason, /uid 65534 .*not allowed/);
    assert.match(d.log, /"event":"peer_refused"/);
  } finally {
    await d.stop();
  }
  // allowed explicitly (and root, the caller, then only by its own entry)
  d = await startDaemon({ store, sock, args: ["--allow-uid", "65534"] });
  openSocketToAll(dir, sock);
  try {
    const r = await run(["lease", "k", "--socket", sock], { wrap: nobody });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "v");
    // root is not implicitly allowed
    const root = await run(["list", "--socket", sock]);
    assert.equal(root.code, 1);
  } finally {
    await d.stop();
  }
});

test("a refused uid flooding the socket holds no slot and locks nobody out; its refusals are audited at most once a second, all counted", { timeout: 90000, skip: notRoot }, async () => {
  const { dir, store, sock } = setup("secrets-flood-");
  await init(store);
  // a long client timeout: a slot a refused peer held would stay held
  const d = await startDaemon({ store, sock, args: ["--client-timeout", "30s"] });
  openSocketToAll(dir, sock);
  const env = { SECRETS_SOCKET: sock };
  let peers = [];
  try {
    assert.equal((await run(["add", "k", "--value", "v"], { env })).code, 0);
    // 80 connections opened one by one and kept: each is answered and closed
    const hold = peerAs(65534, 65534, sock, "hold", 80);
    peers.push(hold);
    await until("80 refused connections", () => hold.done() && hold.count("close") === 80, 30000);
    assert.equal(hold.open(), 0, "the daemon closed every refused connection at once");
    const answers = hold.lines();
    assert.equal(answers.length, 80);
    assert.ok(answers.every((a) => a.ok === false && a.error.code === "UNAUTHORIZED"), JSON.stringify(answers[0]));
    let r = await run(["lease", "k"], { env });
    assert.equal(r.code, 0, `an allowed client is served after the refused peer's 80 connections: ${r.stderr}`);
    assert.equal(r.stdout, "v");

    // a flood: 32 connections in flight, each reopened as soon as it is closed
    const t0 = Date.now();
    const flood = peerAs(65534, 65534, sock, "flood", 32, 2500);
    peers.push(flood);
    await until("the flood to start", () => flood.count("close") > 50);
    for (let i = 0; i < 5; i++) {
      r = await run(["lease", "k"], { env });
      assert.equal(r.code, 0, `lease during the flood: ${r.stderr}`);
    }
    await until("the flood to end", () => flood.done(), 30000);
    const refusedTotal = 80 + flood.done().made;
    assert.ok(flood.done().made >= 100, `the flood made ${flood.done().made} connections`);

    // every refusal is counted; lines are at most one per second (+ the summary)
    const lines = await until("every refusal counted in the audit trail", async () => {
      const l = (await auditEntries(sock)).filter((e) => e.action === "connect");
      if (refusalsIn(l) !== refusedTotal) throw new Error(`${refusalsIn(l)} of ${refusedTotal} in ${l.length} lines`);
      return l;
    }, 15000, 100);
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(lines.length <= Math.ceil(seconds) + 3,
      `${lines.length} audit lines for ${refusedTotal} refusals over ${seconds.toFixed(1)} s`);
    assert.ok(lines.every((e) => e.peer_uid === 65534 && e.success === false && Number.isInteger(e.suppressed)));
    assert.ok(lines.some((e) => e.suppressed > 0));
    for (let i = 1; i < lines.length; i++)
      assert.ok(Date.parse(lines[i].timestamp) - Date.parse(lines[i - 1].timestamp) >= 990,
        `two refusal lines within a second: ${JSON.stringify(lines.slice(i - 1, i + 1))}`);
    const logged = d.log.split("\n").filter((l) => l.includes('"event":"peer_refused"')).length;
    assert.ok(logged <= lines.length, `the log is rate-limited too (${logged} lines)`);
  } finally {
    for (const p of peers) p.kill();
    await d.stop();
  }
});

test("one allowed uid is capped (--max-conns-per-uid), the next connection gets a clear BUSY, and the owner keeps reserved slots", { timeout: 90000, skip: notRoot }, async () => {
  const { dir, store, sock } = setup("secrets-cap-");
  await init(store);
  let d = await startDaemon({ store, sock, args: ["--allow-uid", "0", "--allow-uid", "65534", "--client-timeout", "30s"] });
  openSocketToAll(dir, sock);
  const env = { SECRETS_SOCKET: sock };
  const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
  let peers = [];
  try {
    assert.equal((await run(["add", "k", "--value", "v"], { env })).code, 0);
    // the default cap is 16: of 20 held connections, 4 are turned away
    const hold = peerAs(65534, 65534, sock, "hold", 20);
    peers.push(hold);
    await until("20 connections, 4 turned away", () => hold.done() && hold.count("close") === 4, 30000);
    assert.equal(hold.open(), 16);
    for (const a of hold.lines()) {
      assert.equal(a.error.code, "BUSY");
      assert.equal(a.error.message, "too many connections from uid 65534 (at most 16 at once)");
    }
    let r = await run(["lease", "k", "--socket", sock], { wrap: nobody });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "secrets: too many connections from uid 65534 (at most 16 at once)\n");
    // another uid is not starved
    r = await run(["lease", "k"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(d.log, /"event":"too_many_connections".*"peer_uid":65534/);
    hold.kill();
    await until("the held connections to be closed", async () => (await run(["lease", "k", "--socket", sock], { wrap: nobody })).code === 0);
  } finally {
    for (const p of peers) p.kill();
    await d.stop();
  }

  // four uids of an allowed group fill all but the reserved slots; the
  // daemon's owner (root here) still gets in; the cap is configurable
  d = await startDaemon({ store, sock, args: ["--allow-gid", "65534", "--max-conns-per-uid", "20", "--client-timeout", "30s"] });
  openSocketToAll(dir, sock);
  peers = [];
  try {
    for (const uid of [65531, 65532, 65533, 65534]) {
      const p = peerAs(uid, 65534, sock, "hold", 16);
      peers.push(p);
      await until(`uid ${uid}'s connections`, () => p.done() && p.open() + p.count("close") === 16, 30000);
    }
    // a connect returns once the kernel queues it, before the daemon has
    // accepted it and answered BUSY: wait for the four refusals to arrive
    const closed = () => peers.reduce((n, p) => n + p.count("close"), 0);
    await until("the four connections over the limit to be turned away", () => closed() >= 4, 30000);
    const open = peers.reduce((n, p) => n + p.open(), 0);
    assert.equal(open, 60, "60 of 64 slots for uids other than the owner and root");
    const busy = peers.flatMap((p) => p.lines());
    assert.equal(busy.length, 4);
    for (const a of busy)
      assert.equal(a.error.message, "too many connections (60 open; the last 4 are kept for the daemon's owner and root)");
    const r = await run(["lease", "k"], { env });
    assert.equal(r.code, 0, `the owner gets a reserved slot: ${r.stderr}`);
    assert.equal(r.stdout, "v");
  } finally {
    for (const p of peers) p.kill();
    await d.stop();
  }
  const bad = await run(["serve", "--store", store, "--socket", sock, "--max-conns-per-uid", "65"]);
  assert.equal(bad.code, 2, bad.stderr);
});

test("the JSON envelope: NUL in names, long member names and strings, deep nesting are refused clearly", { timeout: 60000 }, async () => {
  const { dir, store, sock } = setup("secrets-envelope-");
  await init(store);
  const d = await startDaemon({ store, sock });
  const env = { SECRETS_SOCKET: sock };
  const fakes = [];
  try {
    assert.equal((await run(["add", "k", "--value", "v"], { env })).code, 0);
    // a name with \u0000 is refused, never cut short to "k"
    let [a] = await rawExchange(sock, ['{"op":"lease","name":"k\\u0000x"}\n']);
    assert.equal(a.ok, false);
    assert.equal(a.error.code, "BAD_REQUEST");
    assert.equal(a.value, undefined);
    assert.match(a.error.message, /^name holds \\u0000 \(NUL\)/);
    const last = (await auditEntries(sock)).at(-1);
    assert.equal(last.action, "lease");
    assert.equal(last.success, false);
    assert.equal(last.secret_name, null, "the audit trail does not record a shortened name");
    [a] = await rawExchange(sock, ['{"op":"rm","name":"k\\u0000"}\n']);
    assert.equal(a.error.code, "BAD_REQUEST");
    [a] = await rawExchange(sock, ['{"op":"lease","name":"k","client_id":"me\\u0000"}\n']);
    assert.equal(a.error.code, "BAD_REQUEST");
    assert.match(a.error.message, /client_id holds \\u0000/);
    // a member name with \u0000, or longer than 64 bytes, is malformed
    [a] = await rawExchange(sock, ['{"op":"status","x\\u0000":1}\n']);
    assert.equal(a.error.code, "PROTOCOL");
    assert.match(a.error.message, /member name holds \\u0000/);
    [a] = await rawExchange(sock, [`{"op":"status","${"m".repeat(65)}":1}\n`]);
    assert.equal(a.error.code, "PROTOCOL");
    assert.match(a.error.message, /member name is longer than 64 bytes/);
    [a] = await rawExchange(sock, [`{"op":"status","${"m".repeat(64)}":1}\n`]);
    assert.equal(a.ok, true);
    // strings other than a value: at most 1024 bytes
    [a] = await rawExchange(sock, [`{"op":"status","note":"${"n".repeat(1025)}"}\n`]);
    assert.equal(a.error.code, "TOO_LARGE");
    assert.match(a.error.message, /'note' is longer than 1024 bytes/);
    // deep nesting, objects or arrays, is refused before anything else
    for (const deep of [`{"op":"status","a":${'{"a":'.repeat(100)}1${"}".repeat(100)}}`, `{"op":"status","a":${"[".repeat(100)}${"]".repeat(100)}}`]) {
      [a] = await rawExchange(sock, [deep + "\n"]);
      assert.equal(a.error.code, "PROTOCOL");
      assert.match(a.error.message, /nest|arrays/);
    }
    assert.equal((await run(["status"], { env })).code, 0, "the daemon is unharmed");

    // an answer nested deeper than 64 levels is refused by the client (67)
    const fake = path.join(dir, "deep.sock");
    const deepAnswer = `{"ok":true,"daemon":"running","pid":1,"x":${"[".repeat(65)}${"]".repeat(65)}}\n`;
    const srv = net.createServer((c) => { c.on("error", () => {}); c.end(deepAnswer); });
    fakes.push(srv);
    await new Promise((res) => srv.listen(fake, res));
    let r = await run(["status", "--socket", fake]);
    assert.equal(r.code, 67, r.stderr + r.stdout);
    assert.match(r.stderr, /nested deeper than 64 levels/);
    // an answer lacking fields, with an absurd uptime, prints without
    // undefined behaviour (the sanitizer build aborts on either)
    const odd = path.join(dir, "odd.sock");
    const srv2 = net.createServer((c) => { c.on("error", () => {}); c.end('{"ok":true,"uptime_s":9223372036854775807}\n'); });
    fakes.push(srv2);
    await new Promise((res) => srv2.listen(odd, res));
    r = await run(["status", "--socket", odd]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^socket: +-$/m);
  } finally {
    for (const s of fakes) s.close();
    await d.stop();
  }
});

test("a passphrase (Argon2id) store works and a wrong passphrase is refused clearly", { timeout: 60000 }, async () => {
  const { dir, store, sock } = setup("secrets-pass-");
  const good = path.join(dir, "pass");
  const bad = path.join(dir, "wrong");
  fs.writeFileSync(good, "correct horse battery staple\n", { mode: 0o600 });
  fs.writeFileSync(bad, "correct horse battery stapler\n", { mode: 0o600 });
  // A passphrase file others can read is refused, like a loose key file.
  const loose = path.join(dir, "loose");
  fs.writeFileSync(loose, "correct horse battery staple\n", { mode: 0o644 });
  fs.chmodSync(loose, 0o644);
  const lr = await run(["init", "--store", path.join(dir, "store-loose"), "--passphrase-file", loose]);
  assert.notEqual(lr.code, 0);
  assert.match(lr.stderr, /passphrase file .*loose is accessible by group\/other .*fix: chmod 600/);
  await init(store, ["--passphrase-file", good]);
  assert.equal(fs.existsSync(path.join(store, "master.key")), false, "no key file");
  const VALUE = "pp-" + crypto.randomBytes(8).toString("hex");
  let d = await startDaemon({ store, sock, env: { SECRETS_PASSPHRASE_FILE: good } });
  try {
    assert.equal((await run(["add", "p", "--value", VALUE, "--socket", sock])).code, 0);
    assert.equal(json(await run(["status", "--json", "--socket", sock])).key_source, "passphrase");
  } finally {
    await d.stop();
  }
  assertNeverLeaked(d, VALUE);
  let r = await serveFails({ store, sock, env: { SECRETS_PASSPHRASE_FILE: bad } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^secrets: the store cannot be decrypted: wrong passphrase/m);
  r = await serveFails({ store, sock });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /passphrase-protected: give --passphrase-file or SECRETS_PASSPHRASE_FILE/);
  d = await startDaemon({ store, sock, args: ["--passphrase-file", good] });
  try {
    r = await run(["lease", "p", "--socket", sock]);
    assert.equal(r.stdout, VALUE);
  } finally {
    await d.stop();
  }
});

test("a key or store file with group/other permissions is refused, naming the fix", { timeout: 60000 }, async () => {
  const { store, sock } = setup("secrets-perm-");
  await init(store);
  for (const f of ["master.key", "secrets.db"]) {
    const p = path.join(store, f);
    fs.chmodSync(p, 0o644);
    const r = await serveFails({ store, sock });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`accessible by group/other \\(mode 0644\\); fix: chmod 600 ${p}`));
    fs.chmodSync(p, 0o600);
  }
  const d = await startDaemon({ store, sock });
  await d.stop("SIGINT"); // SIGINT stops it as cleanly as SIGTERM
  assert.match(d.log, /"event":"stopping".*"signal":2/);
});

test("the store survives kill -9 during writes", { timeout: 120000 }, async () => {
  const { store, sock } = setup("secrets-crash-");
  await init(store);
  const env = { SECRETS_SOCKET: sock };
  const acked = new Map();
  let n = 0;
  for (let round = 0; round < 4; round++) {
    const d = await startDaemon({ store, sock });
    let stop = false;
    const writer = async () => {
      while (!stop) {
        const name = `k${n++}`;
        const value = crypto.randomBytes(8192).toString("hex"); // 16 KiB: every write is a big one
        const r = await run(["add", name], { env, input: value + "\n" });
        if (r.code === 0) acked.set(name, value);
      }
    };
    const writers = [writer(), writer(), writer()];
    const ackedBefore = acked.size;
    // at least one acknowledged add this round, then kill at a varying point
    await until(() => acked.size > ackedBefore, "an acknowledged add", 20000);
    await sleep(50 + round * 120);
    await d.kill9();
    stop = true;
    await Promise.all(writers);
  }
  const d = await startDaemon({ store, sock });
  try {
    const names = new Set(json(await run(["list", "--json"], { env })).secrets.map((s) => s.name));
    for (const k of acked.keys()) assert.ok(names.has(k), `acknowledged secret ${k} was lost`);
    for (const [k, v] of acked) {
      const r = await run(["lease", k, "--ttl", "30s"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, v, `value of ${k}`);
    }
    assert.ok(acked.size >= 4);
  } finally {
    await d.stop();
  }
});

// Sends raw bytes on a new connection; resolves the answer lines until the
// daemon closes or `count` lines arrived.
function rawExchange(sock, chunks, count = 1) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let buf = "";
    const lines = [];
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no answer; got ${JSON.stringify(lines)}`)); }, 10000);
    c.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) { lines.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
      if (lines.length >= count) { clearTimeout(timer); c.end(); resolve(lines); }
    });
    c.on("error", () => {});
    c.on("close", () => { clearTimeout(timer); resolve(lines); });
    for (const ch of chunks) c.write(ch);
  });
}

test("malformed requests get protocol errors and a slow client blocks nobody", { timeout: 60000 }, async () => {
  const { store, sock } = setup("secrets-proto-");
  await init(store);
  const d = await startDaemon({ store, sock, args: ["--client-timeout", "1s"] });
  const env = { SECRETS_SOCKET: sock };
  try {
    // garbage, then a good request on the same connection
    let lines = await rawExchange(sock, ["this is not json\n", "{\"op\":\"status\"}\n"], 2);
    assert.equal(lines[0].ok, false);
    assert.equal(lines[0].error.code, "PROTOCOL");
    assert.equal(lines[1].ok, true);
    lines = await rawExchange(sock, ["{\"op\":\"explode\"}\n"]);
    assert.equal(lines[0].error.code, "PROTOCOL");
    lines = await rawExchange(sock, ["{\"op\":\"lease\",\"name\":\"a b\"}\r\n"]);
    assert.equal(lines[0].error.code, "BAD_REQUEST");
    lines = await rawExchange(sock, ["{\"op\":\"lease\",\"name\":\"nope\",\"ttl\":5}\n"]);
    assert.equal(lines[0].error.code, "NOT_FOUND");
    // an endless line is cut off
    lines = await rawExchange(sock, ["{\"op\":\"add\",\"name\":\"x\",\"value\":\"" + "a".repeat(500 * 1024)]);
    assert.equal(lines[0].error.code, "PROTOCOL");
    assert.match(lines[0].error.message, /too long/);

    // a client that sends half a request and stalls
    const slow = net.createConnection(sock);
    slow.on("error", () => {});
    const closed = new Promise((res) => slow.on("close", res));
    slow.write("{\"op\":\"sta");
    const t0 = Date.now();
    const r = await run(["status"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 2000, "status answered while a client stalls");
    await closed; // the daemon drops it after --client-timeout
    assert.ok(Date.now() - t0 >= 800, "dropped only after its timeout");
    assert.equal((await run(["status"], { env })).code, 0);
  } finally {
    await d.stop();
  }
});

test("a full disk never leaves a torn audit line; leases fail closed instead", { timeout: 60000 }, async () => {
  const { store, sock } = setup("secrets-full-");
  await init(store);
  const d = await startDaemon({ store, sock });
  assert.equal((await run(["add", "tok", "--socket", sock], { input: "v\n" })).code, 0);
  await d.stop();
  // The file-size limit stands in for a full disk: the audit file is cut
  // short mid-line once it reaches it (SIGXFSZ ignored, as the shell passes on).
  const p = spawn("sh", ["-c", 'trap "" XFSZ; ulimit -f 8; exec "$0" serve --store "$1" --socket "$2"', SECRETS, store, sock],
    { env: baseEnv(), stdio: "ignore" });
  procs.add(p);
  try {
    await until(() => fs.existsSync(sock), "the daemon under a file-size limit");
    let failed = null;
    for (let i = 0; i < 200 && !failed; i++) {
      const r = await run(["lease", "tok", "--socket", sock, "--client-id", `client-with-a-long-name-${i}`]);
      if (r.code !== 0) failed = r;
      else assert.equal(r.stdout, "v");
    }
    assert.ok(failed, "the audit file reached the limit");
    assert.match(failed.stderr, /audit/i, "the lease is refused because it cannot be audited");
    const text = fs.readFileSync(path.join(store, "audit.log"), "utf8");
    assert.ok(text.endsWith("\n"), "no torn last line");
    for (const l of text.split("\n").filter(Boolean)) JSON.parse(l);
  } finally {
    p.kill("SIGTERM");
  }
});
