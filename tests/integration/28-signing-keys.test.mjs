// 28-signing-keys: one signing key in its two written forms (bare hex, as
// `openssl rand -hex 32` prints it, and signkey-prod-<hex>, as Inngest's UI
// shows it) on either side, with the official SDK (v4 and v3) and the C
// worker: every combination registers (the worker's bearer is accepted) and
// runs a function end to end (the server's signed calls are verified by the
// worker). Key rotation with a fallback on both sides; a wrong key is refused
// in every form; keys from files and the environment rather than argv; the C
// worker refuses to start unsigned unless asked for development mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  BIN, EVENT_KEY, ROOT as REPO, addApp, api, runSysbusd, sendEvents, startCWorker, startSysbusd, startWorker, tmpdir,
  until, waitEventRuns,
} from "./lib.mjs";

const hex = (seed) => crypto.createHash("sha256").update(seed).digest("hex"); // 64 hex digits
const K1 = hex("key one"), K2 = hex("key two"), K3 = hex("a key nobody was given");
const prod = (k) => `signkey-prod-${k}`;
const hashed = (k) => crypto.createHash("sha256").update(Buffer.from(k, "hex")).digest("hex");
const KINDS = ["v4", "v3", "c"];

async function startAnyWorker(kind, s, key, env = {}, { register = true } = {}) {
  if (kind === "c")
    return startCWorker({ server: s, signingKey: key, env, waitRegistered: register });
  const w = await startWorker({ sdk: kind, server: s, signed: true, signingKey: key, env });
  if (register) await addApp(s, w);
  return w;
}

// (the v4 SDK's worker takes a minute to exit on SIGTERM: keep-alive sockets)
const stopWorker = (w) => (w.stop ? w.stop() : w.kill());

// Starts sysbusd with serverKey (and a fallback), a worker of kind with
// workerKey (and a fallback), and runs a three-step function end to end.
async function endToEnd(kind, serverKey, workerKey, { serverFallback, workerFallback } = {}) {
  const s = await startSysbusd({
    dev: false, signingKey: serverKey,
    env: serverFallback ? { SYSBUS_SIGNING_KEY_FALLBACK: serverFallback } : {},
  });
  let w;
  try {
    w = await startAnyWorker(kind, s, workerKey, workerFallback ? { INNGEST_SIGNING_KEY_FALLBACK: workerFallback } : {});
    const apps = (await api(s, "/v1/apps")).json.data;
    assert.equal(apps.length, 1, "registered: the worker's bearer was accepted");
    const [id] = await sendEvents(s, [{ name: kind === "c" ? "diag/three-steps" : "compat/three-steps", data: { n: 5 } }]);
    const [run] = await waitEventRuns(s, id, 30000);
    assert.equal(run.status, "Completed", `the signed calls were accepted: ${JSON.stringify(run)}`);
    assert.deepEqual(run.output, { steps: 3, n: 5 });
  } finally {
    try {
      if (w) await stopWorker(w);
    } finally {
      await s.stop();
    }
  }
}

