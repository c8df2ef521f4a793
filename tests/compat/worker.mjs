// worker.mjs - a worker on the official inngest SDK (v4 or v3), used by the
// compatibility tests and benchmarks to drive sysbusd exactly as a real user's
// worker would. Configured by environment:
//   SDK=v4|v3 (default v4)       which inngest major to load
//   PORT (default 0 = any)        listens on 127.0.0.1; prints {"event":"listening","port":N}
//   SYSBUS_URL                    sysbusd base URL (register, events)
//   SIGNING_KEY / EVENT_KEY       signed ("cloud") mode when SIGNING_KEY is set, else dev
//   APP_ID (default compat-<sdk>)
//   EXTRA_FUNCTION=1              adds a function "extra" (tests of re-sync)
//   TRIGGER_IF="<expr>"           adds a function "custom-if" whose trigger has that `if`
//   TICKER_CRON="..."             the cron of the function "ticker" (default: yearly)
//   EXEC_LOG=<file>               each step execution appends "<run> <fn> <step> <attempt> <ms>"
import http from "node:http";
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sdk = process.env.SDK || "v4";
const pkg = sdk === "v3" ? "inngest-v3" : "inngest";
const { Inngest, NonRetriableError, StepError, referenceFunction } = require(pkg);
const { serve } = require(`${pkg}/node`);

const base = process.env.SYSBUS_URL || "http://127.0.0.1:8288";
const signingKey = process.env.SIGNING_KEY || undefined;
const eventKey = process.env.EVENT_KEY || undefined;
const appId = process.env.APP_ID || `compat-${sdk}`;
const execLog = process.env.EXEC_LOG;

const clientOpts = { id: appId, isDev: !signingKey, baseUrl: base, eventKey };
if (sdk === "v4" && signingKey) clientOpts.signingKey = signingKey;
const inngest = new Inngest(clientOpts);

function logExec(runId, fnId, stepId, attempt) {
  if (execLog) fs.appendFileSync(execLog, `${runId} ${fnId} ${stepId} ${attempt} ${Date.now()}\n`);
}

// The same definitions for both SDK majors: v4 takes triggers in the options,
// v3 as a second argument.
const byId = {}; // function objects by id, for step.invoke
function define(opts, trigger, handler) {
  const fn = sdk === "v3" ? inngest.createFunction(opts, trigger, handler)
    : inngest.createFunction({ ...opts, triggers: [trigger] }, handler);
  byId[opts.id] = fn;
  return fn;
}

