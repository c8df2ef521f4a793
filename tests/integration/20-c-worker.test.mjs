// 20-c-worker: system-bus-worker (the C SDK) against a real sysbusd: every
// diagnostic function and so every step primitive (run, retries, sleep,
// wait_for_event, parallel, invoke, send_event), self-registration, signed
// mode, the health endpoint, bad calls, roles, and the drain on SIGTERM.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import crypto from "node:crypto";
import {
  EVENT_KEY, SIGNING_KEY, api, readDiagLog, sendEvents, startCWorker, startSysbusd, tmpdir, waitEventRuns,
} from "./lib.mjs";

async function withWorld(fn, { dev = true, role, workerEnv } = {}) {
  const s = await startSysbusd({ dev });
  const diagLog = path.join(tmpdir(), "diag.log");
  const w = await startCWorker({ server: s, diagLog, role, env: workerEnv });
  try {
    await fn(s, w, diagLog);
  } finally {
    try {
      await w.stop();
    } finally {
      await s.stop();
    }
  }
}

const run = async (s, name, data, timeout = 20000) => {
  const [id] = await sendEvents(s, [{ name, data }]);
  const runs = await waitEventRuns(s, id, timeout);
  return runs[0];
};

for (const dev of [true, false]) {
  test(`every diagnostic function completes (${dev ? "dev" : "signed"} mode)`, { timeout: 90000 }, async () => {
    await withWorld(async (s, w, diagLog) => {
      const apps = (await api(s, "/v1/apps")).json.data;
      assert.equal(apps.length, 1, "the worker registered itself");
      assert.equal(apps[0].id, "system-bus-host");
      assert.equal(apps[0].sdk, "sysbus-c:v0.1.0");

      const three = await run(s, "diag/three-steps", { n: 7 });
      assert.equal(three.status, "Completed");
      assert.deepEqual(three.output, { steps: 3, n: 7 });
      const steps = readDiagLog(diagLog).filter((l) => l.run === three.run_id).map((l) => l.step);
      assert.deepEqual(steps, ["one", "two", "three"], "each step ran once, in order");

      const flaky = await run(s, "diag/flaky", { fail_times: 2 });
      assert.deepEqual(flaky.output, { succeeded_on_attempt: 2 });
      assert.deepEqual(readDiagLog(diagLog).filter((l) => l.run === flaky.run_id).map((l) => l.attempt), [0, 1, 2]);
      const doomed = await run(s, "diag/flaky", { fail_times: 9 });
      assert.equal(doomed.status, "Failed");
      assert.match(doomed.error.message, /failing on purpose: attempt 4 of 9/, "retries 3 = 4 attempts");

      const slow = await run(s, "diag/slow", { ms: 300 });
      assert.deepEqual(slow.output, { slept_ms: 300 });

      const t0 = Date.now();
      const slept = await run(s, "diag/sleep", { duration: "1s" });
      assert.deepEqual(slept.output, { woke: true });
      assert.ok(Date.now() - t0 >= 1000, "the sleep lasted");
      const until = new Date(Date.now() + 1500).toISOString();
      const t1 = Date.now();
      assert.deepEqual((await run(s, "diag/sleep", { until })).output, { woke: true });
      assert.ok(Date.now() >= Date.parse(until) && Date.now() - t1 < 6000, "slept until the given time");

      const [waitId, timeoutId] = await sendEvents(s, [
        { name: "diag/wait", data: { id: "w1", timeout: "20s" } },
        { name: "diag/wait", data: { id: "w2", timeout: "1s" } },
      ]);
      // resend until the wait is registered (an event before it does not count)
      let matched;
      for (let i = 0; i < 100 && !matched; i++) {
        await sendEvents(s, [{ name: "diag/wait.resolve", data: { id: "w1", i } }]);
        const r = (await api(s, `/v1/events/${waitId}/runs?wait_ms=200`)).json.data;
        if (r[0] && r[0].status !== "Running") matched = r[0];
      }
      assert.equal(matched.output.matched, true);
      assert.equal(matched.output.event.data.id, "w1");
      assert.deepEqual((await waitEventRuns(s, timeoutId))[0].output, { matched: false });

      const par = await run(s, "diag/parallel", {});
      assert.deepEqual(par.output, ["a", "b", "c", "after"]);
      const parSteps = readDiagLog(diagLog).filter((l) => l.run === par.run_id).map((l) => l.step);
      assert.deepEqual([...parSteps].sort(), ["a", "after", "b", "c"], "each parallel step ran once");

      const inv = await run(s, "diag/invoke", { n: 3 });
      assert.deepEqual(inv.output, { child: { steps: 3, n: 3 } });

      const sent = await run(s, "diag/send", { n: 4 });
      assert.equal(sent.output.ids.length, 2);
      for (const id of sent.output.ids)
        assert.deepEqual((await waitEventRuns(s, id))[0].output, { steps: 3, n: 4 });
    }, { dev });
  });
}

