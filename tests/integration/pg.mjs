// pg.mjs - one throwaway PostgreSQL cluster per test process, for running
// the integration suite against sysbusd's PostgreSQL store
// (SYSBUS_TEST_STORE=postgres, see lib.mjs and docs/internals/tests-postgres.md).
// It owns the cluster's life: started lazily on first use, in a temp dir of
// its own, on a free port, listening on 127.0.0.1 only (trust auth there),
// run as the `postgres` OS user when the tests run as root (initdb and the
// server refuse root); stopped by its PID when the process exits (normally,
// by an uncaught error, or by SIGINT/SIGTERM/SIGHUP), and by a watchdog when
// the process is killed outright. It also creates databases on demand (one
// per sysbusd data dir: dbNameFor). It does not know sysbusd.
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

// The server binaries: SYSBUS_PG_BIN, else Debian's newest
// /usr/lib/postgresql/<major>/bin that has an initdb (Debian 12: 15).
export const PG_BIN = process.env.SYSBUS_PG_BIN || debianPgBin();
export const PG_HOST = "127.0.0.1";
export const PG_USER = "postgres";
const TOOLS = ["initdb", "postgres", "psql"];

function debianPgBin() {
  const root = "/usr/lib/postgresql";
  let majors = [];
  try { majors = fs.readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => b - a); } catch {}
  const found = majors.find((m) => fs.existsSync(path.join(root, m, "bin/initdb")));
  return path.join(root, found || "15", "bin");
}

// Why a cluster cannot be started here, or null when it can: the tools are
// missing, or the tests run as root and there is no `postgres` user.
export function pgMissing() {
  const absent = TOOLS.filter((t) => !fs.existsSync(path.join(PG_BIN, t)));
  if (absent.length)
    return `PostgreSQL not found: no ${absent.join(", ")} in ${PG_BIN} ` +
      "(install postgresql with scripts/deps.sh, or point SYSBUS_PG_BIN at its bin directory)";
  if (process.getuid() === 0 && !postgresIds())
    return "the tests run as root and there is no 'postgres' user to run PostgreSQL as (initdb refuses root)";
  return null;
}

function postgresIds() {
  const id = (flag) => spawnSync("id", [flag, PG_USER], { encoding: "utf8" });
  const u = id("-u"), g = id("-g");
  if (u.status !== 0 || g.status !== 0) return null;
  return { uid: Number(u.stdout), gid: Number(g.stdout) };
}

// argv that runs cmd as the postgres user when we are root (setpriv execs,
// so the PID spawned is the command's own: the postmaster's, to stop it by).
function asPostgres(cmd, args) {
  if (process.getuid() !== 0) return [cmd, args];
  return ["setpriv", ["--reuid", PG_USER, "--regid", PG_USER, "--init-groups", "--", cmd, ...args]];
}

// The environment of every PostgreSQL tool we run: none of the caller's PG*
// settings (a PGPASSWORD, PGSERVICE or PGOPTIONS would change what we test).
function pgEnv() {
  return { PATH: process.env.PATH || "/usr/bin:/bin", LC_ALL: "C", PGCONNECT_TIMEOUT: "5" };
}

// Runs a command to its end (killed after timeoutMs); resolves {code, out}
// with stdout and stderr interleaved.
function run(cmd, args, { timeoutMs = 60000, cwd = "/" } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: pgEnv(), cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", (e) => { clearTimeout(timer); resolve({ code: -1, out: `${cmd}: ${e.message}` }); });
    p.on("close", (code, signal) => { clearTimeout(timer); resolve({ code: code ?? signal, out }); });
  });
}

let cluster = null; // {dir, data, sock, port, pid, proc, watchdog} once started
let starting = null; // the promise of the one start of this process

// Starts the cluster on first call; every call resolves the same
// {port, pid, dir, data, sock}, or rejects with the same error.
export function startCluster() {
  starting ??= start();
  return starting;
}

