// What the adapter guarantees about its calls, whatever the cluster does: they
// settle when their Server closes or the daemon goes away, and those that time
// out name who did not answer, every error with a gRPC status code. Real
// daemons, socket.io servers in separate processes; a raw Attach stream where
// a test needs a server that never answers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, using } from "./support/cluster.mjs";
import { RawAttachment } from "./support/raw.mjs";

const CANCELLED = 1, DEADLINE_EXCEEDED = 4, UNAVAILABLE = 14;

describe("calls settle when the Server closes or the daemon goes away", () => {
  // Timeouts far beyond any test: a call settles because of the close, or never.
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--node-request-timeout", "120s", "--node-local-timeout", "100s",
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
      await server.do("start", { key: "emit", call: "serverSideEmitWithAck", params: { event: "server-ping" } });
      await raw.command("server_side_emit");
      await server.do("start", { key: "acks", call: "emitWithAck", params: { event: "question", timeout: 120000 } });
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

describe("a Server closed before the daemon welcomed it", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon().start();
  });
  after(async () => daemon?.dispose());

  test("leaves no attachment behind on the stream its process keeps", async () => {
    const pair = await new ServerProcess({ address: daemon.address, servers: 2, closeAtStart: [1] }).start();
    await using([pair], async () => {
      const listener = await pair.client({ index: 0 });
      const heard = new Inbox(listener, "marker");
      await pair.do("emit", { server: 0, event: "marker", args: [] }); // goes after the Hellos on the stream
      await heard.next();
      await eventually(async () => (await daemon.status()).attachments.length === 1, 10000, "one attachment");
      assert.equal(await pair.do("serverCount", { server: 0 }), 1);
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
