// 23-slog: the slog binary as operators and scripts use it: write then
// tail/validate, environment fallbacks and the default path, usage errors,
// concurrent writers (8 processes x 200 writes: every line whole), the lock
// (observed in /proc/locks while held by util-linux flock(1)), corrupted and
// torn files, loud write failures (/dev/full, a file as parent directory, a
// short write under `ulimit -f`, which must be rolled back), and health.
// Every slog process gets a clean environment (PATH plus what the test sets).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  BIN, tmpdir, until, SANITIZER,
} from "./lib.mjs";

const SLOG = path.join(BIN, "slog");
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const KEYS = ["timestamp", "sessionId", "systemId", "action", "tool", "detail", "reason"];

// Runs a command to completion: {code, signal, stdout, stderr}. Fails on a
// sanitizer report or when it runs longer than timeoutMs.
function run(cmd, args, { env = {}, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`${cmd} ${args.join(" ")} hung`)); }, timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (SANITIZER.test(stderr)) return reject(new Error(`sanitizer report:\n${stderr}`));
      resolve({ code, signal, stdout, stderr });
    });
  });
}
const slog = (args, env = {}, opts = {}) => run(SLOG, args, { env, ...opts });
const lines = (file) => fs.readFileSync(file, "utf8").split("\n").slice(0, -1);
const entries = (file) => lines(file).map((l) => JSON.parse(l));

// A hand-made entry line (for old timestamps and corrupted files).
const line = (o) => JSON.stringify({ timestamp: new Date().toISOString(), sessionId: null, systemId: null,
  action: "deploy", tool: "test", detail: "by hand", reason: null, ...o }) + "\n";

test("write then tail and validate: one JSON line per entry, read back as written", async () => {
  const dir = tmpdir("slog-");
  const file = path.join(dir, "ops.jsonl");
  const env = { SLOG_FILE: file };
  const before = Date.now();
  let r = await slog(["write", "--action", "deploy", "--tool", "kubectl", "--detail", "rolled out v42",
    "--reason", "new webhook", "--session", "s-1", "--system", "host-a"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, "", "a write that worked is silent");
  r = await slog(["write", "--action", "restart", "--tool", "talon", "--detail", "línea 1\nline 2 \u001b[31m\"q\""], env);
  assert.equal(r.code, 0, r.stderr);
  r = await slog(["write", "--action", "deploy", "--tool", "kubectl", "--detail", "rolled out v43"], env);
  assert.equal(r.code, 0, r.stderr);

  const got = entries(file);
  assert.equal(got.length, 3);
  assert.deepEqual(Object.keys(got[0]), KEYS);
  assert.match(got[0].timestamp, ISO_MS);
  const ts = Date.parse(got[0].timestamp);
  assert.ok(ts >= before - 1000 && ts <= Date.now() + 1000, got[0].timestamp);
  assert.deepEqual({ ...got[0], timestamp: 0 }, { timestamp: 0, sessionId: "s-1", systemId: "host-a",
    action: "deploy", tool: "kubectl", detail: "rolled out v42", reason: "new webhook" });
  assert.equal(got[1].detail, "línea 1\nline 2 \u001b[31m\"q\"");
  assert.equal(got[1].reason, null);
  assert.equal(got[1].sessionId, null);
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600);

  r = await slog(["tail"], env);
  assert.equal(r.code, 0, r.stderr);
  const shown = r.stdout.trim().split("\n");
  assert.equal(shown.length, 3);
  assert.match(shown[0], /^\S+Z deploy kubectl: rolled out v42 \(reason: new webhook\) \[session s-1, system host-a\]$/);
  // control characters are escaped: an entry cannot fake a line or drive the terminal
  assert.match(shown[1], /restart talon: línea 1\\nline 2 \\x1b\[31m"q"$/);

  r = await slog(["tail", "-n", "1", "--json"], env);
  assert.equal(r.stdout, lines(file)[2] + "\n", "--json prints the stored line");
  r = await slog(["tail", "--action", "deploy", "--json", "-n", "5"], env);
  assert.deepEqual(r.stdout.trim().split("\n").map((l) => JSON.parse(l).detail), ["rolled out v42", "rolled out v43"]);
  r = await slog(["tail", "--action", "nothing-like-this"], env);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "");

  r = await slog(["validate"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `ok: ${file}: 3 entries\n`);
  // --file beats SLOG_FILE
  const other = path.join(dir, "other.jsonl");
  r = await slog(["write", "--file", other, "--action", "a", "--tool", "t", "--detail", "d"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lines(other).length, 1);
  assert.equal(lines(file).length, 3);
});

test("session and system ids fall back to SLOG_SESSION_ID and SLOG_SYSTEM_ID; the default path", async () => {
  const dir = tmpdir("slog-env-");
  const file = path.join(dir, "ops.jsonl");
  let r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "from env"],
    { SLOG_FILE: file, SLOG_SESSION_ID: "sess-env", SLOG_SYSTEM_ID: "sys-env" });
  assert.equal(r.code, 0, r.stderr);
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "flags win", "--session", "sess-flag"],
    { SLOG_FILE: file, SLOG_SESSION_ID: "sess-env", SLOG_SYSTEM_ID: "sys-env" });
  assert.equal(r.code, 0, r.stderr);
  const got = entries(file);
  assert.deepEqual([got[0].sessionId, got[0].systemId], ["sess-env", "sys-env"]);
  assert.deepEqual([got[1].sessionId, got[1].systemId], ["sess-flag", "sys-env"]);

  // $XDG_STATE_HOME/sysbus/slog.jsonl, its missing directories created 0700
  const state = path.join(dir, "state");
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "xdg"], { XDG_STATE_HOME: state, HOME: dir });
  assert.equal(r.code, 0, r.stderr);
  const xdgFile = path.join(state, "sysbus", "slog.jsonl");
  assert.equal(entries(xdgFile)[0].detail, "xdg");
  assert.equal(fs.statSync(state).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(state, "sysbus")).mode & 0o777, 0o700);
  r = await slog(["tail", "--json"], { XDG_STATE_HOME: state });
  assert.equal(JSON.parse(r.stdout).detail, "xdg");

  // else ~/.local/state/sysbus/slog.jsonl
  const home = path.join(dir, "home");
  fs.mkdirSync(home);
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "home"], { HOME: home });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(entries(path.join(home, ".local/state/sysbus/slog.jsonl"))[0].detail, "home");
  assert.equal(fs.statSync(path.join(home, ".local")).mode & 0o777, 0o700);
});

