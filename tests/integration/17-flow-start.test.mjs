// 17-flow-start: flow control decided when a run would start, through the
// official inngest SDK: idempotency (one run per key per 24 h), rateLimit
// (N per period per key, the rest dropped), singleton skip and cancel, and
// priority.run (a run with priority jumps the queue when calls are limited).
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, readExecLog, sendEvents, startSysbusd, startWorker, tmpdir, waitEventRuns, waitRun } from "./lib.mjs";
import crypto from "node:crypto";
import path from "node:path";

const runsOf = async (s, id) => (await api(s, `/v1/events/${id}/runs`)).json.data;

for (const sdk of ["v4", "v3"]) {
  test(`idempotency, rateLimit and singleton (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      // idempotency: the second event with key "a" starts nothing
      const idem = await sendEvents(s, [
        { name: "compat/idempotent", data: { key: "a", n: 1 } },
        { name: "compat/idempotent", data: { key: "a", n: 2 } },
        { name: "compat/idempotent", data: { key: "b", n: 3 } },
      ]);
      assert.equal((await waitEventRuns(s, idem[0]))[0].status, "Completed");
      assert.equal((await runsOf(s, idem[1])).length, 0, "same key: no second run");
      assert.equal((await waitEventRuns(s, idem[2]))[0].output.key, "b");

      // rateLimit: 2 per minute per user
      const lim = await sendEvents(s, [1, 2, 3, 4].map((n) => ({ name: "compat/limited", data: { user: "u1", n } }))
        .concat([{ name: "compat/limited", data: { user: "u2", n: 5 } }]));
      const started = [];
      for (const id of lim) started.push((await runsOf(s, id)).length);
      assert.deepEqual(started, [1, 1, 0, 0, 1]);
      // a key value of any length (here 5 kB that do not compress, past
      // what a store's index holds) limits as well, and two long values
      // that differ only at the end are two keys
      const long = crypto.randomBytes(4000).toString("base64");
      const big = await sendEvents(s, [1, 2, 3].map((n) => ({ name: "compat/limited", data: { user: long, n } }))
        .concat([{ name: "compat/limited", data: { user: `${long}!`, n: 4 } }]));
      const bigStarted = [];
      for (const id of big) bigStarted.push((await runsOf(s, id)).length);
      assert.deepEqual(bigStarted, [1, 1, 0, 1]);

      // singleton skip: a second run for the same user while the first runs is dropped
      const [s1] = await sendEvents(s, { name: "compat/single-skip", data: { user: "x", n: 1, hold: "1s" } });
      const [first] = await runsOf(s, s1);
      const [s2, s3] = await sendEvents(s, [
        { name: "compat/single-skip", data: { user: "x", n: 2 } },
        { name: "compat/single-skip", data: { user: "y", n: 3 } },
      ]);
      assert.equal((await runsOf(s, s2)).length, 0, "skipped: x already running");
      assert.equal((await runsOf(s, s3)).length, 1, "another key runs");
      assert.equal((await waitRun(s, first.run_id)).status, "Completed");
      const [s4] = await sendEvents(s, { name: "compat/single-skip", data: { user: "x", n: 4, hold: "1ms" } });
      assert.equal((await waitEventRuns(s, s4))[0].status, "Completed", "free again once the first ended");

      // singleton cancel: the new run replaces the running one
      const [c1] = await sendEvents(s, { name: "compat/single-cancel", data: { user: "x", n: 1, hold: "30s" } });
      const [old] = await runsOf(s, c1);
      const [c2] = await sendEvents(s, { name: "compat/single-cancel", data: { user: "x", n: 2, hold: "1ms" } });
      assert.equal((await waitRun(s, old.run_id, 10000)).status, "Cancelled");
      const [fresh] = await waitEventRuns(s, c2);
      assert.equal(fresh.status, "Completed");
      const m = (await api(s, "/metrics")).text;
      assert.match(m, /sysbus_runs_skipped_total 5/);
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("priority.run: a prioritised run is called before earlier ones", { timeout: 60000 }, async () => {
  // One call at a time: the first run holds the only slot while four more
  // queue; the last one sent has priority 60 s and must be called next.
  const s = await startSysbusd({ args: ["--max-inflight", "1"] });
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const [first] = await sendEvents(s, { name: "compat/prioritized", data: { n: 0, hold: 1500 } });
    const deadline = Date.now() + 10000;
    while (!readExecLog(execLog).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(readExecLog(execLog).length, 1, "first run is being called");
    const rest = await sendEvents(s, [
      { name: "compat/prioritized", data: { n: 1 } },
      { name: "compat/prioritized", data: { n: 2, prio: -5 } },
      { name: "compat/prioritized", data: { n: 3 } },
      { name: "compat/prioritized", data: { n: 4, prio: 60 } },
    ]);
    for (const id of [first, ...rest]) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
    const order = readExecLog(execLog).map((e) => e.step);
    assert.deepEqual(order, ["0", "4", "1", "3", "2"]);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
