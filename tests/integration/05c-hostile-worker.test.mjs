// 05c-hostile-worker: a worker speaking the protocol with hostile answers
// (tests/hostile/worker.mjs: not the inngest SDK, on purpose). Every run
// must end in a clear state with a readable reason, sysbusd must never die,
// and a restart on the same data must not call anything again.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { api, sendEvents, sqliteOnly, startHostileWorker, startSysbusd, tmpdir, until, waitEventRuns } from "./lib.mjs";

// What each hostile function's run must end as.
const expected = {
  good: { status: "Completed" },
  "deep-ok": { status: "Completed" },
  "deep-step": { status: "Failed", error: /ResponseTooDeep|nested deeper than 64/ },
  "deep-step-2000": { status: "Failed", error: /nested deeper than 64/ },
  "deep-output": { status: "Failed", error: /nested deeper than 64/ },
  "deep-error": { status: "Failed", error: /nested deeper than 64/ },
  "invalid-json": { status: "Failed", error: /list of step operations/ },
  "bad-utf8": { status: "Failed", error: /list of step operations/ },
  "unknown-op": { status: "Failed", error: /unsupported step operation 'Frobnicate'/ },
  "nul-op": { status: "Failed", error: /list of step operations/ },
  "nul-step-id": { status: "Failed", error: /without a valid id/ },
  "many-ops": { status: "Failed", error: /1001 step operations in one response; at most 1000/ },
  "long-name": { status: "Completed" },
  "wait-nul": { status: "Failed", error: /control character/ },
  "invoke-nul": { status: "Failed", error: /opts.function_id contains a control character/ },
  "invoke-then-fail": { status: "Failed", error: /unsupported step operation 'Frobnicate'/ },
  "huge-body": { status: "Failed", error: /larger than/ },
  hang: { status: "Failed", error: /did not answer within/ },
  "mid-body-close": { status: "Failed", error: /unreachable/ },
  "deep-checkpoint": { status: "Completed" },
  "nul-checkpoint-id": { status: "Completed" },
  sleepy: { status: "Completed" },
};

test("a hostile worker cannot crash sysbusd, and each run ends with a reason", { timeout: 120000 }, async () => {
  const dir = tmpdir("hostile-");
  const callLog = path.join(dir, "calls.log");
  const args = ["--call-timeout", "1s", "--transport-retry-window", "800ms", "--transport-backoff-max", "100ms"];
  let s = await startSysbusd({ args });
  const w = await startHostileWorker(s, { callLog });
  try {
    const names = Object.keys(expected);
    const ids = await sendEvents(s, names.map((n) => ({ name: `hostile/${n}` })));
    const runs = {};
    for (let i = 0; i < names.length; i++) {
      const [run] = await waitEventRuns(s, ids[i], 30000);
      runs[names[i]] = run;
      const want = expected[names[i]];
      assert.equal(run.status, want.status, `${names[i]}: ${JSON.stringify(run).slice(0, 600)}`);
      if (want.error) assert.match(run.error?.message ?? "", want.error, names[i]);
      if (want.status === "Failed") assert.ok(run.error.name, `${names[i]}: the error has a name`);
    }
    // inside the limit: stored and returned whole
    assert.equal(JSON.stringify(runs["deep-ok"].output), '{"a":'.repeat(60) + "1" + "}".repeat(60));
    // the deep checkpoint was refused with a clear 400, and nothing else broke
    assert.equal(runs["deep-checkpoint"].output.checkpoint_status, 400);
    assert.match(runs["deep-checkpoint"].output.checkpoint.error, /nested deeper than 64/);
    assert.equal(runs["nul-checkpoint-id"].output.checkpoint_status, 400);
    assert.match(runs["nul-checkpoint-id"].output.checkpoint.error, /no valid id/);
    const steps = await api(s, `/v1/runs/${runs["long-name"].run_id}/steps`);
    assert.equal(steps.status, 200, steps.text);
    assert.ok(steps.text.length < 20000, "a 100 KB display name is not stored");
    // every page that shows these runs and events can still be encoded
    for (const p of ["/v1/runs?limit=100", "/v1/events?limit=100", "/v1/functions", "/v1/apps"]) {
      const r = await api(s, p);
      assert.equal(r.status, 200, `${p}: ${r.text.slice(0, 300)}`);
    }
    // the invocation asked for before the failing op was not started
    const invoked = await api(s, "/v1/events?name=inngest/function.invoked&limit=10");
    assert.deepEqual(invoked.json.data, [], "no function was invoked for a run that ended");
    assert.equal((await api(s, "/health")).json.ok, true);

    // a restart on the same data: nothing is called again, nothing fatal
    const callsBefore = fs.readFileSync(callLog, "utf8");
    await s.stop();
    s = await s.restart();
    for (let i = 0; i < names.length; i++) {
      const [run] = await waitEventRuns(s, ids[i], 10000);
      assert.equal(run.status, expected[names[i]].status, `${names[i]} after restart`);
    }
    const health = await api(s, "/health");
    assert.equal(health.json.ok, true);
    assert.equal(fs.readFileSync(callLog, "utf8"), callsBefore, "no call was made again after the restart");
  } finally {
    w.kill();
    await s.stop();
  }
});