test("bad usage exits 2 with the usage; every command has --help; fields have size limits", async () => {
  const dir = tmpdir("slog-usage-");
  const file = path.join(dir, "ops.jsonl");
  const env = { SLOG_FILE: file };
  for (const args of [["write", "--tool", "t", "--detail", "d"], ["write", "--action", "a", "--detail", "d"],
    ["write", "--action", "a", "--tool", "t"], ["write", "--action", "", "--tool", "t", "--detail", "d"]]) {
    const r = await slog(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^slog: --(action|tool|detail) (is required|must not be empty)\nUsage: slog write --action A/);
  }
  let r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "d", "--colour", "x"], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--colour'/);
  r = await slog([], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage: slog <command>/);
  r = await slog(["frobnicate"], env);
  assert.equal(r.code, 2);
  r = await slog(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Exit codes: 0 ok; 1 failed/);
  for (const cmd of ["write", "tail", "validate", "health"]) {
    r = await slog([cmd, "--help"]);
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, new RegExp(`^Usage: slog ${cmd}`), cmd);
    assert.match(r.stdout, /Exit codes:/, cmd);
  }

  // detail: 64 KiB is fine, one byte more is refused with the limit named
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "x".repeat(65536)], env);
  assert.equal(r.code, 0, r.stderr);
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "x".repeat(65537)], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--detail is 65537 bytes; the limit is 65536 bytes/);
  r = await slog(["write", "--action", "a".repeat(129), "--tool", "t", "--detail", "d"], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--action is 129 bytes; the limit is 128 bytes/);
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "d", "--reason", "r".repeat(4097)], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--reason is 4097 bytes/);
  assert.equal(lines(file).length, 1, "refused entries wrote nothing");
  assert.equal(entries(file)[0].detail.length, 65536);
});

