// The adapter with real socket.io servers (separate processes) and real
// socket.io-client clients, in two topologies: both servers on one daemon
// (in-memory bus), and one server on each of two daemons sharing MongoDB.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Daemon, eventually } from "./support/daemon.mjs";
import { Inbox, ServerProcess, companion, disconnected, startDaemons } from "./support/cluster.mjs";

const topologies = [
  { name: "within one daemon (in-memory bus)", kind: "memory" },
  { name: "across two daemons (MongoDB)", kind: "mongodb" },
];

for (const topology of topologies) {
  describe(topology.name, { skip: topology.kind === "mongodb" && !process.env.MONGODB_URI && "MONGODB_URI not set" }, () => {
    let daemons, one, two;
    const clients = [];
    const client = async (server, options) => {
      const socket = await server.client(options);
      clients.push(socket);
      return socket;
    };

    before(async () => {
      daemons = await startDaemons(topology.kind, `siobridge_node_test_${randomBytes(5).toString("hex")}`);
      one = await new ServerProcess({ address: daemons[0].address, label: "one" }).start();
      two = await new ServerProcess({ address: daemons[1].address, label: "two" }).start();
      await eventually(async () => (await one.do("serverCount")) === 2 && (await two.do("serverCount")) === 2,
                       20000, "both servers counted");
    });

    after(async () => {
      for (const socket of clients) socket.disconnect();
      await one?.stop();
      await two?.stop();
      for (const daemon of new Set(daemons)) await daemon.dispose();
    });

    test("broadcast to everyone reaches the clients of both servers", async () => {
      const a = await client(one), b = await client(two);
      const heardA = new Inbox(a, "news"), heardB = new Inbox(b, "news");
      await one.do("emit", { event: "news", args: ["hello", 42, { nested: true }] });
      assert.deepEqual((await heardB.next())[0], ["hello", 42, { nested: true }]);
      assert.deepEqual((await heardA.next())[0], ["hello", 42, { nested: true }]);
    });

    test("rooms, except and local", async () => {
      const red = await client(two, { rooms: ["red"] });
      const blue = await client(two, { rooms: ["blue"] });
      const both = await client(two, { rooms: ["red", "vip"] });
      const local = await client(one, { rooms: ["red"] });
      const inbox = (socket) => new Inbox(socket, "ev");
      const [r, b, v, l] = [inbox(red), inbox(blue), inbox(both), inbox(local)];
      await one.do("emit", { event: "ev", rooms: ["red"], except: ["vip"], args: ["red-not-vip"] });
      await one.do("emit", { event: "ev", local: true, args: ["local-only"] });
      await one.do("emit", { event: "ev", rooms: ["blue"], args: ["marker"] });
      await b.next();  // published after the others, from the same server
      assert.deepEqual(r.items, [["red-not-vip"]]);
      assert.deepEqual(v.items, []);
      assert.deepEqual((await l.next(2)), [["red-not-vip"], ["local-only"]]);
    });

    test("volatile broadcasts are delivered to ready clients", async () => {
      const c = await client(two);
      const heard = new Inbox(c, "tick");
      await one.do("emit", { event: "tick", volatile: true, args: [1] });
      assert.deepEqual(await heard.next(), [[1]]);
    });

    test("binary payloads arrive as Buffers", async () => {
      const c = await client(two);
      const heard = new Inbox(c, "file");
      const bytes = randomBytes(3000);
      await one.do("emit", { event: "file", args: ["name.bin", { $binary: bytes.toString("base64") }, { inner: { $binary: "AAE=" } }] });
      const [[name, data, nested]] = await heard.next();
      assert.equal(name, "name.bin");
      assert.ok(Buffer.isBuffer(data), "a Buffer");
      assert.ok(data.equals(bytes));
      assert.deepEqual(nested, { inner: { $binary: "AAE=" } });  // plain objects stay plain
    });

    test("broadcast with acks: every client answers, binary acks included", async () => {
      const a = await client(two, { rooms: ["ackers"] });
      const b = await client(one, { rooms: ["ackers"] });
      new Inbox(a, "question").answer = () => [Buffer.from([1, 2, 3])];
      new Inbox(b, "question").answer = () => ["from b"];
      const reply = await one.do("emitWithAck", { event: "question", rooms: ["ackers"], timeout: 5000 });
      assert.equal(reply.error, undefined);
      assert.equal(reply.responses.length, 2);
      assert.ok(reply.responses.some((r) => r?.$binary === Buffer.from([1, 2, 3]).toString("base64")));
      assert.ok(reply.responses.includes("from b"));
    });

    test("broadcast with acks to nobody completes without waiting for the timeout", { timeout: 20000 }, async () => {
      const reply = await one.do("emitWithAck", { event: "question", rooms: ["nobody-here"], timeout: 60000 });
      assert.deepEqual(reply.responses, []);
    });

    test("broadcast with acks: a timeout gives an error and the responses that came", async () => {
      const answers = await client(two, { rooms: ["mixed"] });
      const silent = await client(two, { rooms: ["mixed"] });
      new Inbox(answers, "poll").answer = () => ["yes"];
      new Inbox(silent, "poll").answer = null;
      silent.off("poll");
      silent.on("poll", () => {});  // takes the callback, never calls it
      const reply = await one.do("emitWithAckCallback", { event: "poll", rooms: ["mixed"], timeout: 1500 });
      assert.match(reply.error, /timed out/);
      assert.deepEqual(reply.responses, ["yes"]);
    });

    test("a RemoteSocket: fetched with id, handshake, rooms and data; a single ack", async () => {
      const c = await client(two, { rooms: ["special"], user: "ada" });
      new Inbox(c, "whoami").answer = () => ["I am ada"];
      const sockets = await one.do("fetchSockets", { rooms: ["special"] });
      assert.equal(sockets.length, 1);
      assert.equal(sockets[0].id, c.id);
      assert.deepEqual(sockets[0].auth, { rooms: ["special"], user: "ada" });
      assert.deepEqual(sockets[0].rooms, [c.id, "special"].sort());
      assert.deepEqual(sockets[0].data, { user: "ada", label: "two" });
      const reply = await one.do("remoteEmitWithAck", { socketId: c.id, event: "whoami" });
      assert.equal(reply.response, "I am ada");
      await one.do("remoteJoin", { socketId: c.id, join: "joined-remotely" });
      const after = await one.do("fetchSockets", { rooms: ["joined-remotely"] });
      assert.deepEqual(after.map((s) => s.id), [c.id]);
    });

    test("fetchSockets: all, by room, local only", async () => {
      const x = await client(one, { rooms: ["fs"] });
      const y = await client(two, { rooms: ["fs"] });
      const all = await one.do("fetchSockets", { rooms: ["fs"] });
      assert.deepEqual(all.map((s) => s.id).sort(), [x.id, y.id].sort());
      const local = await one.do("fetchSockets", { rooms: ["fs"], local: true });
      assert.deepEqual(local.map((s) => s.id), [x.id]);
    });

    test("allRooms: the rooms of every server", async () => {
      const x = await client(one, { rooms: ["room-on-one"] });
      const y = await client(two, { rooms: ["room-on-two"] });
      const rooms = await one.do("allRooms");
      for (const room of ["room-on-one", "room-on-two", x.id, y.id]) assert.ok(rooms.includes(room), room);
      assert.deepEqual(await two.do("allRooms"), rooms);
    });

    test("socketsJoin and socketsLeave: all, matching, one socket", async () => {
      const x = await client(two, { rooms: ["team"] });
      const y = await client(two);
      await one.do("socketsJoin", { rooms: ["team"], join: "team-chat" });
      await one.do("socketsJoin", { rooms: [y.id], join: "solo" });
      const ids = async (room) => (await one.do("fetchSockets", { rooms: [room] })).map((s) => s.id).sort();
      await eventually(async () => (await ids("team-chat")).includes(x.id), 10000, "joined");
      assert.ok(!(await ids("team-chat")).includes(y.id));
      assert.deepEqual(await ids("solo"), [y.id]);
      await one.do("socketsLeave", { rooms: ["team"], leave: "team-chat" });
      assert.deepEqual(await ids("team-chat"), []);
    });

    test("disconnectSockets, with close", async () => {
      // Each socket shares its connection with a companion socket in another
      // namespace: without close the connection stays, with close it goes.
      await two.do("of", { ns: "/companion" });
      const soft = await client(two, { rooms: ["bye-soft"] });
      const hard = await client(two, { rooms: ["bye-hard"] });
      const softCompanion = await companion(soft, "/companion");
      const hardCompanion = await companion(hard, "/companion");
      const softGone = disconnected(soft), hardGone = disconnected(hard);
      const hardCompanionGone = disconnected(hardCompanion);
      await one.do("disconnectSockets", { rooms: ["bye-soft"] });
      await one.do("disconnectSockets", { rooms: ["bye-hard"], close: true });
      assert.equal(await softGone, "io server disconnect");
      assert.equal(await hardGone, "io server disconnect");
      // socket.io closes the whole connection: every socket on it goes.
      assert.equal(await hardCompanionGone, "io server disconnect");
      assert.equal(softCompanion.connected, true);
      assert.equal(soft.io.engine.readyState, "open");
      softCompanion.disconnect();
    });

    test("order: an emit before disconnectSockets arrives before the disconnect", async () => {
      const c = await client(two, { rooms: ["last-words"] });
      const events = [];
      c.on("farewell", () => events.push("farewell"));
      const gone = new Promise((done) => c.once("disconnect", () => { events.push("disconnect"); done(); }));
      await one.do("emitThenDisconnect", { rooms: ["last-words"], event: "farewell", args: [] });
      await gone;
      assert.deepEqual(events, ["farewell", "disconnect"]);
    });

    test("serverSideEmit, with and without ack", async () => {
      await one.do("serverSideEmit", { event: "server-note", args: ["hi", 7] });
      await eventually(async () => (await two.do("received")).length === 1, 10000, "server-side emit received");
      assert.deepEqual((await two.do("received"))[0], { ns: "/", args: ["hi", 7] });
      assert.deepEqual(await one.do("received"), []);  // not sent back to the emitter
      const reply = await one.do("serverSideEmitWithAck", { event: "server-ping" });
      assert.deepEqual(reply.responses, ["pong from two"]);
    });

    test("namespaces created later with io.of()", async () => {
      await one.do("of", { ns: "/later" });
      await two.do("of", { ns: "/later" });
      await eventually(async () => (await one.do("serverCount", { ns: "/later" })) === 2, 10000, "both in /later");
      const c = await client(two, { ns: "/later" });
      const heard = new Inbox(c, "late");
      await one.do("emit", { ns: "/later", event: "late", args: ["news"] });
      assert.deepEqual(await heard.next(), [["news"]]);
    });

    test("serverCount", async () => {
      assert.equal(await one.do("serverCount"), 2);
      assert.equal(await two.do("serverCount"), 2);
    });
  });
}

