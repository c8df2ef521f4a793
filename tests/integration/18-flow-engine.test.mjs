// 18-flow-engine: flow control the engine applies before each call, through
// the official inngest SDK: concurrency (calls in flight per key), throttle
// (run starts per period, queued not dropped), timeouts.start (a run queued
// too long is cancelled) and timeouts.finish (a run going too long is
// cancelled, even asleep, even across a restart of sysbusd).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addApp, api, readExecLog, sendEvents, sleep, startSysbusd, startWorker, tmpdir, until, waitEventRuns, waitRun } from "./lib.mjs";

// [{n, start, end}] of one function's calls from the exec log.
function intervals(log, fn) {
  const by = new Map();
  for (const e of log.filter((l) => l.fn === fn)) {
    const [kind, n] = e.step.split("-");
    if (!by.has(n)) by.set(n, { n });
    by.get(n)[kind] = e.ts;
  }
  return [...by.values()];
}

// The most calls of fn running at once on the worker, from the exec log (a
// call that sysbusd lost in a crash still runs to its end there).
function maxOverlap(log, fn) {
  const fns = [fn].flat();
  let open = 0, most = 0;
  for (const e of log.filter((l) => fns.includes(l.fn)).sort((a, b) => a.ts - b.ts || (a.step < b.step ? -1 : 1))) {
    open += e.step.startsWith("start-") ? 1 : -1;
    most = Math.max(most, open);
  }
  return most;
}

