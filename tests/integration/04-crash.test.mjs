// 04-crash: kill -9 of sysbusd under load. Events are sent continuously by
// several concurrent senders; sysbusd is killed with SIGKILL and restarted on
// the same data directory, twice. Every event that was acknowledged (200 with
// its id) must exist afterwards, and every run it started must complete.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sleep, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

test("kill -9 under load loses no acknowledged event and no run", { timeout: 180000 }, async () => {
  let s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s });
  const acked = [];
  try {
    await addApp(s, w);
    for (let round = 0; round < 2; round++) {
      let stop = false;
      const target = s;
      const senders = Array.from({ length: 8 }, async (_, k) => {
        let i = 0;
        while (!stop) {
          try {
            const r = await fetch(`${target.url}/e/key`, {
              method: "POST",
              body: JSON.stringify([{ name: "compat/three-steps", data: { n: k * 100000 + i++ } }]),
              signal: AbortSignal.timeout(5000),
            });
            if (r.status === 200) acked.push(...(await r.json()).ids);
          } catch { /* the server died under us: unacknowledged, may or may not exist */ }
        }
      });
      await sleep(700);
      await s.kill9();
      stop = true;
      await Promise.all(senders);
      s = await s.restart();
    }
    assert.ok(acked.length > 50, `too few events were sent (${acked.length})`);
    for (const id of acked) {
      const ev = await api(s, `/v1/events/${id}`);
      assert.equal(ev.status, 200, `acknowledged event ${id} is missing after kill -9`);
    }
    for (const id of acked) {
      const runs = await waitEventRuns(s, id, 60000);
      assert.equal(runs.length, 1);
      assert.equal(runs[0].status, "Completed", JSON.stringify(runs[0]));
    }
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