for (const kind of KINDS) {
  for (const [sname, skey] of [["bare", K1], ["signkey-prod", prod(K1)]]) {
    for (const [wname, wkey] of [["bare", K1], ["signkey-prod", prod(K1)]]) {
      test(`${kind} worker: server key ${sname}, worker key ${wname}: registers and runs`, { timeout: 60000 }, async () => {
        await endToEnd(kind, skey, wkey);
      });
    }
  }

  test(`${kind} worker: rotation with fallbacks on both sides`, { timeout: 90000 }, async () => {
    // 1. workers first: new key K2, old key K1 as fallback, against a server
    //    still on K1 (calls signed with K1 verify with the fallback; the
    //    bearer of K2 is refused, the fallback's accepted)
    await endToEnd(kind, K1, prod(K2), { workerFallback: prod(K1) });
    // 2. then the server: signs with K2, still accepts K1
    await endToEnd(kind, prod(K2), K2, { serverFallback: K1, workerFallback: prod(K1) });
    // a worker that has the new key only as its fallback works too
    await endToEnd(kind, K2, prod(K1), { serverFallback: prod(K1), workerFallback: K2 });
  });

  test(`${kind} worker: a wrong key is refused in every form`, { timeout: 60000 }, async () => {
    for (const skey of [K1, prod(K1)]) {
      const s = await startSysbusd({ dev: false, signingKey: skey });
      try {
        for (const wkey of [K3, prod(K3)]) {
          if (kind === "c") {
            const w = await startCWorker({ server: s, signingKey: wkey, waitRegistered: false });
            try {
              await until("a refused registration", () => w.out.lines.some((l) => /"register_failed".*"status":401/.test(l)));
            } finally {
              await w.stop();
            }
          } else {
            const w = await startWorker({ sdk: kind, server: s, signed: true, signingKey: wkey });
            try {
              const r = await api(s, "/v1/apps", { method: "POST", body: { url: w.url } });
              assert.equal(r.status, 502, r.text);
              assert.match(r.json.error, /401|Unauthorized/i);
            } finally {
              await w.kill();
            }
          }
        }
        assert.equal((await api(s, "/v1/apps")).json.data.length, 0, "nothing registered");
      } finally {
        await s.stop();
      }
    }
  });
}

test("a worker that has only the old key after the server moved on: its bearer still counts, its calls do not verify",
  { timeout: 60000 }, async () => {
    // The server signs with its current key; a worker must hold it (as its
    // key or its fallback) before the server switches: workers rotate first.
    const s = await startSysbusd({ dev: false, signingKey: K2, env: { SYSBUS_SIGNING_KEY_FALLBACK: K1 } });
    const w = await startCWorker({ server: s, signingKey: K1 });
    try {
      assert.equal((await api(s, "/v1/apps")).json.data.length, 1, "the old key's bearer is accepted");
      const body = JSON.stringify({ event: { name: "diag/three-steps", data: {} }, steps: {}, ctx: { run_id: "r" } });
      const t = Math.floor(Date.now() / 1000);
      const sig = (k) => `t=${t}&s=${crypto.createHmac("sha256", k).update(body + t).digest("hex")}`;
      const call = (k) => fetch(`${w.url}?fnId=system-bus-host-diag-three-steps&stepId=step`,
        { method: "POST", body, headers: { "content-type": "application/json", "x-inngest-signature": sig(k) } });
      assert.equal((await call(K2)).status, 401, "a call signed with the server's current key is refused");
      assert.equal((await call(K1)).status, 206);
    } finally {
      await w.stop();
      await s.stop();
    }
  });

test("the C worker verifies with its fallback and signs its answer with the key that verified", { timeout: 60000 }, async () => {
  const s = await startSysbusd({ dev: false, signingKey: K1 });
  const w = await startCWorker({ server: s, signingKey: prod(K2), env: { INNGEST_SIGNING_KEY_FALLBACK: K1 } });
  try {
    const body = JSON.stringify({ event: { name: "diag/three-steps", data: {} }, steps: {}, ctx: { run_id: "r" } });
    const t = Math.floor(Date.now() / 1000);
    const mac = (k, b, ts) => crypto.createHmac("sha256", k).update(b + ts).digest("hex");
    for (const [k, other] of [[K1, K2], [K2, K1]]) {
      const r = await fetch(`${w.url}?fnId=system-bus-host-diag-three-steps&stepId=step`, {
        method: "POST", body, headers: { "content-type": "application/json", "x-inngest-signature": `t=${t}&s=${mac(k, body, t)}` },
      });
      assert.equal(r.status, 206);
      const text = await r.text();
      const [, ts, sig] = r.headers.get("x-inngest-signature").match(/^t=(\d+)&s=([0-9a-f]{64})$/);
      assert.equal(sig, mac(k, text, ts), "signed with the key that verified the call");
      assert.notEqual(sig, mac(other, text, ts));
    }
    const bad = await fetch(`${w.url}?fnId=system-bus-host-diag-three-steps&stepId=step`, {
      method: "POST", body, headers: { "content-type": "application/json", "x-inngest-signature": `t=${t}&s=${mac(K3, body, t)}` },
    });
    assert.equal(bad.status, 401);
    assert.match((await bad.json()).error, /neither the signing key nor its fallback/);
    // introspection signed with the fallback authenticates, and names both keys as the JS SDK does
    const intro = await (await fetch(w.url, { headers: { "x-inngest-signature": `t=${t}&s=${mac(K1, "", t)}` } })).json();
    assert.equal(intro.authentication_succeeded, true);
    assert.equal(intro.signing_key_hash, hashed(K2).slice(0, 12));
    assert.equal(intro.signing_key_fallback_hash, hashed(K1).slice(0, 12));
  } finally {
    await w.stop();
    await s.stop();
  }
});

