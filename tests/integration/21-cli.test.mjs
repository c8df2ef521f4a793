// 21-cli: the sysbus CLI against a real signed sysbusd and system-bus-worker:
// every command, and every error code (server down, worker down, wrong key,
// unknown run, bad JSON, bad usage). Every envelope printed is validated
// against docs/sysbus-envelope.schema.json.
//
// Stand-ins (in the second test only): `kubectl` is a shell script put first
// on PATH, because no Kubernetes API server can run on these machines; talon's
// /health is a small Node HTTP server until talon exists (issue 6).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import http from "node:http";
import {
  BIN, COMPAT, EVENT_KEY, ROOT, SIGNING_KEY, addApp, sendEvents, startCWorker, startSysbusd, startWorker, tmpdir,
  waitEventRuns,
} from "./lib.mjs";

const Ajv = createRequire(path.join(COMPAT, "package.json"))("ajv");
const validate = new Ajv({ allErrors: true }).compile(
  JSON.parse(fs.readFileSync(path.join(ROOT, "docs/sysbus-envelope.schema.json"), "utf8")));

// Runs sysbus; returns {code, env (the envelope: last stdout line), lines}.
function sysbus(args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BIN, "sysbus"), args, { env: { PATH: process.env.PATH, ...env } });
    let out = "", err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`sysbus ${args.join(" ")} hung`)); }, 30000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      const lines = out.trim().split("\n").filter(Boolean);
      let env;
      try { env = JSON.parse(lines[lines.length - 1]); } catch { env = undefined; }
      if (env && !args.includes("--help") && !validate(env))
        return reject(new Error(`envelope of sysbus ${args.join(" ")} breaks the schema: ${JSON.stringify(validate.errors)}\n${out}`));
      if (/AddressSanitizer|runtime error:/.test(err)) return reject(new Error(`sanitizer: ${err}`));
      resolve({ code, env, lines, out, err });
    });
  });
}