async function start() {
  const missing = pgMissing();
  if (missing) throw new Error(missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sysbus-pg-"));
  // from here on the dir goes at exit, whether the start succeeds or not
  cluster = { dir, data: path.join(dir, "data"), sock: path.join(dir, "sock"), pid: 0 };
  process.on("exit", stopCluster);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
    process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
  fs.mkdirSync(cluster.sock);
  const ids = process.getuid() === 0 ? postgresIds() : null;
  if (ids) for (const d of [dir, cluster.sock]) fs.chownSync(d, ids.uid, ids.gid);

  const init = await run(...asPostgres(path.join(PG_BIN, "initdb"), [
    "-D", cluster.data, "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--locale=C",
    "--no-sync", "--no-instructions"]));
  if (init.code !== 0) throw new Error(`initdb failed (${init.code}) in ${dir}:\n${init.out}`);
  // trust only for our own socket directory (mode 0700) and 127.0.0.1; no ::1
  const hba = path.join(cluster.data, "pg_hba.conf");
  fs.writeFileSync(hba, "local all all trust\nhost all all 127.0.0.1/32 trust\n");
  if (ids) fs.chownSync(hba, ids.uid, ids.gid);

  // A port found free may be taken before the postmaster binds it: retry.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const r = await launch(port);
    if (r === "ready") return { port, pid: cluster.pid, dir, data: cluster.data, sock: cluster.sock };
    if (!/could not (bind|create listen socket)|Address already in use/.test(r) || attempt === 5)
      throw new Error(`PostgreSQL did not start (port ${port}, ${cluster.data}):\n${r}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, PG_HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Starts the postmaster on port and waits until it answers a query as the
// server of our data directory (not another one that took the port).
// Resolves "ready", or the log's end when it exited or never answered.
async function launch(port) {
  const logFile = path.join(cluster.dir, `postgres-${port}.log`);
  const log = fs.openSync(logFile, "a");
  const proc = spawn(...asPostgres(path.join(PG_BIN, "postgres"), [
    "-D", cluster.data, "-p", String(port), "-c", `listen_addresses=${PG_HOST}`,
    "-c", `unix_socket_directories=${cluster.sock}`, "-c", "logging_collector=off"]),
  { env: pgEnv(), cwd: "/", stdio: ["ignore", log, log] });
  fs.closeSync(log);
  // the postmaster must not keep the test process alive: it is stopped at exit
  proc.unref();
  let exited = null;
  proc.on("exit", (code, signal) => (exited = JSON.stringify({ code, signal })));
  await new Promise((resolve) => proc.once("spawn", resolve).once("error", (e) => resolve(exited = e.message)));
  cluster.pid = proc.pid || 0;
  cluster.port = port;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) {
      cluster.pid = 0;
      return `postgres exited (${exited}):\n${tail(logFile)}`;
    }
    const r = await run(path.join(PG_BIN, "psql"), psqlArgs(port, "postgres", "SHOW data_directory"), { timeoutMs: 10000 });
    if (r.code === 0 && r.out.trim() === cluster.data) break;
    if (Date.now() > deadline) {
      stopCluster();
      return `no answer in 30 s (last: ${r.out.trim()}):\n${tail(logFile)}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  cluster.watchdog = watchdog(cluster.dir, cluster.data, proc.pid);
  return "ready";
}

function tail(file) {
  try { return fs.readFileSync(file, "utf8").split("\n").slice(-30).join("\n"); } catch { return "(no log)"; }
}

// A process that outlives a test process killed with SIGKILL (no exit
// handler runs then): it reads a pipe from us, which closes only when we are
// gone, then stops the postmaster (if the PID file still names it, so a
// reused PID is never signalled) and removes the dir. A session of its own,
// ignoring the terminal's signals, so that Ctrl-C reaches us and not it.
function watchdog(dir, data, pid) {
  const script = `trap '' INT TERM HUP
cat >/dev/null
pidfile="$2/postmaster.pid"
if [ "$(head -n 1 "$pidfile" 2>/dev/null)" = "$3" ]; then
  kill -QUIT "$3"
  i=0
  while [ -e "$pidfile" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
fi
rm -rf "$1"`;
  const w = spawn("sh", ["-c", script, "pg-watchdog", dir, data, String(pid)],
    { stdio: ["pipe", "ignore", "ignore"], detached: true, cwd: "/" });
  w.unref();
  w.stdin.unref?.();
  w.stdin.on("error", () => {});
  return w;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

// Stops the cluster now (synchronous: it runs in the exit handler): an
// immediate shutdown (SIGQUIT; the data is thrown away), waits up to 10 s
// for the postmaster to remove its PID file, its last act, then SIGKILL;
// removes the dir. Later calls do nothing.
export function stopCluster() {
  if (!cluster) return;
  const { dir, data, pid, watchdog: w } = cluster;
  cluster = null;
  if (pid) {
    const pidfile = path.join(data, "postmaster.pid");
    try { process.kill(pid, "SIGQUIT"); } catch {}
    const deadline = Date.now() + 10000;
    while (fs.existsSync(pidfile) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
    if (fs.existsSync(pidfile)) try { process.kill(pid, "SIGKILL"); } catch {}
  }
  if (w) try { process.kill(-w.pid, "SIGKILL"); } catch {}
  fs.rmSync(dir, { recursive: true, force: true });
}

function psqlArgs(port, db, sql) {
  return ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p", String(port),
    "-U", PG_USER, "-d", db, "-c", sql];
}

// Runs sql with psql on the cluster (started if needed) in database db;
// resolves psql's unaligned, tuples-only output; rejects with its message.
export async function psql(sql, { db = "postgres" } = {}) {
  const c = await startCluster();
  const r = await run(path.join(PG_BIN, "psql"), psqlArgs(c.port, db, sql), { timeoutMs: 30000 });
  if (r.code !== 0) throw new Error(`psql on port ${c.port} (${db}): ${sql}: ${r.out.trim()}`);
  return r.out.trim();
}

// The database of a sysbusd data dir: the same name for the same absolute
// path, so that a restart on the same dir finds its data.
export function dbNameFor(dataDir) {
  return "sb_" + crypto.createHash("sha256").update(path.resolve(dataDir)).digest("hex").slice(0, 16);
}

export function dbUrl(port, name) {
  return `postgres://${PG_USER}@${PG_HOST}:${port}/${name}`;
}

const databases = new Map(); // name -> promise of its URL

// Creates database name when missing; resolves its URL. A name is created
// once per process; a failed creation is tried again by the next call.
export function createDatabase(name) {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    return Promise.reject(new Error(`not a database name for the tests: '${name}'`));
  if (!databases.has(name)) {
    const p = (async () => {
      const c = await startCluster();
      const have = await psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`);
      if (have !== "1") await psql(`CREATE DATABASE ${name}`);
      return dbUrl(c.port, name);
    })();
    databases.set(name, p);
    p.catch(() => databases.delete(name));
  }
  return databases.get(name);
}

// The store URL of a data dir, its database created when missing.
export function storeUrlFor(dataDir) {
  return createDatabase(dbNameFor(dataDir));
}
