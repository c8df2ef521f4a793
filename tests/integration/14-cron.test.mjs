// 14-cron: cron triggers through the official inngest SDK. Uses sysbus's
// optional seconds field ("*/2 * * * * *": every 2 s) to keep the test
// short. A tick fires exactly once; across a kill -9 of sysbusd no tick fires
// twice and the latest missed tick fires once after the restart; a
// malformed cron is refused at registration, naming the function.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addApp, api, readExecLog, sleep, startSysbusd, startWorker, tmpdir } from "./lib.mjs";

async function tickerRuns(s, sdk) {
  return (await api(s, `/v1/runs?function_id=compat-${sdk}-ticker&limit=1000`)).json.data;
}

for (const sdk of ["v4", "v3"]) {
  test(`cron triggers fire once per tick (inngest ${sdk})`, { timeout: 60000 }, async () => {
    const s = await startSysbusd();
    const execLog = path.join(tmpdir(), "exec.log");
    const w = await startWorker({ sdk, server: s, execLog, env: { TICKER_CRON: "*/2 * * * * *" } });
    try {
      await addApp(s, w);
      await sleep(5500); // two or three ticks
      const runs = await tickerRuns(s, sdk);
      assert.ok(runs.length >= 2 && runs.length <= 3, `${runs.length} runs in 5.5 s`);
      for (const r of runs.filter((x) => x.status !== "Running")) {
        assert.equal(r.status, "Completed", JSON.stringify(r));
        assert.deepEqual(r.output, { name: "inngest/scheduled.timer", cron: "*/2 * * * * *" });
      }
      // fire times land on even seconds, one run per tick
      const starts = runs.map((r) => Math.floor(Date.parse(r.created_at) / 1000));
      assert.equal(new Set(starts).size, starts.length, "two runs for one tick");
      for (const t of starts) assert.equal(t % 2, 0, `fired at an odd second ${t}`);
    } finally {
      await w.kill("SIGTERM");
      await s.stop();
    }
  });
}

test("across kill -9: no double fire, the latest missed tick fires once", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s, env: { TICKER_CRON: "*/2 * * * * *" } });
  try {
    await addApp(s, w);
    await sleep(2500);
    await s.kill9();
    const before = Date.now();
    await sleep(5000); // two or three ticks pass while sysbusd is down
    s = await s.restart();
    await sleep(1000); // the catch-up fire, and the ticks after the restart
    const runs = (await tickerRuns(s, "v4")).map((r) => Date.parse(r.created_at));
    const duringDowntime = runs.filter((t) => t >= before && t < before + 5000);
    assert.equal(duringDowntime.length, 0, "nothing fires while down");
    const afterRestart = runs.filter((t) => t >= before + 5000);
    assert.ok(afterRestart.length >= 1 && afterRestart.length <= 2,
      `missed ticks must collapse into one catch-up run (got ${afterRestart.length})`);
    const seconds = runs.map((t) => Math.floor(t / 1000));
    assert.equal(new Set(seconds).size, seconds.length, "a tick fired twice");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("a malformed cron is refused at registration", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const url = "http://127.0.0.1:9/api/inngest";
    const r = await api(s, "/fn/register", {
      method: "POST",
      body: { url, appName: "crons", functions: [{ id: "crons-bad", name: "bad", triggers: [{ cron: "61 * * * *" }],
        steps: { step: { id: "step", runtime: { type: "http", url: `${url}?fnId=crons-bad&stepId=step` } } } }] },
    });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /crons-bad/);
    assert.match(r.json.error, /minute/);
  } finally {
    await s.stop();
  }
});
