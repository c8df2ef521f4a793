// 09-parallel-send: Promise.all of step.run (planned steps dispatched by
// hash with disable_immediate_execution, then one discovery call), and
// step.sendEvent fanning out to other functions, through the inngest SDK.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addApp, api, readExecLog, sendEvents, startSysbusd, startWorker, tmpdir, waitEventRuns } from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  test(`parallel steps and sendEvent fan-out (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const execLog = path.join(tmpdir(), "exec.log");
    const w = await startWorker({ sdk, server: s, execLog });
    try {
      await addApp(s, w);
      const [pe, fe] = await sendEvents(s, [
        { name: "compat/parallel", data: { width: 4 } },
        { name: "compat/fan-out", data: { count: 3, tag: "t1" } },
      ]);
      const [pr] = await waitEventRuns(s, pe);
      assert.equal(pr.status, "Completed", JSON.stringify(pr));
      assert.deepEqual(pr.output, { parts: [0, 10, 20, 30], total: 60 });
      const log = readExecLog(execLog).filter((l) => l.run === pr.run_id);
      for (let i = 0; i < 4; i++)
        assert.equal(log.filter((l) => l.step === `part-${i}`).length, 1, `part-${i} ran once`);
      assert.equal(log.filter((l) => l.step === "sum").length, 1);
      const steps = (await api(s, `/v1/runs/${pr.run_id}/steps`)).json.data;
      assert.equal(steps.length, 5);
      assert.ok(steps.every((x) => x.status === "Completed"));

      const [fr] = await waitEventRuns(s, fe);
      assert.equal(fr.status, "Completed", JSON.stringify(fr));
      assert.equal(fr.output.ids.length, 3);
      for (const id of fr.output.ids) {
        const [child] = await waitEventRuns(s, id);
        assert.equal(child.function_id, `compat-${sdk}-fanned`);
        assert.equal(child.status, "Completed");
        assert.equal(child.output.parent, "t1");
      }
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}
