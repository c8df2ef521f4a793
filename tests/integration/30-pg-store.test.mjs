// 30-pg-store: what sysbusd does around a PostgreSQL store, whatever the
// suite's store mode: a database that is not there yet is waited for (with
// backoff, each try logged, no password in any line) and used once it
// appears; SIGTERM ends the wait; --store-wait 0 gives up at once; a second
// sysbusd on the same store is refused with exit 3; the URL may come from a
// file; a data directory once started on a bus refuses another bus's store
// (exit 3). Real PostgreSQL (pg.mjs's throwaway cluster); skipped where it is
// missing or sysbusd was built without libpq.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import * as pg from "./pg.mjs";
import { BIN, api, cleanEnv, runSysbusd, sendEvents, startSysbusd, tmpdir, until } from "./lib.mjs";

const help = spawnSync(path.join(BIN, "sysbusd"), ["--help"], { encoding: "utf8" }).stdout || "";
const skip = pg.pgMissing() || (!/postgres:\/\//.test(help) && "sysbusd was built without libpq") || false;

// sysbusd on its own (not startSysbusd, which waits for it to listen).
function spawnSysbusd(args, env = {}) {
  const p = spawn(path.join(BIN, "sysbusd"), ["--dev", "--host", "127.0.0.1", "--port", "0", ...args],
    { env: { ...cleanEnv(), ...env } });
  const s = { proc: p, lines: [], exited: null };
  for (const stream of [p.stdout, p.stderr])
    readline.createInterface({ input: stream }).on("line", (l) => s.lines.push(l));
  s.exit = new Promise((resolve) => p.on("exit", (code, signal) => resolve((s.exited = { code, signal }))));
  s.events = (name) => s.lines.filter((l) => l.includes(`"event":"${name}"`)).map((l) => JSON.parse(l));
  return s;
}

test("a database that is not there yet is waited for, then used; SIGTERM ends a wait", { skip, timeout: 60000 }, async () => {
  const c = await pg.startCluster();
  const name = `late_${process.pid}`;
  const url = `postgres://postgres:not-a-secret-${process.pid}@127.0.0.1:${c.port}/${name}`;
  const s = spawnSysbusd(["--data-dir", tmpdir()], { SYSBUS_STORE: url });
  try {
    await until("two tries, logged", () => s.events("store_unavailable").length >= 2 || s.exited, 20000);
    assert.equal(s.exited, null, s.lines.join("\n"));
    const [first, second] = s.events("store_unavailable");
    assert.match(first.msg, new RegExp(`cannot connect to PostgreSQL \\(127\\.0\\.0\\.1:${c.port}/${name}\\)`));
    assert.match(first.msg, /does not exist/);
    assert.equal(first.attempt, 1);
    assert.equal(second.attempt, 2);
    assert.ok(first.retry_in_ms > 0 && first.retry_in_ms <= 30000);
    assert.ok(!s.lines.some((l) => l.includes("not-a-secret")), "no line holds the password");
    await pg.createDatabase(name);
    await until("sysbusd to listen once its database exists", () => s.events("listening").length || s.exited, 30000);
    const port = s.events("listening")[0].port;
    const server = { url: `http://127.0.0.1:${port}`, port, dev: true };
    const health = await api(server, "/health");
    assert.equal(health.json.store.kind, "postgres");
    assert.equal((await sendEvents(server, [{ name: "late/ok" }])).length, 1);
  } finally {
    s.proc.kill("SIGTERM");
    assert.equal((await s.exit).code, 0);
  }

  // SIGTERM during the wait: a clean stop, at once
  const w = spawnSysbusd(["--data-dir", tmpdir()], { SYSBUS_STORE: `postgres://postgres@127.0.0.1:${c.port}/never_${process.pid}` });
  await until("the first try", () => w.events("store_unavailable").length || w.exited, 20000);
  const t0 = Date.now();
  w.proc.kill("SIGTERM");
  assert.deepEqual(await w.exit, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 5000, "the wait ends at the signal, not at its next try");
  assert.ok(w.events("stopping").length === 1);
  // --store-wait 0: give up at once, exit 1
  const now = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store-wait", "0",
    "--store", `postgres://postgres@127.0.0.1:${c.port}/never_${process.pid}`]);
  assert.equal(now.code, 1, now.stderr);
  assert.doesNotMatch(now.stderr, /store_unavailable/);
  assert.match(now.stderr, /does not exist/);
});