test("8 concurrent writers x 200 entries: exactly 1600 whole lines", { timeout: 600000 }, async () => {
  const dir = tmpdir("slog-conc-");
  const file = path.join(dir, "ops.jsonl");
  const W = 8, N = 200;
  // Each writer is a shell loop of separate slog processes; a varying detail
  // length makes torn or interleaved lines visible.
  const script = 'i=0; while [ $i -lt ' + N + ' ]; do ' +
    '"$0" write --action concurrent --tool "w$W" --detail "w$W-$i-$(printf %0*d $((i % 50 * 40)) 0)" || exit 1; ' +
    'i=$((i+1)); done';
  // (Under ASan, leak checking at each of the 1600 exits would double the
  // run time; the other tests keep it on.)
  const results = await Promise.all(Array.from({ length: W }, (_, w) =>
    run("/bin/sh", ["-c", script, SLOG], { env: { SLOG_FILE: file, W: String(w), ASAN_OPTIONS: "detect_leaks=0" },
      timeoutMs: 580000 })));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const raw = fs.readFileSync(file, "utf8");
  assert.ok(raw.endsWith("\n"));
  const all = raw.split("\n").slice(0, -1);
  assert.equal(all.length, W * N);
  const seen = new Set();
  for (const l of all) {
    const e = JSON.parse(l); // throws on a torn line
    assert.deepEqual(Object.keys(e), KEYS);
    const [w, i, pad] = e.detail.split("-");
    assert.equal(e.tool, w);
    assert.equal(pad.length, Math.max(1, (Number(i) % 50) * 40));
    seen.add(`${w}-${i}`);
  }
  assert.equal(seen.size, W * N, "every entry exactly once");
  // each writer's entries appear in its own order
  for (let w = 0; w < W; w++) {
    const mine = all.map((l) => JSON.parse(l).detail).filter((d) => d.startsWith(`w${w}-`)).map((d) => Number(d.split("-")[1]));
    assert.deepEqual(mine, Array.from({ length: N }, (_, i) => i));
  }
  const r = await slog(["validate"], { SLOG_FILE: file });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `ok: ${file}: ${W * N} entries\n`);
});

