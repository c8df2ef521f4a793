// hostile/worker.mjs - a worker that speaks the SDK protocol like a real one
// (registers with POST /fn/register, answers calls with X-Inngest-Sdk, 206
// step operations, 200 results, checkpoints) but answers each function with
// input that is hostile to sysbusd: JSON nested past the envelope's limit,
// invalid JSON, unknown or malformed operations, huge bodies, a hang, a close
// in the middle of a body. It is deliberately NOT the inngest SDK: the point
// is input no SDK would send. Used by tests/integration/05c-hostile-worker
// and 04b-crash-hostile.
//
// Environment: SYSBUS_URL (sysbusd), PORT (0 = any), APP_ID (default
// "hostile"), CALL_LOG (optional file: one line "<fnId> <run_id>" per call).
// Prints {"event":"listening","port":N} and {"event":"registered"} lines.
import http from "node:http";
import fs from "node:fs";

const SYSBUS = process.env.SYSBUS_URL;
const APP_ID = process.env.APP_ID || "hostile";
const CALL_LOG = process.env.CALL_LOG;
const SDK = { "content-type": "application/json", "x-inngest-sdk": "hostile:1" };

// A value nested n levels deep ({"a":{"a":...}}), written as text so that
// no JSON library of ours has to build it.
export const nested = (n) => '{"a":'.repeat(n) + "1" + "}".repeat(n);

const reply = (res, status, body, headers = {}) => {
  res.writeHead(status, { ...SDK, ...headers });
  res.end(body);
};
const ops = (res, list) => reply(res, 206, typeof list === "string" ? list : JSON.stringify(list));

// The steps already memoized in a call request (the hashes).
const done = (req) => Object.keys(req.body.steps || {});

// fnId -> (req, res): what the function answers. Functions with two steps
// complete on the second call, so a run that gets past its hostile step ends.
export const behaviours = {
  // control: a well-behaved two-step function
  good: (req, res) => {
    const d = done(req);
    if (!d.includes("a")) return ops(res, [{ op: "StepRun", id: "a", name: "a", data: { n: 1 } }]);
    reply(res, 200, JSON.stringify({ ok: true }));
  },
  // a step output just inside the limit is stored and the run completes
  "deep-ok": (req, res) => {
    if (!done(req).includes("a")) return ops(res, `[{"op":"StepRun","id":"a","data":${nested(60)}}]`);
    reply(res, 200, nested(60));
  },
  // the crash of the review: a StepRun nested 1000 deep
  "deep-step": (req, res) => ops(res, `[{"op":"StepRun","id":"d","data":${nested(1000)}}]`),
  "deep-step-2000": (req, res) => ops(res, `[{"op":"StepRun","id":"d","data":${nested(2000)}}]`),
  "deep-output": (req, res) => reply(res, 200, nested(1001)),
  "deep-error": (req, res) => ops(res, `[{"op":"StepError","id":"e","error":${nested(500)}}]`),
  "invalid-json": (req, res) => ops(res, '[{"op":"StepRun","id":"a","data":{not json'),
  "bad-utf8": (req, res) => {
    res.writeHead(206, SDK);
    res.end(Buffer.concat([Buffer.from('[{"op":"StepRun","id":"a","data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]')]));
  },
  "unknown-op": (req, res) => ops(res, [{ op: "Frobnicate", id: "a" }]),
  "nul-op": (req, res) => ops(res, [{ op: "StepRun\u0000x", id: "a", data: 1 }]),
  "nul-step-id": (req, res) => ops(res, [{ op: "StepRun", id: "a\u0000b", data: 1 }]),
  "many-ops": (req, res) => ops(res, Array.from({ length: 1001 }, (_, i) => ({ op: "StepRun", id: `s${i}`, data: i }))),
  // a display name of 100 KB is not stored as a name; the step still is
  "long-name": (req, res) => {
    if (!done(req).includes("a")) return ops(res, [{ op: "StepRun", id: "a", displayName: "n".repeat(100000), data: 1 }]);
    reply(res, 200, '"done"');
  },
  // a NUL must not invoke the function named by what precedes it ("hostile-good")
  "invoke-nul": (req, res) => {
    if (!done(req).includes("i")) return ops(res, [{ op: "InvokeFunction", id: "i", opts: { function_id: `${APP_ID}-good\u0000x`, payload: { data: {} } } }]);
    reply(res, 200, "null");
  },
  "wait-nul": (req, res) => ops(res, [{ op: "WaitForEvent", id: "w", name: "x/y\u0000z", opts: { timeout: "1h" } }]),
  "huge-body": (req, res) => {
    res.writeHead(206, SDK);
    const chunk = Buffer.alloc(1 << 20, 0x20);
    let left = 40;
    const more = () => { while (left-- > 0) if (!res.write(chunk)) return res.once("drain", more); res.end("[]"); };
    more();
  },
  hang: () => { /* never answers */ },
  "mid-body-close": (req, res) => {
    res.writeHead(206, { ...SDK, "content-length": "1000" });
    res.write('[{"op":"StepRun","id":"a","da');
    setTimeout(() => res.socket.destroy(), 20);
  },
  // a step the test's planted store trigger refuses (05c): the run must
  // end with the store's reason, not be called again for ever
  "poison-step": (req, res) => ops(res, [{ op: "StepRun", id: "poison", data: 1 }]),
  // the same in parallel: the refused step fails while another one of the
  // run commits (the run must still end with the store's reason)
  "poison-parallel": (req, res) => {
    if (req.stepId === "poison" || req.stepId === "fine") return ops(res, [{ op: "StepRun", id: req.stepId, data: 1 }]);
    ops(res, [{ op: "StepPlanned", id: "poison" }, { op: "StepPlanned", id: "fine" }]);
  },
  // an invocation asked for in the same answer as an op that fails the run
  // must not start: the run has ended
  "invoke-then-fail": (req, res) => ops(res, [
    { op: "InvokeFunction", id: "i", opts: { function_id: `${APP_ID}-good`, payload: { data: {} } } },
    { op: "Frobnicate", id: "x" }]),
  // sleeps first, then completes: a run to find in the store meanwhile
  sleepy: (req, res) => {
    if (!done(req).includes("z")) return ops(res, [{ op: "Sleep", id: "z", name: "1s" }]);
    reply(res, 200, JSON.stringify({ ok: true, event_name: req.body.event?.name }));
  },
  // checkpoints past the limits are refused with 400; the call then
  // completes normally and reports what its checkpoint got
  "deep-checkpoint": (req, res) => checkpoint(req, res, `{"op":"StepRun","id":"c","data":${nested(500)}}`),
  "nul-checkpoint-id": (req, res) => checkpoint(req, res, '{"op":"StepRun","id":"c\\u0000x","data":1}'),
};

