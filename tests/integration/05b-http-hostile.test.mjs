// 05b-http-hostile: sysbusd's HTTP layer against hostile clients, over raw
// sockets: a connection cap per peer address and a header deadline that a
// client trickling bytes cannot push back (slowloris), rate-limited log
// lines, a 413 answered at the headers, refused ambiguous framing (request
// smuggling), no event key in any log line, and a port-in-use error that
// names the port. 127.0.0.2 stands for a second client address (Linux
// routes all of 127/8 to loopback).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { api, BIN, runSysbusd, sqliteOnly, startSysbusd, tmpdir, until } from "./lib.mjs";

const OTHER_PEER = "127.0.0.2";

// Rejects with what was awaited when p does not settle within ms.
function within(p, ms, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); }),
  ]);
}

// A raw connection: .connected, .closed (resolves {at, data}), .data so far.
function raw(port, { localAddress } = {}) {
  const sock = net.connect({ port, host: "127.0.0.1", localAddress });
  const c = { sock, data: "", openedAt: Date.now(), closedAt: null, sent: 0 };
  sock.on("data", (d) => (c.data += d));
  sock.on("error", () => {}); // a reset is a close too
  c.connected = new Promise((resolve) => sock.once("connect", resolve));
  c.closed = new Promise((resolve) => sock.once("close", () => {
    c.closedAt = Date.now();
    resolve(c);
  }));
  c.write = (text) => { if (!sock.destroyed) { sock.write(text); c.sent += text.length; } };
  return c;
}

// A client that sends a request line, then one header byte every 100 ms,
// never finishing its headers: each byte would reset an idle timeout.
function trickler(port, localAddress) {
  const c = raw(port, { localAddress });
  const rest = "X-Slow: " + "a".repeat(10000);
  let i = 0, timer;
  c.connected.then(() => {
    c.write("POST /e/k HTTP/1.1\r\nHost: x\r\n");
    timer = setInterval(() => c.write(rest[i++ % rest.length]), 100);
  });
  c.closed.then(() => clearInterval(timer));
  return c;
}

// Sends text on a new connection and resolves with everything the server
// sent until it closed the connection (the client never ends its side).
async function exchange(port, text, ms = 5000) {
  const c = raw(port);
  await c.connected;
  c.write(text);
  const done = await within(c.closed, ms, `answer to ${JSON.stringify(text.slice(0, 60))}`);
  const m = /^HTTP\/1\.1 (\d{3})/.exec(done.data);
  const i = done.data.indexOf("\r\n\r\n");
  let json;
  try { json = JSON.parse(done.data.slice(i + 4)); } catch {}
  return { status: m ? Number(m[1]) : 0, text: done.data, json };
}

const logged = (s) => s.out.lines.map((l) => { try { return JSON.parse(l); } catch { return {}; } });

