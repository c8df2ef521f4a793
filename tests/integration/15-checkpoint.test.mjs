// 15-checkpoint: v4 checkpointing. sysbusd sends ctx.fn_id and ctx.qi_id, so
// the official v4 SDK runs all steps of a run in one call and reports each
// through POST /v1/checkpoint/{runId}/async (answered after the commit); a
// checkpoint for a call that is not in flight is refused with 409 (the SDK
// then stops: stale dispatch). With --no-checkpoint, one step per call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

async function callsFor(args, sdk) {
  const s = await startSysbusd({ args });
  const w = await startWorker({ sdk, server: s });
  try {
    await addApp(s, w);
    const callsBefore = Number(/sysbus_step_calls_total (\d+)/.exec((await api(s, "/metrics")).text)[1]);
    const [ev] = await sendEvents(s, { name: "compat/slow", data: { ms: 10 } }); // 3 steps, no listeners
    const [run] = await waitEventRuns(s, ev);
    assert.equal(run.status, "Completed", JSON.stringify(run));
    const steps = (await api(s, `/v1/runs/${run.run_id}/steps`)).json.data;
    assert.deepEqual(steps.map((x) => `${x.name}:${x.status}`), ["before:Completed", "sleepy:Completed", "after:Completed"]);
    const calls = Number(/sysbus_step_calls_total (\d+)/.exec((await api(s, "/metrics")).text)[1]);
    return calls - callsBefore;
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
}

test("v4 runs a 3-step function in one call with checkpoints", { timeout: 60000 }, async () => {
  assert.equal(await callsFor([], "v4"), 1);
  assert.equal(await callsFor(["--no-checkpoint"], "v4"), 4, "classic mode: one call per step + the last");
  assert.equal(await callsFor([], "v3"), 4, "v3 does not checkpoint unless asked to");
});

test("checkpoints for calls that are not in flight are stale", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const bad = await api(s, "/v1/checkpoint/01M8F0NBYTB68YCVQ8QW17F2SH/async", {
      method: "POST", body: { run_id: "01M8F0NBYTB68YCVQ8QW17F2SH", qi_id: "5", steps: [] },
    });
    assert.equal(bad.status, 409);
    const malformed = await api(s, "/v1/checkpoint/01M8F0NBYTB68YCVQ8QW17F2SH/async", {
      method: "POST", body: { steps: "no" },
    });
    assert.equal(malformed.status, 400);
    const notUlid = await api(s, "/v1/checkpoint/zzz/async", { method: "POST", body: {} });
    assert.equal(notUlid.status, 404);
  } finally {
    await s.stop();
  }
});