test("a writer waits for the lock, and gives up loudly after --lock-timeout", { timeout: 60000 }, async (t) => {
  const dir = tmpdir("slog-lock-");
  const file = path.join(dir, "ops.jsonl");
  fs.writeFileSync(file, line({ detail: "first" }));
  const ino = fs.statSync(file).ino;
  // util-linux flock(1) holds LOCK_EX on the file while its command runs;
  // the command runs until its stdin is closed.
  const holder = spawn("flock", ["-x", file, "-c", "echo held; read x"], { stdio: ["pipe", "pipe", "inherit"] });
  const holderExit = new Promise((resolve) => holder.on("exit", resolve));
  t.after(() => holder.kill("SIGKILL"));
  await new Promise((resolve, reject) => {
    holder.stdout.on("data", (d) => { if (String(d).includes("held")) resolve(); });
    holder.on("exit", () => reject(new Error("flock(1) exited")));
  });

  let r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "too late", "--lock-timeout", "300ms"],
    { SLOG_FILE: file });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^slog: cannot write ${file}: another process has held the lock for 300ms`));
  assert.equal(lines(file).length, 1, "nothing written without the lock");

  // A second writer blocks on the lock (seen as a waiter in /proc/locks)...
  const waiting = run(SLOG, ["write", "--action", "a", "--tool", "t", "--detail", "after the lock"],
    { env: { PATH: process.env.PATH, SLOG_FILE: file } });
  let done = false;
  waiting.then(() => (done = true));
  await until("a blocked flock on the log in /proc/locks", () =>
    fs.readFileSync("/proc/locks", "utf8").split("\n").some((l) => l.includes("->") && l.includes(`:${ino} `)));
  assert.equal(done, false);
  assert.equal(lines(file).length, 1);
  // ... and writes once the holder lets go.
  holder.stdin.end();
  await holderExit;
  r = await waiting;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(entries(file).map((e) => e.detail), ["first", "after the lock"]);

  // The log is rotated (renamed away) while a writer waits for its lock: the
  // entry goes to the new file at the path, not into the rotated one.
  const holder2 = spawn("flock", ["-x", file, "-c", "echo held; read x"], { stdio: ["pipe", "pipe", "inherit"] });
  const holder2Exit = new Promise((resolve) => holder2.on("exit", resolve));
  t.after(() => holder2.kill("SIGKILL"));
  await new Promise((resolve) => holder2.stdout.on("data", (d) => { if (String(d).includes("held")) resolve(); }));
  const waiting2 = run(SLOG, ["write", "--action", "a", "--tool", "t", "--detail", "after rotation"],
    { env: { PATH: process.env.PATH, SLOG_FILE: file } });
  await until("a blocked flock on the log in /proc/locks", () =>
    fs.readFileSync("/proc/locks", "utf8").split("\n").some((l) => l.includes("->") && l.includes(`:${ino} `)));
  fs.renameSync(file, `${file}.1`);
  holder2.stdin.end();
  await holder2Exit;
  r = await waiting2;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(entries(`${file}.1`).map((e) => e.detail), ["first", "after the lock"]);
  assert.deepEqual(entries(file).map((e) => e.detail), ["after rotation"]);
});

test("validate names the bad lines and counts them; a torn last line is bad", async () => {
  const dir = tmpdir("slog-bad-");
  const file = path.join(dir, "ops.jsonl");
  fs.writeFileSync(file, line({ detail: "1" }) + line({ detail: "2" }) + line({ detail: "3" }) +
    '{"timestamp":"2026-01-01T00:00:00Z","action":"deploy"\n' +
    line({ tool: undefined }) +
    line({ timestamp: "yesterday" }) +
    line({ detail: "7" }) +
    '[1,2]\n' +
    '\n' +
    line({ detail: "10" }).slice(0, 40));
  let r = await slog(["validate"], { SLOG_FILE: file });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  const err = r.stderr.split("\n");
  assert.match(err[0], new RegExp(`^slog: ${file}: line 4: not JSON`));
  assert.equal(err[1], `slog: ${file}: line 5: field "tool" is missing`);
  assert.equal(err[2], `slog: ${file}: line 6: timestamp "yesterday" is not an ISO-8601 date-time`);
  assert.equal(err[3], `slog: ${file}: line 8: not a JSON object`);
  assert.equal(err[4], `slog: ${file}: line 9: empty line`);
  assert.match(err[5], new RegExp(`^slog: ${file}: line 10: not JSON .*no newline at the end \\(a torn write\\?\\)$`));
  assert.equal(err[6], `slog: ${file}: 6 of 10 lines are bad`);

  // tail skips them (and says so); a new write after the torn line starts a new line
  r = await slog(["tail", "--json", "-n", "100"], { SLOG_FILE: file });
  assert.equal(r.code, 0);
  assert.deepEqual(r.stdout.trim().split("\n").map((l) => JSON.parse(l).detail), ["1", "2", "3", "7"]);
  assert.match(r.stderr, /skipped 6 bad lines \(see: slog validate\)/);
  r = await slog(["write", "--action", "a", "--tool", "t", "--detail", "after the tear"], { SLOG_FILE: file });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(lines(file).at(-1)).detail, "after the tear");
  r = await slog(["validate"], { SLOG_FILE: file });
  assert.match(r.stderr, /line 10: not JSON/);
  assert.match(r.stderr, /6 of 11 lines are bad/);

  // a valid object whose only fault is the missing final newline
  const torn = path.join(dir, "torn.jsonl");
  fs.writeFileSync(torn, line({ detail: "1" }) + line({ detail: "2" }).trimEnd());
  r = await slog(["validate", "--file", torn]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /line 2: no newline at the end of the file \(a torn write\?\)\n.*1 of 2 lines are bad/);
  r = await slog(["validate", "--file", path.join(dir, "missing.jsonl")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^slog: cannot read .*missing\.jsonl: No such file or directory/);
});

test("a write that cannot be made fails loudly and leaves no partial line", { timeout: 60000 }, async () => {
  const dir = tmpdir("slog-fail-");
  const w = (env, extra = []) => slog(["write", "--action", "a", "--tool", "t", "--detail", "d", ...extra], env);
  let r = await w({ SLOG_FILE: "/dev/full" });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "slog: cannot write /dev/full: No space left on device\n");

  fs.writeFileSync(path.join(dir, "plain"), "");
  r = await w({ SLOG_FILE: path.join(dir, "plain", "slog.jsonl") });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `slog: cannot write ${dir}/plain/slog.jsonl: ${dir}/plain is not a directory\n`);
  r = await w({ SLOG_FILE: path.join(dir, "plain", "sub", "slog.jsonl") });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `slog: cannot write ${dir}/plain/sub/slog.jsonl: cannot create directory ${dir}/plain/sub: Not a directory\n`);
  r = await w({ SLOG_FILE: dir });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `slog: cannot write ${dir}: Is a directory\n`);

  // A write that crosses the file size limit (RLIMIT_FSIZE) is short: slog
  // must take the partial line back out and say so. dash counts `ulimit -f`
  // in 512-byte blocks (2048 bytes here), bash in 1 KiB blocks (4096 bytes):
  // both are above the 1000 bytes already there and below the new line's end.
  const file = path.join(dir, "limited.jsonl");
  let content = "";
  while (content.length < 1000) content += line({ detail: `pre-${content.length}` });
  fs.writeFileSync(file, content);
  const limited = (extra) => run("/bin/sh", ["-c", 'ulimit -f 4 && exec "$0" "$@"', SLOG, "write", "--action", "a",
    "--tool", "t", ...extra], { env: { SLOG_FILE: file } });
  r = await limited(["--detail", "y".repeat(8000)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^slog: cannot write ${file}: short write \\(\\d+ of \\d+ bytes: .*\\); the partial entry was removed\\n$`));
  assert.equal(fs.readFileSync(file, "utf8"), content, "the file is as it was");
  // a small entry still fits under the limit
  r = await limited(["--detail", "small"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(entries(file).at(-1).detail, "small");
  // at the limit, write(2) fails outright (EFBIG, SIGXFSZ is ignored)
  fs.appendFileSync(file, line({ detail: "z".repeat(4200) }));
  const full = fs.readFileSync(file, "utf8");
  r = await limited(["--detail", "more"]);
  assert.equal(r.code, 1);
  assert.equal(r.signal, null, "not killed by SIGXFSZ");
  assert.equal(r.stderr, `slog: cannot write ${file}: File too large\n`);
  assert.equal(fs.readFileSync(file, "utf8"), full);
  r = await slog(["validate"], { SLOG_FILE: file });
  assert.equal(r.code, 0, r.stderr);
});

