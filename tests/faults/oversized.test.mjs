// Oversized work stays one call's failure: two daemons on a private MongoDB
// with the default limits (max_message_bytes 1 MiB, data_format int32-array),
// socket.io servers (Node adapter, own processes) and socket.io-client clients.
//
// - A broadcast under max_message_bytes whose document MongoDB cannot store
//   (non-ASCII text: two msgpack bytes per UTF-8 byte, and ~12 bytes of BSON
//   per msgpack byte in the int32 array) is refused with RESOURCE_EXHAUSTED;
//   the small broadcasts after it all arrive, and the daemon's heartbeats go
//   on. On the code before issue 9 the broadcast returned OK, the insert
//   failed with BSONObjectTooLarge and was retried forever: nothing of that
//   daemon was written any more, and its peers dropped it as dead. These
//   daemons run with packing off, so that the document is the one a
//   socketioxide node reads whatever the timing (packed, as soon as discovery
//   allows it, the same payload is 1.8 MB of binary): the refusal used to
//   depend on the emit coming within the first heartbeat interval.
// - Packed, that broadcast is stored and delivered once.
// - A 2 MiB payload from one socket.io Server while another Server of the same
//   process runs fetchSockets: the big one fails with a coded error, the
//   fetchSockets answers, the Attach stream they share stays. Through the
//   adapter the payload is refused before it is sent (Welcome.max_message_bytes;
//   the adapter's check came with issue 9 too, in the commits before the
//   daemon's); on a raw Attach stream the daemon refuses the call alone. On
//   the code before issue 9 the daemon's gRPC receive limit (max_message_bytes
//   + 256 KiB) ended the whole stream: every server of the process lost the
//   daemon and the fetchSockets never answered.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  Code, PrivateMongo, ServerProcess, Tally, dispose, eventually, faultsMongoPort, figure, mongoArgs,
  mongoUnavailable, outcome, seconds, startDaemons,
} from "./support/faults.mjs";
import { RawStream, eventPacket } from "./support/raw-stream.mjs";

const HEARTBEAT_TIMEOUT_MS = 5000;
const SMALL = 50;

