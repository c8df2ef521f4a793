// loadgen.mjs - closed-loop load generator for sysbusd, shaped like the
// Restate peer's (../shared/peers/restate/loadgen.mjs): C concurrent clients
// on one keep-alive agent; each takes the next index i, sends the event
// {name, data:{n:i}}, long-polls GET /v1/events/{id}/runs?wait_ms= until its
// run has ended, checks the output ({steps:3, n:i} by default), and records
// the latency from send to observed completion. Prints one JSON object.
//
// usage: node loadgen.mjs --base http://127.0.0.1:8288 --n 2000 --c 50
//          [--event compat/three-steps] [--validate steps3|completed] [--key K]
import http from "node:http";

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const N = parseInt(arg("n", "2000"), 10);
const C = Math.max(1, Math.min(parseInt(arg("c", "50"), 10), N));
const BASE = new URL(arg("base", "http://127.0.0.1:8288"));
const EVENT = arg("event", "compat/three-steps");
const VALIDATE = arg("validate", "steps3");
const KEY = arg("key", "bench");
const TOKEN = arg("token", "");
if (BASE.hostname !== "127.0.0.1" && BASE.hostname !== "localhost") {
  console.error("loadgen: refusing non-loopback target", BASE.hostname);
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 2 * C, maxFreeSockets: 2 * C });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = { "content-type": "application/json" };
    if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
    if (body) headers["content-length"] = Buffer.byteLength(body);
    const req = http.request({ host: BASE.hostname, port: BASE.port, method, path, agent, headers,
      timeout: 120000 }, (res) => {
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} ${path}: ${text.slice(0, 200)}`));
        try { resolve(JSON.parse(text)); } catch { reject(new Error(`bad JSON: ${text.slice(0, 200)}`)); }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

async function invoke(i) {
  const sent = await request("POST", `/e/${KEY}`, JSON.stringify({ name: EVENT, data: { n: i } }));
  const id = sent.ids[0];
  for (;;) {
    const r = await request("GET", `/v1/events/${id}/runs?wait_ms=60000`);
    const runs = r.data;
    if (runs.length && runs.every((x) => x.status !== "Running")) {
      const run = runs[0];
      if (run.status !== "Completed") throw new Error(`run ${run.run_id} ${run.status}`);
      if (VALIDATE === "steps3" && (run.output?.steps !== 3 || run.output?.n !== i))
        throw new Error(`unexpected output ${JSON.stringify(run.output)}`);
      return;
    }
  }
}

const lat = [];
let next = 0, errors = 0, firstError = null;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async () => {
  for (;;) {
    const i = next++;
    if (i >= N) return;
    const s = performance.now();
    try { await invoke(i); lat.push(performance.now() - s); }
    catch (e) { errors++; firstError ??= String(e); }
  }
}));
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);
console.log(JSON.stringify({
  n: N, c: C, event: EVENT, wall_s: r2(wall), runs_per_s: r2(lat.length / wall),
  p50_ms: r2(q(0.5)), p90_ms: r2(q(0.9)), p99_ms: r2(q(0.99)), max_ms: r2(lat[lat.length - 1]),
  errors, first_error: firstError, loadgen_cpu_s: r2((cpu.user + cpu.system) / 1e6),
}));
agent.destroy();
