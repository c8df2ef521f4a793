// 05d-hostile-input: what a client can send to sysbusd's event API,
// registration and REST writes, past every limit of the JSON envelope
// (docs/sysbusd.md, "Limits"): each is a 4xx with a clear message, nothing
// of it is stored, and every page still encodes afterwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, startSysbusd } from "./lib.mjs";

const nested = (n) => '{"a":'.repeat(n) + "1" + "}".repeat(n);
const send = (s, raw) => api(s, `/e/${s.eventKey}`, { method: "POST", raw, token: null, headers: { "content-type": "application/json" } });

test("events past the envelope's limits are refused with 400 and a reason", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  try {
    // {"name":..,"data":X}: the event object is level 1, X counts from 2
    const ok = await send(s, `{"name":"deep/ok","data":${nested(63)}}`);
    assert.equal(ok.status, 200, ok.text);
    for (const depth of [64, 997, 1000, 1001, 2048, 5000]) {
      const r = await send(s, `{"name":"deep/no","data":${nested(depth)}}`);
      assert.equal(r.status, 400, `depth ${depth}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.code, "TOO_DEEP");
      assert.match(r.json.error, /nested deeper than 64 levels/);
    }
    // NUL and other controls in names and ids
    for (const [ev, what] of [
      [{ name: "a/b\u0000evil" }, /'name' contains a control character/],
      [{ name: "a/b\nx" }, /'name' contains a control character/],
      [{ name: "a/ok", id: "x\u0000a" }, /'id' contains a control character/],
      [{ name: "a/ok", v: "1\u0000" }, /'v' contains a control character/],
      [{ name: "n".repeat(513) }, /longer than 512 bytes/],
      [{ name: "a/ok", id: "i".repeat(513) }, /longer than 512 bytes/],
    ]) {
      const r = await send(s, JSON.stringify(ev));
      assert.equal(r.status, 400, `${JSON.stringify(ev).slice(0, 80)}: ${r.text}`);
      assert.match(r.json.error, what);
    }
    // integers a JavaScript client cannot hold exactly, and dates past 9999
    for (const ts of ["9007199254740993", "1e20", "253402300800000", "-1", "1.5"]) {
      const r = await send(s, `{"name":"a/ts","ts":${ts}}`);
      assert.equal(r.status, 400, `ts ${ts}: ${r.text}`);
      assert.match(r.json.error, /'ts' must be a timestamp/);
    }
    const good = await send(s, `{"name":"a/ts","ts":1795800000000}`);
    assert.equal(good.status, 200, good.text);
    // nothing refused was stored
    const page = await api(s, "/v1/events?limit=100");
    assert.equal(page.status, 200);
    const names = page.json.data.map((e) => e.name).sort();
    assert.deepEqual(names, ["a/ts", "deep/ok"]);
  } finally {
    await s.stop();
  }
});

test("registrations and REST writes past the limits are refused with 400", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const MB = "x".repeat(1 << 20);
  const fn = (over = {}) => ({
    id: "f1", name: "f1", triggers: [{ event: "a/b" }],
    steps: { step: { id: "step", name: "step", runtime: { type: "http", url: "http://127.0.0.1:1/api/inngest" } } },
    ...over,
  });
  const reg = (body) => api(s, "/fn/register", { method: "POST", body: { url: "http://127.0.0.1:1/api/inngest", appName: "a", framework: "t", sdk: "t", functions: [fn()], ...body } });
  try {
    for (const [body, what] of [
      [{ appName: MB }, /'appName' is longer than 512 bytes/],
      [{ appName: "a\u0000b" }, /'appName' contains a control character/],
      [{ url: `http://x/${MB}` }, /'url' is longer than 2048 bytes/],
      [{ sdk: MB }, /'sdk' is longer than 128 bytes/],
      [{ functions: [fn({ name: MB })] }, /'name' is longer than 512 bytes/],
      [{ functions: [fn({ id: "f\u0000x" })] }, /'id'.*control character/],
      [{ functions: [fn({ triggers: [{ event: "a/b\u0000c" }] })] }, /'event' contains a control character/],
      [{ functions: [fn({ triggers: [{ event: "e".repeat(513) }] })] }, /'event' is longer than 512 bytes/],
    ]) {
      const r = await reg(body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text.slice(0, 200)}`);
      assert.match(r.json.error, what);
    }
    const deep = await api(s, "/fn/register", { method: "POST", raw: `{"appName":"a","x":${nested(100)}}`, headers: { "content-type": "application/json" } });
    assert.equal(deep.status, 400);
    assert.match(deep.json.error, /nested deeper than 64/);
    // REST writes go through the same envelope
    const app = await api(s, "/v1/apps", { method: "POST", body: { url: `http://127.0.0.1:1/${"u".repeat(3000)}` } });
    assert.equal(app.status, 400, app.text.slice(0, 200));
    const cancel = await api(s, "/v1/cancellations", { method: "POST", raw: `{"function_id":"f1","x":${nested(2000)}}`, headers: { "content-type": "application/json" } });
    assert.equal(cancel.status, 400, cancel.text.slice(0, 200));
    assert.equal(cancel.json.code, "TOO_DEEP");
    // nothing was registered, and the pages are small
    const fns = await api(s, "/v1/functions");
    assert.equal(fns.status, 200);
    assert.equal(fns.json.data.length, 0);
    assert.ok(fns.text.length < 10000);
  } finally {
    await s.stop();
  }
});