describe("oversized work", { skip: mongoUnavailable() }, () => {
  let mongo, uri, a, b, sender, receiver, listener;

  before(async () => {
    mongo = new PrivateMongo(faultsMongoPort(2));
    uri = await mongo.start();
    // Packing off: every broadcast is a document a socketioxide node could
    // read (int32-array payload), which is what MongoDB cannot store here.
    // Packed (once a namespace shows no socketioxide node), the same payload
    // goes as binary and is delivered: the last test.
    const args = mongoArgs(uri, `siobridge_faults_${randomBytes(5).toString("hex")}`, [
      "--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", `${HEARTBEAT_TIMEOUT_MS}ms`,
      "--node-request-timeout", "5s", "--node-local-timeout", "2s",
      "--mongodb-pack-messages", "false",
    ]);
    [a, b] = await startDaemons([args, args]);
    sender = await new ServerProcess({ address: a.address, label: "sender" }).start();
    receiver = await new ServerProcess({ address: b.address, label: "receiver" }).start();
    await eventually(async () => (await sender.do("serverCount")) === 2 && (await receiver.do("serverCount")) === 2,
                     30000, "both servers counted");
    listener = await receiver.client();
  });

  after(async () => {
    listener?.disconnect();
    await sender?.stop();
    await receiver?.stop();
    for (const daemon of [a, b]) await dispose(daemon);
    await mongo?.stop();
  });

  test("a broadcast MongoDB cannot store is refused (RESOURCE_EXHAUSTED); the small ones after it arrive, " +
       "heartbeats go on",
       { timeout: 120000 }, async (t) => {
    const small = new Tally(listener, "small");
    const big = new Tally(listener, "big");
    const uidA = (await a.status()).node_uid;
    // 450,000 characters of two UTF-8 bytes each: a payload of 900 KB, under
    // the 1 MiB limit, and 1.8 MB of msgpack, an int32-array document of ~22 MB.
    const text = "é".repeat(450000);
    const sentAt = Date.now();
    await sender.do("emit", { event: "big", args: [text] });
    const refused = await eventually(() => sender.errors[0], 15000, "the broadcast refused");
    const refusedAt = Date.now();
    for (let seq = 0; seq < SMALL; seq++) await sender.do("emit", { event: "small", args: [seq] });
    await eventually(() => small.has(SMALL), 30000, "the small broadcasts received");
    const smallAt = Date.now();
    // A heartbeat of A that B heard more than heartbeat_timeout after the
    // refusal: a daemon whose writer was stuck would have been dropped by then.
    await eventually(async () => {
      const peer = (await b.status()).namespaces.flatMap((ns) => ns.peers).find((p) => p.uid === uidA);
      return peer && Date.now() - Number(peer.last_seen_ms_ago) > refusedAt + HEARTBEAT_TIMEOUT_MS;
    }, 30000, "B hears A's heartbeats after heartbeat_timeout");
    const count = await outcome(receiver, "serverCount");
    figure(t, "oversized broadcast", {
      payload_bytes: Buffer.byteLength(JSON.stringify(["big", text])),
      refused: refused.codeName,
      refused_after_s: seconds(sentAt, refusedAt),
      small_sent: SMALL,
      small_received: small.seqs.length,
      small_duplicates: small.summary(SMALL).duplicates,
      small_received_after_s: seconds(refusedAt, smallAt),
    });

    assert.equal(refused.codeName, "RESOURCE_EXHAUSTED", JSON.stringify(refused));
    assert.match(refused.message, /document of \d+ bytes; MongoDB takes at most \d+ bytes/);
    assert.deepEqual(small.summary(SMALL), { received: SMALL, duplicates: 0, outOfOrder: 0, lost: 0, missing: "" });
    assert.equal(big.seqs.length, 0, "the refused broadcast reached nobody on the other host");
    assert.deepEqual(count, { result: 2 });
  });

  test("a 2 MiB payload from one Server while another Server of the process runs fetchSockets: only the big one fails",
       { timeout: 120000 }, async (t) => {
    const pair = await new ServerProcess({ address: a.address, servers: 2, label: "pair" }).start();
    try {
      await eventually(async () => (await pair.do("serverCount", { server: 1 })) === 4, 20000, "four servers");
      const attachmentsBefore = (await a.status()).attachments.length;
      const after = new Tally(listener, "after-big");
      const [, fetched] = await Promise.all([
        pair.do("emit", { server: 0, event: "big", args: [{ $repeat: 2 << 20 }] }),
        outcome(pair, "fetchSockets", { server: 1 }),
      ]);
      const refused = await pair.errorWith(Code.RESOURCE_EXHAUSTED);
      await pair.do("emit", { server: 0, event: "after-big", args: [0] });
      await eventually(() => after.has(1), 20000, "a broadcast after the big one");
      figure(t, "2 MiB payload (adapter)", { refused: refused.codeName, fetch_sockets: fetched.error ?? "answered" });

      assert.match(refused.message, /payload of \d+ bytes exceeds max_message_bytes \(1048576\)/);
      assert.equal(fetched.error, undefined, JSON.stringify(fetched));
      assert.ok(fetched.result.some((s) => s.id === listener.id), JSON.stringify(fetched.result));
      assert.equal((await a.status()).attachments.length, attachmentsBefore);
      assert.ok(!pair.errors.some((e) => /Attach stream/.test(e.message)), JSON.stringify(pair.errors));
    } finally {
      await pair.stop();
    }
  });

  test("the same on a raw Attach stream: the daemon refuses the 2 MiB call alone, the fetchSockets beside it answers",
       { timeout: 120000 }, async (t) => {
    const raw = new RawStream(a);
    try {
      const big = await raw.hello("big");
      const asker = await raw.hello("asker");
      const bigRef = raw.call(big, "broadcast", {
        attachment_id: big, packet: eventPacket("big", "x".repeat(2 << 20)), opts: { exclude_sid: true },
      });
      const fetchRef = raw.call(asker, "fetch_sockets", {
        attachment_id: asker, namespace: "/", opts: { exclude_sid: true },
      });
      const refused = await raw.result(bigRef);
      const fetched = await raw.result(fetchRef);
      figure(t, "2 MiB payload (raw stream)", { refused: refused.status_code, fetch_sockets: fetched.status_code });

      assert.equal(refused.status_code, Code.RESOURCE_EXHAUSTED, JSON.stringify(refused));
      assert.match(refused.status_message, /payload of \d+ bytes exceeds max_message_bytes \(1048576\)/);
      assert.equal(fetched.status_code, Code.OK, JSON.stringify(fetched));
      assert.ok(fetched.fetch_sockets.sockets.some((s) => s.id === listener.id), JSON.stringify(fetched));
      assert.deepEqual(fetched.fetch_sockets.missing, { nodes: [], local_servers: [] });
      assert.equal(raw.ended, undefined, "the stream is still open");
      const names = (await a.status()).attachments.map((x) => x.name);
      assert.ok(names.includes("big") && names.includes("asker"), JSON.stringify(names));
    } finally {
      raw.close();
    }
  });

  test("packed, the same broadcast is stored as binary and delivered, once", { timeout: 120000 }, async (t) => {
    const args = mongoArgs(uri, `siobridge_faults_${randomBytes(5).toString("hex")}`, [
      "--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", `${HEARTBEAT_TIMEOUT_MS}ms`,
    ]);
    const [c, d] = await startDaemons([args, args]);
    const packedSender = await new ServerProcess({ address: c.address, label: "packed-sender" }).start();
    const packedReceiver = await new ServerProcess({ address: d.address, label: "packed-receiver" }).start();
    try {
      const client = await packedReceiver.client();
      const big = new Tally(client, "big");
      const lengths = [];
      client.on("big", (_seq, text) => lengths.push(text.length));
      // Packing starts once discovery shows no socketioxide node in "/".
      await eventually(async () => (await packedSender.do("serverCount")) === 2, 30000, "both servers counted");
      await eventually(async () => (await c.status()).namespaces.find((n) => n.namespace === "/")?.packing === true,
                       30000, "the namespace packed");
      const text = "é".repeat(450000);
      await packedSender.do("emit", { event: "big", args: [text], times: 1, numbered: true });
      await eventually(() => big.has(1), 60000, "the packed broadcast delivered");
      figure(t, "oversized as int32 array, packed", { delivered: big.seqs.length, length: lengths[0] });
      client.disconnect();

      assert.deepEqual(big.summary(1), { received: 1, duplicates: 0, outOfOrder: 0, lost: 0, missing: "" });
      assert.deepEqual(lengths, [text.length]);
      assert.deepEqual(packedSender.errors, []);
    } finally {
      await packedSender.stop();
      await packedReceiver.stop();
      for (const daemon of [c, d]) await dispose(daemon);
    }
  });
});