test("slow clients: capped per peer, closed at the header deadline however they trickle, logged sparingly",
  { timeout: 60000 }, async () => {
    const HEADER_MS = 3000, CAP = 4;
    const s = await startSysbusd({ args: ["--http-max-conns-per-peer", String(CAP),
      "--http-header-timeout", `${HEADER_MS}ms`] });
    try {
      const first = [];
      for (let i = 0; i < CAP; i++) first.push(trickler(s.port, OTHER_PEER));
      await Promise.all(first.map((c) => c.connected));
      const more = [];
      for (let i = 0; i < 12; i++) more.push(trickler(s.port, OTHER_PEER));
      const all = [...first, ...more];

      // 12 of the 16 are over the cap: closed at once, long before any deadline
      await within(until("12 connections closed", () => all.filter((c) => c.closedAt).length >= 12, 5000),
        6000, "refusals over the cap");
      const refused = all.filter((c) => c.closedAt);
      for (const c of refused) assert.ok(c.closedAt - c.openedAt < HEADER_MS / 2, "refused at the accept");
      const held = all.filter((c) => !c.closedAt);
      assert.equal(held.length, CAP, "the peer keeps its cap's worth of connections");

      // another peer is served meanwhile
      const health = await api(s, "/health");
      assert.equal(health.status, 200);
      assert.ok(held.every((c) => !c.closedAt), "the trickling connections are still open");

      // The rate limit: one "connection limit" line for the burst; the next
      // one, a second later, counts the lines left out. Keep knocking until
      // it comes.
      const limitLines = () => logged(s).filter((j) => j.event === "mhd" && /connection limit/.test(j.msg));
      let knocks = 0;
      const summary = await until("a rate-limited line with a suppressed count", async () => {
        const c = raw(s.port, { localAddress: OTHER_PEER });
        knocks++;
        await within(c.closed, 2000, "refusal of a knock");
        return limitLines().find((j) => j.suppressed > 0);
      }, 10000, 50);
      assert.ok(summary.suppressed >= 11, `the lines left out are counted (${summary.suppressed})`);
      assert.match(summary.msg, /more like it/);
      assert.ok(limitLines().length <= 3, `${12 + knocks} refusals, ${limitLines().length} lines`);

      // the header deadline ends the tricklers although they never went quiet
      await within(Promise.all(held.map((c) => c.closed)), HEADER_MS + 5000, "close at the header deadline");
      for (const c of held) {
        const lived = c.closedAt - c.openedAt;
        assert.ok(lived >= HEADER_MS - 200, `not before the deadline (${lived} ms)`);
        assert.ok(lived < HEADER_MS + 3000, `at the deadline, not an idle timeout (${lived} ms)`);
        assert.ok(c.sent > 30 + (HEADER_MS / 100) / 2, "it kept sending until the end");
        assert.equal(c.data, "", "nothing is answered to headers that never ended");
      }
      const closedLines = () => logged(s).filter((j) => j.event === "http_header_timeout");
      await until("the header deadline's log line", () =>
        closedLines().reduce((n, j) => n + j.connections, 0) === CAP);
      assert.ok(closedLines().length <= 2, "one line for connections closed together");

      // the peer's slots are free again
      const again = raw(s.port, { localAddress: OTHER_PEER });
      await again.connected;
      again.write("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const res = await within(again.closed, 5000, "answer after the slots were freed");
      assert.match(res.data, /^HTTP\/1\.1 200/);
    } finally {
      await s.stop();
    }
  });

test("an over-limit Content-Length is answered 413 at the headers, before any body", { timeout: 30000 }, async () => {
  const s = await startSysbusd({ args: ["--max-body", "2048"] });
  try {
    const head = "POST /e/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n";
    const r = await exchange(s.port, head + "\r\n");
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.code, "TOO_LARGE");
    assert.match(r.text, /\r\nConnection: close\r\n/i);

    // a client waiting for "100 Continue" gets the 413 instead
    const e = await exchange(s.port, head + "Expect: 100-continue\r\n\r\n");
    assert.equal(e.status, 413, e.text);
    assert.doesNotMatch(e.text, /100 Continue/);

    // a client that sends its (large) body with the headers still reads
    // the 413: the connection lingers, dropping the body, instead of being
    // reset under the client's writes
    const sent = await fetch(`${s.url}/e/k`, { method: "POST", body: "x".repeat(6 << 20),
      headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(20000) });
    assert.equal(sent.status, 413);
    assert.equal((await sent.json()).code, "TOO_LARGE");

    // a body within the limit still goes through
    const ok = await api(s, "/e/k", { method: "POST", body: { name: "a/b" } });
    assert.equal(ok.status, 200);
  } finally {
    await s.stop();
  }
});