test("sysbusd's API bearer: every form of the key and of its fallback, nothing else", { timeout: 30000 }, async () => {
  const s = await startSysbusd({ dev: false, signingKey: prod(K2), env: { SYSBUS_SIGNING_KEY_FALLBACK: K1 } });
  try {
    for (const k of [K1, K2]) {
      for (const tok of [k, prod(k), `signkey-test-${k}`, hashed(k), prod(hashed(k))])
        assert.equal((await api(s, "/v1/apps", { token: tok })).status, 200, `accepted: ${tok}`);
    }
    for (const tok of [K3, prod(K3), hashed(K3), prod(hashed(K3)), `signkey-prod-`, `signkey-a-signkey-prod-${K2}`,
      `${K2}00`, hashed(K2).toUpperCase() + "x", ""])
      assert.equal((await api(s, "/v1/apps", { token: tok })).status, 401, `refused: ${tok}`);
  } finally {
    await s.stop();
  }
});

// ---- keys out of argv ----

function keyFile(dir, name, content, mode = 0o600) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  fs.chmodSync(p, mode);
  return p;
}

test("sysbusd reads its keys from files; a key file others can read is refused", { timeout: 60000 }, async () => {
  const dir = tmpdir("keyfiles-");
  const sk = keyFile(dir, "signing-key", `${prod(K1)}\n`);
  const fb = keyFile(dir, "fallback", `${K2}\r\n`, 0o640); // group-readable: allowed (fsGroup, root:sysbus 0640)
  const ek = keyFile(dir, "event-keys", `${EVENT_KEY}\nsecond-event-key\n`);
  const s = await startSysbusd({
    dev: false, signingKey: null, // no key in the environment: only the files
    args: ["--signing-key-file", sk, "--signing-key-fallback-file", fb, "--event-key-file", ek],
  });
  try {
    assert.equal((await api(s, "/v1/apps", { token: prod(hashed(K1)) })).status, 200);
    assert.equal((await api(s, "/v1/apps", { token: hashed(K2) })).status, 200, "the fallback from its file");
    await sendEvents(s, [{ name: "x" }], { key: "second-event-key" });
    assert.ok(!s.out.lines.some((l) => l.includes("secret_on_command_line")), "no warning for a file");
  } finally {
    await s.stop();
  }
  const open = keyFile(dir, "open-key", `${K1}\n`, 0o644);
  const r = await runSysbusd(["--port", "0", "--data-dir", dir, "--signing-key-file", open, "--event-key", EVENT_KEY]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--signing-key-file.*open-key can be read by other users \(mode 0644\).*chmod 600/);
  assert.ok(!r.stderr.includes(K1), "the key is not echoed");
  const both = await runSysbusd(["--port", "0", "--data-dir", dir, "--signing-key", K1, "--signing-key-file", sk,
    "--event-key", EVENT_KEY]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give --signing-key or --signing-key-file, not both/);
  const env = await runSysbusd(["--port", "0", "--data-dir", dir], {
    SYSBUS_SIGNING_KEY_FILE: path.join(dir, "missing"), SYSBUS_EVENT_KEY: EVENT_KEY,
  });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /SYSBUS_SIGNING_KEY_FILE.*missing/);
  const orphan = await runSysbusd(["--port", "0", "--data-dir", dir], {
    SYSBUS_SIGNING_KEY_FALLBACK: K2, SYSBUS_EVENT_KEY: EVENT_KEY,
  });
  assert.equal(orphan.code, 2);
  assert.match(orphan.stderr, /--signing-key-fallback needs --signing-key/);
});

