// 10-wait: step.waitForEvent through the official inngest SDK: a matching
// event (by `if` against the trigger) resolves the wait with the event, other
// events are ignored, the timeout gives null, an event that arrives while the
// wait is being registered is not missed, a wait survives kill -9, and an
// `if` outside the supported subset fails the run with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import {
  addApp, api, readExecLog, sendEvents, sleep, startSysbusd, startWorker, tmpdir, waitEventRuns, waitRun,
} from "./lib.mjs";

async function runOf(s, eventId) {
  for (let i = 0; i < 100; i++) {
    const [r] = (await api(s, `/v1/events/${eventId}/runs`)).json.data;
    if (r) return r;
    await sleep(20);
  }
  throw new Error("no run");
}

async function untilWaiting(s, runId) {
  for (let i = 0; i < 200; i++) {
    const q = (await api(s, `/v1/runs/${runId}`)).json.data.queue || [];
    if (q.some((x) => x.kind === "wait")) return q.find((x) => x.kind === "wait");
    await sleep(25);
  }
  throw new Error(`run ${runId} never started waiting`);
}

for (const sdk of ["v4", "v3"]) {
  test(`waitForEvent matches, ignores and times out (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const [ea, et] = await sendEvents(s, [
        { name: "compat/wait", data: { id: "A" } },
        { name: "compat/wait", data: { id: "T", timeout: "1s" } },
      ]);
      const ra = await runOf(s, ea);
      const wq = await untilWaiting(s, ra.run_id);
      assert.equal(wq.waiting_for, "compat/wait.resolve");
      await sendEvents(s, [
        { name: "compat/wait.resolve", data: { id: "B", value: 1 } },  // another id
        { name: "compat/other", data: { id: "A", value: 2 } },          // another name
        { name: "compat/wait.resolve", data: { id: "A", value: 42 } },  // the one
      ]);
      const doneA = await waitRun(s, ra.run_id);
      assert.equal(doneA.status, "Completed", JSON.stringify(doneA));
      assert.deepEqual(doneA.output, { matched: true, value: 42 });
      const steps = (await api(s, `/v1/runs/${ra.run_id}/steps`)).json.data;
      const approval = steps.find((x) => x.name === "approval");
      assert.equal(approval.op, "WaitForEvent");
      assert.equal(approval.output.data.value, 42, "the step's output is the matching event");

      const [rt] = await waitEventRuns(s, et);
      assert.equal(rt.status, "Completed");
      assert.deepEqual(rt.output, { matched: false, value: null });
      const tsteps = (await api(s, `/v1/runs/${rt.run_id}/steps`)).json.data;
      const wait = tsteps.find((x) => x.name === "approval");
      assert.ok(Date.parse(wait.ended_at) - Date.parse(wait.started_at) >= 1000, "timed out early");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

// An `if` outside the supported CEL subset would never match: the run fails
// at once with the reason instead of waiting until the timeout for nothing.
for (const sdk of ["v4", "v3"]) {
  test(`a waitForEvent whose if is outside the subset fails the run, saying why (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const [ev] = await sendEvents(s, [
        { name: "compat/wait", data: { id: "M", timeout: "1h", if: 'async.data.id.matches("M.*")' } },
      ]);
      const [r] = await waitEventRuns(s, ev);
      assert.equal(r.status, "Failed", JSON.stringify(r));
      assert.equal(r.error.name, "InvalidWaitForEvent", JSON.stringify(r.error));
      assert.equal(r.error.message, "waitForEvent('compat/wait.resolve'): invalid expression "
        + "'async.data.id.matches(\"M.*\")': unsupported method call 'matches' at column 15");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("an event sent while the wait is being registered is not missed", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const execLog = path.join(tmpdir(), "exec.log");
  const w = await startWorker({ sdk: "v4", server: s, execLog });
  try {
    await addApp(s, w);
    // hold_ms keeps the call that reaches waitForEvent open for a second
    const [ev] = await sendEvents(s, { name: "compat/wait", data: { id: "R", hold_ms: 1000, timeout: "30s" } });
    const run = await runOf(s, ev);
    for (let i = 0; ; i++) {
      if (readExecLog(execLog).some((l) => l.run === run.run_id && l.step === "reached-wait")) break;
      assert.ok(i < 400, "the function never reached the wait");
      await sleep(10);
    }
    // the worker is now inside the call that will report WaitForEvent
    await sendEvents(s, { name: "compat/wait.resolve", data: { id: "R", value: 7 } });
    const t0 = Date.now();
    const done = await waitRun(s, run.run_id, 20000);
    assert.deepEqual(done.output, { matched: true, value: 7 });
    assert.ok(Date.now() - t0 < 15000, "it waited for the timeout instead");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("a waiting run survives kill -9 and is resolved after the restart", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s });
  try {
    await addApp(s, w);
    const [ev] = await sendEvents(s, { name: "compat/wait", data: { id: "K", timeout: "1m" } });
    const run = await runOf(s, ev);
    await untilWaiting(s, run.run_id);
    await s.kill9();
    s = await s.restart();
    await sendEvents(s, { name: "compat/wait.resolve", data: { id: "K", value: 9 } });
    const done = await waitRun(s, run.run_id, 20000);
    assert.equal(done.status, "Completed");
    assert.deepEqual(done.output, { matched: true, value: 9 });
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
