// The socket.io adapter contract where it depends on the daemon: what an app
// sees across the cluster must be what socket.io's own cluster adapters give
// it (timeouts as the app asked, servers that leave, servers that stop
// reading).
//
// Real daemons (one on the memory bus, or two on MongoDB when MONGODB_URI is
// set), socket.io servers in separate processes, socket.io-client clients.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, using } from "./support/cluster.mjs";

const RESOURCE_EXHAUSTED = 8;

/** Two daemons on MongoDB with the given node settings, or one daemon twice without MONGODB_URI. */
async function cluster(nodeArgs) {
  if (!process.env.MONGODB_URI) {
    const daemon = await new Daemon(nodeArgs).start();
    return [daemon, daemon];
  }
  const args = [
    "--mongodb-uri", process.env.MONGODB_URI,
    "--mongodb-database", `siobridge_contract_${randomBytes(5).toString("hex")}`,
    "--node-heartbeat-interval", "1s",
    "--node-heartbeat-timeout", "5s",
    ...nodeArgs,
  ];
  const first = await new Daemon(args).start();
  await eventually(async () => (await first.status()).bus_state === "ready", 30000, "first daemon's bus ready");
  const second = await new Daemon(args).start();
  await eventually(async () => (await second.status()).bus_state === "ready", 30000, "second daemon's bus ready");
  return [first, second];
}

describe("serverSideEmitWithAck waits as long as the caller asked", {
  skip: !process.env.MONGODB_URI && "across daemons only: MONGODB_URI not set",
}, () => {
  // The remote daemon's local_timeout (1 s) is shorter than the answer takes
  // (2.5 s); the caller asked for 15 s. socket.io's adapters give the answer.
  let daemons;
  before(async () => {
    daemons = await cluster(["--node-request-timeout", "3s", "--node-local-timeout", "1s"]);
  });
  after(async () => {
    for (const daemon of new Set(daemons ?? [])) await daemon.dispose();
  });

  test("an answer after the remote daemon's local_timeout still arrives", { timeout: 40000 }, async () => {
    const asking = await new ServerProcess({ address: daemons[0].address, requestsTimeout: 15000, label: "asking" }).start();
    const slow = await new ServerProcess({ address: daemons[1].address, serverSideEmitDelay: 2500, label: "slow" }).start();
    await using([asking, slow], async () => {
      await eventually(async () => (await asking.do("serverCount")) === 2, 20000, "two servers");
      const reply = await asking.do("serverSideEmitWithAck", { event: "server-ping" });
      assert.equal(reply.error, undefined, reply.error);
      assert.deepEqual(reply.responses, ["pong from slow"]);
    });
  });
});

describe("emitWithAck ends when the app's timeout passes", () => {
  // node.request_timeout and node.ack_timeout are far longer than the 500 ms
  // the app asked for: the daemon must end the operation at the app's timeout.
  let daemons;
  before(async () => {
    daemons = await cluster(["--node-request-timeout", "60s", "--node-local-timeout", "50s", "--node-ack-timeout", "60s"]);
  });
  after(async () => {
    for (const daemon of new Set(daemons ?? [])) await daemon.dispose();
  });

  test("io.timeout(500).emitWithAck with a client that never acks: the operation ends, the adapter reports nothing",
       { timeout: 30000 }, async () => {
    const one = await new ServerProcess({ address: daemons[0].address, label: "one" }).start();
    const two = await new ServerProcess({ address: daemons[1].address, label: "two" }).start();
    await using([one, two], async () => {
      await eventually(async () => (await one.do("serverCount")) === 2, 20000, "two servers");
      const answers = await one.client({ rooms: ["poll"] });
      new Inbox(answers, "poll").answer = () => ["yes"];
      const silent = await two.client({ rooms: ["poll"] });
      silent.on("poll", () => {}); // takes the callback, never calls it
      const reply = await one.do("emitWithAck", { event: "poll", rooms: ["poll"], timeout: 500 });
      assert.match(reply.error, /operation has timed out/);
      assert.deepEqual(reply.responses, ["yes"]);
      // The daemon's part ends too (Done, timed out), long before its own
      // 60 s timeouts; else the adapter's safety net reports DEADLINE_EXCEEDED after 6 s.
      await eventually(async () => (await daemons[0].status()).operations_in_flight === "0", 15000,
                       "the daemon ended the operation");
      assert.deepEqual(one.errors, []);
      answers.disconnect();
      silent.disconnect();
    });
  });
});

describe("a server that leaves during serverSideEmitWithAck is no longer expected", () => {
  let daemons;
  before(async () => {
    daemons = await cluster(["--node-request-timeout", "20s", "--node-local-timeout", "10s"]);
  });
  after(async () => {
    for (const daemon of new Set(daemons ?? [])) await daemon.dispose();
  });

  test("the others' answers, without an error (as socket.io's ClusterAdapterWithHeartbeat)", { timeout: 40000 },
       async () => {
    const asking = await new ServerProcess({ address: daemons[0].address, requestsTimeout: 15000, label: "asking" }).start();
    const answering = await new ServerProcess({ address: daemons[1].address, label: "answering" }).start();
    const leaving = await new ServerProcess({ address: daemons[1].address, closeOnServerSideEmit: true, label: "leaving" }).start();
    await using([asking, answering, leaving], async () => {
      await eventually(async () => (await asking.do("serverCount")) === 3, 20000, "three servers");
      const reply = await asking.do("serverSideEmitWithAck", { event: "server-ping" });
      assert.equal(reply.error, undefined, reply.error);
      assert.deepEqual(reply.responses, ["pong from answering"]);
    });
  });
});

describe("a server that stopped reading is closed with RESOURCE_EXHAUSTED", () => {
  let daemon;
  before(async () => {
    // The queue must hold twice limits.backpressure_bytes (the daemon refuses less).
    daemon = await new Daemon(["--limits-attachment-queue-messages", "64", "--limits-attachment-queue-bytes", "512KiB",
                               "--limits-backpressure-bytes", "128KiB"]).start();
  });
  after(async () => daemon?.dispose());

  test("the app's onError gets RESOURCE_EXHAUSTED and the daemon's reason, as bridge.proto promises", { timeout: 60000 },
       async () => {
    const slow = await new ServerProcess({ address: daemon.address, label: "slow" }).start();
    const fast = await new ServerProcess({ address: daemon.address, label: "fast" }).start();
    await using([slow, fast], async () => {
      await eventually(async () => (await fast.do("serverCount")) === 2, 10000, "two servers");
      const resume = join(daemon.dir, "resume-slow");
      const blocked = slow.do("block", { until: resume });
      await eventually(async () => {
        await fast.do("emit", { event: "flood", args: [{ $repeat: 10 << 10 }], times: 20 });
        return (await daemon.status()).attachments.length === 1;
      }, 40000, "the daemon closed the slow server");
      // Stays blocked past the daemon's 2 s grace: the status must still be RESOURCE_EXHAUSTED.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      writeFileSync(resume, "");
      await blocked;
      const closed = await eventually(() => slow.errors.find((e) => /Attach stream/.test(e.message)), 15000, "the close");
      assert.equal(closed.code, RESOURCE_EXHAUSTED, closed.message);
      // Either of the daemon's reasons: its queue for the server overflowed, or a write waited too long.
      assert.match(closed.message, /(did not keep up with|stopped reading) its Attach stream/);
    });
  });
});
