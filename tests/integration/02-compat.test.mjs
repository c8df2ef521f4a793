// 02-compat: the official inngest npm package (v4 and v3) as the referee.
// A real Node worker registers with a real sysbusd (dev mode and signed
// mode) and runs functions with several steps, a step that fails twice then
// succeeds, a NonRetriableError and a function that throws. End states and
// attempt counts are checked against what the worker itself recorded.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import {
  addApp, api, readExecLog, sendEvents, startSysbusd, startWorker, tmpdir, waitEventRuns,
} from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  for (const mode of ["dev", "signed"]) {
    test(`inngest ${sdk} worker, ${mode} mode`, { timeout: 90000 }, async () => {
      const s = await startSysbusd({ dev: mode === "dev" });
      const execLog = path.join(tmpdir(), "exec.log");
      const w = await startWorker({ sdk, server: s, execLog });
      try {
        const app = await addApp(s, w);
        assert.equal(app.id, `compat-${sdk}`);
        assert.equal(app.function_count, 36);
        const fns = (await api(s, "/v1/functions")).json.data;
        const flaky = fns.find((f) => f.id === `compat-${sdk}-flaky`);
        assert.equal(flaky.retries, 3);

        const [e3, eFlaky, eNon, eThrow] = await sendEvents(s, [
          { name: "compat/three-steps", data: { n: 7 } },
          { name: "compat/flaky", data: { fail_times: 2 } },
          { name: "compat/non-retriable", data: {} },
          { name: "compat/throw", data: {} },
        ]);
        const [r3] = await waitEventRuns(s, e3);
        const [rFlaky] = await waitEventRuns(s, eFlaky);
        const [rNon] = await waitEventRuns(s, eNon);
        const [rThrow] = await waitEventRuns(s, eThrow);
        const log = readExecLog(execLog);
        const execs = (run, step) => log.filter((l) => l.run === run.run_id && l.step === step);

        // several step.run: completed, each step executed once
        assert.equal(r3.status, "Completed", JSON.stringify(r3));
        assert.deepEqual(r3.output, { steps: 3, n: 7 });
        for (const step of ["one", "two", "three"]) assert.equal(execs(r3, step).length, 1, step);
        const steps3 = (await api(s, `/v1/runs/${r3.run_id}/steps`)).json.data;
        assert.deepEqual(steps3.map((x) => x.name), ["one", "two", "three"]);
        assert.deepEqual(steps3[1].output, { step: 2, prev: 1 });

        // fails twice then succeeds: attempts 0, 1, 2
        assert.equal(rFlaky.status, "Completed", JSON.stringify(rFlaky));
        assert.deepEqual(rFlaky.output, { ok: true, attempt: 2 });
        assert.deepEqual(execs(rFlaky, "flaky-step").map((l) => l.attempt), [0, 1, 2]);
        const [flakyStep] = (await api(s, `/v1/runs/${rFlaky.run_id}/steps`)).json.data;
        assert.equal(flakyStep.attempts, 3);
        assert.equal(flakyStep.status, "Completed");

        // NonRetriableError: failed after one attempt
        assert.equal(rNon.status, "Failed");
        assert.equal(execs(rNon, "gives-up").length, 1);
        assert.match(rNon.error.message, /this input can never work/);

        // a function that throws: retries 2 -> 3 attempts, then Failed
        assert.equal(rThrow.status, "Failed");
        assert.deepEqual(execs(rThrow, "fn").map((l) => l.attempt), [0, 1, 2]);
        assert.match(rThrow.error.message, /the function itself failed/);
      } finally {
        await w.kill("SIGTERM");
        await s.stop();
      }
    });
  }
}

test("a worker with the wrong signing key cannot register or run", { timeout: 60000 }, async () => {
  const s = await startSysbusd({ dev: false });
  const w = await startWorker({
    sdk: "v4", server: s, signed: true,
    env: { SIGNING_KEY: "signkey-test-0000000000000000000000000000000000" },
  });
  try {
    const r = await api(s, "/v1/apps", { method: "POST", body: { url: w.url } });
    assert.equal(r.status, 502);
    assert.match(r.json.error, /401|Unauthorized|bearer/i);
    const apps = (await api(s, "/v1/apps")).json.data;
    assert.equal(apps.length, 0);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
