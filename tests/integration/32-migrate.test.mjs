// 32-migrate: `sysbusd migrate --from sqlite://... --to postgres://...` moves
// a bus with runs in every state (completed, failed, asleep, waiting for an
// event) from a SQLite store into a throwaway PostgreSQL cluster; a sysbusd
// on the PostgreSQL store then shows the same runs, steps and events, and
// the unfinished runs go on there (the sleep ends, the wait is resolved by
// an event sent to it). Refused: a source a sysbusd runs on, a target that
// holds data (without --force), a target that is not PostgreSQL. Runs in
// the PostgreSQL pass (SYSBUS_TEST_STORE=postgres), which has the cluster.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import {
  STORE, addApp, api, runSysbusd, sendEvents, startSysbusd, startWorker, tmpdir, until,
  waitEventRuns, waitRun,
} from "./lib.mjs";
import { storeUrlFor } from "./pg.mjs";

const skip = STORE === "postgres" ? false : "needs PostgreSQL (SYSBUS_TEST_STORE=postgres)";

const snapshot = async (s) => {
  const runs = (await api(s, "/v1/runs?limit=100")).json.data
    .sort((a, b) => a.run_id.localeCompare(b.run_id));
  const out = [];
  for (const r of runs) {
    const steps = (await api(s, `/v1/runs/${r.run_id}/steps`)).json.data
      .map((x) => ({ name: x.name, status: x.status, output: JSON.stringify(x.output) }));
    out.push({ id: r.run_id, fn: r.function_id, status: r.status, output: JSON.stringify(r.output), steps });
  }
  return out;
};

test("a SQLite bus moves to PostgreSQL and its runs go on there", { skip, timeout: 120000 }, async () => {
  const dir = tmpdir("migrate-src-");
  const from = `sqlite://${path.join(dir, "sysbus.db")}`;
  let s = await startSysbusd({ dataDir: dir, args: ["--store", from] });
  const w = await startWorker({ sdk: "v4", server: s });
  let p;
  try {
    await addApp(s, w);
    const [done] = await sendEvents(s, { name: "compat/three-steps", data: { i: 1 } });
    const [doomed] = await sendEvents(s, { name: "compat/doomed", data: { x: 1 } });
    await waitEventRuns(s, done);
    await waitEventRuns(s, doomed);
    const [sleepEv] = await sendEvents(s, { name: "compat/sleep", data: { duration: "20s" } });
    const [waitEv] = await sendEvents(s, { name: "compat/wait", data: { id: "m1", timeout: "5m" } });
    const running = {};
    for (const [k, ev, step] of [["sleep", sleepEv, "before"], ["wait", waitEv, "prepare"]])
      running[k] = await until(`the ${k} run parked`, async () => {
        const [r] = (await api(s, `/v1/events/${ev}/runs`)).json.data;
        if (!r) return null;
        const steps = (await api(s, `/v1/runs/${r.run_id}/steps`)).json.data;
        return steps.some((x) => x.name === step && x.status === "Completed") &&
          (await api(s, `/v1/runs/${r.run_id}`)).json.data.queue?.length > 0 ? r : null;
      });
    const to = await storeUrlFor(tmpdir("migrate-dst-"));

    const busy = await runSysbusd(["migrate", "--from", from, "--to", to]);
    assert.equal(busy.code, 4, busy.stderr);
    const before = await snapshot(s);
    await s.stop();

    const wrong = await runSysbusd(["migrate", "--from", from, "--to", `sqlite://${tmpdir()}/x.db`]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /postgres:\/\//);
    const m = await runSysbusd(["migrate", "--from", from, "--to", to]);
    assert.equal(m.code, 0, m.stderr);
    const again = await runSysbusd(["migrate", "--from", from, "--to", to]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /holds data already/);
    const forced = await runSysbusd(["migrate", "--from", from, "--to", to, "--force"]);
    assert.equal(forced.code, 0, forced.stderr);

    p = await startSysbusd({ dataDir: tmpdir("migrate-pg-"), args: ["--store", to] });
    assert.equal((await api(p, "/health")).json.store.kind, "postgres");
    const after = await snapshot(p);
    assert.deepEqual(after.map((r) => r.id), before.map((r) => r.id));
    for (const r of after.filter((x) => x.status !== "Running"))
      assert.deepEqual(r, before.find((x) => x.id === r.id));
    assert.deepEqual((await api(p, `/v1/events/${done}`)).json.data.name, "compat/three-steps");

    await sendEvents(p, { name: "compat/wait.resolve", data: { id: "m1", value: 7 } });
    const waited = await waitRun(p, running.wait.run_id, 30000);
    assert.equal(waited.status, "Completed");
    assert.deepEqual(waited.output, { matched: true, value: 7 });
    const slept = await waitRun(p, running.sleep.run_id, 60000);
    assert.equal(slept.status, "Completed");
    const names = (await api(p, `/v1/runs/${running.sleep.run_id}/steps`)).json.data.map((x) => x.name);
    assert.deepEqual(names, ["before", "nap", "after"]);
  } finally {
    await w.kill("SIGTERM");
    if (p) await p.stop();
    await s.stop();
  }
});

test("migrate usage: both stores required, a missing source", { skip }, async () => {
  const r = await runSysbusd(["migrate", "--from", "sqlite:///nonexistent/sysbus.db"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--to URL are required/);
  const to = await storeUrlFor(tmpdir("migrate-dst-"));
  const missing = await runSysbusd(["migrate", "--from", "sqlite:///nonexistent/sysbus.db", "--to", to]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /cannot open/);
  const h = await runSysbusd(["migrate", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: sysbusd migrate/);
});