test("every command against a signed server and the C worker", { timeout: 120000 }, async () => {
  // a long retry base: a failed attempt stays in backoff while we look at it
  const s = await startSysbusd({ dev: false, args: ["--retry-base", "10m"] });
  const w = await startCWorker({ server: s });
  const env = { SYSBUS_URL: s.url, SYSBUS_SIGNING_KEY: SIGNING_KEY, SYSBUS_EVENT_KEY: EVENT_KEY };
  try {
    let r = await sysbus(["status"], env);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.env.ok, true);
    assert.deepEqual(r.env.result.checks.map((c) => c.name), ["sysbusd", "worker system-bus-host"]);
    assert.ok(r.env.result.checks.every((c) => c.ok && typeof c.latency_ms === "number"));
    assert.match(r.env.result.checks[1].detail, /^http:\/\/127\.0\.0\.1:\d+\/ status running; last sync \d{4}-/,
      "the worker's health endpoint was asked");

    r = await sysbus(["functions"], env);
    const fn = r.env.result.find((f) => f.id === "system-bus-host-diag-flaky");
    assert.deepEqual(fn, { id: "system-bus-host-diag-flaky", name: "diag-flaky", app: "system-bus-host",
      triggers: [{ event: "diag/flaky" }], retries: 3 });
    assert.ok(r.env.next_actions.some((a) => a.command === "sysbus send diag/flaky -d '{}'"));

    r = await sysbus(["apps"], env);
    assert.equal(r.env.result[0].reachable, true);
    assert.equal(r.env.result[0].function_count, 10);

    r = await sysbus(["send", "diag/three-steps", "-d", '{"n":5}', "--follow"], env);
    assert.equal(r.code, 0, r.out);
    const stream = r.lines.slice(0, -1).map((l) => JSON.parse(l));
    assert.deepEqual(stream.filter((x) => x.type === "step").map((x) => x.step.name), ["one", "two", "three"]);
    assert.equal(stream.filter((x) => x.type === "run").at(-1).run.status, "Completed");
    const run = r.env.result.runs[0];
    assert.deepEqual(run.output, { steps: 3, n: 5 });

    const data = path.join(s.dataDir, "data.json");
    fs.writeFileSync(data, '{"n": 6}');
    r = await sysbus(["send", "diag/three-steps", "-d", `@${data}`], env);
    assert.equal(r.code, 0);
    assert.match(r.env.result.event_id, /^[0-9A-Z]{26}$/);

    r = await sysbus(["runs", "--count", "1", "--function", "system-bus-host-diag-three-steps"], env);
    assert.equal(r.env.result.length, 1);
    assert.equal(r.env.result[0].stuck, false);

    r = await sysbus(["run", run.run_id], env);
    assert.equal(r.env.result.run.status, "Completed");
    assert.deepEqual(r.env.result.steps.map((x) => x.name), ["one", "two", "three"]);
    assert.ok(r.env.next_actions.some((a) => a.command.startsWith("sysbus send diag/three-steps -d '{\"n\":5}'")),
      JSON.stringify(r.env.next_actions));

    r = await sysbus(["events", "--name", "diag/three-steps", "--count", "5"], env);
    assert.equal(r.env.result.length, 2);

    r = await sysbus(["send", "diag/sleep", "-d", '{"duration":"1m"}', "--follow", "--timeout", "1"], env);
    assert.equal(r.code, 1);
    assert.equal(r.env.error.code, "TIMEOUT");
    r = await sysbus(["runs", "--status", "Running"], env);
    const sleeping = r.env.result[0].run_id;
    r = await sysbus(["run", sleeping], env);
    assert.equal(r.env.result.why.reason, "sleeping");
    assert.match(r.env.result.why.message, /^sleeping until \d{4}-/);

    // why a run is not progressing: waiting, backing off
    const runOf = async (name, data) => {
      const sent = await sysbus(["send", name, "-d", JSON.stringify(data)], env);
      for (let i = 0; i < 100; i++) {
        const ev = (await sysbus(["runs", "--status", "Running", "--count", "20"], env)).env.result
          .find((x) => x.event_id === sent.env.result.event_id);
        if (ev) {
          const got = await sysbus(["run", ev.run_id], env);
          if (got.env.result.why && got.env.result.why.reason !== "due") return got.env.result;
        }
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`no explained run for ${name}`);
    };
    let why = (await runOf("diag/wait", { id: "x", timeout: "1h" })).why;
    assert.equal(why.reason, "waiting_for_event");
    assert.match(why.message, /waiting for event diag\/wait.resolve matching async.data.id == event.data.id until/);
    why = (await runOf("diag/flaky", { fail_times: 5 })).why;
    assert.equal(why.reason, "backoff");
    assert.match(why.message, /after attempt 1 of 4: failing on purpose/);
    r = await sysbus(["cancel", sleeping], env);
    assert.equal(r.code, 0, r.out);
    r = await sysbus(["run", sleeping], env);
    assert.equal(r.env.result.run.status, "Cancelled");
    r = await sysbus(["cancel", sleeping], env);
    assert.equal(r.env.error.code, "NOT_RUNNING");

    r = await sysbus(["refresh", "--all"], env);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(r.env.result.map((a) => [a.app, a.action, a.functionCount]), [["system-bus-host", "clean", 10]]);

    for (const cmd of ["status", "functions", "apps", "refresh", "runs", "run", "events", "send", "cancel"]) {
      r = await sysbus([cmd, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`sysbus ${cmd}`));
    }
    r = await sysbus(["--human", "apps"], env);
    assert.match(r.out, /^id\s+url\s+sdk/m, "a table for humans");

    // errors
    r = await sysbus(["runs"], { ...env, SYSBUS_SIGNING_KEY: "signkey-test-00" });
    assert.deepEqual([r.code, r.env.error.code], [1, "UNAUTHORIZED"]);
    r = await sysbus(["send", "x"], { ...env, SYSBUS_EVENT_KEY: "wrong-key-never-printed" });
    assert.deepEqual([r.code, r.env.error.code], [1, "UNAUTHORIZED"]);
    assert.ok(!JSON.stringify(r).includes("wrong-key-never-printed"), "the event key is not printed");
    r = await sysbus(["run", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "NOT_FOUND"]);
    r = await sysbus(["send", "x", "-d", "{nope"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "INVALID_JSON"]);
    r = await sysbus(["send", "x", "-d", "[1,2]"], env);
    assert.equal(r.env.error.code, "INVALID_JSON");
    r = await sysbus(["runs", "--count", "zero"], env);
    assert.deepEqual([r.code, r.env.error.code], [2, "USAGE"]);
    r = await sysbus(["frobnicate"], env);
    assert.deepEqual([r.code, r.env.error.code], [2, "USAGE"]);

    // the worker goes away
    await w.stop();
    why = (await runOf("diag/three-steps", { n: 1 })).why;
    assert.equal(why.reason, "worker_unreachable");
    assert.match(why.message, /the worker is unreachable since \d{4}-.*failed tries/);
    r = await sysbus(["status"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "UNHEALTHY"]);
    assert.equal(r.env.error.details.checks.find((c) => c.name === "worker system-bus-host").ok, false);
    r = await sysbus(["apps"], env);
    assert.equal(r.env.result[0].reachable, false);
    r = await sysbus(["refresh"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "WORKER_UNREACHABLE"]);
    assert.equal(r.env.error.details.apps[0].action, "unreachable");
    r = await sysbus(["refresh", "--prune"], env);
    assert.equal(r.env.error.code, "CONFIRMATION_REQUIRED");
    r = await sysbus(["refresh", "--prune", "--yes"], env);
    assert.equal(r.env.result[0].action, "pruned");
    r = await sysbus(["apps"], env);
    assert.deepEqual(r.env.result, []);
  } finally {
    await w.stop();
    await s.stop();
  }
  // the server goes away
  const r = await sysbus(["runs"], { SYSBUS_URL: s.url });
  assert.deepEqual([r.code, r.env.error.code], [1, "SERVER_UNREACHABLE"]);
  const st = await sysbus(["status"], { SYSBUS_URL: s.url });
  assert.deepEqual([st.code, st.env.error.code], [1, "UNHEALTHY"]);
});