test("a key given as a flag works but is warned about, by name and never by value", { timeout: 30000 }, async () => {
  const s = await startSysbusd({
    dev: false, signingKey: null, args: ["--signing-key", prod(K1), `--event-key=${EVENT_KEY}`],
  });
  try {
    assert.equal((await api(s, "/v1/apps", { token: K1 })).status, 200);
    const warns = s.out.lines.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .filter((j) => j.event === "secret_on_command_line");
    assert.deepEqual(warns.map((j) => j.flag).sort(), ["event-key", "signing-key"]);
    assert.match(warns.find((j) => j.flag === "signing-key").msg, /SYSBUS_SIGNING_KEY or --signing-key-file/);
    assert.ok(!s.out.lines.some((l) => l.includes(K1) || l.includes(EVENT_KEY)), "no key in the log");
  } finally {
    await s.stop();
  }
});

// ---- the C worker does not serve unsigned unless asked to ----

function runWorker(env) {
  return new Promise((resolve) => {
    const p = spawnWorker(env);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 15000);
    p.on("exit", (code, signal) => { clearTimeout(timer); resolve({ code, signal, out }); });
  });
}

function spawnWorker(env) {
  return spawn(path.join(BIN, "system-bus-worker"), [], {
    env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", INNGEST_BASE_URL: "http://127.0.0.1:9", ...env },
  });
}

test("the C worker without a signing key refuses to start unless INNGEST_DEV asks for dev mode", { timeout: 30000 }, async () => {
  for (const env of [{}, { INNGEST_DEV: "0" }, { INNGEST_DEV: "false" }, { INNGEST_DEV: "" }]) {
    const r = await runWorker(env);
    assert.equal(r.code, 2, `exit 2 (configuration error) with ${JSON.stringify(env)}: ${r.out}`);
    assert.match(r.out, /system-bus-worker: configuration error: no signing key: set INNGEST_SIGNING_KEY/);
    assert.ok(!r.out.includes('"listening"'), "it never listened");
  }
  const fb = await runWorker({ INNGEST_SIGNING_KEY_FALLBACK: K1 });
  assert.equal(fb.code, 2);
  assert.match(fb.out, /INNGEST_SIGNING_KEY_FALLBACK is set but INNGEST_SIGNING_KEY is not/);
  const badfb = await runWorker({ INNGEST_SIGNING_KEY: K1, INNGEST_SIGNING_KEY_FALLBACK: "signkey-prod-xyz" });
  assert.equal(badfb.code, 2);
  assert.match(badfb.out, /INNGEST_SIGNING_KEY_FALLBACK: signing key/);
  // asked for: dev mode (it listens; stopped at once)
  const p = spawnWorker({ INNGEST_DEV: "1" });
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (out += d));
  const exited = new Promise((r) => p.on("exit", (code) => r(code)));
  await until("the dev worker listening", () => out.includes('"listening"'));
  p.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.match(out, /development mode/);
});

// Units, manifests and scripts hand keys over the environment (or files),
// never as flags: a command line is readable by every user.
test("deploy/, scripts/ and bench/ never pass a key as a flag", () => {
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  for (const d of ["deploy", "scripts", "bench"]) walk(path.join(REPO, d));
  assert.ok(files.some((f) => f.endsWith("sysbusd.service")), "the units were read");
  const flag = /--(signing-key|signing-key-fallback|event-key)(?!-file)(=|\s|"|$)/m;
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    const bad = text.split("\n").filter((l) => flag.test(l) && !/^\s*(#|\/\/)/.test(l));
    assert.deepEqual(bad, [], `${path.relative(REPO, f)} passes a key as a flag`);
  }
});
