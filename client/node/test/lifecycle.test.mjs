// What the adapter guarantees on its own, whatever the cluster does: it tells
// parsers apart by their output, settles its calls when its Server closes or
// the daemon goes away, names who did not answer, keeps one call's oversized
// payload from cutting off the other Servers of the process, reports every
// error with a gRPC status code, and comes back after the daemon closed it.
// Real daemons, socket.io servers in separate processes, socket.io-client
// clients; a raw Attach stream where a test needs a server that never answers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess } from "./support/cluster.mjs";
import { RawAttachment } from "./support/raw.mjs";

const CANCELLED = 1, INVALID_ARGUMENT = 3, DEADLINE_EXCEEDED = 4, RESOURCE_EXHAUSTED = 8, UNAVAILABLE = 14;

/** Runs `body` with the given processes, stopping them however it ends. */
async function using(things, body) {
  try {
    return await body(...things);
  } finally {
    for (const thing of things) await (thing.stop ? thing.stop() : thing.close());
  }
}

describe("parser detection", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon().start();
  });
  after(async () => daemon?.dispose());

  for (const parser of ["json", "msgpack"]) {
    test(`a ${parser}-parser Server beside another copy of socket.io-parser sends ${parser} data`, async () => {
      const raw = await new RawAttachment(daemon).attached();
      const server = await new ServerProcess({ address: daemon.address, parser, separateParserCopy: true }).start();
      await using([server, raw], async () => {
        await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
        await server.do("emit", { event: "probe", args: ["hi", 1] });
        const { broadcast } = await raw.command("broadcast");
        // What a socketioxide node reads: KIND_STR JSON text, or KIND_BYTES msgpack.
        if (parser === "json") {
          assert.equal(broadcast.data.kind, 0);
          assert.deepEqual(JSON.parse(broadcast.data.data.toString("utf8")), ["probe", "hi", 1]);
        } else {
          assert.equal(broadcast.data.kind, 1);
          assert.equal(broadcast.data.data[0], 0x93); // a msgpack array of 3
        }
      });
    });
  }

  test("a parser whose output is neither JSON nor msgpack needs the option, and gets a clear error without it", async () => {
    await assert.rejects(new ServerProcess({ address: daemon.address, parser: "opaque" }).start(), (error) => {
      assert.equal(error.code, INVALID_ARGUMENT);
      assert.equal(error.codeName, "INVALID_ARGUMENT");
      assert.match(error.message, /cannot tell whether the Server's socket.io parser encodes JSON .* pass parser: "json"/);
      return true;
    });
    const named = await new ServerProcess({ address: daemon.address, parser: "opaque", adapterParser: "json" }).start();
    await named.stop();
  });

  test("an option that contradicts the Server's parser is refused", async () => {
    await assert.rejects(
      new ServerProcess({ address: daemon.address, parser: "msgpack", adapterParser: "json" }).start(),
      (error) => error.code === INVALID_ARGUMENT && /option parser is "json", but .* encodes msgpack/.test(error.message),
    );
  });
});