test("ambiguous request framing is refused with 400 and the connection closed", { timeout: 30000 }, async () => {
  const s = await startSysbusd();
  try {
    const body = '{"name":"a/smuggled"}';
    const n = body.length;
    const chunked = `${n.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const cases = {
      "Content-Length and Transfer-Encoding": `Content-Length: ${n}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`,
      "two different Content-Lengths": `Content-Length: ${n}\r\nContent-Length: 3\r\n\r\n${body}`,
      "the same Content-Length twice": `Content-Length: ${n}\r\nContent-Length: ${n}\r\n\r\n${body}`,
      "two Transfer-Encodings": `Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`,
      "a coding other than chunked": `Transfer-Encoding: gzip, chunked\r\n\r\n${chunked}`,
      "a space before the colon": `Content-Length : ${n}\r\n\r\n${body}`,
    };
    for (const [what, rest] of Object.entries(cases)) {
      const r = await exchange(s.port, `POST /e/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${rest}`);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.json?.code, "BAD_FRAMING", what);
      assert.equal(typeof r.json.error, "string");
      assert.match(r.text, /\r\nConnection: close\r\n/i, what);
    }
    // libmicrohttpd refuses a Content-Length that is not a number itself
    // (its own 400, before our handler: see docs/internals/http.md)
    for (const cl of ["abc", "-5", `${n}, ${n}`]) {
      const r = await exchange(s.port, `POST /e/k HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\n${body}`);
      assert.equal(r.status, 400, `Content-Length: ${cl}: ${r.text}`);
    }
    const events = await api(s, "/v1/events?name=a/smuggled");
    assert.equal(events.status, 200);
    assert.equal(events.json.data.length, 0, "no refused request stored an event");
    const ok = await api(s, "/e/k", { method: "POST", body: { name: "a/fine" } });
    assert.equal(ok.status, 200);
  } finally {
    await s.stop();
  }
});

// sysbusd whose files may not grow past ~2 MiB (dash counts 512-byte blocks):
// a larger write fails with EFBIG, standing in for a full disk, and the
// event is answered 500 (SIGXFSZ ignored, as the shell leaves it to exec).
async function startSmallDiskSysbusd(args) {
  const dataDir = tmpdir("sysbusd-hostile-");
  const argv = ["--dev", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...args]
    .map((a) => `'${a}'`).join(" ");
  const proc = spawn("sh", ["-c", `trap '' XFSZ; ulimit -f 4096; exec '${path.join(BIN, "sysbusd")}' ${argv}`]);
  const out = { lines: [] };
  readline.createInterface({ input: proc.stderr }).on("line", (l) => out.lines.push(l));
  const exited = new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
  const reap = () => proc.kill("SIGKILL");
  process.on("exit", reap);
  const ready = await until("sysbusd to listen", () => logged({ out }).find((j) => j.event === "listening"));
  return {
    out, port: ready.port, url: `http://127.0.0.1:${ready.port}`,
    async stop() {
      proc.kill("SIGTERM");
      const code = await exited;
      process.off("exit", reap);
      const log = out.lines.join("\n");
      assert.doesNotMatch(log, /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/);
      assert.equal(code, 0, `sysbusd exited with ${code}:\n${log.slice(-4000)}`);
    },
  };
}

test("no event key in any log line", {
  timeout: 60000,
  skip: sqliteOnly("its full disk is a file size limit on sysbusd's process, which only the SQLite store writes under"),
}, async () => {
  const key = "k3y-" + crypto.randomBytes(8).toString("hex");
  const s = await startSmallDiskSysbusd(["--http-body-timeout", "1s"]);
  try {
    // a 5xx: logged with its path
    const big = await api(s, `/e/${key}`, { method: "POST", body: { name: "a/big", data: { x: "y".repeat(3 << 20) } } });
    assert.ok(big.status >= 500, `the store refused the event (${big.status} ${big.text})`);
    await until("the http_error line", () => logged(s).find((j) => j.event === "http_error"));
    assert.deepEqual(s.out.lines.filter((l) => l.includes(key)), [], "the 5xx line has no key");

    // a body that never completes: closed at its deadline, logged with its path
    const slow = raw(s.port);
    await slow.connected;
    slow.write(`POST /e/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"name":`);
    await within(slow.closed, 6000, "close at the body deadline");
    await until("the body deadline's line", () => logged(s).find((j) => j.event === "http_body_timeout"));

    // a client that resets before its answer (libmicrohttpd's own lines may
    // then quote the request's URL)
    for (let i = 0; i < 3; i++) {
      const c = raw(s.port);
      await c.connected;
      const b = '{"name":"a/b"}';
      c.write(`POST /e/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
      c.sock.resetAndDestroy();
      await c.closed;
    }
    // percent-encoded, and a path that is no route
    const enc = await api(s, `/%65/${key}`, { method: "POST", body: { name: "a/big", data: { x: "y".repeat(3 << 20) } } });
    assert.ok(enc.status >= 500, `refused again (${enc.status})`);
    await api(s, `/e/${key}/nothing`, { method: "GET" });
  } finally {
    await s.stop();
  }
  const lines = logged(s);
  const errors = lines.filter((j) => j.event === "http_error");
  assert.ok(errors.length >= 2, "both 5xx answers were logged");
  for (const e of errors) assert.equal(e.path, "/e/<redacted>");
  assert.equal(lines.find((j) => j.event === "http_body_timeout").path, "/e/<redacted>");
  if (process.env.SYSBUS_TEST_VERBOSE) console.error(s.out.lines.join("\n"));
  const leaks = s.out.lines.filter((l) => l.includes(key));
  assert.deepEqual(leaks, [], "the event key appears in no log line");
});

test("a port in use: the error names that port", { timeout: 30000 }, async () => {
  const taken = net.createServer();
  await new Promise((resolve) => taken.listen(0, "127.0.0.1", resolve));
  const port = taken.address().port;
  try {
    const r = await runSysbusd(["--dev", "--host", "127.0.0.1", "--port", String(port), "--data-dir", tmpdir()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`"event":"listen_failed".*127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /Address already in use/);
    assert.doesNotMatch(r.stderr, /port 0\b/);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("{") && /bind|listen/i.test(l));
    assert.equal(lines.length, 1, `one log line says it:\n${r.stderr}`);
  } finally {
    taken.close();
  }
});