test("status checks talon and the worker Deployment when they are configured", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, "kubectl"), `#!/bin/sh
# stand-in kubectl: a context, and a Deployment with 1 of 2 replicas ready
case "$*" in
  "config current-context") echo test-cluster ;;
  "get deployment system-bus-worker -n joelclaw -o json"*) echo '{"spec":{"replicas":2},"status":{"readyReplicas":1}}' ;;
  *) exit 1 ;;
esac
`, { mode: 0o755 });
  const talon = http.createServer((req, res) => res.end(req.url === "/health" ? '{"ok":true}' : ""));
  await new Promise((r) => talon.listen(0, "127.0.0.1", r));
  const env = { SYSBUS_URL: s.url, PATH: `${dir}:${process.env.PATH}`,
    SYSBUS_TALON_URL: `http://127.0.0.1:${talon.address().port}` };
  try {
    const r = await sysbus(["status"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "UNHEALTHY"]);
    const checks = Object.fromEntries(r.env.error.details.checks.map((c) => [c.name, c]));
    assert.equal(checks.talon.ok, true);
    assert.equal(checks.kubernetes.ok, false);
    assert.equal(checks.kubernetes.detail, "1/2 replicas ready");
    assert.ok(r.env.next_actions.some((a) => a.command === "kubectl -n joelclaw describe deployment system-bus-worker"));
    talon.close();
    const down = await sysbus(["status", "--namespace", "other"], env);
    const c2 = Object.fromEntries(down.env.error.details.checks.map((c) => [c.name, c]));
    assert.equal(c2.talon.ok, false, "talon down is a failed check");
    assert.match(c2.kubernetes.detail, /failed/);

    // the server goes away while send --follow waits: it says so, it does not wait for its timeout
    const following = sysbus(["send", "nobody/listens", "--follow", "--timeout", "60"], env);
    await new Promise((res) => setTimeout(res, 500));
    await s.kill9();
    const f = await following;
    assert.deepEqual([f.code, f.env.error.code], [1, "SERVER_UNREACHABLE"]);
  } finally {
    talon.close();
    await s.stop();
  }
});