const functions = [
  define({ id: "three-steps", retries: 2 }, { event: "compat/three-steps" },
    async ({ event, step, runId, attempt }) => {
      const a = await step.run("one", () => { logExec(runId, "three-steps", "one", attempt); return { step: 1 }; });
      const b = await step.run("two", () => { logExec(runId, "three-steps", "two", attempt); return { step: 2, prev: a.step }; });
      const c = await step.run("three", () => { logExec(runId, "three-steps", "three", attempt); return { step: 3, prev: b.step }; });
      return { steps: c.step, n: event.data.n ?? null };
    }),
  define({ id: "flaky", retries: 3 }, { event: "compat/flaky" },
    async ({ event, step, runId, attempt }) => {
      const failTimes = event.data.fail_times ?? 2;
      const v = await step.run("flaky-step", () => {
        logExec(runId, "flaky", "flaky-step", attempt);
        if (attempt < failTimes) throw new Error(`flaky failure on attempt ${attempt}`);
        return { ok: true, attempt };
      });
      return v;
    }),
  define({ id: "non-retriable", retries: 3 }, { event: "compat/non-retriable" },
    async ({ step, runId, attempt }) => {
      await step.run("gives-up", () => {
        logExec(runId, "non-retriable", "gives-up", attempt);
        throw new NonRetriableError("this input can never work");
      });
      return "unreachable";
    }),
  define({ id: "thrower", retries: 2 }, { event: "compat/throw" },
    async ({ runId, attempt }) => {
      logExec(runId, "thrower", "fn", attempt);
      throw new Error("the function itself failed");
    }),
  define({ id: "slow", retries: 0 }, { event: "compat/slow" },
    async ({ event, step, runId, attempt }) => {
      const before = await step.run("before", () => { logExec(runId, "slow", "before", attempt); return 1; });
      const mid = await step.run("sleepy", async () => {
        logExec(runId, "slow", "sleepy", attempt);
        await new Promise((r) => setTimeout(r, event.data.ms ?? 200));
        return before + 1;
      });
      const after = await step.run("after", () => { logExec(runId, "slow", "after", attempt); return mid + 1; });
      return { after };
    }),
  define({ id: "conditional" }, { event: "compat/cond", if: "event.data.amount > 100 && event.data.plan in ['pro', 'team']" },
    async ({ event }) => ({ amount: event.data.amount })),
  define({ id: "wildcard" }, { event: "compat/wild/*" }, async ({ event }) => ({ name: event.name })),
  define({ id: "sleeper" }, { event: "compat/sleep" }, async ({ event, step }) => {
    const before = await step.run("before", () => Date.now());
    if (event.data.until) await step.sleepUntil("nap-until", new Date(event.data.until));
    else await step.sleep("nap", event.data.duration ?? "1s");
    const after = await step.run("after", () => Date.now());
    return { before, after };
  }),
  define({ id: "parallel" }, { event: "compat/parallel" }, async ({ event, step, runId, attempt }) => {
    const n = event.data.width ?? 3;
    const parts = await Promise.all(Array.from({ length: n }, (_, i) =>
      step.run(`part-${i}`, () => { logExec(runId, "parallel", `part-${i}`, attempt); return i * 10; })));
    const total = await step.run("sum", () => { logExec(runId, "parallel", "sum", attempt); return parts.reduce((a, b) => a + b, 0); });
    return { parts, total };
  }),
  define({ id: "fan-out" }, { event: "compat/fan-out" }, async ({ event, step }) => {
    const n = event.data.count ?? 3;
    const sent = await step.sendEvent("fan", Array.from({ length: n }, (_, i) => ({ name: "compat/fanned", data: { i, parent: event.data.tag } })));
    return { ids: sent.ids };
  }),
  define({ id: "fanned" }, { event: "compat/fanned" }, async ({ event }) => ({ i: event.data.i, parent: event.data.parent })),
  define({ id: "waiter" }, { event: "compat/wait" }, async ({ event, step, runId, attempt }) => {
    await step.run("prepare", () => 1);
    // runs on every call that gets past "prepare": the moment the wait is reached
    logExec(runId, "waiter", "reached-wait", attempt);
    if (event.data.hold_ms) await new Promise((r) => setTimeout(r, event.data.hold_ms));
    const got = await step.waitForEvent("approval", {
      event: "compat/wait.resolve", timeout: event.data.timeout ?? "10s", if: event.data.if ?? "async.data.id == event.data.id",
    });
    return { matched: got !== null, value: got ? got.data.value : null };
  }),
  define({
    id: "doomed", retries: 0,
    onFailure: async ({ event, error, runId }) => {
      // event is inngest/function.failed; event.data.event is the original event
      logExec(runId, "doomed-failure", "handler", 0);
      return { handled: true, message: error.message, original: event.data.event.data };
    },
  }, { event: "compat/doomed" }, async () => { throw new Error("doomed to fail"); }),
  define({ id: "on-finished" }, { event: "inngest/function.finished", if: `event.data.function_id == '${appId}-three-steps'` },
    async ({ event }) => ({ saw: event.data.function_id, result: event.data.result })),
  define({ id: "invoker" }, { event: "compat/invoke" }, async ({ event, step }) => {
    try {
      // data.ref: a function of this app that the server does not know
      const target = event.data.ref ? referenceFunction({ functionId: event.data.ref }) : byId[event.data.target];
      const res = await step.invoke("call-child", {
        function: target, data: event.data.payload ?? {},
        ...(event.data.timeout ? { timeout: event.data.timeout } : {}),
      });
      return { ok: true, res };
    } catch (e) {
      return { ok: false, message: e.message, name: e.name, stepError: e instanceof StepError, stepId: e.stepId ?? null };
    }
  }),
  define({ id: "cancellable", cancelOn: [{ event: "compat/cancel", if: "async.data.id == event.data.id" }] },
    { event: "compat/cancellable" }, async ({ event, step, runId, attempt }) => {
      await step.run("start", () => { logExec(runId, "cancellable", "start", attempt); return 1; });
      await step.sleep("long", event.data.duration ?? "1m");
      await step.run("after", () => { logExec(runId, "cancellable", "after", attempt); return 2; });
      return "not cancelled";
    }),
  define({ id: "ticker" }, { cron: process.env.TICKER_CRON || "0 0 1 1 *" }, async ({ event, runId, attempt }) => {
    logExec(runId, "ticker", "tick", attempt);
    return { name: event.name, cron: event.data.cron };
  }),
  define({ id: "bulky" }, { event: "compat/bulky" }, async ({ event, step }) => {
    const size = event.data.size ?? 1500000;
    const parts = [];
    for (const name of ["a", "b", "c"]) parts.push(await step.run(name, () => name.repeat(size)));
    return { lengths: parts.map((p) => p.length), heads: parts.map((p) => p.slice(0, 3)) };
  }),
  define({ id: "idempotent", idempotency: "event.data.key" }, { event: "compat/idempotent" },
    async ({ event }) => ({ key: event.data.key, n: event.data.n })),
  define({ id: "limited", rateLimit: { limit: 2, period: "1m", key: "event.data.user" } },
    { event: "compat/limited" }, async ({ event }) => ({ user: event.data.user, n: event.data.n })),
  define({ id: "single-skip", singleton: { key: "event.data.user", mode: "skip" } }, { event: "compat/single-skip" },
    async ({ event, step }) => { await step.sleep("hold", event.data.hold ?? "1s"); return { n: event.data.n }; }),
  define({ id: "single-cancel", singleton: { key: "event.data.user", mode: "cancel" } }, { event: "compat/single-cancel" },
    async ({ event, step }) => { await step.sleep("hold", event.data.hold ?? "1s"); return { n: event.data.n }; }),
  define({ id: "prioritized", priority: { run: "event.data.prio" } }, { event: "compat/prioritized" },
    async ({ event, runId, attempt }) => {
      logExec(runId, "prioritized", String(event.data.n), attempt);
      await new Promise((r) => setTimeout(r, event.data.hold ?? 0));
      return { n: event.data.n };
    }),
  // flow control in the engine: each logs its call's start and end
  define({ id: "one-at-a-time", concurrency: [{ limit: 1, key: "event.data.user" }] },
    { event: "compat/one-at-a-time" }, async ({ event, runId, attempt }) => {
      logExec(runId, "one-at-a-time", `start-${event.data.n}`, attempt);
      await new Promise((r) => setTimeout(r, event.data.hold ?? 300));
      logExec(runId, "one-at-a-time", `end-${event.data.n}`, attempt);
      return { n: event.data.n };
    }),
  define({ id: "two-at-a-time", concurrency: 2 }, { event: "compat/two-at-a-time" },
    async ({ event, runId, attempt }) => {
      logExec(runId, "two-at-a-time", `start-${event.data.n}`, attempt);
      await new Promise((r) => setTimeout(r, event.data.hold ?? 300));
      logExec(runId, "two-at-a-time", `end-${event.data.n}`, attempt);
      return { n: event.data.n };
    }),
  // several limits at once, and a limit shared by two functions (scope env)
  ...[["layered", { concurrency: [{ limit: 2 }, { limit: 1, key: "event.data.user" }] }],
    ["shared-a", { concurrency: [{ limit: 1, scope: "env", key: "'shared'" }] }],
    ["shared-b", { concurrency: [{ limit: 1, scope: "env", key: "'shared'" }] }],
  ].map(([id, opts]) => define({ id, ...opts }, { event: `compat/${id}` }, async ({ event, runId, attempt }) => {
    logExec(runId, id, `start-${event.data.n}`, attempt);
    await new Promise((r) => setTimeout(r, event.data.hold ?? 300));
    logExec(runId, id, `end-${event.data.n}`, attempt);
    return { n: event.data.n };
  })),
  define({ id: "throttled", throttle: { limit: 1, period: "1s" } }, { event: "compat/throttled" },
    async ({ event, runId, attempt }) => {
      logExec(runId, "throttled", `start-${event.data.n}`, attempt);
      return { n: event.data.n };
    }),
  define({ id: "start-timeout", concurrency: 1, timeouts: { start: "1s" } }, { event: "compat/start-timeout" },
    async ({ event }) => {
      await new Promise((r) => setTimeout(r, event.data.hold ?? 0));
      return { n: event.data.n };
    }),
  define({ id: "finish-timeout", timeouts: { finish: "3s" } }, { event: "compat/finish-timeout" },
    async ({ event, step, runId, attempt }) => {
      await step.run("before", () => { logExec(runId, "finish-timeout", "before", attempt); return 1; });
      await step.sleep("nap", event.data.nap ?? "30s");
      return "woke up";
    }),
  // deferred starts: a batch's events, a debounce's last event
  define({ id: "batched", batchEvents: { maxSize: 3, timeout: "2s", key: "event.data.user" } },
    { event: "compat/batched" }, async ({ events }) => events.map((e) => e.data.n)),
  define({ id: "debounced", debounce: { period: "1s", key: "event.data.user" } },
    { event: "compat/debounced" }, async ({ event, events }) => ({ n: event.data.n, count: events.length })),
  define({ id: "debounced-capped", debounce: { period: "1s", timeout: "2s" } },
    { event: "compat/debounced-capped" }, async ({ event }) => ({ n: event.data.n })),
  define({ id: "noop", retries: 0 }, { event: "compat/noop" }, async ({ event }) => ({ n: event.data.n ?? null })),
];

if (process.env.EXTRA_FUNCTION) {
  functions.push(define({ id: "extra" }, { event: "compat/extra" }, async () => "extra"));
}
if (process.env.TRIGGER_IF) {
  functions.push(define({ id: "custom-if" }, { event: "compat/custom-if", if: process.env.TRIGGER_IF }, async () => "custom"));
}

const handler = sdk === "v3"
  ? serve({ client: inngest, functions, signingKey })
  : serve({ client: inngest, functions });

const server = http.createServer(handler);
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ event: "listening", port: server.address().port, sdk, appId }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
