// 12-invoke: step.invoke through the official inngest SDK: the invoked
// function runs as its own run (triggered by inngest/function.invoked with
// the payload), its result comes back to the caller's step, a failure comes
// back as a thrown error, and the timeout ends the wait with an error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  test(`step.invoke returns results, errors and timeouts (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const [ok, failing, slow] = await sendEvents(s, [
        { name: "compat/invoke", data: { target: "three-steps", payload: { n: 99 } } },
        { name: "compat/invoke", data: { target: "doomed", payload: {} } },
        { name: "compat/invoke", data: { target: "sleeper", payload: { duration: "5s" }, timeout: "1s" } },
      ]);
      const [rOk] = await waitEventRuns(s, ok);
      assert.equal(rOk.status, "Completed", JSON.stringify(rOk));
      assert.deepEqual(rOk.output, { ok: true, res: { steps: 3, n: 99 } });
      const step = (await api(s, `/v1/runs/${rOk.run_id}/steps`)).json.data.find((x) => x.name === "call-child");
      assert.equal(step.op, "InvokeFunction");
      assert.deepEqual(step.output, { steps: 3, n: 99 });
      const children = (await api(s, `/v1/runs?function_id=compat-${sdk}-three-steps`)).json.data;
      assert.equal(children.length, 1);
      const childEvent = (await api(s, `/v1/events/${children[0].event_id}`)).json.data;
      assert.equal(childEvent.name, "inngest/function.invoked");
      assert.equal(childEvent.data.n, 99);

      const [rFail] = await waitEventRuns(s, failing);
      assert.equal(rFail.status, "Completed", JSON.stringify(rFail));
      assert.equal(rFail.output.ok, false);
      assert.match(rFail.output.message, /doomed to fail/);

      const [rSlow] = await waitEventRuns(s, slow);
      assert.equal(rSlow.output.ok, false);
      assert.match(rSlow.output.message, /[Tt]imed out/);
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}
