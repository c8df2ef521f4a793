// 06-sync: sysbusd re-syncs known app URLs on its own. A worker is replaced
// by a new version with one more function on the same URL (as a deploy
// does); the new function appears without anyone calling refresh. While the
// worker is down, the app records why the sync failed.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { addApp, api, sendEvents, sleep, startSysbusd, startWorker, until, waitEventRuns } from "./lib.mjs";

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

test("periodic re-sync picks up a redeployed worker", { timeout: 60000 }, async () => {
  const s = await startSysbusd({ args: ["--sync-interval", "200ms"] });
  const port = await freePort();
  let w = await startWorker({ sdk: "v4", server: s, port });
  try {
    await addApp(s, w);
    const fnIds = async () => (await api(s, "/v1/functions")).json.data.map((f) => f.id);
    assert.ok(!(await fnIds()).includes("compat-v4-extra"));

    await w.kill("SIGKILL");
    const app = await until("a recorded sync error", async () => {
      const [a] = (await api(s, "/v1/apps")).json.data;
      return a.sync_error ? a : null;
    });
    assert.match(app.sync_error, /Unable to reach SDK URL/);

    w = await startWorker({ sdk: "v4", server: s, port, env: { EXTRA_FUNCTION: "1" } });
    await until("the new function", async () => (await fnIds()).includes("compat-v4-extra"));
    const [ev] = await sendEvents(s, { name: "compat/extra" });
    const [run] = await waitEventRuns(s, ev);
    assert.equal(run.status, "Completed");
    assert.equal(run.output, "extra");
    const [after] = (await api(s, "/v1/apps")).json.data;
    assert.equal(after.sync_error, null, "a successful sync clears the error");
  } finally {
    await w.kill("SIGTERM");
    await s.stop();
  }
});
