// One call's failure stays one call's failure: a payload or an answer larger
// than the daemon takes is refused by the adapter before it is sent (the
// daemon would end the Attach stream shared by every Server of the process),
// and a Server the daemon closed because it could not keep up hears of it and
// comes back. Real daemons, socket.io servers in separate processes,
// socket.io-client clients.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, using } from "./support/cluster.mjs";

const DEADLINE_EXCEEDED = 4, RESOURCE_EXHAUSTED = 8;

describe("one call's failure stays one call's failure", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--limits-max-message-bytes", "64KiB", "--node-request-timeout", "3s",
                               "--node-local-timeout", "1s"]).start();
  });
  after(async () => daemon?.dispose());

  test("a 2 MiB payload is refused before sending (RESOURCE_EXHAUSTED); another Server's fetchSockets and later calls go on",
       async () => {
    const pair = await new ServerProcess({ address: daemon.address, servers: 2 }).start();
    await using([pair], async () => {
      await eventually(async () => (await pair.do("serverCount", { server: 0 })) === 2, 10000, "two servers");
      const listener = await pair.client({ index: 1 });
      const heard = new Inbox(listener, "small");
      const big = { $repeat: 2 << 20 };
      const [, sockets] = await Promise.all([
        pair.do("emit", { server: 0, event: "big", args: [big] }),
        pair.do("fetchSockets", { server: 1 }),
      ]);
      assert.deepEqual(sockets.map((s) => s.id), [listener.id]);
      const refused = await pair.errorWith(RESOURCE_EXHAUSTED);
      assert.match(refused.message, /broadcast: payload of \d+ bytes exceeds max_message_bytes \(65536\) of siobridged: not sent/);
      assert.equal(refused.codeName, "RESOURCE_EXHAUSTED");

      // The calls that wait for an answer fail alone too.
      const emitted = await pair.do("serverSideEmitWithAck", { server: 0, event: "server-ping", args: [big] });
      assert.equal(emitted.code, RESOURCE_EXHAUSTED);
      assert.match(emitted.error, /server_side_emit: payload of \d+ bytes exceeds max_message_bytes \(65536\)/);

      // The shared stream is still there: both Servers attached, broadcasts flow.
      await pair.do("emit", { server: 0, event: "small", args: ["still here"] });
      assert.deepEqual(await heard.next(), [["still here"]]);
      assert.equal((await daemon.status()).attachments.length, 2);
      assert.ok(!pair.errors.some((e) => /Attach stream/.test(e.message)), JSON.stringify(pair.errors));
    });
  });

  test("an answer too large for the daemon is not sent: the answering Server reports it and stays attached", async () => {
    const asking = await new ServerProcess({ address: daemon.address, label: "asking" }).start();
    const holding = await new ServerProcess({ address: daemon.address, label: "holding" }).start();
    await using([asking, holding], async () => {
      await eventually(async () => (await asking.do("serverCount")) === 2, 10000, "two servers");
      await holding.client({ padding: 400 << 10 }); // socket.data larger than the daemon takes
      await asking.do("start", { key: "f", call: "fetchSockets" });
      const outcome = await asking.do("outcome", { key: "f" });
      assert.equal(outcome.code, DEADLINE_EXCEEDED);
      assert.deepEqual(outcome.missing, { nodes: [], local_servers: ["holding"] });
      const refused = await holding.errorWith(RESOURCE_EXHAUSTED);
      assert.match(refused.message, /could not answer fetchSockets in \/: a message of \d+ bytes is larger than siobridged accepts/);
      assert.equal((await daemon.status()).attachments.length, 2);
      assert.ok(!holding.errors.some((e) => /Attach stream/.test(e.message)), JSON.stringify(holding.errors));
    });
  });
});

describe("a Server that could not keep up", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--limits-attachment-queue-messages", "64",
                               "--limits-attachment-queue-bytes", "512KiB",
                               "--limits-backpressure-bytes", "128KiB"]).start();
  });
  after(async () => daemon?.dispose());

  test("is closed by the daemon: the app gets an error with a code, and the adapter reattaches", { timeout: 60000 },
       async () => {
    const slow = await new ServerProcess({ address: daemon.address, label: "slow" }).start();
    const fast = await new ServerProcess({ address: daemon.address, label: "fast" }).start();
    await using([slow, fast], async () => {
      await eventually(async () => (await fast.do("serverCount")) === 2, 10000, "two servers");
      const listener = await slow.client();
      const heard = new Inbox(listener, "after");
      const resume = join(daemon.dir, "resume-slow");
      const blocked = slow.do("block", { until: resume });
      // Work for the blocked server piles up in the daemon until it gives up on it.
      await eventually(async () => {
        await fast.do("emit", { event: "flood", args: [{ $repeat: 10 << 10 }], times: 20 });
        return (await daemon.status()).attachments.length === 1;
      }, 40000, "the daemon closed the slow server");
      writeFileSync(resume, "");
      await blocked;

      const closed = await eventually(() => slow.errors.find((e) => /Attach stream/.test(e.message)), 15000,
                                      "the close reported");
      assert.equal(typeof closed.code, "number");
      assert.notEqual(closed.code, 0);
      assert.equal(typeof closed.codeName, "string");
      await eventually(async () => (await fast.do("serverCount")) === 2, 20000, "reattached");
      await fast.do("emit", { event: "after", args: ["back"] });
      assert.deepEqual(await heard.next(), [["back"]]);
    });
  });
});
