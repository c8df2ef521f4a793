// 04b-crash-hostile: the crash-point check. Under load from concurrent
// senders, with a worker on the official SDK and the hostile worker
// (tests/hostile/worker.mjs) in the mix, sysbusd is killed with SIGKILL at a
// random moment and restarted on the same data, 10 times. Afterwards every
// acknowledged event exists, every run has ended (the SDK's ones Completed),
// and sysbusd is healthy: no hostile answer was fatal at any crash point.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sleep, startHostileWorker, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

// hostile functions whose runs end on their own (each within a few seconds)
const HOSTILE = ["deep-step", "deep-output", "deep-error", "invalid-json", "unknown-op", "nul-op",
  "nul-step-id", "many-ops", "huge-body", "hang", "mid-body-close", "good", "deep-ok", "sleepy"];

test("kill -9 at random moments with a hostile worker loses nothing and ends every run", { timeout: 300000 }, async () => {
  const args = ["--call-timeout", "5s", "--transport-retry-window", "800ms", "--transport-backoff-max", "100ms"];
  let s = await startSysbusd({ args });
  const w = await startWorker({ sdk: "v4", server: s });
  const h = await startHostileWorker(s);
  const acked = []; // {id, sdk}
  try {
    await addApp(s, w);
    for (let cycle = 0; cycle < 10; cycle++) {
      let stop = false;
      const target = s;
      const senders = Array.from({ length: 4 }, async (_, k) => {
        let i = 0;
        while (!stop) {
          const sdk = (k + i) % 3 !== 0;
          const name = sdk ? "compat/three-steps" : `hostile/${HOSTILE[(k * 7 + i) % HOSTILE.length]}`;
          i++;
          try {
            const r = await fetch(`${target.url}/e/key`, {
              method: "POST",
              body: JSON.stringify([{ name, data: { n: cycle * 1e6 + k * 1e4 + i } }]),
              signal: AbortSignal.timeout(5000),
            });
            if (r.status === 200) acked.push(...(await r.json()).ids.map((id) => ({ id, sdk })));
          } catch { /* the server died under us: unacknowledged */ }
          await sleep(10); /* load, not a flood: the runs must also finish */
        }
      });
      await sleep(200 + Math.floor(Math.random() * 700));
      await s.kill9();
      stop = true;
      await Promise.all(senders);
      s = await s.restart();
    }
    assert.ok(acked.length > 100, `too few events were sent (${acked.length})`);
    for (const { id } of acked) {
      const ev = await api(s, `/v1/events/${id}`);
      assert.equal(ev.status, 200, `acknowledged event ${id} is missing after kill -9`);
    }
    for (const { id, sdk } of acked) {
      const runs = await waitEventRuns(s, id, 60000);
      assert.equal(runs.length, 1, `event ${id}: ${JSON.stringify(runs)}`);
      if (sdk) assert.equal(runs[0].status, "Completed", JSON.stringify(runs[0]));
      else assert.notEqual(runs[0].status, "Running");
    }
    assert.equal((await api(s, "/health")).json.ok, true);
  } finally {
    h.kill();
    await w.kill("SIGTERM");
    await s.stop();
  }
});