test("one sysbusd per store: a second one is refused (exit 3); the URL may come from a file", { skip, timeout: 60000 }, async () => {
  const url = await pg.createDatabase(`two_${process.pid}`);
  const dir = tmpdir();
  const file = path.join(dir, "store");
  fs.writeFileSync(file, `${url}\n`, { mode: 0o600 });
  const a = await startSysbusd({ args: ["--store-file", file] });
  try {
    assert.equal((await api(a, "/health")).json.store.kind, "postgres");
    const b = await runSysbusd(["--dev", "--port", "0", "--data-dir", tmpdir(), "--store", url]);
    assert.equal(b.code, 3, b.stderr);
    assert.match(b.stderr, /another sysbusd already writes this store/);
  } finally {
    await a.stop();
  }
  // once the first has stopped, the store is free again
  const c = await startSysbusd({ args: ["--store", url] });
  await c.stop();
});

test("a data directory is bound to its bus: another store's bus is refused (exit 3)", { skip, timeout: 60000 }, async () => {
  const one = await pg.createDatabase(`bus_one_${process.pid}`);
  const two = await pg.createDatabase(`bus_two_${process.pid}`);
  const dir = tmpdir("bound-");
  const a = await startSysbusd({ dataDir: dir, args: ["--store", one] });
  const bus = (await api(a, "/health")).json.store.bus_id;
  await a.stop();
  assert.match(bus, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(fs.readFileSync(path.join(dir, "bus_id"), "utf8").trim(), bus);

  // the same directory on another database: refused, naming both buses
  const b = await runSysbusd(["--dev", "--port", "0", "--data-dir", dir, "--store", two]);
  assert.equal(b.code, 3, b.stderr);
  assert.match(b.stderr, new RegExp(`belongs to bus ${bus}.*the store is bus [0-9A-Z]{26}`));
  assert.equal(fs.readFileSync(path.join(dir, "bus_id"), "utf8").trim(), bus, "the binding is kept");
  // a second schema of the same database is another bus too
  const c = await runSysbusd(["--dev", "--port", "0", "--data-dir", dir, "--store", `${one}?schema=other`]);
  assert.equal(c.code, 3, c.stderr);
  // its own bus again: starts; a damaged binding is refused, not rewritten
  const d = await startSysbusd({ dataDir: dir, args: ["--store", one] });
  await d.stop();
  fs.writeFileSync(path.join(dir, "bus_id"), "garbage\n");
  const e = await runSysbusd(["--dev", "--port", "0", "--data-dir", dir, "--store", one]);
  assert.equal(e.code, 3, e.stderr);
  assert.match(e.stderr, /does not hold a bus id/);
});

test("a server that stops answering fails statements within answer_timeout (503), then recovers", { skip, timeout: 90000 }, async () => {
  const name = `hung_${process.pid}`;
  const url = await pg.createDatabase(name);
  const s = await startSysbusd({ args: ["--store", `${url}?answer_timeout=2`] });
  let pid = 0;
  try {
    assert.equal((await sendEvents(s, { name: "hung/before", data: {} })).length, 1);
    // the writer's session holds the store's lock: its server process
    pid = Number(await pg.psql("SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) " +
      `WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND a.datname = '${name}'`));
    assert.ok(pid > 0, "the writer's backend");
    process.kill(pid, "SIGSTOP"); // accepts bytes (the kernel does), answers nothing
    const t0 = Date.now();
    const r = await api(s, "/e/dev-key", { method: "POST", body: { name: "hung/during", data: {} } });
    const took = Date.now() - t0;
    assert.equal(r.status, 503, r.text);
    assert.doesNotMatch(r.text, /127\.0\.0\.1|hung_/, "the database's location stays in the log");
    assert.match(r.json.error, /database is unavailable/);
    assert.ok(took < 15000, `answered after ${took} ms`);
    await until("the reason logged", () => s.out.lines.some((l) => /"store_no_answer".*no answer within 2 s/.test(l)), 10000)
      .catch((e) => { throw new Error(`${e.message}\n${s.out.lines.slice(-15).join("\n")}`); });
    process.kill(pid, "SIGCONT");
    pid = 0;
    // the old session ends (its socket is closed), its lock with it
    await until("events accepted again", async () =>
      (await api(s, "/e/dev-key", { method: "POST", body: { name: "hung/after", data: {} } })).status === 200, 40000, 250);
    const names = (await api(s, "/v1/events?limit=10")).json.data.map((e) => e.name);
    assert.ok(names.includes("hung/before") && names.includes("hung/after"), names.join());
    assert.ok(!names.includes("hung/during"), "the refused event was not stored");
  } finally {
    if (pid) process.kill(pid, "SIGCONT");
    await s.stop();
  }
});
