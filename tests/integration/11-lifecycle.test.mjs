// 11-lifecycle: when a run ends sysbusd emits inngest/function.finished (and
// .failed / .cancelled) in the same transaction; an SDK onFailure handler
// (registered as "<id>-failure") runs with the failed run's data, and a
// function listening to function.finished sees the result.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, sleep, startSysbusd, startWorker, waitEventRuns, waitRun } from "./lib.mjs";

async function eventsNamed(s, name, n, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const evs = (await api(s, `/v1/events?name=${encodeURIComponent(name)}&limit=100`)).json.data;
    if (evs.length >= n) return evs;
    assert.ok(Date.now() < deadline, `expected ${n} ${name} events, got ${evs.length}`);
    await sleep(50);
  }
}

for (const sdk of ["v4", "v3"]) {
  test(`onFailure handlers and function.finished (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const fns = (await api(s, "/v1/functions")).json.data.map((f) => f.id);
      assert.ok(fns.includes(`compat-${sdk}-doomed-failure`), "the SDK registers the failure handler");

      const [doomed, three] = await sendEvents(s, [
        { name: "compat/doomed", data: { order: 17 } },
        { name: "compat/three-steps", data: { n: 5 } },
      ]);
      const [failed] = await waitEventRuns(s, doomed);
      assert.equal(failed.status, "Failed");

      const [failedEv] = await eventsNamed(s, "inngest/function.failed", 1);
      assert.equal(failedEv.data.function_id, `compat-${sdk}-doomed`);
      assert.equal(failedEv.data.run_id, failed.run_id);
      assert.match(failedEv.data.error.message, /doomed to fail/);
      const [handler] = await waitEventRuns(s, failedEv.internal_id);
      assert.equal(handler.function_id, `compat-${sdk}-doomed-failure`);
      assert.equal(handler.status, "Completed", JSON.stringify(handler));
      assert.equal(handler.output.handled, true);
      assert.match(handler.output.message, /doomed to fail/);
      assert.deepEqual(handler.output.original, { order: 17 });

      const [threeRun] = await waitEventRuns(s, three);
      assert.equal(threeRun.status, "Completed");
      const finished = await eventsNamed(s, "inngest/function.finished", 2);
      const ofThree = finished.find((e) => e.data.run_id === threeRun.run_id);
      assert.deepEqual(ofThree.data.result, { steps: 3, n: 5 });
      const [listener] = await waitEventRuns(s, ofThree.internal_id);
      assert.equal(listener.function_id, `compat-${sdk}-on-finished`);
      assert.deepEqual(listener.output, { saw: `compat-${sdk}-three-steps`, result: { steps: 3, n: 5 } });
      // the listener's own end emits nothing that triggers it again
      await sleep(300);
      const finishedAfter = await eventsNamed(s, "inngest/function.finished", 1);
      const again = finishedAfter.filter((e) => e.data.function_id === `compat-${sdk}-on-finished`);
      assert.equal(again.length, 0, "runs started by lifecycle events emit none");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("a cancelled run emits function.cancelled", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s });
  try {
    await addApp(s, w);
    const [ev] = await sendEvents(s, { name: "compat/sleep", data: { duration: "1m" } });
    let run;
    for (let i = 0; i < 100 && !run; i++) {
      [run] = (await api(s, `/v1/events/${ev}/runs`)).json.data;
      await sleep(20);
    }
    assert.equal((await api(s, `/v1/runs/${run.run_id}`, { method: "DELETE" })).status, 200);
    const [c] = await eventsNamed(s, "inngest/function.cancelled", 1);
    assert.equal(c.data.run_id, run.run_id);
    assert.equal((await waitRun(s, run.run_id)).status, "Cancelled");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