describe("calls settle when the Server closes or the daemon goes away", () => {
  // Timeouts far beyond any test: a call settles because of the close, or never.
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--node-request-timeout", "120s", "--node-local-timeout", "120s",
                               "--node-ack-timeout", "120s"]).start();
  });
  after(async () => daemon?.dispose());

  test("a Server closed while fetchSockets, serverSideEmitWithAck and emitWithAck wait: each fails at once with CANCELLED",
       { timeout: 30000 }, async () => {
    const raw = await new RawAttachment(daemon, { name: "never-answers" }).attached();
    const server = await new ServerProcess({ address: daemon.address, requestsTimeout: 120000 }).start();
    await using([server, raw], async () => {
      await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
      await server.do("start", { key: "fetch", call: "fetchSockets" });
      await raw.command("fetch_sockets");
      await server.do("start", { key: "emit", call: "serverSideEmitWithAck", args: { event: "server-ping" } });
      await raw.command("server_side_emit");
      await server.do("start", { key: "acks", call: "emitWithAck", args: { event: "question", timeout: 120000 } });
      await raw.command("broadcast_with_ack");

      await server.do("closeServer");
      const fetch = await server.do("outcome", { key: "fetch" });
      assert.equal(fetch.code, CANCELLED);
      assert.match(fetch.error, /fetch_sockets cancelled: the adapter was closed/);
      const emit = await server.do("outcome", { key: "emit" });
      assert.equal(emit.code, CANCELLED);
      assert.equal(emit.codeName, "CANCELLED");
      // socket.io keeps the emitWithAck promise until its own timeout; the
      // adapter's part (the other servers' acks) ends now, through onError.
      const acks = await server.errorWith(CANCELLED);
      assert.match(acks.message, /broadcast_with_ack cancelled: the adapter was closed/);
      assert.equal(acks.codeName, "CANCELLED");
    });
  });

  test("calls in flight when the daemon goes away fail at once with UNAVAILABLE; the stream's end has a code too",
       { timeout: 30000 }, async () => {
    const raw = await new RawAttachment(daemon, { name: "never-answers" }).attached();
    const server = await new ServerProcess({ address: daemon.address, requestsTimeout: 120000 }).start();
    await using([server, raw], async () => {
      await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
      await server.do("start", { key: "fetch", call: "fetchSockets" });
      await raw.command("fetch_sockets");
      await daemon.restart();
      const fetch = await server.do("outcome", { key: "fetch" });
      assert.equal(fetch.code, UNAVAILABLE);
      assert.match(fetch.error, /the connection to siobridged was lost/);
      await eventually(() => server.errors.length > 0, 10000, "the stream's end reported");
      for (const error of server.errors) assert.equal(typeof error.code, "number", error.message);
      // And it comes back.
      await eventually(async () => (await server.do("serverCount")) === 1, 20000, "reattached");
    });
  });
});

describe("errors that name who did not answer", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--node-request-timeout", "3s", "--node-local-timeout", "1s"]).start();
  });
  after(async () => daemon?.dispose());

  test("serverSideEmitWithAck that times out names the servers that did not answer (DEADLINE_EXCEEDED)", async () => {
    const asking = await new ServerProcess({ address: daemon.address, requestsTimeout: 1000, label: "asking" }).start();
    const silent = await new ServerProcess({ address: daemon.address, silentServerSideEmit: true, label: "silent" }).start();
    const talking = await new ServerProcess({ address: daemon.address, label: "talking" }).start();
    await using([asking, silent, talking], async () => {
      await eventually(async () => (await asking.do("serverCount")) === 3, 10000, "three servers");
      const reply = await asking.do("serverSideEmitWithAck", { event: "server-ping" });
      assert.match(reply.error, /timeout reached: only 1 responses received out of 2; no answer from server 'silent'/);
      assert.equal(reply.code, DEADLINE_EXCEEDED);
      assert.deepEqual(reply.missing, { nodes: [], local_servers: ["silent"] });
      assert.deepEqual(reply.responses, ["pong from talking"]);
    });
  });

  test("fetchSockets that times out names the server and carries a code", async () => {
    const raw = await new RawAttachment(daemon, { name: "mute" }).attached();
    const server = await new ServerProcess({ address: daemon.address }).start();
    await using([server, raw], async () => {
      await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
      await server.do("start", { key: "f", call: "fetchSockets" });
      const outcome = await server.do("outcome", { key: "f" });
      assert.match(outcome.error, /timeout reached: no answer from server 'mute'/);
      assert.equal(outcome.code, DEADLINE_EXCEEDED);
      assert.deepEqual(outcome.missing, { nodes: [], local_servers: ["mute"] });
    });
  });
});

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
                               "--limits-attachment-queue-bytes", "512KiB"]).start();
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
