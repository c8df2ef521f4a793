// 07-triggers: which events start which functions, through the official
// inngest SDK: `if` expressions on triggers (v4 and v3) and prefix wildcards;
// a malformed expression is refused at registration, naming the function.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addApp, api, sendEvents, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

for (const sdk of ["v4", "v3"]) {
  test(`trigger expressions and wildcards (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const w = await startWorker({ sdk, server: s });
    try {
      await addApp(s, w);
      const fns = (await api(s, "/v1/functions")).json.data;
      const cond = fns.find((f) => f.id === `compat-${sdk}-conditional`);
      assert.match(cond.triggers[0].expression, /event.data.amount > 100/);

      const [small, bigFree, bigPro, wildA, wildB, notWild] = await sendEvents(s, [
        { name: "compat/cond", data: { amount: 50, plan: "pro" } },
        { name: "compat/cond", data: { amount: 500, plan: "free" } },
        { name: "compat/cond", data: { amount: 500, plan: "team" } },
        { name: "compat/wild/a" },
        { name: "compat/wild/b.c" },
        { name: "compat/wildly" },
      ]);
      const runsOf = async (id) => (await api(s, `/v1/events/${id}/runs`)).json.data;
      assert.equal((await runsOf(small)).length, 0, "amount 50 does not match");
      assert.equal((await runsOf(bigFree)).length, 0, "plan free does not match");
      const [r] = await waitEventRuns(s, bigPro);
      assert.equal(r.status, "Completed");
      assert.deepEqual(r.output, { amount: 500 });
      for (const id of [wildA, wildB]) {
        const [wr] = await waitEventRuns(s, id);
        assert.equal(wr.status, "Completed");
        assert.equal(wr.function_id, `compat-${sdk}-wildcard`);
      }
      assert.equal((await runsOf(notWild)).length, 0, "compat/wildly is not under compat/wild/");
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("a malformed trigger expression is refused at registration", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const url = "http://127.0.0.1:9/api/inngest";
    const r = await api(s, "/fn/register", {
      method: "POST",
      body: {
        url, appName: "exprs", functions: [{
          id: "exprs-broken", name: "broken", triggers: [{ event: "a/b", expression: "event.data.x ==" }],
          steps: { step: { id: "step", runtime: { type: "http", url: `${url}?fnId=exprs-broken&stepId=step` } } },
        }],
      },
    });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /exprs-broken/);
    assert.match(r.json.error, /invalid expression/);
    assert.equal((await api(s, "/v1/functions")).json.data.length, 0);
  } finally {
    await s.stop();
  }
});