test("health, introspection and bad calls", { timeout: 60000 }, async () => {
  await withWorld(async (s, w) => {
    const health = await (await fetch(w.origin + "/")).json();
    assert.equal(health.service, "system-bus");
    assert.equal(health.status, "running");
    assert.equal(health.count, health.functions.length);
    assert.ok(health.functions.includes("diag-three-steps"));
    assert.equal(health.worker.role, "host");
    assert.ok(Date.parse(health.worker.startedAt) > 0);
    assert.ok(Date.parse(health.worker.lastRegistrationAt) > 0);
    assert.deepEqual(health.worker.duplicateFunctionIds, []);
    assert.equal(health.worker.hasDuplicateFunctionIds, false);
    assert.equal(health.sdk.name, "sysbus-c");

    const intro = await (await fetch(w.url)).json();
    assert.equal(intro.mode, "cloud");
    assert.equal(intro.has_signing_key, true);
    assert.equal(intro.function_count, health.count);

    assert.equal((await fetch(w.url, { method: "DELETE" })).status, 405);
    const fnId = "system-bus-host-diag-three-steps";
    const body = JSON.stringify({ event: { name: "diag/three-steps", data: {} }, steps: {}, ctx: { run_id: "r1" } });
    const bad = await fetch(`${w.url}?fnId=${fnId}&stepId=step`, {
      method: "POST", body, headers: { "content-type": "application/json", "x-inngest-signature": "t=1&s=00" },
    });
    assert.equal(bad.status, 401, "a bad signature is refused");
    const unsigned = await fetch(`${w.url}?fnId=${fnId}&stepId=step`, { method: "POST", body });
    assert.equal(unsigned.status, 401, "a missing signature is refused");
    // correctly signed calls with bad content
    const signed = (b) => {
      const t = Math.floor(Date.now() / 1000);
      const key = SIGNING_KEY.replace(/^signkey-[a-z]+-/, "");
      const sig = crypto.createHmac("sha256", key).update(b + t).digest("hex");
      return { "content-type": "application/json", "x-inngest-signature": `t=${t}&s=${sig}` };
    };
    const unknown = await fetch(`${w.url}?fnId=nope&stepId=step`, { method: "POST", body, headers: signed(body) });
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).error, /no function 'nope'/);
    const notJson = await fetch(`${w.url}?fnId=${fnId}&stepId=step`, { method: "POST", body: "{oops", headers: signed("{oops") });
    assert.equal(notJson.status, 400);
    const noEvent = await fetch(`${w.url}?fnId=${fnId}&stepId=step`, { method: "POST", body: "{}", headers: signed("{}") });
    assert.equal(noEvent.status, 400);
    const ok = await fetch(`${w.url}?fnId=${fnId}&stepId=step`, { method: "POST", body, headers: signed(body) });
    assert.equal(ok.status, 206, "a good call runs its first step");
    assert.match(ok.headers.get("x-inngest-signature"), /^t=\d+&s=[0-9a-f]{64}$/, "the answer is signed");
    assert.equal((await ok.json())[0].op, "StepRun");
  }, { dev: false });
});

test("roles: cluster serves story-pipeline; an unknown role falls back to host", { timeout: 60000 }, async () => {
  await withWorld(async (s) => {
    const story = await run(s, "story/submitted", { title: "T", text: "  Hello   world.  More ", author: "a" });
    assert.equal(story.status, "Completed");
    assert.deepEqual(story.output, { title: "T", words: 3, summary: "Hello world." });
    const bad = await run(s, "story/submitted", { title: "T" });
    assert.equal(bad.status, "Failed");
    assert.match(bad.error.message, /needs data.title and data.text/);
  }, { role: "cluster" });
  const s = await startSysbusd();
  const w = await startCWorker({ server: s, role: "banana" });
  try {
    assert.ok(w.out.lines.some((l) => l.includes('"bad_role"')), "a warning names the bad role");
    assert.equal(w.appId, "system-bus-host");
  } finally {
    await w.stop();
    await s.stop();
  }
});