test("doctor: a healthy wiring, then a worker the server cannot reach", { timeout: 60000 }, async () => {
  const s = await startSysbusd({ dev: false });
  const env = { SYSBUS_URL: s.url, SYSBUS_SIGNING_KEY: SIGNING_KEY };
  let w = await startCWorker({ server: s });
  try {
    let r = await sysbus(["doctor"], env);
    assert.equal(r.code, 0, r.out);
    const names = r.env.result.checks.map((c) => c.name);
    for (const n of ["server", "clock server", "system-bus-host: reachable", "system-bus-host: mode and keys",
      "system-bus-host: functions", "system-bus-host: server round trip"])
      assert.ok(names.includes(n), `check ${n} in ${names}`);
    assert.ok(r.env.result.checks.every((c) => c.ok));

    // the worker advertises an address nobody can reach ("Unable to reach SDK URL")
    await w.stop();
    w = await startCWorker({ server: s, env: { INNGEST_SERVE_ORIGIN: "http://127.0.0.1:1" } });
    r = await sysbus(["doctor"], env);
    assert.deepEqual([r.code, r.env.error.code], [1, "UNHEALTHY"]);
    const trip = r.env.error.details.checks.find((c) => c.name === "system-bus-host: server round trip");
    assert.equal(trip.ok, false);
    assert.match(trip.fix, /INNGEST_SERVE_ORIGIN/);
    assert.match(r.env.error.details.checks.find((c) => c.name === "system-bus-host: reachable").fix, /start the worker/);

    // no key: the server refuses to list apps, and doctor says which key is missing
    r = await sysbus(["doctor"], { SYSBUS_URL: s.url });
    assert.match(r.env.error.details.checks.find((c) => c.name === "apps").fix, /--signing-key/);
  } finally {
    await w.stop();
    await s.stop();
  }
  const r = await sysbus(["doctor"], { SYSBUS_URL: s.url });
  assert.deepEqual([r.code, r.env.error.details.checks[0].ok], [1, false], "server down");
});

test("run: a run held by a concurrency key or a throttle says which", { timeout: 60000 }, async () => {
  const s = await startSysbusd();
  const w = await startWorker({ server: s });
  const env = { SYSBUS_URL: s.url };
  try {
    await addApp(s, w);
    // a worker without a health endpoint: status asks its serve URL instead
    const st = await sysbus(["status"], env);
    assert.equal(st.code, 0, st.out);
    assert.match(st.env.result.checks[1].detail, /\/api\/inngest; last sync/);
    const [first, second] = await sendEvents(s, [
      { name: "compat/one-at-a-time", data: { user: "a", n: 1, hold: 3000 } },
      { name: "compat/one-at-a-time", data: { user: "a", n: 2, hold: 10 } },
    ]);
    let why;
    for (let i = 0; i < 100 && !why; i++) {
      const runs = (await sysbus(["runs", "--status", "Running"], env)).env.result;
      const run = runs.find((x) => x.event_id === second);
      const got = run && (await sysbus(["run", run.run_id], env)).env.result.why;
      if (got && got.reason === "held_by_concurrency") why = got;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(why, "the second run is reported as held");
    assert.deepEqual(why.key, { kind: "concurrency", scope: "compat-v4-one-at-a-time", value: "a" });
    assert.match(why.message, /held by the concurrency limit of compat-v4-one-at-a-time on key 'a'/);
    const runs = (await sysbus(["runs", "--status", "Running"], env)).env.result;
    const busy = await sysbus(["run", runs.find((x) => x.event_id === first).run_id], env);
    assert.equal(busy.env.result.why.reason, "in_call");
    for (const id of [first, second]) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");

    // a throttle (1 start per second): the last start waits its turn
    const ids = await sendEvents(s, [1, 2, 3, 4].map((n) => ({ name: "compat/throttled", data: { n } })));
    let throttled;
    for (let i = 0; i < 60 && !throttled; i++) {
      const running = (await sysbus(["runs", "--status", "Running"], env)).env.result;
      const run = running.find((x) => x.event_id === ids[3]); // starts about 3 s after the first
      const got = run && (await sysbus(["run", run.run_id], env)).env.result.why;
      if (got && got.reason === "held_by_throttle") throttled = got;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(throttled, "the last run is reported as held by the throttle");
    assert.deepEqual(throttled.key, { kind: "throttle", scope: "compat-v4-throttled" });
    assert.match(throttled.message, /held by the throttle of compat-v4-throttled, next start at/);
    for (const id of ids) assert.equal((await waitEventRuns(s, id))[0].status, "Completed");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