test("health: ok for a fresh log; exit 1 with the age when the newest entry is old", async () => {
  const dir = tmpdir("slog-health-");
  const file = path.join(dir, "ops.jsonl");
  const health = async (args = [], f = file) => {
    const r = await slog(["health", ...args], { SLOG_FILE: f });
    return { ...r, json: JSON.parse(r.stdout) };
  };
  let r = await health();
  assert.equal(r.code, 1);
  assert.equal(r.json.ok, false);
  assert.match(r.json.problems[0], /cannot read .*: No such file or directory/);
  assert.match(r.stderr, /^slog: health: cannot read/);

  fs.writeFileSync(file, "");
  r = await health();
  assert.equal(r.code, 1);
  assert.deepEqual(r.json.problems, ["the log has no entries"]);

  await slog(["write", "--action", "deploy", "--tool", "t", "--detail", "fresh"], { SLOG_FILE: file });
  r = await health();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.file, file);
  assert.equal(r.json.entries, 1);
  assert.equal(r.json.bad_lines, 0);
  assert.match(r.json.newest, ISO_MS);
  assert.ok(r.json.age_seconds >= 0 && r.json.age_seconds < 60, String(r.json.age_seconds));
  assert.equal(r.json.max_age_seconds, 86400);
  assert.deepEqual(r.json.problems, []);
  assert.equal(r.stderr, "");

  // A log whose newest entry is two days old: frozen.
  const old = path.join(dir, "old.jsonl");
  const twoDaysAgo = new Date(Date.now() - 2 * 86400000);
  fs.writeFileSync(old, line({ timestamp: new Date(Date.now() - 3 * 86400000).toISOString() }) +
    line({ timestamp: twoDaysAgo.toISOString() }));
  r = await health([], old);
  assert.equal(r.code, 1);
  assert.equal(r.json.ok, false);
  assert.equal(r.json.entries, 2);
  assert.equal(r.json.newest, twoDaysAgo.toISOString());
  assert.ok(Math.abs(r.json.age_seconds - 2 * 86400) < 60, String(r.json.age_seconds));
  assert.match(r.json.problems[0], /^the newest entry \(.*\) is 2d\S* old, more than --max-age 1d$/);
  assert.match(r.stderr, /slog: health: the newest entry/);
  r = await health(["--max-age", "3d"], old);
  assert.equal(r.code, 0, r.stdout);
  r = await health(["--max-age", "3600"], old); // bare number: seconds
  assert.equal(r.code, 1);
  assert.equal(r.json.max_age_seconds, 3600);

  // A bad last line (a torn write) is unhealthy even when the rest is fresh.
  fs.appendFileSync(file, '{"timestamp":');
  r = await health();
  assert.equal(r.code, 1);
  assert.equal(r.json.entries, 1);
  assert.equal(r.json.bad_lines, 1);
  assert.match(r.json.problems[0], /^the last line \(2\) is bad: not JSON/);
});