describe("edge cases on one daemon", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon(["--limits-max-message-bytes", "64KiB", "--node-request-timeout", "3s",
                               "--node-local-timeout", "1s"]).start();
  });
  after(async () => daemon?.dispose());

  test("a malformed call is rejected with a clear error", async () => {
    const server = await new ServerProcess({ address: daemon.address }).start();
    try {
      await server.do("emit", { event: "big", args: ["x".repeat(100 << 10)] });
      await server.do("socketsJoin", { join: "" });
      await eventually(() => server.errors.length >= 2, 10000, "errors reported");
      assert.match(server.errors[0].message, /exceeds max_message_bytes \(65536\)/);
      assert.equal(server.errors[0].code, 8);  // RESOURCE_EXHAUSTED
      assert.match(server.errors[1].message, /empty room/);
      assert.equal(server.errors[1].code, 3);  // INVALID_ARGUMENT
      // A raw call with a bad namespace, as another client might send.
      const raw = daemon.client();
      const error = await new Promise((done) =>
        raw.ServerCount({ namespace: "admin" }, (e) => done(e)));
      raw.close();
      assert.equal(error.code, 3);
      assert.match(error.details, /must start with '\/'/);
    } finally {
      await server.stop();
    }
  });

  test("unreadable work from the cluster is skipped and reported, never thrown into the app", async () => {
    const server = await new ServerProcess({ address: daemon.address }).start();
    try {
      const c = await server.client();
      const heard = new Inbox(c, "fine");
      // An external emitter (no attachment) sends event data that is not JSON.
      const raw = daemon.client();
      await new Promise((done, fail) =>
        raw.Broadcast(
          { packet: { namespace: "/", type: 2, data: { kind: 0, data: Buffer.from("not json") } },
            opts: { exclude_sid: true } },
          (e) => (e ? fail(e) : done()),
        ));
      await new Promise((done, fail) =>
        raw.Broadcast(
          { packet: { namespace: "/", type: 2, data: { kind: 0, data: Buffer.from('["fine",1]') } },
            opts: { exclude_sid: true } },
          (e) => (e ? fail(e) : done()),
        ));
      raw.close();
      assert.deepEqual(await heard.next(), [[1]]);
      // The report travels over IPC, the event over the websocket: either may come first.
      await eventually(async () => server.errors.length >= 1, 10000, "the skip reported");
      assert.equal(server.errors.length, 1);
      assert.match(server.errors[0].message, /skipped a broadcast command in \/: .*JSON/);
      assert.equal(server.errors[0].code, 3); // INVALID_ARGUMENT
    } finally {
      await server.stop();
    }
  });

  test("a serverSideEmit nobody answers times out with an error", async () => {
    const asking = await new ServerProcess({ address: daemon.address, requestsTimeout: 1000 }).start();
    const silent = await new ServerProcess({ address: daemon.address, silentServerSideEmit: true }).start();
    try {
      await eventually(async () => (await asking.do("serverCount")) === 2, 10000, "two servers");
      const reply = await asking.do("serverSideEmitWithAck", { event: "server-ping" });
      assert.match(reply.error, /timeout reached: only 0 responses received out of 1/);
    } finally {
      await asking.stop();
      await silent.stop();
    }
  });

  test("two socket.io Servers in one process share one stream and hear each other", async () => {
    const pair = await new ServerProcess({ address: daemon.address, servers: 2 }).start();
    try {
      await eventually(async () => (await pair.do("serverCount", { server: 0 })) === 2, 10000, "two servers");
      const status = await daemon.status();
      assert.equal(status.attachments.length, 2);
      const c = await pair.client({ index: 1 });
      const heard = new Inbox(c, "sibling");
      await pair.do("emit", { server: 0, event: "sibling", args: ["from server 0"] });
      assert.deepEqual(await heard.next(), [["from server 0"]]);
    } finally {
      await pair.stop();
    }
  });

  test("close() detaches cleanly", async () => {
    const stays = await new ServerProcess({ address: daemon.address }).start();
    const leaves = await new ServerProcess({ address: daemon.address }).start();
    try {
      await eventually(async () => (await stays.do("serverCount")) === 2, 10000, "two servers");
      await leaves.do("closeServer");
      await eventually(async () => (await stays.do("serverCount")) === 1, 10000, "one server left");
      assert.equal((await daemon.status()).attachments.length, 1);
    } finally {
      await stays.stop();
      await leaves.stop();
    }
  });

  test("the msgpack parser: Values cross as its bytes", async () => {
    const { default: msgpackParser } = await import("socket.io-msgpack-parser");
    const a = await new ServerProcess({ address: daemon.address, parser: "msgpack" }).start();
    const b = await new ServerProcess({ address: daemon.address, parser: "msgpack" }).start();
    try {
      await eventually(async () => (await a.do("serverCount")) === 2, 10000, "two servers");
      const c = await b.client({ parser: msgpackParser });
      const heard = new Inbox(c, "packed");
      await a.do("emit", { event: "packed", args: [{ n: 1 }, { $binary: "AQID" }] });
      const [[object, bytes]] = await heard.next();
      assert.deepEqual(object, { n: 1 });
      assert.deepEqual([...bytes], [1, 2, 3]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test("the app keeps working across a daemon restart", async () => {
    const a = await new ServerProcess({ address: daemon.address }).start();
    const b = await new ServerProcess({ address: daemon.address }).start();
    try {
      await a.do("of", { ns: "/chat" });
      await b.do("of", { ns: "/chat" });
      await eventually(async () => (await a.do("serverCount", { ns: "/chat" })) === 2, 10000, "both in /chat");
      const c = await b.client({ ns: "/chat" });
      const heard = new Inbox(c, "msg");
      await a.do("emit", { ns: "/chat", event: "msg", args: ["before"] });
      await heard.next(1);
      await daemon.restart();
      // Reattached, namespaces restored: the broadcast goes through again.
      await eventually(async () => (await a.do("serverCount", { ns: "/chat" })) === 2, 20000, "reattached");
      await a.do("emit", { ns: "/chat", event: "msg", args: ["after"] });
      assert.deepEqual(await heard.next(2), [["before"], ["after"]]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
