// What the adapter guarantees about its calls, whatever the cluster does: they
// settle when their Server closes or the daemon goes away, and those that time
// out say so in socket.io's words and name who did not answer in err.missing,
// every error with a gRPC status code. Real daemons, socket.io servers in
// separate processes; a raw Attach stream where a test needs a server that
// never answers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, using } from "./support/cluster.mjs";
import { RawAttachment } from "./support/raw.mjs";

const CANCELLED = 1, INVALID_ARGUMENT = 3, DEADLINE_EXCEEDED = 4, UNAVAILABLE = 14;

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

// socket.io 4.8's messages, word for word (apps and libraries match them):
// @socket.io/mongo-adapter's lib/index.ts by default, socket.io-adapter's
// ClusterAdapterWithHeartbeat (lib/cluster-adapter.ts) with timeoutMessages:
// "cluster". Who did not answer is in err.missing, never in the message.
const WORDING = {
  mongo: { emit: "timeout reached: only 1 responses received out of 2", query: "timeout reached: only 0 responses received out of 1" },
  cluster: { emit: "timeout reached: missing 1 responses", query: "timeout reached: missing 1 responses" },
};

describe("timeouts in socket.io's words, who did not answer in err.missing", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--node-request-timeout", "3s", "--node-local-timeout", "1s"]).start();
  });
  after(async () => daemon?.dispose());

  for (const [timeoutMessages, wording] of Object.entries(WORDING)) {
    const option = timeoutMessages === "mongo" ? {} : { timeoutMessages };
    const flavour = timeoutMessages === "mongo" ? "by default, the mongo adapter's" : "timeoutMessages: \"cluster\"";

    test(`serverSideEmitWithAck with a silent server (${flavour}): "${wording.emit}"`, async () => {
      const asking = await new ServerProcess({ address: daemon.address, requestsTimeout: 1000, label: "asking", ...option }).start();
      const silent = await new ServerProcess({ address: daemon.address, silentServerSideEmit: true, label: "silent" }).start();
      const talking = await new ServerProcess({ address: daemon.address, label: "talking" }).start();
      await using([asking, silent, talking], async () => {
        await eventually(async () => (await asking.do("serverCount")) === 3, 10000, "three servers");
        const reply = await asking.do("serverSideEmitWithAck", { event: "server-ping" });
        assert.equal(reply.error, wording.emit);
        assert.equal(reply.code, DEADLINE_EXCEEDED);
        assert.deepEqual(reply.missing, { nodes: [], local_servers: ["silent"] });
        assert.deepEqual(reply.responses, ["pong from talking"]);
      });
    });

    test(`fetchSockets and allRooms with a silent server (${flavour}): "${wording.query}"`, async () => {
      const raw = await new RawAttachment(daemon, { name: "mute" }).attached();
      const server = await new ServerProcess({ address: daemon.address, ...option }).start();
      await using([server, raw], async () => {
        await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
        for (const call of ["fetchSockets", "allRooms"]) {
          await server.do("start", { key: call, call });
          const outcome = await server.do("outcome", { key: call });
          assert.equal(outcome.error, wording.query, call);
          assert.equal(outcome.code, DEADLINE_EXCEEDED, call);
          assert.deepEqual(outcome.missing, { nodes: [], local_servers: ["mute"] }, call);
        }
      });
    });

    test(`emitWithAck with a client that never acks (${flavour}): socket.io's own "operation has timed out"`,
         async () => {
      const server = await new ServerProcess({ address: daemon.address, ...option }).start();
      await using([server], async () => {
        const silent = await server.client({ rooms: ["poll"] });
        silent.on("poll", () => {}); // takes the callback, never calls it
        const reply = await server.do("emitWithAck", { event: "poll", rooms: ["poll"], timeout: 300 });
        assert.equal(reply.error, "operation has timed out");
        assert.deepEqual(reply.responses, []);
        silent.disconnect();
      });
    });
  }

  test("a timeoutMessages value the adapter does not know is refused (INVALID_ARGUMENT)", async () => {
    await assert.rejects(new ServerProcess({ address: daemon.address, timeoutMessages: "redis" }).start(), (error) => {
      assert.equal(error.code, INVALID_ARGUMENT);
      assert.equal(error.message, 'timeoutMessages must be one of "mongo", "cluster", not "redis"');
      return true;
    });
  });
});
