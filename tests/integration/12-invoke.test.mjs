// 12-invoke: step.invoke through the official inngest SDK: the invoked
// function runs as its own run (triggered by inngest/function.invoked with
// the payload), its result comes back to the caller's step, a failure comes
// back as a thrown error, the timeout ends the wait with an error, and an
// unregistered target fails the step with the Inngest server's wording.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  test(`step.invoke returns results, errors and timeouts (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const [ok, failing, slow, unknown] = await sendEvents(s, [
        { name: "compat/invoke", data: { target: "three-steps", payload: { n: 99 } } },
        { name: "compat/invoke", data: { target: "doomed", payload: {} } },
        { name: "compat/invoke", data: { target: "sleeper", payload: { duration: "5s" }, timeout: "1s" } },
        { name: "compat/invoke", data: { ref: "not-registered", payload: {} } },
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

      // an unregistered target: the step fails with the Inngest server's
      // error (pkg/execution/runner: "could not find function with ID: <id>"),
      // which the SDK throws as a StepError named "Error"; the run goes on
      const [rUnknown] = await waitEventRuns(s, unknown);
      assert.equal(rUnknown.status, "Completed", JSON.stringify(rUnknown));
      assert.deepEqual(rUnknown.output, {
        ok: false, message: `could not find function with ID: compat-${sdk}-not-registered`,
        name: "Error", stepError: true, stepId: "call-child",
      });
      const failedStep = (await api(s, `/v1/runs/${rUnknown.run_id}/steps`)).json.data.find((x) => x.name === "call-child");
      assert.equal(failedStep.status, "Failed", JSON.stringify(failedStep));
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}
