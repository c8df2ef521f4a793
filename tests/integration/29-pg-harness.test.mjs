// 29-pg-harness: the tests' PostgreSQL harness (pg.mjs) on its own, without
// sysbusd: one cluster per test process, run as the postgres user, on
// 127.0.0.1 only; a database per sysbusd data dir, the same one for the same
// dir; the --store flags lib.mjs adds in postgres mode; and the cluster and
// its dir gone when the test process ends, however it ends (exit, an
// uncaught error, SIGTERM, SIGKILL). Skipped where PostgreSQL is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import * as pg from "./pg.mjs";
import { storeArgs, tmpdir, until } from "./lib.mjs";

const skip = pg.pgMissing() || false;

// The sockets listening on port in this network namespace, as
// "address:port" in /proc/net/tcp's hex form, per file.
function listeners(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const found = {};
  for (const f of ["tcp", "tcp6"]) {
    let rows = [];
    try { rows = fs.readFileSync(`/proc/net/${f}`, "utf8").trim().split("\n").slice(1); } catch {}
    found[f] = rows.map((r) => r.trim().split(/\s+/))
      .filter((c) => c[3] === "0A" && c[1].endsWith(`:${hex}`)).map((c) => c[1]);
  }
  return found;
}

// A process is gone when it does not exist or is a zombie (its parent, the
// test process that ended, is gone too and init has not reaped it yet).
function gone(pid) {
  try { return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, "utf8")); } catch { return true; }
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

test("one cluster per process, as the postgres user, on 127.0.0.1 only", { skip, timeout: 60000 }, async () => {
  const [c, again] = await Promise.all([pg.startCluster(), pg.startCluster()]);
  assert.equal(again, c, "started once");
  assert.equal(await pg.psql("SHOW listen_addresses"), "127.0.0.1");
  assert.equal(await pg.psql("SHOW port"), String(c.port));
  assert.equal(await pg.psql("SHOW unix_socket_directories"), c.sock);
  assert.equal(await pg.psql("SHOW data_directory"), c.data);
  assert.ok(c.data.startsWith(c.dir + "/") && c.sock.startsWith(c.dir + "/"), "everything in its own dir");
  assert.equal(fs.readFileSync(path.join(c.data, "postmaster.pid"), "utf8").split("\n")[0], String(c.pid));
  assert.equal(await pg.psql("SHOW server_encoding"), "UTF8");
  // trust for our socket dir and 127.0.0.1 alone
  assert.equal(await pg.psql("SELECT type || ' ' || coalesce(address, '-') FROM pg_hba_file_rules ORDER BY line_number"),
    "local -\nhost 127.0.0.1");
  const l = listeners(c.port);
  assert.deepEqual(l.tcp, [`0100007F:${c.port.toString(16).toUpperCase().padStart(4, "0")}`], JSON.stringify(l));
  assert.deepEqual(l.tcp6, [], "nothing on IPv6");
  if (process.getuid() === 0) {
    const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout);
    const status = fs.readFileSync(`/proc/${c.pid}/status`, "utf8");
    assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s`, "m"), "the postmaster is not root");
    assert.equal(fs.statSync(c.data).uid, uid);
  }
});

test("a database per data dir: the same dir, the same database", { skip, timeout: 60000 }, async () => {
  const a = tmpdir("pg-harness-a-"), b = tmpdir("pg-harness-b-");
  const name = pg.dbNameFor(a);
  assert.match(name, /^sb_[0-9a-f]{16}$/);
  assert.equal(pg.dbNameFor(a + "/"), name);
  assert.equal(pg.dbNameFor(path.join(a, "x", "..")), name);
  assert.equal(pg.dbNameFor(path.relative(process.cwd(), a)), name, "a relative path names the same dir");
  assert.notEqual(pg.dbNameFor(b), name);

  const { port } = await pg.startCluster();
  const [ua, ub] = await Promise.all([pg.storeUrlFor(a), pg.storeUrlFor(b)]);
  assert.equal(ua, `postgres://postgres@127.0.0.1:${port}/${name}`);
  assert.equal(ub, `postgres://postgres@127.0.0.1:${port}/${pg.dbNameFor(b)}`);
  assert.equal(await pg.storeUrlFor(a), ua, "asking again is no error");
  const dbs = (await pg.psql("SELECT datname FROM pg_database")).split("\n");
  assert.ok(dbs.includes(name) && dbs.includes(pg.dbNameFor(b)), dbs.join(" "));
  // two databases, not one: a table of one is not in the other
  await pg.psql("CREATE TABLE only_a (x int)", { db: name });
  assert.equal(await pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_a'", { db: pg.dbNameFor(b) }), "0");
  await assert.rejects(pg.createDatabase("Bad-Name"), /not a database name/);
});

test("the --store flags of each mode", { skip, timeout: 60000 }, async () => {
  const dir = tmpdir("pg-harness-store-");
  assert.deepEqual(await storeArgs(dir, [], {}, "sqlite"), [], "sqlite: --data-dir says it");
  assert.deepEqual(await storeArgs(dir, [], {}, "postgres"), ["--store", await pg.storeUrlFor(dir)]);
  assert.deepEqual(await storeArgs(dir, ["--store", "sqlite:///x.db"], {}, "postgres"), [], "a test's own --store");
  assert.deepEqual(await storeArgs(dir, ["--store=sqlite:///x.db"], {}, "postgres"), []);
  assert.deepEqual(await storeArgs(dir, [], { SYSBUS_STORE: "sqlite:///x.db" }, "postgres"), [], "its own SYSBUS_STORE");
});

// A child test process starts a cluster, says where, and when told (a line
// on its stdin) ends as how says: its event loop runs dry (exit), an
// uncaught error (throw), or it waits for a signal (signal).
const CHILD = `
import * as pg from ${JSON.stringify(new URL("./pg.mjs", import.meta.url).href)};
const c = await pg.startCluster();
await pg.storeUrlFor("/tmp/pg-harness-child");
console.log(JSON.stringify(c));
await new Promise((resolve) => process.stdin.once("data", resolve));
process.stdin.destroy();
const how = process.argv[1];
if (how === "throw") throw new Error("a failing test process");
if (how === "signal") setInterval(() => {}, 1000);
`;

for (const [how, signal] of [["exit"], ["throw"], ["signal", "SIGTERM"], ["signal", "SIGKILL"]]) {
  test(`the cluster is stopped and its dir removed when the test process ends (${signal || how})`, {
    skip, timeout: 60000,
  }, async () => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD, how],
      { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
    const c = await until("the child's cluster", () => out.includes("\n") && JSON.parse(out), 30000);
    assert.ok(!gone(c.pid), "running while its process runs");
    assert.equal(await portFree(c.port), false);
    child.stdin.end("go\n");
    if (signal) child.kill(signal);
    const end = await exited;
    if (how === "throw") assert.match(err, /a failing test process/);
    else if (!signal) assert.equal(end.code, 0, err);
    // the exit handler stops the cluster before the process is gone; only
    // SIGKILL leaves it to the watchdog
    if (signal !== "SIGKILL") assert.ok(!fs.existsSync(c.dir), "stopped and removed before the process ended");
    await until(`postmaster ${c.pid} to be gone`, () => gone(c.pid), 15000);
    await until(`port ${c.port} to be free`, () => portFree(c.port), 15000);
    await until(`${c.dir} to be removed`, () => !fs.existsSync(c.dir), 15000);
  });
}
