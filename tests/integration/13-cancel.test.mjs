// 13-cancel: cancellation through the official inngest SDK: cancelOn (an
// event whose `if` matches the run's trigger cancels it, others do not) and
// bulk cancellation (POST /v1/cancellations). A cancelled run makes no
// further calls and ends Cancelled.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addApp, api, readExecLog, sendEvents, sleep, startSysbusd, startWorker, tmpdir, waitRun } from "./lib.mjs";

async function sleepingRun(s, eventId) {
  for (let i = 0; i < 200; i++) {
    const [r] = (await api(s, `/v1/events/${eventId}/runs`)).json.data;
    const q = r && (await api(s, `/v1/runs/${r.run_id}`)).json.data.queue;
    if (q && q.some((x) => x.kind === "sleep")) return r;
    await sleep(25);
  }
  throw new Error("the run never started sleeping");
}

for (const sdk of ["v4", "v3"]) {
  test(`cancelOn and bulk cancellation (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const execLog = path.join(tmpdir(), "exec.log");
    const w = await startWorker({ sdk, server: s, execLog });
    try {
      await addApp(s, w);
      const fn = (await api(s, "/v1/functions")).json.data.find((f) => f.id === `compat-${sdk}-cancellable`);
      assert.equal(fn.config.cancel[0].event, "compat/cancel");

      const [ex, ey, ez] = await sendEvents(s, [
        { name: "compat/cancellable", data: { id: "X" } },
        { name: "compat/cancellable", data: { id: "Y" } },
        { name: "compat/cancellable", data: { id: "Z", duration: "1s" } },
      ]);
      const rx = await sleepingRun(s, ex), ry = await sleepingRun(s, ey), rz = await sleepingRun(s, ez);

      await sendEvents(s, { name: "compat/cancel", data: { id: "X" } });
      const cx = await waitRun(s, rx.run_id, 10000);
      assert.equal(cx.status, "Cancelled");
      assert.equal((await api(s, `/v1/runs/${ry.run_id}`)).json.data.status, "Running", "Y does not match");

      const bulk = await api(s, "/v1/cancellations", {
        method: "POST", body: { function_id: `compat-${sdk}-cancellable`, if: "event.data.id == 'Y'" },
      });
      assert.equal(bulk.status, 200, bulk.text);
      assert.equal(bulk.json.data.run_count, 1);
      assert.deepEqual(bulk.json.data.run_ids, [ry.run_id]);
      assert.equal((await waitRun(s, ry.run_id, 10000)).status, "Cancelled");
      const list = (await api(s, "/v1/cancellations")).json.data;
      assert.equal(list[0].run_count, 1);

      // Z was not cancelled: it wakes and completes; X and Y never ran "after"
      const cz = await waitRun(s, rz.run_id, 20000);
      assert.equal(cz.output, "not cancelled");
      const log = readExecLog(execLog);
      for (const r of [rx, ry])
        assert.equal(log.filter((l) => l.run === r.run_id && l.step === "after").length, 0);

      const bad = await api(s, "/v1/cancellations", { method: "POST", body: { if: "event.data.x ==" } });
      assert.equal(bad.status, 400);
      // outside the subset (it would match no run): refused, saying what
      for (const [expr, want] of [
        ["event.data.id.matches('Y')", "if: unsupported method call 'matches' at column 15 in 'event.data.id.matches('Y')'"],
        ["async.data.id == 'Y'", "if: unknown variable 'async' (this expression can use event) at column 1"],
      ]) {
        const r = await api(s, "/v1/cancellations", { method: "POST", body: { function_id: `compat-${sdk}-cancellable`, if: expr } });
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.code, "INVALID_EXPRESSION", r.text);
        assert.ok(r.json.error.startsWith(want), r.json.error);
      }
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}