// A value that an older sysbusd accepted (an event nested 997 deep) is
// planted in the store under a sleeping run. Its end embeds the event in
// inngest/function.finished, which can no longer be encoded whole: the run
// must still end (the lifecycle event names the event instead of embedding
// it), not retry for ever, and every page must still be served.
test("data stored before the JSON envelope cannot wedge a run or a page", {
  timeout: 60000, skip: sqliteOnly("plants the old event with the sqlite3 shell in sysbus.db"),
}, async () => {
  const dir = tmpdir("hostile-legacy-");
  const callLog = path.join(dir, "calls.log");
  let s = await startSysbusd();
  const w = await startHostileWorker(s, { callLog });
  try {
    const [id] = await sendEvents(s, [{ name: "hostile/sleepy" }]);
    await until("the sleepy run to sleep", () => fs.existsSync(callLog) && fs.readFileSync(callLog, "utf8").includes("sleepy"));
    const ev = (await api(s, `/v1/events/${id}`)).json.data;
    await s.stop();
    const deep = '{"a":'.repeat(997) + "1" + "}".repeat(997);
    const body = `{"data":${deep},"id":"${ev.id}","name":"hostile/sleepy","ts":${ev.ts},"user":{}}`;
    const sql = `UPDATE events SET body='${body}' WHERE id='${id}';`;
    const r = spawnSync("sqlite3", [path.join(s.dataDir, "sysbus.db"), sql], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    s = await s.restart();
    const [run] = await waitEventRuns(s, id, 20000);
    assert.equal(run.status, "Completed", JSON.stringify(run).slice(0, 500));
    const finished = await until("the run's function.finished event", async () => {
      const page = await api(s, "/v1/events?name=inngest/function.finished&limit=10");
      return page.status === 200 && page.json.data.find((e) => e.data.run_id === run.run_id);
    });
    assert.equal(finished.data.event.name, "hostile/sleepy");
    assert.match(finished.data.event.sysbus_note, /nested too deeply/);
    const events = await api(s, "/v1/events?limit=50");
    assert.equal(events.status, 200, events.text.slice(0, 300));
    const shown = events.json.data.find((e) => e.internal_id === id || e.id === ev.id);
    assert.ok(shown, "the planted event is listed");
    assert.equal((await api(s, `/v1/events/${id}`)).status, 200);
    assert.equal((await api(s, "/health")).json.ok, true);
  } finally {
    w.kill();
    await s.stop();
  }
});

// A change the store refuses for good (here: a trigger planted with the
// sqlite3 shell refuses one step's row) ends the run with the store's reason
// instead of being retried every second: no later failure loops.
test("a change the store can never take ends its run with the reason", {
  timeout: 60000, skip: sqliteOnly("plants the refusing trigger with the sqlite3 shell in sysbus.db"),
}, async () => {
  const dir = tmpdir("hostile-poison-");
  const callLog = path.join(dir, "calls.log");
  let s = await startSysbusd();
  const w = await startHostileWorker(s, { callLog });
  try {
    await s.stop();
    const sql = "CREATE TRIGGER refuse_poison BEFORE INSERT ON steps WHEN NEW.hash = 'poison' " +
      "BEGIN SELECT RAISE(ABORT, 'planted refusal'); END;";
    const r = spawnSync("sqlite3", [path.join(s.dataDir, "sysbus.db"), sql], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    s = await s.restart();
    const [id, pid] = await sendEvents(s, [{ name: "hostile/poison-step" }, { name: "hostile/poison-parallel" }]);
    const [run] = await waitEventRuns(s, id, 20000);
    assert.equal(run.status, "Failed");
    assert.equal(run.error.name, "StateNotStorable");
    assert.match(run.error.message, /planted refusal/);
    const [prun] = await waitEventRuns(s, pid, 20000);
    assert.equal(prun.status, "Failed", JSON.stringify(prun));
    assert.equal(prun.error.name, "StateNotStorable");
    const calls = fs.readFileSync(callLog, "utf8").split("\n").filter((l) => l.startsWith("poison-step"));
    assert.equal(calls.length, 1, "the refused step was not called again");
    const finished = await until("its function.finished event", async () => {
      const page = await api(s, "/v1/events?name=inngest/function.finished&limit=10");
      return page.json.data.find((e) => e.data.run_id === run.run_id);
    });
    assert.equal(finished.data.error.name, "StateNotStorable");
    assert.equal((await api(s, "/health")).json.ok, true);
  } finally {
    w.kill();
    await s.stop();
  }
});
