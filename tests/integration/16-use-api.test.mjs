// 16-use-api: a run whose state (event + memoized steps) exceeds 4 MB is
// called with ctx.use_api, and the official SDK fetches its events and steps
// from GET /v0/runs/{id}/batch and /actions. Steps of 1.5 MB each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

for (const [sdk, args] of [["v4", ["--no-checkpoint"]], ["v3", []]]) {
  test(`state over 4 MB goes through use_api (inngest ${sdk})`, { timeout: 90000 }, async () => {
    const s = await startSysbusd({ args });
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const [ev] = await sendEvents(s, { name: "compat/bulky", data: { size: 1500000 } });
      const [run] = await waitEventRuns(s, ev, 60000);
      assert.equal(run.status, "Completed", JSON.stringify(run).slice(0, 500));
      assert.deepEqual(run.output, { lengths: [1500000, 1500000, 1500000], heads: ["aaa", "bbb", "ccc"] });
      const actions = await api(s, `/v0/runs/${run.run_id}/actions`);
      assert.equal(actions.status, 200);
      assert.equal(Object.keys(actions.json).length, 3);
      const batch = await api(s, `/v0/runs/${run.run_id}/batch`);
      assert.equal(batch.json[0].name, "compat/bulky");
      const metrics = (await api(s, "/metrics")).text;
      assert.ok(Number(/sysbus_use_api_calls_total (\d+)/.exec(metrics)[1]) >= 1, "no call used use_api");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}
