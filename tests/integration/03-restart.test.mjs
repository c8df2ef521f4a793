// 03-restart: restart safety. Under a stream of events, the worker is killed
// (SIGKILL) and started again on the same port several times. Every run of a
// function with retries: 0 must complete, and no step whose output was
// memoized may ever execute again (checked against the step's memoization
// time in sysbusd: every recorded execution of a step must start before it).
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import {
  addApp, api, readExecLog, sendEvents, sleep, startSysbusd, startWorker, tmpdir, waitEventRuns,
} from "./lib.mjs";

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

test("worker killed and restarted under load: every run completes, nothing memoized reruns",
  { timeout: 120000 }, async () => {
    const s = await startSysbusd({ args: ["--transport-backoff-max", "300ms"] });
    const execLog = path.join(tmpdir(), "exec.log");
    const port = await freePort();
    let w = await startWorker({ sdk: "v4", server: s, execLog, port });
    try {
      await addApp(s, w);
      const eventIds = [];
      const sender = (async () => {
        for (let i = 0; i < 40; i++) {
          eventIds.push(...await sendEvents(s, { name: "compat/slow", data: { ms: 120, i } }));
          await sleep(60);
        }
      })();
      for (let k = 0; k < 4; k++) {
        await sleep(400 + Math.floor(Math.random() * 300));
        await w.kill("SIGKILL");
        await sleep(200);
        w = await startWorker({ sdk: "v4", server: s, execLog, port });
      }
      await sender;

      const runs = [];
      for (const id of eventIds) runs.push(...await waitEventRuns(s, id, 60000));
      assert.equal(runs.length, 40);
      for (const r of runs) assert.equal(r.status, "Completed", JSON.stringify(r));

      const log = readExecLog(execLog);
      let checked = 0;
      for (const r of runs) {
        const steps = (await api(s, `/v1/runs/${r.run_id}/steps`)).json.data;
        assert.deepEqual(steps.map((x) => x.name), ["before", "sleepy", "after"]);
        for (const st of steps) {
          const memoizedAt = Date.parse(st.ended_at);
          for (const e of log.filter((l) => l.run === r.run_id && l.step === st.name)) {
            assert.ok(e.ts <= memoizedAt,
              `step ${st.name} of ${r.run_id} executed at ${e.ts}, after it was memoized at ${memoizedAt}`);
            checked++;
          }
        }
      }
      assert.ok(checked >= 120);
      const metrics = (await api(s, "/metrics")).text;
      const failures = Number(/sysbus_transport_failures_total (\d+)/.exec(metrics)[1]);
      assert.ok(failures > 0, "the kills must have interrupted calls (else this test proves nothing)");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
