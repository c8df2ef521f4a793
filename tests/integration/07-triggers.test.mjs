// 07-triggers: which events start which functions, through the official
// inngest SDK: `if` expressions on triggers (v4 and v3) and prefix wildcards;
// a malformed expression, or one outside the supported subset, is refused at
// registration, naming the function, the field and the construct.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { addApp, api, sendEvents, sqliteOnly, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

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
    assert.deepEqual(r.json, {
      status: 400,
      error: "app exprs: function 'exprs-broken': trigger 0 'if': unexpected end of the expression at column 16 in 'event.data.x =='",
    });
    assert.equal((await api(s, "/v1/functions")).json.data.length, 0);
  } finally {
    await s.stop();
  }
});

// An expression outside the supported CEL subset used to be accepted and then
// never match (every evaluation failed). Each place an expression enters a
// registration refuses it, naming the function, the field and the construct.
test("expressions outside the supported subset are refused at registration", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const url = "http://127.0.0.1:9/api/inngest";
    const register = (fn) => api(s, "/fn/register", {
      method: "POST",
      body: {
        url, appName: "subset", functions: [{
          id: "subset-fn", name: "fn", triggers: [{ event: "a/b" }], ...fn,
          steps: { step: { id: "step", runtime: { type: "http", url: `${url}?fnId=subset-fn&stepId=step` } } },
        }],
      },
    });
    const cases = [
      [{ triggers: [{ event: "a/b", expression: 'event.data.x.matches("a.*")' }] },
        `trigger 0 'if': unsupported method call 'matches' at column 14 in 'event.data.x.matches("a.*")'`],
      [{ triggers: [{ event: "a/b" }, { event: "a/c", expression: "foo(event.data.x)" }] },
        "trigger 1 'if': unsupported function call 'foo' at column 1 in 'foo(event.data.x)'"],
      [{ triggers: [{ event: "a/b", expression: "in [1, 2]" }] },
        "trigger 0 'if': 'in' needs a value on its left, as in x in [1, 2] at column 1"],
      [{ triggers: [{ event: "a/b", expression: "async.data.id == event.data.id" }] },
        "trigger 0 'if': unknown variable 'async' (this expression can use event) at column 1"],
      [{ cancel: [{ event: "a/stop", if: "event.data.tags.exists(t, t == async.data.tag)" }] },
        "cancelOn 0 'if': unsupported macro 'exists' at column 17"],
      [{ concurrency: [{ limit: 1, key: "event.data.user.bar()" }] },
        "concurrency.key: unsupported method call 'bar' at column 17"],
      [{ throttle: { limit: 1, period: "1s", key: "lower(event.data.user)" } },
        "throttle.key: unsupported function call 'lower' at column 1"],
      [{ rateLimit: { limit: 1, period: "1s", key: "event.data.user in 'abc'" } },
        "rateLimit.key: 'in' needs a list (or a map) on its right, not a string at column 17"],
      [{ debounce: { period: "1s", key: "event.data.tags.map(t, t)" } },
        "debounce.key: unsupported macro 'map' at column 17"],
      [{ idempotency: "event.data.id.string()" }, "idempotency: unsupported method call 'string' (write string(x)) at column 15"],
      [{ singleton: { mode: "skip", key: "event.data.id.matches('x')" } }, "singleton.key: unsupported method call 'matches'"],
      [{ batchEvents: { maxSize: 2, timeout: "1s", key: "has(event)" } },
        "batchEvents.key: has() needs a field selection, as in has(event.data.x) at column 1"],
      [{ batchEvents: { maxSize: 2, timeout: "1s", if: "event.data.n + 1" } },
        "batchEvents.if: the expression is a number, not a condition (true or false) at column 1"],
      [{ priority: { run: "event.data.prio ? 1 : 'a' + 2" } },
        "priority.run: '+' cannot add a string and a number at column 27"],
      [{ priority: { run: "event.data.vip ? 'high' : 'low'" } },
        "priority.run: the expression is a string, not a number at column 1"],
      [{ triggers: [{ event: "a/b", expression: `event.data.x == 1${" || event.data.x == 1".repeat(70)}` }] },
        "trigger 0 'if': expression nested too deeply: more than 64 levels"],
      [{ triggers: [{ event: "a/b", expression: `'${"a".repeat(4100)}' == 'a'` }] },
        "trigger 0 'if': expression of 4109 bytes: at most 4096"],
    ];
    for (const [fn, want] of cases) {
      const r = await register(fn);
      assert.equal(r.status, 400, `${want}: ${r.text}`);
      assert.equal(r.json.status, 400);
      assert.ok(r.json.error.startsWith(`app subset: function 'subset-fn': ${want}`),
        `want "${want}", got "${r.json.error}"`);
    }
    assert.equal((await api(s, "/v1/functions")).json.data.length, 0, "nothing was registered");
    // what the subset supports is accepted in each of those places
    const ok = await register({
      triggers: [{ event: "a/b", expression: "event.data.x.startsWith('a') && size(event.data.tags) > 0" }],
      cancel: [{ event: "a/stop", if: "async.data.id == event.data.id" }],
      concurrency: [{ limit: 1, key: "event.data.user" }],
      batchEvents: { maxSize: 2, timeout: "1s", key: "string(event.data.n)", if: "has(event.data.n)" },
      priority: { run: "event.data.vip ? 60 : 0" },
    });
    assert.equal(ok.status, 200, ok.text);
  } finally {
    await s.stop();
  }
});

