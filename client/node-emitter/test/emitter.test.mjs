// @siobridge/emitter against real socket.io servers with the siobridge
// adapter (separate processes) and socket.io-client clients on one daemon:
// each call reaches exactly the sockets @socket.io/redis-emitter would reach;
// calls arrive in the order they were made; a missing daemon, a bad namespace
// and a payload past the daemon's limit give clear errors at once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Daemon, eventually } from "../../node/test/support/daemon.mjs";
import { Inbox, ServerProcess, companion, disconnected } from "../../node/test/support/cluster.mjs";
import { Emitter, SiobridgeError, Status } from "../dist/index.js";

describe("an emitter on one daemon", () => {
  let daemon, one, two, emitter;
  const sockets = [];
  const client = async (server, options) => {
    const socket = await server.client(options);
    sockets.push(socket);
    return socket;
  };

  before(async () => {
    daemon = await new Daemon([
      "--limits-max-message-bytes", "64KiB", "--node-request-timeout", "3s", "--node-local-timeout", "1s",
    ]).start();
    one = await new ServerProcess({ address: daemon.address, label: "one" }).start();
    two = await new ServerProcess({ address: daemon.address, label: "two" }).start();
    for (const server of [one, two]) await server.do("of", { ns: "/admin" });
    await eventually(async () => (await one.do("serverCount")) === 2 && (await two.do("serverCount", { ns: "/admin" })) === 2,
                     20000, "both servers counted");
    emitter = new Emitter({ address: daemon.address });
  });

  after(async () => {
    emitter?.close();
    for (const socket of sockets) socket.disconnect();
    await one?.stop();
    await two?.stop();
    await daemon?.dispose();
  });

  test("each call reaches the sockets socket.io's emitters would", async () => {
    const a1 = await client(one, { rooms: ["a"] });
    const ab = await client(one, { rooms: ["a", "b"] });
    const b2 = await client(two, { rooms: ["b"] });
    const c2 = await client(two, { rooms: ["a", "c"] });
    const admin = await client(two, { ns: "/admin", rooms: ["a"] });
    const everyone = { a1, ab, b2, c2, admin };
    const inboxes = Object.fromEntries(Object.entries(everyone).map(([name, socket]) => [name, new Inbox(socket, "e")]));
    const ends = Object.fromEntries(Object.entries(everyone).map(([name, socket]) => [name, new Inbox(socket, "end")]));

    await emitter.emit("e", 1);
    await emitter.to("a").emit("e", 2);
    await emitter.to("b").to("c").emit("e", 3);
    await emitter.in("a").except("b").emit("e", 4);
    await emitter.to(b2.id).emit("e", 5);
    await emitter.to(["c"]).emit("e", 6, { two: "args" });
    await emitter.of("admin").to("a").emit("e", 7);
    await emitter.of("/admin").except("a").emit("e", 8);
    await emitter.to(a1.id).emit("e", Buffer.from([0, 1]));
    await emitter.emit("end");
    await emitter.of("/admin").emit("end");
    for (const inbox of Object.values(ends)) await inbox.next();
    const got = Object.fromEntries(Object.entries(inboxes).map(([name, inbox]) => [name, inbox.items]));
    assert.deepEqual(got, {
      a1: [[1], [2], [4], [Buffer.from([0, 1])]],
      ab: [[1], [2], [3]],
      b2: [[1], [3], [5]],
      c2: [[1], [2], [3], [4], [6, { two: "args" }]],
      admin: [[7]],
    });

    await emitter.in(a1.id).socketsJoin("d");
    await emitter.in("b").socketsJoin(["d", "dd"]);
    await emitter.in(a1.id).socketsLeave("d");
    await emitter.in("dd").except("a").socketsLeave("dd");
    const ids = async (room) => (await one.do("fetchSockets", { rooms: [room] })).map((s) => s.id).sort();
    assert.deepEqual(await ids("d"), [ab.id, b2.id].sort());
    assert.deepEqual(await ids("dd"), [ab.id]);

    const before = [(await one.do("received")).length, (await two.do("received")).length];
    await emitter.serverSideEmit("server-note", "from an emitter", 1);
    await eventually(async () => (await one.do("received")).length === before[0] + 1 &&
                                 (await two.do("received")).length === before[1] + 1, 15000, "both servers heard it");
    assert.deepEqual((await two.do("received")).at(-1), { ns: "/", args: ["from an emitter", 1] });

    const gone = disconnected(b2);
    await emitter.in(b2.id).disconnectSockets();
    assert.equal(await gone, "io server disconnect");
    const c2admin = await companion(c2, "/admin");
    const closed = [disconnected(c2), disconnected(c2admin)];
    await emitter.in("c").disconnectSockets(true); // c2's whole connection, its /admin socket with it
    assert.deepEqual(await Promise.all(closed), ["io server disconnect", "io server disconnect"]);
    assert.equal(a1.connected && ab.connected && admin.connected, true);
  });

  test("a thousand emits made without waiting arrive in the order they were made", async () => {
    const socket = await client(one, { rooms: ["numbers"] });
    const numbers = new Inbox(socket, "n");
    const calls = [];
    for (let i = 0; i < 1000; i++) calls.push(emitter.to("numbers").emit("n", i));
    await Promise.all(calls);
    await numbers.next(1000);
    assert.deepEqual(numbers.items.map(([n]) => n), [...Array(1000).keys()]);
  });

  test("a bad namespace and payloads past the daemon's limit get clear errors", async () => {
    const socket = await client(one);
    const after = new Inbox(socket, "after");
    const big = new Inbox(socket, "big");
    const refusal = (code, message) => (error) => {
      assert.ok(error instanceof SiobridgeError);
      assert.equal(error.code, code);
      if (message) assert.equal(error.message, message);
      return true;
    };
    await assert.rejects(new Emitter({ address: daemon.address }, "chat").emit("x"),
                         refusal(Status.INVALID_ARGUMENT, "packet.namespace \"chat\" must start with '/'"));
    for (const size of [100 << 10, 5 << 20]) { // past the daemon's limit, and past gRPC's
      await assert.rejects(emitter.emit("big", "x".repeat(size)), refusal(Status.RESOURCE_EXHAUSTED,
        `broadcast: payload of ${size + 10} bytes exceeds max_message_bytes (65536) of siobridged: not sent`));
    }
    await assert.rejects(emitter.serverSideEmit("big", "x".repeat(100 << 10)), refusal(Status.RESOURCE_EXHAUSTED));
    await assert.rejects(emitter.emit("disconnect"), refusal(Status.INVALID_ARGUMENT, '"disconnect" is a reserved event name'));
    const reported = [];
    const reporting = new Emitter({ address: daemon.address, onError: (error) => reported.push(error.code) });
    await assert.rejects(reporting.emit("e", () => {}), refusal(Status.INVALID_ARGUMENT));
    await assert.rejects(reporting.emit("big", "x".repeat(100 << 10)), refusal(Status.RESOURCE_EXHAUSTED));
    assert.deepEqual(reported, [Status.INVALID_ARGUMENT, Status.RESOURCE_EXHAUSTED]);
    reporting.close();

    await emitter.emit("after", 1);
    await after.next();
    assert.deepEqual(after.items, [[1]]);
    assert.deepEqual(big.items, []);
  });
});

test("an emitter without a daemon fails at once", async () => {
  // An hour to answer: waiting for a daemon would run into the test's deadline.
  const emitter = new Emitter({ address: "unix:/nonexistent/siobridged.sock", timeout: 3600_000 });
  try {
    await assert.rejects(emitter.emit("news", 1), (error) => {
      assert.ok(error instanceof SiobridgeError);
      assert.equal(error.code, Status.UNAVAILABLE);
      assert.match(error.message, /^siobridged is not reachable at unix:\/nonexistent\/siobridged\.sock: /);
      return true;
    });
  } finally {
    emitter.close();
  }
});
