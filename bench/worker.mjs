// worker.mjs - the benchmark worker on the official inngest SDK: one app,
// one function of three no-op steps (the Restate peer's workload), nothing
// else. Env: SDK=v4|v3, PORT (0 = any; prints {"event":"listening","port"}),
// SYSBUS_URL. Runs from tests/compat so it uses the same installed SDKs.
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../tests/compat/package.json"));
const sdk = process.env.SDK || "v4";
const pkg = sdk === "v3" ? "inngest-v3" : "inngest";
const { Inngest } = require(pkg);
const { serve } = require(`${pkg}/node`);

const inngest = new Inngest({ id: "bench", isDev: true, baseUrl: process.env.SYSBUS_URL });
const body = async ({ event, step }) => {
  const a = await step.run("one", () => ({ step: 1 }));
  const b = await step.run("two", () => ({ step: 2, prev: a.step }));
  const c = await step.run("three", () => ({ step: 3, prev: b.step }));
  return { steps: c.step, n: event.data.n ?? null };
};
const fn = sdk === "v3"
  ? inngest.createFunction({ id: "three-steps" }, { event: "compat/three-steps" }, body)
  : inngest.createFunction({ id: "three-steps", triggers: [{ event: "compat/three-steps" }] }, body);
const server = http.createServer(serve({ client: inngest, functions: [fn] }));
server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ event: "listening", port: server.address().port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
