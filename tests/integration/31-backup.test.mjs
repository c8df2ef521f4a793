// 31-backup: `sysbusd backup` while sysbusd runs, `sysbusd restore` into an
// empty store, on the store of the tests' mode (SQLite, or PostgreSQL with
// SYSBUS_TEST_STORE=postgres). A backup taken with runs completed and one
// asleep restores into a new store on which a new sysbusd shows the same
// runs and finishes the sleeping one; a restore refuses a store in use, a
// store holding data (unless --force), a file cut short, a file that is not
// a backup, one of the other store's kind; a refused restore leaves the
// store as it was; on PostgreSQL, an export whose table or column names are
// not this sysbusd's (an injection attempt) or whose rows COPY refuses changes
// nothing. A second sysbusd on one SQLite data directory is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  STORE, addApp, api, runSysbusd, sendEvents, startSysbusd, startWorker, tmpdir, until,
  waitEventRuns, waitRun,
} from "./lib.mjs";

const runsOf = async (s) =>
  (await api(s, "/v1/runs?limit=100")).json.data
    .map((r) => ({ id: r.run_id, status: r.status, output: JSON.stringify(r.output) }))
    .sort((a, b) => a.id.localeCompare(b.id));

test("backup while running, restore into a new store: same runs, the sleeping one finishes",
  { timeout: 180000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk: "v4", server: s });
    const file = path.join(tmpdir("backup-"), "bus.backup");
    let s2;
    try {
      await addApp(s, w);
      const done = await sendEvents(s, [1, 2, 3].map((i) => ({ name: "compat/three-steps", data: { i } })));
      for (const id of done) await waitEventRuns(s, id);
      const [sleepEv] = await sendEvents(s, { name: "compat/sleep", data: { duration: "45s" } });
      const sleeping = await until("the sleeper run asleep", async () => {
        const runs = (await api(s, `/v1/events/${sleepEv}/runs`)).json.data;
        if (runs.length !== 1) return null;
        const steps = (await api(s, `/v1/runs/${runs[0].run_id}/steps`)).json.data;
        return steps.some((x) => x.name === "before" && x.status === "Completed") ? runs[0] : null;
      });

      const b = await runSysbusd(["backup", "--data-dir", s.dataDir, "--to", file]);
      assert.equal(b.code, 0, b.stderr);
      assert.ok(fs.statSync(file).size > 0);
      assert.ok(!fs.existsSync(`${file}.partial`));
      const again = await runSysbusd(["backup", "--data-dir", s.dataDir, "--to", file]);
      assert.equal(again.code, 2, "an existing file is never overwritten");

      const inUse = await runSysbusd(["restore", "--data-dir", s.dataDir, "--from", file, "--force"]);
      assert.equal(inUse.code, 4, inUse.stderr);
      assert.match(inUse.stderr, /stop/);

      const before = await runsOf(s);
      assert.ok(before.length >= 4, JSON.stringify(before));
      await s.stop(); // the restored store's sysbusd takes the sleeping run over

      const dir2 = tmpdir("restored-");
      const r = await runSysbusd(["restore", "--data-dir", dir2, "--from", file]);
      assert.equal(r.code, 0, r.stderr);
      s2 = await startSysbusd({ dataDir: dir2 });
      const after = await runsOf(s2);
      assert.deepEqual(after.map((x) => x.id), before.map((x) => x.id));
      for (const x of after.filter((x) => x.status === "Completed"))
        assert.deepEqual(x, before.find((y) => y.id === x.id));
      assert.equal(after.find((x) => x.id === sleeping.run_id).status, "Running");

      const full = await runSysbusd(["restore", "--data-dir", dir2, "--from", file]);
      assert.equal(full.code, 4, "refused while its sysbusd runs");
      await s2.stop();
      const notEmpty = await runSysbusd(["restore", "--data-dir", dir2, "--from", file]);
      assert.equal(notEmpty.code, 2, notEmpty.stderr);
      assert.match(notEmpty.stderr, /holds data already/);
      const forced = await runSysbusd(["restore", "--data-dir", dir2, "--from", file, "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      s2 = await startSysbusd({ dataDir: dir2 });
      const status = (await api(s2, `/v1/runs/${sleeping.run_id}`)).json.data.status;
      assert.equal(status, "Running", "the backup's state again: the run was asleep in it");
      // the run goes on from the restored store: its sleep ends, "after" runs
      assert.equal((await waitRun(s2, sleeping.run_id, 90000)).status, "Completed");
    } finally {
      await w.kill("SIGTERM");
      if (s2) await s2.stop();
      await s.stop();
    }
  });

