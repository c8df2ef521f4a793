// 01-server: sysbusd on its own: flags, the event API, authentication,
// idempotent sends, registration by raw HTTP, the read API and bad input.
// Real sysbusd processes on loopback; no worker needed here.
import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  api, runSysbusd, sendEvents, startSysbusd, SIGNING_KEY, EVENT_KEY, STORE, tmpdir, sleep,
} from "./lib.mjs";

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

test("flags: --help, unknown flags, missing keys", { timeout: 30000 }, async () => {
  const help = await runSysbusd(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: sysbusd/);
  assert.match(help.stdout, /--signing-key/);
  assert.match(help.stdout, /SYSBUS_PORT/);

  const bad = await runSysbusd(["--no-such-flag"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option '--no-such-flag'/);

  const port = await runSysbusd(["--dev", "--port", "70000"]);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port/);

  const unsigned = await runSysbusd(["--data-dir", tmpdir()]);
  assert.equal(unsigned.code, 2);
  assert.match(unsigned.stderr, /--signing-key/);
  assert.match(unsigned.stderr, /--dev/);

  const envbad = await runSysbusd([], { SYSBUS_DEV: "perhaps" });
  assert.equal(envbad.code, 2);
  assert.match(envbad.stderr, /SYSBUS_DEV/);
});

test("store URL: --store, SYSBUS_STORE, --data-dir's shorthand, unknown schemes", { timeout: 30000 }, async () => {
  // a scheme this build does not have is a usage error naming the ones it has,
  // and the URL (which may hold a password) is not echoed
  const my = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store", "mysql://bus:s3cret@db/bus"]);
  assert.equal(my.code, 2);
  assert.match(my.stderr, /--store: unknown store scheme 'mysql': this build has sqlite:\/\//);
  assert.doesNotMatch(my.stderr, /s3cret/);
  if (/postgres:\/\//.test(my.stderr)) {
    // built with libpq: a PostgreSQL URL it cannot use is a usage error too,
    // and no server that cannot be reached is a runtime failure; neither
    // message repeats the password
    const bad = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store",
      "postgres://bus:s3cret@127.0.0.1:1/bus?schema=Not-A-Name"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /schema must be a lower-case identifier/);
    assert.doesNotMatch(bad.stderr, /s3cret/);
    for (const t of ["0", "3601", "-5", "1e3", "", "9".repeat(40)]) {
      const badT = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store",
        `postgres://bus:s3cret@127.0.0.1:1/bus?answer_timeout=${t}`]);
      assert.equal(badT.code, 2, `answer_timeout=${t}: ${badT.stderr}`);
      assert.match(badT.stderr, /answer_timeout is a number of seconds, 1 to 3600/);
    }
    const down = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store-wait", "0", "--store",
      "postgres://bus:s3cret@127.0.0.1:1/bus"]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot connect to PostgreSQL \(127\.0\.0\.1:1\/bus\)/);
    assert.doesNotMatch(down.stderr, /s3cret/);
    // a password on the command line is readable by every user: warned, once
    const warned = down.stderr.split("\n").filter((l) => l.includes('"event":"secret_on_command_line"'));
    assert.equal(warned.length, 1, down.stderr);
    assert.match(warned[0], /"flag":"store"/);
    // nor a password given as a parameter of the URL
    const asParam = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store-wait", "0", "--store",
      "postgres://bus@127.0.0.1:1/bus?connect_timeout=5&password=s3cret"]);
    assert.equal(asParam.code, 1);
    assert.match(asParam.stderr, /"event":"secret_on_command_line".*"flag":"store"/);
    assert.doesNotMatch(asParam.stderr, /s3cret/);
    // the same URL from a file is not warned about (and still not echoed)
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, "store"), "postgres://bus:s3cret@127.0.0.1:1/bus\n", { mode: 0o600 });
    const fromFile = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store-wait", "0", "--store-file",
      path.join(dir, "store")]);
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /cannot connect to PostgreSQL \(127\.0\.0\.1:1\/bus\)/);
    assert.doesNotMatch(fromFile.stderr, /s3cret|secret_on_command_line/);
  } else {
    const pg = await runSysbusd(["--dev", "--data-dir", tmpdir(), "--store", "postgres://bus:s3cret@db/bus"]);
    assert.equal(pg.code, 2);
    assert.match(pg.stderr, /unknown store scheme 'postgres'/);
    assert.doesNotMatch(pg.stderr, /s3cret/);
  }
  const bare = await runSysbusd(["--dev", "--data-dir", tmpdir()], { SYSBUS_STORE: "/srv/sysbus.db" });
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /a store is a URL \(scheme:\/\/\.\.\.\)/);

  // sqlite:///absolute: the file (and its directory) where the URL says, not in --data-dir
  const dataDir = tmpdir();
  const db = path.join(tmpdir(), "sub", "bus.db");
  const s = await startSysbusd({ dataDir, args: ["--store", `sqlite://${db}`] });
  let id;
  try {
    const health = await api(s, "/health");
    assert.equal(health.json.store.kind, "sqlite");
    id = (await sendEvents(s, [{ name: "a/b" }]))[0];
    // a store URL without a password is no secret on the command line
    assert.ok(!s.out.lines.some((l) => l.includes("secret_on_command_line")), s.out.lines.join("\n"));
  } finally {
    await s.stop();
  }
  assert.ok(fs.existsSync(db));
  assert.ok(!fs.existsSync(path.join(dataDir, "sysbus.db")));
  // the same store through the environment
  const again = await startSysbusd({ dataDir: tmpdir(), env: { SYSBUS_STORE: `sqlite://${db}` } });
  try {
    assert.equal((await api(again, `/v1/events/${id}`)).status, 200);
  } finally {
    await again.stop();
  }
});

