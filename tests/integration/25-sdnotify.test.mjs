// 25-sdnotify: sysbusd speaks the systemd notify protocol, and the service
// units and the launchd plist in deploy/ are well-formed.
//
// Node cannot bind AF_UNIX datagram sockets, so the notify socket is served
// by socat (`socat -u -v UNIX-RECV:<path> OPEN:/dev/null`): with -v it prints
// a header with the length of each datagram it receives on stderr, followed
// by the datagram, which is how the test splits datagrams apart. socat,
// systemd (for systemd-analyze and systemd-sysusers) and libxml2-utils
// (xmllint) are installed by scripts/deps.sh; the unit checks are skipped,
// saying why, only when their tool is absent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { notifySocket, ROOT, startSysbusd, tmpdir, until } from "./lib.mjs";

const has = (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;

test("sysbusd sends READY=1 once it serves, and STOPPING=1 on SIGTERM", { timeout: 60000 }, async (t) => {
  const ns = await notifySocket(t);
  const s = await startSysbusd({ env: { NOTIFY_SOCKET: ns.path } });
  try {
    const ready = await until("READY=1", () => ns.datagrams().find((d) => d.split("\n").includes("READY=1")));
    // one datagram: READY=1 and a STATUS line saying where it listens
    assert.deepEqual(ready.split("\n"), ["READY=1", `STATUS=listening on 127.0.0.1:${s.port}`]);
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200, "ready means serving");
    assert.equal(ns.datagrams().length, 1, "READY is sent once");
    assert.ok(!s.out.lines.some((l) => l.includes("sd_notify_failed")));
  } finally {
    await s.stop();
  }
  const all = ns.datagrams();
  assert.deepEqual(all.slice(1), ["STOPPING=1"], JSON.stringify(all));
});

test("sysbusd without NOTIFY_SOCKET starts as before; an unusable one is logged, not fatal", { timeout: 60000 }, async () => {
  let s = await startSysbusd();
  await s.stop();
  assert.ok(!s.out.lines.some((l) => l.includes("sd_notify")));
  s = await startSysbusd({ env: { NOTIFY_SOCKET: path.join(tmpdir("sdnotify-none-"), "absent.sock") } });
  try {
    const res = await fetch(`${s.url}/health`);
    assert.equal(res.status, 200);
    const warn = s.out.lines.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .find((j) => j.event === "sd_notify_failed");
    assert.ok(warn, s.out.lines.join("\n"));
    assert.match(warn.msg, /No such file or directory/);
  } finally {
    await s.stop();
  }
});

// The units with ExecStart's /usr/local/bin/ pointed at stub executables:
// systemd-analyze verify insists that the binaries exist, and the units are
// checked for what they say, not for whether talon and secrets are built.
const UNITS = ["sysbusd.service", "talon.service", "secrets.service"];
test("the systemd units pass systemd-analyze verify without a warning", {
  skip: has("systemd-analyze") ? false : "systemd-analyze is not installed (the systemd package)",
}, () => {
  const dir = tmpdir("units-");
  fs.mkdirSync(path.join(dir, "bin"));
  for (const b of ["sysbusd", "talon", "secrets"])
    fs.writeFileSync(path.join(dir, "bin", b), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const units = UNITS.map((u) => {
    const text = fs.readFileSync(path.join(ROOT, "deploy/systemd", u), "utf8");
    assert.match(text, /^ExecStart=\/usr\/local\/bin\//m, u);
    const f = path.join(dir, u);
    fs.writeFileSync(f, text.replaceAll("/usr/local/bin/", `${dir}/bin/`));
    return f;
  });
  // the PostgreSQL drop-in, merged into the unit as systemd merges it
  const dropIn = fs.readFileSync(path.join(ROOT, "deploy/systemd/sysbusd.service.d/postgres.conf"), "utf8");
  assert.match(dropIn, /^Environment=SYSBUS_STORE_FILE=%d\/store-url$/m);
  const merged = path.join(dir, "sysbusd-postgres.service");
  fs.writeFileSync(merged, `${fs.readFileSync(units[0], "utf8")}\n${dropIn}`);
  units.push(merged);
  const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...units], { encoding: "utf8" });
  // systemd-analyze exits 0 even for unknown keys or bad values (it ignores
  // them with a warning): any output is a failure here.
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr + r.stdout, "", "no warnings");

  // and the check is real: a misspelt setting is reported
  const bad = path.join(dir, "bad.service");
  fs.writeFileSync(bad, fs.readFileSync(units[0], "utf8").replace(/^Type=notify$/m, "Type=notfy"));
  const rb = spawnSync("systemd-analyze", ["verify", "--man=no", bad], { encoding: "utf8" });
  assert.match(rb.stderr, /Failed to parse service type/);
});

