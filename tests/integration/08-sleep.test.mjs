// 08-sleep: step.sleep and step.sleepUntil through the official inngest SDK.
// A sleeping run holds no call; it wakes on time, and survives kill -9 of
// sysbusd (the timer is a queue row).
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, sleep, startSysbusd, startWorker, waitEventRuns, waitRun } from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  test(`sleep and sleepUntil wake on time (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const until = Date.now() + 1500;
      const [e1, e2] = await sendEvents(s, [
        { name: "compat/sleep", data: { duration: "1s" } },
        { name: "compat/sleep", data: { until: new Date(until).toISOString() } },
      ]);
      // while asleep: the run says what it waits for, and nothing is in flight
      await sleep(500);
      const [r1] = (await api(s, `/v1/events/${e1}/runs`)).json.data;
      const running = (await api(s, `/v1/runs/${r1.run_id}`)).json.data;
      assert.equal(running.status, "Running");
      assert.equal(running.queue[0].kind, "sleep");
      assert.equal((await api(s, "/health")).json.queue.inflight, 0);

      const [done1] = await waitEventRuns(s, e1);
      assert.equal(done1.status, "Completed");
      assert.ok(done1.output.after - done1.output.before >= 1000, JSON.stringify(done1.output));
      const steps = (await api(s, `/v1/runs/${done1.run_id}/steps`)).json.data;
      const nap = steps.find((x) => x.name === "nap");
      assert.equal(nap.op, "Sleep");
      assert.equal(nap.status, "Completed");
      const late = Date.parse(nap.ended_at) - (Date.parse(nap.started_at) + 1000);
      assert.ok(late >= 0 && late < 200, `woke ${late} ms after its time`);

      const [done2] = await waitEventRuns(s, e2);
      assert.equal(done2.status, "Completed");
      assert.ok(done2.output.after >= until, "sleepUntil woke before its date");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("a sleeping run survives kill -9 of sysbusd and wakes at its time", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s });
  try {
    await addApp(s, w);
    const [ev] = await sendEvents(s, { name: "compat/sleep", data: { duration: "2s" } });
    let run;
    for (let i = 0; i < 50 && !run; i++) {
      [run] = (await api(s, `/v1/events/${ev}/runs`)).json.data;
      const q = run && (await api(s, `/v1/runs/${run.run_id}`)).json.data.queue;
      if (!q || q[0]?.kind !== "sleep") { run = undefined; await sleep(50); }
    }
    assert.ok(run, "the run did not start sleeping");
    await s.kill9();
    s = await s.restart();
    const done = await waitRun(s, run.run_id, 20000);
    assert.equal(done.status, "Completed");
    assert.ok(done.output.after - done.output.before >= 2000);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
