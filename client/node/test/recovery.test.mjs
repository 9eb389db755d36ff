// Connection state recovery (docs/recovery.md) with real socket.io servers in
// separate processes and real socket.io-client clients that lose their
// transport (socket.io.engine.close()). The cases of socket.io's adapters'
// recovery tests, plus exactness with several servers sending at once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { io as connect } from "socket.io-client";
import { eventually } from "./support/daemon.mjs";
import { ServerProcess, startDaemons } from "./support/cluster.mjs";

const recovery = { maxDisconnectionDuration: 60000, skipMiddlewares: true };

/** A client that keeps its session id and last offset across reconnections, as socket.io-client does. */
class RecoveringClient {
  constructor(server, { rooms = [], ns = "/" } = {}) {
    this.socket = connect(`http://127.0.0.1:${server.ports[0]}${ns}`, {
      auth: { rooms },
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
    });
    this.received = [];
    // With recovery on, each recoverable packet ends with its offset.
    this.socket.onAny((event, ...args) => this.received.push({ event, args: args.slice(0, -1), offset: args.at(-1) }));
  }

  connected() {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve(this);
      this.socket.once("connect", () => resolve(this));
      this.socket.once("connect_error", reject);
    });
  }

  /** Loses the transport (not a disconnect the client asked for: the server keeps its session). */
  async drop(server) {
    const sid = this.socket.id;
    const gone = new Promise((resolve) => this.socket.once("disconnect", resolve));
    this.socket.io.engine.close();
    await gone;
    // The session is saved when the server sees the close.
    await eventually(async () => !(await server.do("sockets")).some((s) => s.id === sid), 10000, "server saw the close");
    return sid;
  }

  /** Reconnects to the same server, presenting the session id and last offset. */
  async reconnect() {
    this.socket.connect();
    return this.connected();
  }

  /** Connects to another server with this client's session id and last offset (as after a load balancer's switch). */
  async moveTo(server, ns = "/") {
    return this.present(server, this.socket._pid, this.socket._lastOffset, ns);
  }

  /** Connects to `server` presenting a session id and offset, as socket.io-client does after a drop. */
  async present(server, pid, offset, ns = "/") {
    this.socket.close();
    this.socket = connect(`http://127.0.0.1:${server.ports[0]}${ns}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      autoConnect: false,
    });
    this.socket._pid = pid;
    this.socket._lastOffset = offset;
    this.socket.onAny((event, ...args) => this.received.push({ event, args: args.slice(0, -1), offset: args.at(-1) }));
    this.socket.connect();
    return this.connected();
  }

  texts(event) {
    return this.received.filter((r) => r.event === event).map((r) => r.args[0]);
  }

  close() {
    this.socket.close();
  }
}

/** Connects RecoveringClients, keeping each in `list` to close them after the tests. */
function connector(list) {
  return async (server, options) => {
    const c = new RecoveringClient(server, options);
    list.push(c);
    return c.connected();
  };
}

async function until(client, event, count) {
  await eventually(async () => client.texts(event).length >= count, 15000, `${count} '${event}' events`);
}

const topologies = [
  { name: "one daemon (in-memory bus)", kind: "memory" },
  { name: "two daemons (MongoDB)", kind: "mongodb" },
];

for (const topology of topologies) {
  describe(`connection state recovery, ${topology.name}`, { skip: topology.kind === "mongodb" && !process.env.MONGODB_URI && "MONGODB_URI not set" }, () => {
    let daemons, one, two;
    const clients = [];
    const client = connector(clients);

    before(async () => {
      daemons = await startDaemons(topology.kind, `siobridge_recovery_test_${randomBytes(5).toString("hex")}`);
      one = await new ServerProcess({ address: daemons[0].address, label: "one", recovery }).start();
      two = await new ServerProcess({ address: daemons[1].address, label: "two", recovery }).start();
      await eventually(async () => (await one.do("serverCount")) === 2 && (await two.do("serverCount")) === 2,
                       20000, "both servers counted");
    });

    after(async () => {
      for (const c of clients) c.close();
      await one?.stop();
      await two?.stop();
      for (const daemon of new Set(daemons)) await daemon.dispose();
    });

    test("restores the session: id, rooms, data, and the packets missed, filtered by room and except", async () => {
      const c = await client(one, { rooms: ["red", "vip"] });
      await one.do("emit", { event: "ev", args: ["before"] });
      await until(c, "ev", 1);
      const sid = await c.drop(one);

      await two.do("emit", { event: "ev", rooms: ["red"], args: ["red-from-two"] });
      await one.do("emit", { event: "ev", rooms: ["blue"], args: ["blue"] });
      await one.do("emit", { event: "ev", except: ["vip"], args: ["not-vip"] });
      await one.do("emit", { event: "ev", rooms: [sid], args: ["private"] });
      await one.do("emit", { event: "ev", volatile: true, args: ["volatile"] });
      await two.do("emit", { event: "ev", args: ["all-from-two"] });
      await one.do("emit", { event: "ev", args: ["all-from-one"] });
      // Work from outside any Node server (what a Python server or siobridgectl sends: no recovery count).
      const raw = daemons[0].client();
      await new Promise((done, fail) =>
        raw.Broadcast(
          { packet: { namespace: "/", type: 2, data: { kind: 0, data: Buffer.from('["ev","external"]') } },
            opts: { exclude_sid: true } },
          (e) => (e ? fail(e) : done()),
        ));
      raw.close();
      // Every packet above went out before this marker: once it reached
      // another client, the cluster has them all.
      const witness = await client(one);
      await one.do("emit", { event: "marker", args: ["m"] });
      await until(witness, "marker", 1);

      await c.reconnect();
      assert.equal(c.socket.recovered, true);
      assert.equal(c.socket.id, sid);
      await until(c, "ev", 6);
      // Servers' sends interleave in no set order; each server's keep theirs.
      assert.deepEqual(c.texts("ev").sort(), ["all-from-one", "all-from-two", "before", "external", "private", "red-from-two"]);
      const fromOne = c.texts("ev").filter((t) => ["before", "private", "all-from-one"].includes(t));
      assert.deepEqual(fromOne, ["before", "private", "all-from-one"]);
      const [state] = (await one.do("sockets")).filter((s) => s.id === sid);
      assert.equal(state.recovered, true);
      assert.deepEqual(new Set(state.rooms), new Set([sid, "red", "vip"]));
      assert.equal(state.data.label, "one");
    });

    test("restores only once", async () => {
      const c = await client(one);
      await one.do("emit", { event: "once", args: ["a"] });
      await until(c, "once", 1);
      const { _pid: pid, _lastOffset: offset } = c.socket;
      await c.drop(one);
      await c.reconnect();
      assert.equal(c.socket.recovered, true);
      // Another client presenting the same session id and offset: used.
      const copy = await client(one);
      await copy.present(one, pid, offset);
      assert.equal(copy.socket.recovered, false);
    });

    test("an unknown session or an offset that is not one gives a new session, cleanly", async () => {
      for (const [pid, offset] of [["nobody", "x.1.2.3"], ["nobody", ""], ["nobody", "garbage"]]) {
        const c = await client(one);
        await c.present(one, pid, offset);
        assert.equal(c.socket.recovered, false);
      }
      const c = await client(one);
      await one.do("emit", { event: "bad", args: ["a"] });
      await until(c, "bad", 1);
      await c.drop(one);
      c.socket._lastOffset = "XXXXXXXX.1.999999.0";  // a daemon instance that is not this one
      await c.reconnect();
      assert.equal(c.socket.recovered, false);
      assert.deepEqual(one.errors.filter((e) => /unhandled/i.test(e.message)), []);
    });

    test("packets from two servers sent while the client drops and comes back arrive exactly once", async () => {
      const c = await client(one);
      const total = 400;
      const sending = Promise.all([
        one.do("emit", { event: "n1", numbered: true, times: total / 2, args: [] }),
        two.do("emit", { event: "n2", numbered: true, times: total / 2, args: [] }),
      ]);
      await until(c, "n2", 1);
      await c.drop(one);
      await sending;
      await c.reconnect();
      assert.equal(c.socket.recovered, true);
      await until(c, "n1", total / 2);
      await until(c, "n2", total / 2);
      const expected = [...Array(total / 2).keys()];
      assert.deepEqual(c.texts("n1"), expected, "from one: each once, in order");
      assert.deepEqual(c.texts("n2"), expected, "from two: each once, in order");
    });

    test(`recovers on the other server${topology.kind === "mongodb" ? ", attached to the other daemon" : ""}`, async () => {
      const c = await client(one, { rooms: ["blue"] });
      await two.do("emit", { event: "mv", args: ["first"] });
      await until(c, "mv", 1);
      const sid = await c.drop(one);
      await one.do("emit", { event: "mv", rooms: ["blue"], args: ["blue-from-one"] });
      await two.do("emit", { event: "mv", args: ["all-from-two"] });
      await one.do("emit", { event: "mv", rooms: [sid], args: ["private-from-one"] });
      await c.moveTo(two);
      assert.equal(c.socket.recovered, true);
      assert.equal(c.socket.id, sid);
      await until(c, "mv", 4);
      assert.deepEqual(c.texts("mv").slice(1).sort(), ["all-from-two", "blue-from-one", "private-from-one"]);
      // The new server sends to it by its old id and room.
      await one.do("emit", { event: "mv", rooms: ["blue"], args: ["after"] });
      await until(c, "mv", 5);
      assert.equal(c.texts("mv")[4], "after");
    });
  });
}

// Three hosts: a daemon each, one socket.io server each, on both expiration
// strategies of the collection.
for (const expiration of ["ttl", "capped"]) {
  describe(`connection state recovery across three hosts (MongoDB, ${expiration})`, { skip: !process.env.MONGODB_URI && "MONGODB_URI not set" }, () => {
    let daemons;
    const servers = [];
    const clients = [];
    const client = connector(clients);

    before(async () => {
      daemons = await startDaemons("mongodb", `siobridge_recovery3_${expiration}_${randomBytes(5).toString("hex")}`,
                                   { count: 3, extra: ["--mongodb-expiration", expiration, "--mongodb-capped-size", "16MiB"] });
      for (const [i, daemon] of daemons.entries()) {
        servers.push(await new ServerProcess({ address: daemon.address, label: `host${i + 1}`, recovery }).start());
      }
      await eventually(async () => {
        for (const server of servers) if ((await server.do("serverCount")) !== 3) return false;
        return true;
      }, 20000, "every server counts three");
    });

    after(async () => {
      for (const c of clients) c.close();
      for (const server of servers) await server.stop();
      for (const daemon of daemons ?? []) await daemon.dispose();
    });

    test("a client of host 1 recovers on host 2 with what it missed, filtered by room and except, once", async () => {
      const [one, two, three] = servers;
      const c = await client(one, { rooms: ["blue"] });
      await three.do("emit", { event: "x", args: ["seen"] });
      await until(c, "x", 1);
      const sid = await c.drop(one);
      const pid = c.socket._pid;
      const offset = c.socket._lastOffset;
      await three.do("emit", { event: "x", rooms: ["blue"], args: ["blue-from-three"] });
      await three.do("emit", { event: "x", rooms: ["red"], args: ["red-from-three"] });
      await two.do("emit", { event: "x", except: ["blue"], args: ["not-blue-from-two"] });
      await one.do("emit", { event: "x", rooms: [sid], args: ["private-from-one"] });
      await one.do("emit", { event: "x", args: ["all-from-one"] });
      await c.moveTo(two);
      assert.equal(c.socket.recovered, true);
      assert.equal(c.socket.id, sid);
      await until(c, "x", 4);
      assert.deepEqual(c.texts("x").slice(1).sort(), ["all-from-one", "blue-from-three", "private-from-one"]);
      // Its room came along: host 3 reaches it on host 2.
      await three.do("emit", { event: "x", rooms: ["blue"], args: ["after"] });
      await until(c, "x", 5);
      assert.equal(c.texts("x")[4], "after");
      // The session was used: not again, on any host.
      const again = new RecoveringClient(three);
      clients.push(again);
      await again.present(three, pid, offset);
      assert.equal(again.socket.recovered, false);
    });

    test("three hosts writing in the same second: every packet once, in each sender's order", async () => {
      const [one, two, three] = servers;
      const c = await client(one);
      const total = 300;
      const sending = Promise.all(servers.map((server, i) =>
        server.do("emit", { event: `n${i + 1}`, numbered: true, times: total / 3, args: [] })));
      await until(c, "n2", 1);
      await until(c, "n3", 1);
      await c.drop(one);
      await sending;
      await c.moveTo(three);
      assert.equal(c.socket.recovered, true);
      const expected = [...Array(total / 3).keys()];
      for (const event of ["n1", "n2", "n3"]) {
        await until(c, event, total / 3);
        assert.deepEqual(c.texts(event), expected, `${event}: each once, in order`);
      }
      void two;
    });
  });
}
