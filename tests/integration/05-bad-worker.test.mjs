// 05-bad-worker: a worker that answers garbage. The "worker" here is a small
// Node HTTP server standing in for a broken deployment (wrong service behind
// the URL, a proxy error page, a crashed SDK): it is deliberately NOT the
// inngest SDK, because the point is input no SDK would send. sysbusd must
// end each run with a readable reason, never crash, hang or lose the run.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { api, sendEvents, startSysbusd, until, waitEventRuns } from "./lib.mjs";

const SDK_HEADERS = { "content-type": "application/json", "x-inngest-sdk": "fake:0" };

// fnId -> what the broken worker answers
const behaviours = {
  "bad-not-sdk": (res) => { res.writeHead(200, { "content-type": "text/html" }); res.end("<html>hello</html>"); },
  "bad-json": (res) => { res.writeHead(200, SDK_HEADERS); res.end("{not json"); },
  "bad-ops": (res) => { res.writeHead(206, SDK_HEADERS); res.end('[{"nop":1}]'); },
  "bad-unknown-op": (res) => { res.writeHead(206, SDK_HEADERS); res.end('[{"op":"AIGateway","id":"abc","name":"x"}]'); },
  "bad-no-step-id": (res) => { res.writeHead(206, SDK_HEADERS); res.end('[{"op":"StepRun","data":1}]'); },
  "bad-400": (res) => {
    res.writeHead(400, { ...SDK_HEADERS, "x-inngest-no-retry": "true" });
    res.end('{"name":"ValidationError","message":"the input is wrong"}');
  },
  "bad-slow": () => { /* never answers */ },
  "bad-503": (res) => { res.writeHead(503, { "content-type": "text/plain" }); res.end("upstream down"); },
  "bad-reset": (res) => { res.socket.destroy(); },
};
const expected = {
  "bad-not-sdk": /X-Inngest-Sdk/,
  "bad-json": /not JSON/,
  "bad-ops": /list of step operations/,
  "bad-unknown-op": /unsupported step operation 'AIGateway'/,
  "bad-no-step-id": /without a valid id/,
  "bad-400": /the input is wrong/,
  "bad-slow": /did not answer within/,
  "bad-503": /unavailable.*503.*unreachable/,
  "bad-reset": /cannot reach worker.*unreachable/,
};

test("a broken worker fails runs with readable reasons", { timeout: 60000 }, async () => {
  const calls = {};
  const broken = http.createServer((req, res) => {
    const fnId = new URL(req.url, "http://x").searchParams.get("fnId").replace(/^broken-/, "");
    calls[fnId] = (calls[fnId] || 0) + 1;
    req.resume();
    req.on("end", () => behaviours[fnId](res));
  });
  await new Promise((r) => broken.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${broken.address().port}/api/inngest`;
  const s = await startSysbusd({ args: ["--call-timeout", "500ms", "--transport-retry-window", "800ms",
    "--transport-backoff-max", "100ms"] });
  try {
    const names = Object.keys(behaviours);
    const reg = await api(s, "/fn/register", {
      method: "POST",
      body: {
        url, appName: "broken", framework: "test", sdk: "test:0",
        functions: names.map((n) => ({
          id: `broken-${n}`, name: n, triggers: [{ event: `broken/${n}` }],
          steps: { step: { id: "step", name: "step", retries: { attempts: 0 },
            runtime: { type: "http", url: `${url}?fnId=broken-${n}&stepId=step` } } },
        })),
      },
    });
    assert.equal(reg.status, 200, reg.text);
    const ids = await sendEvents(s, names.map((n) => ({ name: `broken/${n}` })));
    for (let i = 0; i < names.length; i++) {
      const [run] = await waitEventRuns(s, ids[i], 20000);
      assert.equal(run.status, "Failed", `${names[i]}: ${JSON.stringify(run)}`);
      assert.match(run.error.message, expected[names[i]], names[i]);
    }
    assert.equal(calls["bad-400"], 1, "no retry after X-Inngest-No-Retry: true");
    assert.ok(calls["bad-503"] > 1, "a 503 is retried within the transport window");
    assert.equal((await api(s, "/health")).json.ok, true);
  } finally {
    await s.stop();
    broken.closeAllConnections();
    broken.close();
  }
});

// Retry-After of any number of digits is seconds, clamped to 24 h: a worker
// answering 500 with `Retry-After: 999999999` (9 digits, once taken for a
// date, unparseable, and ignored) has its run's next attempt due a day later.
test("a Retry-After of many digits delays the retry by the 24 h cap", { timeout: 30000 }, async () => {
  let calls = 0;
  const worker = http.createServer((req, res) => {
    calls++;
    req.resume();
    req.on("end", () => {
      res.writeHead(500, { ...SDK_HEADERS, "retry-after": "999999999" });
      res.end('{"name":"Error","message":"come back much later"}');
    });
  });
  await new Promise((r) => worker.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${worker.address().port}/api/inngest`;
  const s = await startSysbusd();
  try {
    const reg = await api(s, "/fn/register", {
      method: "POST",
      body: {
        url, appName: "later", framework: "test", sdk: "test:0",
        functions: [{
          id: "later-fn", name: "later", triggers: [{ event: "later/go" }],
          steps: { step: { id: "step", name: "step", retries: { attempts: 3 },
            runtime: { type: "http", url: `${url}?fnId=later-fn&stepId=step` } } },
        }],
      },
    });
    assert.equal(reg.status, 200, reg.text);
    const [ev] = await sendEvents(s, [{ name: "later/go" }]);
    const t0 = Date.now();
    const item = await until("the retry after the first failed attempt", async () => {
      const [run] = (await api(s, `/v1/events/${ev}/runs`)).json.data;
      if (!run) return null;
      const r = (await api(s, `/v1/runs/${run.run_id}`)).json.data;
      assert.equal(r.status, "Running", JSON.stringify(r));
      const q = (r.queue || []).find((x) => x.kind === "call");
      return q && q.attempt >= 1 ? { run: r, q } : null;
    });
    const day = 86400000;
    assert.equal(item.q.attempt, 1, JSON.stringify(item.q));
    assert.ok(item.q.due_at_ms >= t0 + day - 1000 && item.q.due_at_ms <= Date.now() + day,
      `next attempt due ${item.q.due_at} (${item.q.due_at_ms - t0} ms after the event), not ~24 h later`);
    assert.match(item.q.last_error.message, /come back much later/);
    assert.equal(calls, 1, "no second attempt before the Retry-After");
    assert.equal((await api(s, `/v1/runs/${item.run.run_id}`, { method: "DELETE" })).status, 200);
  } finally {
    await s.stop();
    worker.closeAllConnections();
    worker.close();
  }
});