// The settings that other parts of sysbus rely on.
test("the units say what sysbusd, talon and secrets need", () => {
  const unit = (u) => fs.readFileSync(path.join(ROOT, "deploy/systemd", u), "utf8");
  const sysbusd = unit("sysbusd.service");
  for (const l of ["Type=notify", "ExecStart=/usr/local/bin/sysbusd", "StateDirectory=sysbus/sysbusd",
    "Environment=SYSBUS_DATA_DIR=%S/sysbus/sysbusd", "EnvironmentFile=-/etc/sysbus/sysbusd.env",
    "Restart=on-failure", "RestartPreventExitStatus=2 3", "NoNewPrivileges=yes", "ProtectSystem=strict",
    "ProtectHome=yes", "PrivateTmp=yes", "User=sysbus"])
    assert.ok(sysbusd.split("\n").includes(l), `sysbusd.service: ${l}`);
  const talon = unit("talon.service");
  for (const l of ["Type=notify", "ExecStart=/usr/local/bin/talon --config /etc/sysbus/talon.ini",
    "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=mixed", "Restart=on-failure",
    "Environment=PATH=/usr/local/bin:/usr/bin:/bin", "SupplementaryGroups=sysbus-secrets"])
    assert.ok(talon.split("\n").includes(l), `talon.service: ${l}`);
  assert.match(talon, /^After=.*\bsecrets\.service\b/m);
  assert.match(talon, /^Wants=.*\bsecrets\.service\b/m);
  // talon's stop must outlast the worker's drain grace (docs/system-bus-worker.md)
  const grace = Number(/SYSBUS_DRAIN_GRACE`, default (\d+) s/.exec(
    fs.readFileSync(path.join(ROOT, "docs/system-bus-worker.md"), "utf8"))[1]);
  assert.ok(Number(/^TimeoutStopSec=(\d+)s$/m.exec(talon)[1]) > grace + 5);
  const secrets = unit("secrets.service");
  for (const l of ["ExecStart=/usr/local/bin/secrets serve --socket /run/sysbus/secrets.sock --store /var/lib/sysbus/secrets --allow-uid sysbus-talon",
    "RuntimeDirectory=sysbus", "RuntimeDirectoryMode=0750", "LimitCORE=0", "MemoryDenyWriteExecute=yes",
    "StateDirectory=sysbus/secrets", "Group=sysbus-secrets"])
    assert.ok(secrets.split("\n").includes(l), `secrets.service: ${l}`);
});

test("systemd-sysusers creates every user and group the units run as", {
  skip: has("systemd-sysusers") ? false : "systemd-sysusers is not installed (the systemd package)",
}, () => {
  const root = tmpdir("sysusers-");
  fs.mkdirSync(path.join(root, "etc"));
  const r = spawnSync("systemd-sysusers", [`--root=${root}`, path.join(ROOT, "deploy/systemd/sysbus.sysusers")],
    { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const users = new Set(fs.readFileSync(path.join(root, "etc/passwd"), "utf8").split("\n").map((l) => l.split(":")[0]));
  const groups = new Map(fs.readFileSync(path.join(root, "etc/group"), "utf8").split("\n").filter(Boolean)
    .map((l) => { const f = l.split(":"); return [f[0], f[3] ? f[3].split(",") : []]; }));
  for (const u of UNITS) {
    const text = fs.readFileSync(path.join(ROOT, "deploy/systemd", u), "utf8");
    const user = /^User=(.+)$/m.exec(text)[1];
    assert.ok(users.has(user), `${u}: User=${user}`);
    assert.ok(groups.has(/^Group=(.+)$/m.exec(text)[1]), `${u}: Group=`);
    for (const g of (/^SupplementaryGroups=(.+)$/m.exec(text)?.[1] ?? "").split(/\s+/).filter(Boolean)) {
      assert.ok(groups.has(g), `${u}: SupplementaryGroups=${g}`);
      assert.ok(groups.get(g).includes(user), `${user} is a member of ${g}`);
    }
    for (const [, allowed] of text.matchAll(/--allow-uid (\S+)/g))
      assert.ok(users.has(allowed), `${u}: --allow-uid ${allowed}`);
  }
  // talon's user is the one the secrets daemon admits
  const talonUser = /^User=(.+)$/m.exec(fs.readFileSync(path.join(ROOT, "deploy/systemd/talon.service"), "utf8"))[1];
  assert.match(fs.readFileSync(path.join(ROOT, "deploy/systemd/secrets.service"), "utf8"),
    new RegExp(`^ExecStart=.* --allow-uid ${talonUser}\\b`, "m"));
});

// Apple's property list DTD (the public format of launchd plists), found
// through an XML catalog for the plist's DOCTYPE, so that validation needs no
// network and checks that the DOCTYPE is the right one.
const PLIST_DTD = `<!ENTITY % plistObject "(array | data | date | dict | real | integer | string | true | false )" >
<!ELEMENT plist %plistObject;>
<!ATTLIST plist version CDATA "1.0" >
<!ELEMENT array (%plistObject;)*>
<!ELEMENT dict (key, %plistObject;)*>
<!ELEMENT key (#PCDATA)>
<!ELEMENT string (#PCDATA)>
<!ELEMENT data (#PCDATA)>
<!ELEMENT date (#PCDATA)>
<!ELEMENT true EMPTY>
<!ELEMENT false EMPTY>
<!ELEMENT real (#PCDATA)>
<!ELEMENT integer (#PCDATA)>
`;

test("the launchd plist is a valid property list with talon's arguments", {
  skip: has("xmllint") ? false : "xmllint is not installed (the libxml2-utils package)",
}, () => {
  const plist = path.join(ROOT, "deploy/launchd/com.sysbus.talon.plist");
  const dir = tmpdir("plist-");
  fs.writeFileSync(path.join(dir, "plist.dtd"), PLIST_DTD);
  fs.writeFileSync(path.join(dir, "catalog.xml"), `<?xml version="1.0"?>
<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">
  <public publicId="-//Apple//DTD PLIST 1.0//EN" uri="file://${dir}/plist.dtd"/>
</catalog>
`);
  const xmllint = (args) => spawnSync("xmllint", ["--nonet", ...args], { encoding: "utf8",
    env: { ...process.env, XML_CATALOG_FILES: path.join(dir, "catalog.xml") } });
  let r = xmllint(["--noout", "--valid", plist]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  const xpath = (expr) => xmllint(["--xpath", expr, plist]).stdout.trim();
  const value = (key) => `/plist/dict/key[.="${key}"]/following-sibling::*[1]`;
  assert.equal(xpath(`string(${value("Label")})`), "com.sysbus.talon");
  assert.equal(xpath(`string(${value("Label")}/../key[1])`), "Label");
  const args = xpath(`${value("ProgramArguments")}/string`).match(/<string>[^<]*<\/string>/g)
    .map((s) => s.slice(8, -9));
  assert.deepEqual(args.slice(0, 2), ["/usr/local/bin/talon", "--config"]);
  assert.match(args[2], /talon\.ini$/);
  assert.equal(xpath(`name(${value("KeepAlive")})`), "true");
  assert.equal(xpath(`name(${value("RunAtLoad")})`), "true");
  assert.match(xpath(`string(${value("StandardOutPath")})`), /^\/.+\.log$/);
  assert.match(xpath(`string(${value("StandardErrorPath")})`), /^\/.+\.log$/);
  const PATH = xpath(`string(${value("EnvironmentVariables")}/key[.="PATH"]/following-sibling::string[1])`);
  assert.ok(PATH.split(":").includes("/usr/local/bin") && PATH.split(":").includes("/usr/bin"), PATH);
  assert.ok(Number(xpath(`string(${value("ExitTimeOut")})`)) > 25, "ExitTimeOut above the worker's drain grace");
  // and the check is real: a dict with a key but no value is refused
  const bad = path.join(dir, "bad.plist");
  fs.writeFileSync(bad, fs.readFileSync(plist, "utf8").replace("<true/>", ""));
  r = xmllint(["--noout", "--valid", bad]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Element dict content does not follow the DTD/);
});
