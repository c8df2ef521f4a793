// 19-deferred: run starts that wait for more events, through the official
// inngest SDK. batchEvents: events collect per key until maxSize (the run
// starts at once) or timeout (the run starts with what it has), and the run's
// call carries them all; a held batch survives a restart of sysbusd.
// debounce: the run starts `period` after the last event of its key, with
// that last event, unless `timeout` after the first event comes sooner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, addApp, sendEvents, sleep, startSysbusd, startWorker, waitEventRuns } from "./lib.mjs";

async function withWorld(fn, { sdk = "v4" } = {}) {
  const s = await startSysbusd();
  const w = await startWorker({ sdk, server: s });
  try {
    await addApp(s, w);
    await fn(s, w);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
}

const batched = (user, n) => ({ name: "compat/batched", data: { user, n } });
const debounced = (user, n) => ({ name: "compat/debounced", data: { user, n } });

for (const sdk of ["v4", "v3"]) {
  test(`batchEvents: a full batch starts one run with every event (inngest ${sdk})`, { timeout: 60000 }, async () => {
    await withWorld(async (s) => {
      const sent = Date.now();
      const ids = await sendEvents(s, [batched("a", 1), batched("b", 7), batched("a", 2), batched("a", 3)]);
      const [run] = await waitEventRuns(s, ids[0], 10000);
      assert.equal(run.status, "Completed");
      assert.deepEqual(run.output, [1, 2, 3]);
      assert.ok(Date.parse(run.ended_at) - sent < 1500, "a full batch does not wait for its timeout");
      // every event of the batch leads to the same run
      for (const id of [ids[2], ids[3]])
        assert.equal((await api(s, `/v1/events/${id}/runs`)).json.data[0].run_id, run.run_id);
      const batch = await api(s, `/v0/runs/${run.run_id}/batch`);
      assert.equal(batch.status, 200);
      assert.deepEqual(batch.json.map((e) => e.data.n), [1, 2, 3]);
      // user b's batch is separate and starts at its timeout with one event
      const [other] = await waitEventRuns(s, ids[1], 10000);
      assert.deepEqual(other.output, [7]);
      assert.ok(Date.parse(other.started_at) - sent >= 1900, "a partial batch waits for its timeout");
      assert.match((await api(s, "/metrics")).text, /sysbus_events_deferred_total 3/);
    }, { sdk });
  });
}

test("batchEvents: a held batch survives a restart and starts at its timeout", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  const w = await startWorker({ server: s });
  try {
    await addApp(s, w);
    const ids = await sendEvents(s, [batched("r", 1), batched("r", 2)]);
    const held = (await api(s, `/v1/events/${ids[0]}/runs`)).json;
    assert.deepEqual(held.data, [], "no run before the batch starts");
    assert.ok(Date.parse(held.metadata.held_until) > Date.now(), "the event says until when it is held");
    await s.kill9();
    s = await s.restart();
    const [run] = await waitEventRuns(s, ids[1], 15000);
    assert.equal(run.status, "Completed");
    assert.deepEqual(run.output, [1, 2]);
    // the batch goes on after the restart: a new event starts a new batch
    const [next] = await sendEvents(s, [batched("r", 3)]);
    const [run2] = await waitEventRuns(s, next, 15000);
    assert.deepEqual(run2.output, [3]);
    assert.notEqual(run2.run_id, run.run_id);
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});

test("debounce: one run per key, period after the last event, with the last event", { timeout: 60000 }, async () => {
  await withWorld(async (s) => {
    const ids = [];
    for (const n of [1, 2, 3]) {
      ids.push(...(await sendEvents(s, [debounced("a", n)])));
      await sleep(300);
    }
    const lastSent = Date.now() - 300;
    const [other] = await sendEvents(s, [debounced("b", 9)]);
    assert.ok((await api(s, `/v1/events/${ids[2]}/runs`)).json.metadata.held_until, "the last event is held");
    const [run] = await waitEventRuns(s, ids[2], 10000);
    assert.equal(run.status, "Completed");
    assert.deepEqual(run.output, { n: 3, count: 1 });
    assert.ok(Date.parse(run.started_at) - lastSent >= 900, "the run waits a full period after the last event");
    for (const id of ids.slice(0, 2)) {
      const r = (await api(s, `/v1/events/${id}/runs?wait_ms=5000`)).json;
      assert.deepEqual(r.data, [], "superseded events start no run");
      assert.equal(r.metadata.held_until, undefined, "and are no longer held");
    }
    const [runB] = await waitEventRuns(s, other, 10000);
    assert.deepEqual(runB.output, { n: 9, count: 1 });
    assert.notEqual(runB.run_id, run.run_id);
    const runs = (await api(s, `/v1/runs?function_id=compat-v4-debounced`)).json.data;
    assert.equal(runs.length, 2, "one run per key");
  });
});

test("debounce: timeout caps how long a stream of events can hold the run", { timeout: 60000 }, async () => {
  await withWorld(async (s) => {
    const first = Date.now();
    const ids = [];
    let started;
    // an event every 300 ms for 4 s: the 1 s period never elapses, the 2 s timeout does
    while (Date.now() - first < 4000) {
      ids.push(...(await sendEvents(s, [{ name: "compat/debounced-capped", data: { n: ids.length } }])));
      if (!started) {
        for (const id of ids) {
          const r = (await api(s, `/v1/events/${id}/runs`)).json.data;
          if (r.length) started = { at: Date.now(), run: r[0] };
        }
      }
      await sleep(300);
    }
    assert.ok(started, "a run started while events kept coming");
    assert.ok(started.at - first < 3500, `the run started ${started.at - first} ms after the first event`);
    assert.ok(started.at - first >= 1900, "not before the timeout");
  });
});