test("event API: ids, batches, bad input", { timeout: 30000 }, async () => {
  const s = await startSysbusd({ args: ["--max-body", "65536"] });
  try {
    const health = await api(s, "/health");
    assert.equal(health.status, 200);
    assert.equal(health.json.ok, true);
    assert.equal(health.json.store.ok, true);
    assert.equal(health.json.store.kind, STORE);

    const one = await api(s, "/e/k", { method: "POST", body: { name: "a/b", data: { x: 1 } } });
    assert.equal(one.status, 200);
    assert.equal(one.json.status, 200);
    assert.equal(one.json.ids.length, 1);
    assert.match(one.json.ids[0], ULID);

    const batch = await sendEvents(s, Array.from({ length: 50 }, (_, i) => ({ name: "a/batch", data: { i } })));
    assert.equal(batch.length, 50);
    assert.equal(new Set(batch).size, 50);
    assert.deepEqual([...batch].sort(), batch, "ids of one batch are in order");

    const stored = await api(s, `/v1/events/${one.json.ids[0]}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.json.data.name, "a/b");
    assert.deepEqual(stored.json.data.data, { x: 1 });
    assert.equal(stored.json.data.id, one.json.ids[0], "an event without id gets its ULID as id");

    const cases = [
      [{ raw: "{not json" }, 400, /invalid JSON/],
      [{ raw: "" }, 400, /empty/],
      [{ body: { data: {} } }, 400, /'name' is required/],
      [{ body: [{ name: "ok" }, { name: "" }] }, 400, /event 1/],
      [{ body: { name: "x", data: [1, 2] } }, 400, /'data' must be an object/],
      [{ body: { name: "x", ts: "yesterday" } }, 400, /'ts'/],
      [{ body: 42 }, 400, /event object or an array/],
      [{ body: Array.from({ length: 5001 }, () => ({ name: "x" })) }, 413, /limit is 5000|exceeds/],
      [{ raw: JSON.stringify({ name: "big", data: { s: "x".repeat(70000) } }) }, 413, /exceeds/],
    ];
    for (const [req, status, re] of cases) {
      const r = await api(s, "/e/k", { method: "POST", ...req, headers: { "content-type": "application/json" } });
      assert.equal(r.status, status, `${JSON.stringify(req).slice(0, 80)} -> ${r.status} ${r.text}`);
      assert.equal(r.json.status, status);
      assert.match(r.json.error, re);
    }
    // nothing partial was stored by the rejected batch
    const list = await api(s, "/v1/events?name=ok");
    assert.equal(list.json.data.length, 0);
    const notFound = await api(s, "/v1/events/01M8F0NBYTB68YCVQ8QW17F2SH");
    assert.equal(notFound.status, 404);
    const wrongMethod = await api(s, "/e/k", { method: "GET" });
    assert.equal(wrongMethod.status, 405);
    const nowhere = await api(s, "/nowhere");
    assert.equal(nowhere.status, 404);
    assert.match(nowhere.json.error, /no such endpoint/);
  } finally {
    await s.stop();
  }
});

test("idempotent sends: seeded ids and user ids", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const seed = `${Date.now()},${crypto.randomBytes(10).toString("base64")}`;
    const events = [{ name: "idem/a" }, { name: "idem/a" }];
    const first = await sendEvents(s, events, { headers: { "x-inngest-event-id-seed": seed } });
    const again = await sendEvents(s, events, { headers: { "x-inngest-event-id-seed": seed } });
    assert.deepEqual(again, first, "a retried send gets the same ids");
    const listed = await api(s, "/v1/events?name=idem/a");
    assert.equal(listed.json.data.length, 2, "the retry stored nothing new");

    const u1 = await sendEvents(s, { name: "idem/u", id: "order-17" });
    const u2 = await sendEvents(s, { name: "idem/u", id: "order-17" });
    assert.deepEqual(u2, u1, "same user id within 24 h: same event");
    const u3 = await sendEvents(s, { name: "idem/u", id: "order-18" });
    assert.notDeepEqual(u3, u1);
    assert.equal((await api(s, "/v1/events?name=idem/u")).json.data.length, 2);
  } finally {
    await s.stop();
  }
});

function registerBody(url, appName, fns) {
  return {
    url, appName, deployType: "ping", framework: "test", sdk: "test:0", v: "0.1",
    functions: fns.map(([id, event]) => ({
      id: `${appName}-${id}`, name: id, triggers: [{ event }],
      steps: { step: { id: "step", name: "step", runtime: { type: "http", url: `${url}?fnId=${appName}-${id}&stepId=step` } } },
    })),
  };
}

test("signed mode: keys and bearer tokens are required", { timeout: 30000 }, async () => {
  const s = await startSysbusd({ dev: false });
  try {
    assert.equal((await api(s, "/health", { token: null })).status, 200);
    const badKey = await api(s, "/e/wrong-key", { method: "POST", body: { name: "x" }, token: null });
    assert.equal(badKey.status, 401);
    assert.match(badKey.json.error, /Event key not found/);
    assert.equal((await api(s, `/e/${EVENT_KEY}`, { method: "POST", body: { name: "x" }, token: null })).status, 200);

    for (const p of ["/v1/runs", "/v1/events", "/v1/apps", "/metrics"]) {
      assert.equal((await api(s, p, { token: null })).status, 401, p);
      assert.equal((await api(s, p, { token: "signkey-test-00" })).status, 401, p);
      assert.equal((await api(s, p)).status, 200, p);
    }
    const hashed = "signkey-test-" + crypto.createHash("sha256")
      .update(Buffer.from(SIGNING_KEY.replace(/^signkey-\w+-/, ""), "hex")).digest("hex");
    assert.equal((await api(s, "/v1/runs", { token: hashed })).status, 200, "hashed key works");

    const body = registerBody("http://127.0.0.1:9/api/inngest", "signed-app", [["f", "x/y"]]);
    const noAuth = await api(s, "/fn/register", { method: "POST", body, token: null });
    assert.equal(noAuth.status, 401);
    const ok = await api(s, "/fn/register", { method: "POST", body, token: hashed });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.ok, true);
    const devWorker = await api(s, "/fn/register", {
      method: "POST", body, headers: { "x-inngest-expected-server-kind": "dev" },
    });
    assert.equal(devWorker.status, 400);
    assert.equal(devWorker.json.status, 400, "status in the body: SDKs copy it into their PUT reply");
    assert.match(devWorker.json.error, /Expected server kind dev/);
  } finally {
    await s.stop();
  }
});

test("registration: validation, atomic replacement, stale apps", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const url = "http://127.0.0.1:9/api/inngest";
    const reg = (body) => api(s, "/fn/register", { method: "POST", body });
    let r = await reg({ url, functions: [] });
    assert.equal(r.status, 400);
    assert.match(r.json.error, /appName is required/);
    const broken = registerBody(url, "app1", [["good", "x/a"], ["bad", "x/b"]]);
    broken.functions[1].steps.step.retries = { attempts: 99 };
    r = await reg(broken);
    assert.equal(r.status, 400);
    assert.match(r.json.error, /app1-bad/, "the message names the function");
    assert.equal((await api(s, "/v1/functions")).json.data.length, 0, "nothing half-registered");

    r = await reg(registerBody(url, "app1", [["a", "x/a"], ["b", "x/b"]]));
    assert.equal(r.json.modified, true);
    r = await reg(registerBody(url, "app1", [["a", "x/a"], ["b", "x/b"]]));
    assert.equal(r.json.modified, false, "an unchanged app is skipped");
    r = await reg(registerBody(url, "app1", [["a", "x/a"]]));
    assert.equal(r.json.modified, true);
    const fns = (await api(s, "/v1/functions")).json.data.map((f) => f.id);
    assert.deepEqual(fns, ["app1-a"], "b was removed by the sync");
    // b no longer triggers: an x/b event starts nothing
    const [ev] = await sendEvents(s, { name: "x/b" });
    const runs = await api(s, `/v1/events/${ev}/runs`);
    assert.equal(runs.json.data.length, 0);

    // another app id at the same URL replaces the stale one
    r = await reg(registerBody(url, "app1-renamed", [["a", "x/a"]]));
    assert.equal(r.status, 200);
    const apps = (await api(s, "/v1/apps")).json.data.map((a) => a.id);
    assert.deepEqual(apps, ["app1-renamed"]);
  } finally {
    await s.stop();
  }
});

test("read API: runs, filters, cancel, unknown ids, metrics", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    // a function whose worker does not exist: its runs stay Running (the
    // transport window is long) until cancelled
    const url = "http://127.0.0.1:9/api/inngest";
    await api(s, "/fn/register", { method: "POST", body: registerBody(url, "ghost", [["f", "g/go"]]) });
    const ids = await sendEvents(s, [{ name: "g/go" }, { name: "g/go" }, { name: "g/go" }]);
    const list = await api(s, "/v1/runs?limit=2");
    assert.equal(list.status, 200);
    assert.equal(list.json.data.length, 2);
    assert.ok(list.json.metadata.next_cursor);
    const rest = await api(s, `/v1/runs?limit=2&cursor=${list.json.metadata.next_cursor}`);
    assert.equal(rest.json.data.length, 1);
    const all = [...list.json.data, ...rest.json.data];
    assert.deepEqual(all.map((r) => r.run_id), all.map((r) => r.run_id).sort().reverse(), "newest first");

    const runId = all[0].run_id;
    const running = await api(s, `/v1/runs/${runId}`);
    assert.equal(running.json.data.status, "Running");
    assert.equal(running.json.data.queue.length, 1, "a running run shows what it waits for");

    const cancel = await api(s, `/v1/runs/${runId}`, { method: "DELETE" });
    assert.equal(cancel.status, 200);
    assert.equal(cancel.json.data.status, "Cancelled");
    const again = await api(s, `/v1/runs/${runId}`, { method: "DELETE" });
    assert.equal(again.status, 409);
    assert.equal((await api(s, "/v1/runs?status=Cancelled")).json.data.length, 1);
    assert.equal((await api(s, "/v1/runs?status=Bogus")).status, 400);
    assert.equal((await api(s, "/v1/runs?limit=0")).status, 400);
    assert.equal((await api(s, "/v1/runs/01M8F0NBYTB68YCVQ8QW17F2SH")).status, 404);
    assert.equal((await api(s, "/v1/runs/not-an-id")).status, 404);
    assert.equal((await api(s, "/v1/runs/01M8F0NBYTB68YCVQ8QW17F2SH", { method: "DELETE" })).status, 404);
    const evRuns = await api(s, `/v1/events/${ids[1]}/runs`);
    assert.equal(evRuns.json.data.length, 1);

    // long-poll returns at the deadline with the current state
    const t0 = Date.now();
    const waited = await api(s, `/v1/runs/${all[1].run_id}?wait_ms=300`);
    assert.ok(Date.now() - t0 >= 250);
    assert.equal(waited.json.data.status, "Running");

    const metrics = await api(s, "/metrics");
    assert.match(metrics.text, /sysbus_events_received_total 3/);
    assert.match(metrics.text, /sysbus_runs_cancelled_total 1/);
    assert.match(metrics.headers.get("content-type"), /text\/plain/);
  } finally {
    await s.stop();
  }
});

test("retention purges ended runs and their events", { timeout: 30000 }, async () => {
  const s = await startSysbusd({ args: ["--retention", "1s", "--purge-interval", "100ms"] });
  try {
    const url = "http://127.0.0.1:9/api/inngest";
    await api(s, "/fn/register", { method: "POST", body: registerBody(url, "ret", [["f", "r/go"]]) });
    const [ev] = await sendEvents(s, { name: "r/go" });
    const [run] = (await api(s, `/v1/events/${ev}/runs`)).json.data;
    assert.equal((await api(s, `/v1/runs/${run.run_id}`, { method: "DELETE" })).status, 200);
    const deadline = Date.now() + 10000;
    while ((await api(s, `/v1/runs/${run.run_id}`)).status !== 404) {
      assert.ok(Date.now() < deadline, "ended run was not purged");
      await sleep(100);
    }
    while ((await api(s, `/v1/events/${ev}`)).status !== 404) {
      assert.ok(Date.now() < deadline, "event was not purged");
      await sleep(100);
    }
  } finally {
    await s.stop();
  }
});