for (const sdk of ["v4", "v3"]) {
  test(`concurrency: one call at a time per key (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const execLog = path.join(tmpdir(), "exec.log");
    const w = await startWorker({ sdk, server: s, execLog });
    try {
      await addApp(s, w);
      const ids = await sendEvents(s, [
        ...[1, 2, 3, 4].map((n) => ({ name: "compat/one-at-a-time", data: { user: "a", n } })),
        { name: "compat/one-at-a-time", data: { user: "b", n: 9 } },
      ]);
      for (const id of ids) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
      const all = intervals(readExecLog(execLog), "one-at-a-time");
      const a = all.filter((x) => x.n !== "9").sort((x, y) => x.start - y.start);
      const b = all.find((x) => x.n === "9");
      assert.equal(a.length, 4);
      for (let i = 1; i < a.length; i++)
        assert.ok(a[i].start >= a[i - 1].end, `user a: call ${a[i].n} started before ${a[i - 1].n} ended`);
      assert.ok(b.start < a[0].end, "another key is not held back by user a");
      assert.match((await api(s, "/metrics")).text, /sysbus_calls_parked_total [1-9]/);
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("throttle: one start per second, none dropped", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const ids = await sendEvents(s, [1, 2, 3, 4].map((n) => ({ name: "compat/throttled", data: { n } })));
    for (const id of ids) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
    const starts = intervals(readExecLog(execLog), "throttled").map((x) => x.start).sort((x, y) => x - y);
    assert.equal(starts.length, 4);
    for (let i = 1; i < starts.length; i++)
      assert.ok(starts[i] - starts[i - 1] >= 900, `starts ${starts.join(", ")} are closer than the throttle allows`);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("timeouts.start: a run queued behind a slow one is cancelled", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const w = await startWorker({ server: s });
  try {
    await addApp(s, w);
    const [slow, late] = await sendEvents(s, [
      { name: "compat/start-timeout", data: { n: 1, hold: 4000 } },
      { name: "compat/start-timeout", data: { n: 2 } },
    ]);
    const [lateRun] = await waitEventRuns(s, late, 15000);
    assert.equal(lateRun.status, "Cancelled");
    assert.match(JSON.stringify(lateRun.error), /timeouts\.start/);
    const [slowRun] = await waitEventRuns(s, slow, 15000);
    assert.equal(slowRun.status, "Completed");
    assert.ok(Date.parse(lateRun.ended_at) < Date.parse(slowRun.ended_at), "cancelled while the slot was still taken");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("timeouts.finish: a sleeping run is cancelled at its deadline, across a restart", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const [ev, quick] = await sendEvents(s, [
      { name: "compat/finish-timeout", data: {} },
      { name: "compat/finish-timeout", data: { nap: "10ms" } },
    ]);
    assert.equal((await waitEventRuns(s, quick))[0].output, "woke up", "a run within its timeout completes");
    const [run] = (await api(s, `/v1/events/${ev}/runs`)).json.data; // created with the event
    await until("the first step", () => readExecLog(execLog).some((l) => l.run === run.run_id));
    await s.stop();
    s = await s.restart();
    const ended = await waitRun(s, run.run_id, 15000);
    assert.equal(ended.status, "Cancelled");
    assert.match(JSON.stringify(ended.error), /timeouts\.finish/);
    const took = Date.parse(ended.ended_at) - Date.parse(ended.started_at);
    assert.ok(took < 10000, `cancelled after ${took} ms, long before the 30 s sleep`);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("concurrency: a limit of 2 holds across kill -9 of sysbusd", { timeout: 60000 }, async () => {
  let s = await startSysbusd({ args: ["--orphan-hold", "3s"] });
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const ids = await sendEvents(s, [1, 2, 3, 4].map((n) => ({ name: "compat/two-at-a-time", data: { n, hold: 1500 } })));
    await until("two calls running", () => readExecLog(execLog).filter((l) => l.step.startsWith("start-")).length >= 2);
    await s.kill9(); // the worker goes on running both calls; their answers are lost
    s = await s.restart();
    for (const id of ids) assert.equal((await waitEventRuns(s, id, 30000))[0].status, "Completed");
    const log = readExecLog(execLog);
    assert.equal(log.filter((l) => l.step.startsWith("start-")).length, 6, "the 2 lost calls ran again, after the 2 others");
    assert.equal(maxOverlap(log, "two-at-a-time"), 2, "never more than 2 calls running on the worker");
    assert.ok(s.out.lines.some((l) => l.includes('"call_orphaned"')), "the held slots are logged");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("throttle: a start right after kill -9 still waits its turn", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const [first] = await sendEvents(s, [{ name: "compat/throttled", data: { n: 1 } }]);
    await waitEventRuns(s, first);
    await s.kill9();
    s = await s.restart();
    const [second] = await sendEvents(s, [{ name: "compat/throttled", data: { n: 2 } }]);
    assert.equal((await waitEventRuns(s, second))[0].status, "Completed");
    const starts = intervals(readExecLog(execLog), "throttled").map((x) => x.start).sort((x, y) => x - y);
    assert.equal(starts.length, 2);
    assert.ok(starts[1] - starts[0] >= 900, `the restart let a start through after ${starts[1] - starts[0]} ms`);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("concurrency: several limits at once, and a limit shared by two functions", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ server: s, execLog });
  try {
    await addApp(s, w);
    const users = ["a", "a", "a", "b", "b", "c"];
    const ids = await sendEvents(s, [
      ...users.map((user, n) => ({ name: "compat/layered", data: { user, n } })),
      ...[1, 2].map((n) => ({ name: "compat/shared-a", data: { n } })),
      ...[3, 4].map((n) => ({ name: "compat/shared-b", data: { n } })),
    ]);
    for (const id of ids) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
    const log = readExecLog(execLog);
    assert.equal(maxOverlap(log, "layered"), 2, "the function-wide limit of 2 holds (and is used)");
    const byN = new Map(log.filter((l) => l.fn === "layered").map((l) => [l.step, l]));
    for (const u of ["a", "b"]) {
      const mine = users.map((x, n) => [x, n]).filter(([x]) => x === u).map(([, n]) =>
        ({ start: byN.get(`start-${n}`).ts, end: byN.get(`end-${n}`).ts })).sort((x, y) => x.start - y.start);
      for (let i = 1; i < mine.length; i++)
        assert.ok(mine[i].start >= mine[i - 1].end, `user ${u} ran two calls at once`);
    }
    assert.equal(maxOverlap(log, ["shared-a", "shared-b"]), 1, "the shared key holds across both functions");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