test("rolling restart: SIGTERM drains the old worker while a new one takes over", { timeout: 90000 }, async () => {
  const s = await startSysbusd();
  const diagLog = path.join(tmpdir(), "diag.log");
  const a = await startCWorker({ server: s, diagLog });
  let b;
  try {
    const ids = await sendEvents(s, [
      ...[1, 2, 3, 4].map((n) => ({ name: "diag/slow", data: { ms: 1500, n } })),
      { name: "diag/three-steps", data: { n: 1 } },
    ]);
    const slowStarted = () => readDiagLog(diagLog).filter((l) => l.fn === "diag-slow").length;
    for (let i = 0; i < 250 && slowStarted() < 4; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(slowStarted(), 4, "four slow calls in flight on the old worker");
    b = await startCWorker({ server: s, diagLog }); // same app id: the server now calls b
    a.proc.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    const during = await fetch(`${a.url}?fnId=system-bus-host-diag-three-steps&stepId=step`, {
      method: "POST", body: JSON.stringify({ event: { name: "x", data: {} } }),
    });
    assert.equal(during.status, 503, "a new call to the draining worker is turned away");
    assert.equal((await a.out.exit).code, 0, "the old worker exits 0 after its calls finished");
    assert.ok(a.out.lines.some((l) => l.includes('"stopped"')), "it drained within the grace");
    for (const id of ids) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
    const seen = new Map();
    for (const l of readDiagLog(diagLog)) {
      const k = `${l.run} ${l.step}`;
      seen.set(k, (seen.get(k) || 0) + 1);
    }
    for (const [k, n] of seen) assert.equal(n, 1, `step ${k} ran ${n} times`);
    assert.equal(seen.size, 4 + 3);
  } finally {
    await a.stop();
    if (b) await b.stop();
    await s.stop();
  }
});

test("webhooks: signed deliveries become events, bad ones are refused", { timeout: 60000 }, async () => {
  const secrets = { GITHUB_WEBHOOK_SECRET: "gh-secret", VERCEL_WEBHOOK_SECRET: "vc-secret", WEBHOOK_SECRET_ACME: "acme-secret" };
  await withWorld(async (s, w) => {
    const post = (provider, body, headers = {}) =>
      fetch(`${w.origin}/webhooks/${provider}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
    const hmac = (alg, key, body) => crypto.createHmac(alg, key).update(body).digest("hex");
    const body = JSON.stringify({ action: "opened", number: 7 });

    const gh = await post("github", body, {
      "x-hub-signature-256": "sha256=" + hmac("sha256", "gh-secret", body),
      "x-github-event": "pull_request", "x-github-delivery": "d-1",
    });
    assert.equal(gh.status, 200);
    const ghReply = await gh.json();
    assert.equal(ghReply.event, "github/webhook.received");
    const ev = (await api(s, `/v1/events/${ghReply.ids[0]}`)).json.data;
    assert.equal(ev.name, "github/webhook.received");
    assert.deepEqual(ev.data.payload, { action: "opened", number: 7 });
    assert.equal(ev.data.headers["X-GitHub-Event"], "pull_request");

    const vc = await post("vercel", body, { "x-vercel-signature": hmac("sha1", "vc-secret", body) });
    assert.equal(vc.status, 200);
    const acme = await post("acme", body, { "x-webhook-signature": hmac("sha256", "acme-secret", body) });
    assert.equal(acme.status, 200);

    assert.equal((await post("github", body, { "x-hub-signature-256": "sha256=" + hmac("sha256", "wrong", body) })).status, 401);
    assert.equal((await post("github", body)).status, 401, "a missing signature is refused");
    assert.equal((await post("vercel", body + " ", { "x-vercel-signature": hmac("sha1", "vc-secret", body) })).status, 401);
    assert.equal((await post("nobody", body, { "x-webhook-signature": "00" })).status, 404, "no secret, no provider");
    assert.equal((await post("Bad_Name", body)).status, 404);
    const notJson = "not json";
    assert.equal((await post("acme", notJson, { "x-webhook-signature": hmac("sha256", "acme-secret", notJson) })).status, 400);
    const huge = "x".repeat(6 << 20);
    assert.equal((await post("acme", huge, { "x-webhook-signature": "00" })).status, 413, "bodies over the limit");
    assert.equal((await fetch(`${w.origin}/webhooks/github`)).status, 405);
    const events = (await api(s, "/v1/events?limit=50")).json.data.filter((e) => e.name.endsWith("/webhook.received"));
    assert.equal(events.length, 3, "only the three good deliveries reached the bus");
  }, { workerEnv: secrets });
});

test("webhooks: a delivery the bus refuses for good gets 4xx, and no event key is logged", { timeout: 60000 }, async () => {
  const secrets = { GITHUB_WEBHOOK_SECRET: "gh-secret" };
  await withWorld(async (s, w) => {
    const hmac = (body) => "sha256=" + crypto.createHmac("sha256", "gh-secret").update(body).digest("hex");
    const post = (body, headers = {}) => fetch(`${w.origin}/webhooks/github`, {
      method: "POST", body, headers: { "content-type": "application/json", "x-hub-signature-256": hmac(body), ...headers } });
    // an id the bus refuses (over 512 bytes): sending it again would not help
    const long = await post('{"a":1}', { "x-github-delivery": "d".repeat(600) });
    assert.equal(long.status, 400, await long.clone().text());
    const j = await long.json();
    assert.equal(j.code, "REJECTED_BY_BUS");
    assert.match(j.error, /HTTP 400.*longer than 512 bytes/);
    // a payload past the JSON envelope is refused by the worker itself
    const deep = '{"a":'.repeat(100) + "1" + "}".repeat(100);
    const d = await post(deep);
    assert.equal(d.status, 400);
    assert.equal((await d.json()).code, "TOO_DEEP");
    // the bus gone: the provider is told to retry
    await s.stop();
    const down = await post('{"a":2}', { "x-github-delivery": "d-2" });
    assert.equal(down.status, 502);
    const log = w.out.lines.join("\n");
    assert.match(log, /webhook_not_forwarded/);
    assert.ok(!log.includes(EVENT_KEY), "the event key appears in the worker's log");
  }, { dev: false, workerEnv: secrets });
});

// A port nothing listens on right now (for a process started later).
async function freePort() {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

test("self-registration retries until the server is up; serve origin; drain grace", { timeout: 60000 }, async () => {
  const port = await freePort();
  const fake = { url: `http://127.0.0.1:${port}`, dev: true };
  const diagLog = path.join(tmpdir(), "diag.log");
  const w = await startCWorker({
    server: fake, diagLog, waitRegistered: false,
    env: { INNGEST_SERVE_ORIGIN: "http://localhost.test:9999/", SYSBUS_DRAIN_GRACE: "500ms" },
  });
  let s;
  try {
    // the worker is up before the server: its first attempts fail
    for (let i = 0; i < 100 && !w.out.lines.some((l) => l.includes('"register_failed"')); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(w.out.lines.some((l) => l.includes('"register_failed"')), "a failed attempt is logged");
    s = await startSysbusd({ args: ["--port", String(port)] });
    for (let i = 0; i < 200 && !w.out.lines.some((l) => l.includes('"registered"')); i++)
      await new Promise((r) => setTimeout(r, 50));
    const apps = (await api(s, "/v1/apps")).json.data;
    assert.equal(apps.length, 1, "registered without anyone asking");
    assert.equal(apps[0].url, "http://localhost.test:9999/api/inngest", "the advertised origin is used");
    // a call longer than the drain grace: the worker still exits 0 after the grace
    const body = JSON.stringify({ event: { name: "diag/slow", data: { ms: 5000 } }, steps: {}, ctx: { run_id: "r" } });
    const slow = fetch(`${w.url}?fnId=system-bus-host-diag-slow&stepId=step`, { method: "POST", body }).catch(() => null);
    for (let i = 0; i < 100 && !readDiagLog(diagLog).length; i++) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    w.proc.kill("SIGTERM");
    const exit = await w.out.exit;
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - t0 < 3000, "it did not wait for the 5 s call");
    assert.ok(w.out.lines.some((l) => l.includes('"drain_timeout"')), "the abandoned call is logged");
    await slow;
  } finally {
    await w.stop();
    if (s) await s.stop();
  }
});