async function checkpoint(req, res, step) {
  const ctx = req.body.ctx || {};
  const r = await fetch(`${SYSBUS}/v1/checkpoint/${ctx.run_id}/async`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: `{"run_id":"${ctx.run_id}","fn_id":"x","qi_id":${JSON.stringify(ctx.qi_id ?? 1)},"steps":[${step}]}`,
  });
  reply(res, 200, JSON.stringify({ checkpoint_status: r.status, checkpoint: await r.json().catch(() => null) }));
}

function functions(url) {
  return Object.keys(behaviours).map((id) => ({
    id: `${APP_ID}-${id}`, name: id, triggers: [{ event: `hostile/${id}` }],
    steps: { step: { id: "step", name: "step", retries: { attempts: 0 },
      runtime: { type: "http", url: `${url}?fnId=${APP_ID}-${id}&stepId=step` } } },
  }));
}

async function register(url) {
  const r = await fetch(`${SYSBUS}/fn/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ url, appName: APP_ID, framework: "hostile", sdk: "hostile:1", functions: functions(url) }),
  });
  if (r.status !== 200) throw new Error(`register: ${r.status} ${await r.text()}`);
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  if (req.method === "PUT") { // sysbusd's re-sync
    const url = `http://127.0.0.1:${server.address().port}/api/inngest`;
    register(url).then(() => reply(res, 200, '{"message":"synced"}'), (e) => reply(res, 500, JSON.stringify({ message: String(e) })));
    return;
  }
  if (req.method === "GET") return reply(res, 200, JSON.stringify({ function_count: Object.keys(behaviours).length }));
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const fnId = u.searchParams.get("fnId") || "";
    req.stepId = u.searchParams.get("stepId") || "step";
    const name = fnId.slice(APP_ID.length + 1);
    try { req.body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { req.body = {}; }
    if (CALL_LOG) fs.appendFileSync(CALL_LOG, `${name} ${req.body.ctx?.run_id ?? "?"}\n`);
    const b = behaviours[name];
    if (!b) return reply(res, 404, '{"message":"no such function"}');
    Promise.resolve(b(req, res)).catch((e) => { try { reply(res, 500, JSON.stringify({ message: String(e) })); } catch {} });
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", async () => {
  const port = server.address().port;
  console.log(JSON.stringify({ event: "listening", port, appId: APP_ID }));
  try {
    await register(`http://127.0.0.1:${port}/api/inngest`);
    console.log(JSON.stringify({ event: "registered" }));
  } catch (e) {
    console.log(JSON.stringify({ event: "register_failed", error: String(e) }));
  }
});
process.on("SIGTERM", () => { server.closeAllConnections(); server.close(() => process.exit(0)); });