test("restore refuses a damaged, foreign or wrong-kind file and leaves the store as it was",
  { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const dir = tmpdir("bad-backup-");
    const file = path.join(dir, "ok.backup");
    try {
      await sendEvents(s, { name: "some/event", data: { n: 1 } });
      assert.equal((await runSysbusd(["backup", "--data-dir", s.dataDir, "--to", file])).code, 0);
    } finally {
      await s.stop();
    }
    const whole = fs.readFileSync(file);
    const cut = path.join(dir, "cut.backup");
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const junk = path.join(dir, "junk.backup");
    fs.writeFileSync(junk, "not a backup at all\n");
    const other = path.join(dir, "other.backup");
    fs.writeFileSync(other, STORE === "postgres" ? "SQLite format 3\0" + "x".repeat(100)
      : "SYSBUS-EXPORT 1\nschema_version 4\n");

    const target = tmpdir("target-");
    for (const [f, why] of [[cut, /not a whole|damaged|malformed|not a sysbusd/], [junk, /not a sysbusd backup/],
      [other, STORE === "postgres" ? /SQLite store/ : /PostgreSQL store/],
      [path.join(dir, "missing"), /cannot open/]]) {
      const r = await runSysbusd(["restore", "--data-dir", target, "--from", f]);
      assert.equal(r.code, 2, `${f}: ${r.stderr}`);
      assert.match(r.stderr, why, f);
    }
    if (STORE === "postgres") {
      // an export is input: names that are not this sysbusd's tables and
      // columns never reach SQL; a row COPY refuses fails the whole restore
      const text = whole.toString();
      const hostile = [
        ["injected", text.replace(/^table apps [^\n]*/m, "table apps id) FROM STDIN; DROP TABLE runs; --")],
        ["foreign table", text.replace(/^table apps /m, "table pg_authid ")],
        ["huge header", text.replace(/^table apps [^\n]*/m, `table apps ${"a,".repeat(100000)}a`)],
        ["bad row", text.replace(/^table events [^\n]*\n/m, (m) => `${m}x\ty\n`)],
        ["no end", text.replace(/^end\n$/m, "")],
        ["meta of another version", text.replace(/^(table meta [^\n]*\n(?:[^\n]*\n)*?)schema_version\t4\n/m, "$1schema_version\t99\n")],
      ];
      for (const [what, body] of hostile) {
        assert.notEqual(body, text, what);
        const f = path.join(dir, `${what.replace(/ /g, "-")}.backup`);
        fs.writeFileSync(f, body);
        const r = await runSysbusd(["restore", "--data-dir", target, "--from", f]);
        assert.equal(r.code, 2, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /not a whole sysbusd export|COPY events/, what);
        assert.doesNotMatch(r.stderr, /restored/, what);
      }
    }
    // nothing of the refused files reached the target: an empty store still
    const t = await startSysbusd({ dataDir: target });
    try {
      assert.equal((await api(t, "/v1/events?limit=10")).json.data.length, 0);
    } finally {
      await t.stop();
    }
    const ok = await runSysbusd(["restore", "--data-dir", target, "--from", file]);
    assert.equal(ok.code, 0, ok.stderr);
    if (STORE === "postgres") {
      // the store now holds the backup's bus; this data directory served the
      // empty bus it held before, and says so rather than mix them
      const bound = await runSysbusd(["--dev", "--port", "0", "--data-dir", target]);
      assert.equal(bound.code, 3, bound.stderr);
      assert.match(bound.stderr, /belongs to bus/);
      fs.unlinkSync(path.join(target, "bus_id"));
    }
    const t2 = await startSysbusd({ dataDir: target });
    try {
      const evs = (await api(t2, "/v1/events?limit=10")).json.data;
      assert.deepEqual(evs.map((e) => e.name), ["some/event"]);
    } finally {
      await t2.stop();
    }
  });

test("usage: --help, a missing file flag", async () => {
  const h = await runSysbusd(["backup", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: sysbusd backup --to FILE/);
  const r = await runSysbusd(["restore", "--help"]);
  assert.match(r.stdout, /--force/);
  const m = await runSysbusd(["backup", "--data-dir", tmpdir()]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /--to FILE is required/);
});

test("a second sysbusd on one SQLite data directory is refused (exit 3)",
  { skip: STORE === "sqlite" ? false : "SQLite store only: PostgreSQL's lock is tested in 30-pg-store" },
  async () => {
    const s = await startSysbusd();
    try {
      const r = await runSysbusd(["--dev", "--port", "0", "--data-dir", s.dataDir]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /another sysbusd already runs on this data directory/);
      assert.equal((await api(s, "/health")).status, 200, "the first one goes on");
    } finally {
      await s.stop();
    }
  });