// Through the official SDK: the worker's sync is refused, and the operator who
// adds the app sees why (the SDK relays sysbusd's 400 answer to the sync).
test("the SDK's registration of an unsupported trigger `if` is refused with the reason (inngest v4)", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  const w = await startWorker({ sdk: "v4", server: s, env: { TRIGGER_IF: 'event.data.x.matches("a.*")' } });
  try {
    const r = await api(s, "/v1/apps", { method: "POST", body: { url: w.url } });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.code, "SYNC_FAILED", r.text);
    assert.match(r.json.error, /answered the sync with 400/);
    assert.ok(r.json.error.includes(
      `function 'compat-v4-custom-if': trigger 0 'if': unsupported method call 'matches' at column 14 in 'event.data.x.matches("a.*")'`),
      r.json.error);
    assert.equal((await api(s, "/v1/functions")).json.data.length, 0, "no function of the app was registered");
    // a sync started at the worker (PUT, as `npx inngest-cli` or a deploy hook does) gets the same
    const put = await fetch(w.url, { method: "PUT" });
    assert.equal(put.status, 400);
    assert.match((await put.json()).message, /function 'compat-v4-custom-if': trigger 0 'if': unsupported method call 'matches' at column 14/);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

// A function an earlier sysbusd accepted with such an expression (stood in
// for by editing the stored config) is still loaded after a restart, so its
// runs go on, with a warning; a sync of it is refused with the reason.
test("a stored function with an expression now refused still loads, with a warning", {
  timeout: 30000, skip: sqliteOnly("edits the stored function with the sqlite3 shell in sysbus.db"),
}, async () => {
  const url = "http://127.0.0.1:9/api/inngest";
  const body = (expression) => ({
    url, appName: "legacy", functions: [{
      id: "legacy-fn", name: "fn", triggers: [{ event: "a/b", expression }],
      steps: { step: { id: "step", runtime: { type: "http", url: `${url}?fnId=legacy-fn&stepId=step` } } },
    }],
  });
  let s = await startSysbusd();
  try {
    assert.equal((await api(s, "/fn/register", { method: "POST", body: body("event.data.x == 1") })).status, 200);
    await s.stop();
    const sql = "UPDATE functions SET config = replace(config, 'event.data.x == 1', 'event.data.x.matches(''a'')')";
    const r = spawnSync("sqlite3", [path.join(s.dataDir, "sysbus.db"), sql], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    s = await s.restart();
    const [fn] = (await api(s, "/v1/functions")).json.data;
    assert.equal(fn.id, "legacy-fn");
    assert.equal(fn.triggers[0].expression, "event.data.x.matches('a')");
    const warn = s.out.lines.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .find((j) => j.event === "function_expression_refused");
    assert.ok(warn, s.out.lines.join("\n"));
    assert.match(warn.msg, /legacy-fn.*unsupported method call 'matches' at column 14/);
    const again = await api(s, "/fn/register", { method: "POST", body: body("event.data.x.matches('a')") });
    assert.equal(again.status, 400);
    assert.match(again.json.error, /function 'legacy-fn': trigger 0 'if': unsupported method call 'matches'/);
    assert.equal((await api(s, "/v1/functions")).json.data.length, 1, "the stored set stays");
  } finally {
    await s.stop();
  }
});
