// Several Commands to a message on the Attach stream (Hello.features
// "command_batch"): what queued in the daemon while a server could not read
// reaches that server's clients complete and in order, sent as CommandBatches;
// a server that did not ask for batches gets single Commands, the same ones.
// The other way ("message_batch"): the calls a server makes in one turn go to
// the daemon as MessageBatches and are applied in order. And on to the
// clients: the frames of each engine.io flush leave in one write.
// Real daemons, socket.io servers in separate processes, socket.io-client
// clients, and raw Attach streams that see the messages as the daemon sends them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, startDaemons, using } from "./support/cluster.mjs";
import { RawAttachment } from "./support/raw.mjs";

const topologies = [
  { name: "within one daemon (in-memory bus)", kind: "memory" },
  { name: "across two daemons (MongoDB)", kind: "mongodb" },
];

const BURST = 1000;

for (const topology of topologies) {
  describe(`command batches, ${topology.name}`,
           { skip: topology.kind === "mongodb" && !process.env.MONGODB_URI && "MONGODB_URI not set" }, () => {
    let daemons;
    before(async () => {
      daemons = await startDaemons(topology.kind, `siobridge_node_batch_${randomBytes(5).toString("hex")}`);
    });
    after(async () => {
      for (const daemon of new Set(daemons)) await daemon.dispose();
    });

    test("a burst queued behind a blocked server arrives complete and in order, in batches", { timeout: 90000 },
         async () => {
      const [near, far] = daemons;
      const plain = await new RawAttachment(far, { name: "plain" }).attached();
      const batching = await new RawAttachment(far, { name: "batching", features: ["command_batch"] }).attached();
      const sender = await new ServerProcess({ address: near.address, label: "sender" }).start();
      const receiver = await new ServerProcess({ address: far.address, label: "receiver" }).start();
      await using([sender, receiver, plain, batching], async () => {
        assert.deepEqual((await plain.welcome).features, []);
        assert.deepEqual((await batching.welcome).features, ["command_batch"]);
        await eventually(async () => (await sender.do("serverCount")) === 4, 20000, "four servers");
        const listener = await receiver.client();
        const heard = new Inbox(listener, "burst");
        const resume = join(far.dir, `resume-${randomBytes(4).toString("hex")}`);
        // Neither reads: the daemon's writes to them stall and the burst queues.
        batching.stream.pause();
        const blocked = receiver.do("block", { until: resume });
        await sender.do("emit", { event: "burst", numbered: true, args: [{ $repeat: 1000 }], times: BURST });
        // The daemon hands each Command to all its servers at once: once the
        // plain one has the burst, the others' copies wait in their queues.
        await plain.received(BURST);
        writeFileSync(resume, "");
        await blocked;
        batching.stream.resume();

        const items = await heard.next(BURST, 60000);
        assert.deepEqual(items.map(([n]) => n), [...Array(BURST).keys()]);
        const stats = await receiver.do("batches");
        assert.equal(stats.readsBatches, true);
        assert.ok(stats.batches > 0, "the blocked server received CommandBatches");
        assert.ok(stats.commands > stats.batches, "batches of several Commands");

        await batching.received(BURST);
        assert.ok(batching.batches.length > 0, "the raw stream that asked got CommandBatches");
        assert.ok(batching.batches.every((n) => n >= 2), `batches hold several Commands: ${batching.batches}`);
        assert.deepEqual(new Set(plain.kinds), new Set(["command"]), "the one that did not ask: single Commands");
        // The same Commands in the same order, however they were sent.
        const strip = ({ attachment_id, ...command }) => command;
        assert.deepEqual(batching.commands.map(strip), plain.commands.map(strip));
      });
    });

    test("a server's calls of one turn reach the daemon in MessageBatches, applied in order", { timeout: 90000 },
         async () => {
      const [near, far] = daemons;
      const batching = await new ServerProcess({ address: near.address, label: "batching sender" }).start();
      const single = await new ServerProcess({ address: near.address, label: "single sender", messageBatches: false })
        .start();
      const receiver = await new ServerProcess({ address: far.address, label: "receiver" }).start();
      await using([batching, single, receiver], async () => {
        await eventually(async () => (await receiver.do("serverCount")) === 3, 20000, "three servers");
        const listener = await receiver.client();
        const fromBatching = new Inbox(listener, "batched");
        const fromSingle = new Inbox(listener, "single");
        const before = await batching.do("writes");
        // Each emit is one Call; all of them made in one turn of the sender.
        await batching.do("emit", { event: "batched", numbered: true, args: [{ $repeat: 100 }], times: BURST });
        await single.do("emit", { event: "single", numbered: true, args: [{ $repeat: 100 }], times: BURST });
        assert.deepEqual((await fromBatching.next(BURST, 60000)).map(([n]) => n), [...Array(BURST).keys()]);
        assert.deepEqual((await fromSingle.next(BURST, 60000)).map(([n]) => n), [...Array(BURST).keys()]);

        const batched = await batching.do("writes");
        const calls = batched.messages - before.messages;
        const streamMessages = batched.streamMessages - before.streamMessages;
        assert.ok(calls >= BURST, `${calls} messages written`);
        assert.ok(streamMessages * 10 <= calls, `${calls} calls went in ${streamMessages} stream messages`);
        const unbatched = await single.do("writes");
        assert.equal(unbatched.streamMessages, unbatched.messages, "without message batches: one each");
      });
    });

    test("a burst from the cluster reaches each client in a few writes, not one per event", { timeout: 90000 },
         async () => {
      const [near, far] = daemons;
      const sender = await new ServerProcess({ address: near.address, label: "sender" }).start();
      const receiver = await new ServerProcess({ address: far.address, label: "coalescing receiver" }).start();
      await using([sender, receiver], async () => {
        await eventually(async () => (await sender.do("serverCount")) === 2, 20000, "two servers");
        const clients = [await receiver.client(), await receiver.client()];
        const inboxes = clients.map((client) => new Inbox(client, "burst"));
        const before = await receiver.do("socketWrites");
        await sender.do("emit", { event: "burst", numbered: true, args: [{ $repeat: 100 }], times: BURST });
        for (const inbox of inboxes) {
          assert.deepEqual((await inbox.next(BURST, 60000)).map(([n]) => n), [...Array(BURST).keys()]);
        }
        // 2,000 deliveries; written one frame per system call they take about
        // as many writes. Coalesced, an idle machine takes ~20 (a busy one a few
        // hundred: fewer events per turn of the receiver); the bound is what
        // no machine reaches without coalescing.
        const writes = (await receiver.do("socketWrites")) - before;
        assert.ok(writes < BURST, `${writes} socket writes for ${2 * BURST} deliveries`);
      });
    });
  });
}
