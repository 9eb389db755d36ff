// MongoDB configuration errors named where an operator looks (issue: "Clear
// MongoDB configuration errors"): an unreachable host and a replica set name
// that does not match, each in one error line and in Status within seconds;
// and one log: with --log-level error --log-format json, what the MongoDB
// driver, gRPC and protobuf log goes through the daemon's logger too, so the
// output is JSON lines only, on one stream. (A failed login, a missing
// privilege and TLS failures: auth.test.mjs and tls.test.mjs.)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  Daemon,
  Scratch,
  authUri,
  checkConnection,
  daemonBinary,
  eventually,
  freePort,
  randomName,
  startAuthMongo,
  unavailable,
} from "./support/secure.mjs";

describe("MongoDB configuration errors, named", { skip: unavailable() }, () => {
  const scratch = new Scratch();
  const daemons = [];

  before(async () => {
    await startAuthMongo();
  });

  after(async () => {
    for (const daemon of daemons) await daemon.dispose();
    scratch.cleanup();
  });

  test("--log-level error --log-format json against an unreachable MongoDB: JSON lines only, the host named", async () => {
    const port = await freePort();
    const socket = scratch.path("json.sock");
    const child = spawn(daemonBinary, [
      "--listen-unix", socket, "--mongodb-uri", `mongodb://127.0.0.1:${port}/?replicaSet=rs0`,
      "--log-level", "error", "--log-format", "json",
    ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const exited = once(child, "exit");
    const probe = new Daemon();
    probe.address = `unix:${socket}`;
    try {
      await eventually(async () => (await probe.status()).bus_detail.includes(`cannot reach MongoDB at 127.0.0.1:${port}`),
                       10000, "the unreachable host named in Status");
      // The driver's monitoring tries the host every second, and the daemon's
      // set-up gives up each 5 s (serverSelectionTimeoutMS): past both, each
      // has said its piece again.
      await eventually(async () => Number((await probe.status()).uptime_seconds) >= 8, 30000, "8 s of retries");
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    assert.equal(stdout, "", "nothing on standard output");
    const lines = stderr.split("\n").filter((line) => line !== "");
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
    const records = lines.map((line) => JSON.parse(line));
    assert.ok(records.every((r) => r.level === "error" || r.level === "critical"), stderr);
    const named = records.filter((r) => r.msg.includes(`cannot reach MongoDB at 127.0.0.1:${port}`));
    assert.equal(named.length, 1, stderr);
  });

  test("a replica set name that does not match is named in one error line within 10 s, and by --connect", async () => {
    const uri = authUri("", "", { options: "replicaSet=not-rs0" });
    const daemon = await new Daemon(["--mongodb-uri", uri, "--mongodb-database", randomName("siobridge_security")]).start();
    daemons.push(daemon);
    await eventually(async () => (await daemon.status()).bus_detail.startsWith("replica set name mismatch"), 10000,
                     "the mismatch named in Status");
    const lines = daemon.log().split("\n").filter((line) => line.includes(" error ") && line.includes("replica set"));
    assert.equal(lines.length, 1, daemon.log());
    assert.match(lines[0], /is a member of replica set "rs0", but the URI names replicaSet=not-rs0/);
    const check = await checkConnection(["--mongodb-uri", uri]);
    assert.equal(check.code, 6, check.stdout + check.stderr);
  });
});
