// A socket.io server in its own process, with the siobridge adapter, driven by
// the test over IPC: every message {id, op, ...} is answered {id, result} or
// {id, error}.
const { existsSync } = require("node:fs");
const net = require("node:net");
const { Server } = require("socket.io");
const { createAdapter } = require("../../dist");

// Every write this process hands its TCP and Unix sockets (one system call
// each, at most): what coalescing saves.
let socketWrites = 0;
const writeGeneric = net.Socket.prototype._writeGeneric;
net.Socket.prototype._writeGeneric = function (...args) {
  socketWrites += 1;
  return writeGeneric.apply(this, args);
};

const options = JSON.parse(process.env.SIOBRIDGE_TEST_SERVER);
if (options.separateParserCopy) {
  // As when the app's socket.io has its own copy of socket.io-parser: the
  // adapter's require() then yields another module than the Server's parser.
  delete require.cache[require.resolve("socket.io-parser")];
}
const errors = [];
const adapterOptions = {
  address: options.address,
  name: options.label,
  requestsTimeout: options.requestsTimeout ?? 3000,
  reconnect: { minDelay: 50, maxDelay: 500 },
  ...(options.adapterParser ? { parser: options.adapterParser } : {}),
  ...(options.timeoutMessages ? { timeoutMessages: options.timeoutMessages } : {}),
  ...(options.tls ? { tls: options.tls } : {}),
  ...(options.messageBatches === false ? { messageBatches: false } : {}),
  ...(options.coalesceWrites === false ? { coalesceWrites: false } : {}),
  onError: (error) => {
    errors.push(`${error.message}`);
    process.send?.({ event: "adapter-error", message: error.message, code: error.code, codeName: error.codeName });
  },
};

// A parser whose output is neither JSON text nor msgpack (base64 of the JSON
// text): the adapter cannot tell which encoding the app's data is in.
const opaqueParser = {
  protocol: 5,
  Encoder: class {
    encode(packet) {
      return [Buffer.from(`${packet.type}${JSON.stringify(packet.data ?? null)}`).toString("base64")];
    }
  },
  Decoder: require("socket.io-parser").Decoder,
};
const parser =
  options.parser === "msgpack" ? require("socket.io-msgpack-parser") : options.parser === "opaque" ? opaqueParser : undefined;

// One or more socket.io Servers in this process (they share one Attach stream).
const servers = [];
try {
  for (let i = 0; i < (options.servers ?? 1); i++) {
    const io = new Server({
      adapter: createAdapter(adapterOptions),
      ...(parser ? { parser } : {}),
      ...(options.recovery ? { connectionStateRecovery: options.recovery } : {}),
    });
    io.listen(0);
    servers.push(io);
  }
  // Closed at once, before the daemon could answer its Hello.
  for (const index of options.closeAtStart ?? []) servers[index].close();
} catch (error) {
  process.send({ event: "startup-error", message: error.message, code: error.code, codeName: error.codeName });
  process.exit(1);
}

const received = []; // server-side emits received
function setUp(nsp) {
  nsp.on("connection", (socket) => {
    const auth = socket.handshake.auth ?? {};
    if (!socket.recovered) {
      // A recovered socket has its data and rooms back from its session.
      socket.data = { user: auth.user, label: options.label, ...(auth.padding ? { padding: "x".repeat(auth.padding) } : {}) };
      for (const room of auth.rooms ?? []) socket.join(room);
    }
    socket.on("shout", (...args) => socket.broadcast.emit("heard", ...args));
  });
  nsp.on("server-note", (...args) => received.push({ ns: nsp.name, args }));
  nsp.on("server-ping", (...args) => {
    const callback = args.pop();
    if (options.silentServerSideEmit) return; // never answers
    if (options.closeOnServerSideEmit) {
      // Leaves the cluster instead of answering.
      for (const io of servers) io.close();
      return;
    }
    if (options.serverSideEmitDelay) {
      setTimeout(() => callback(`pong from ${options.label}`), options.serverSideEmitDelay);
      return;
    }
    callback(`pong from ${options.label}`);
  });
}
for (const io of servers) setUp(io.of("/"));

function io(index = 0) {
  return servers[index];
}

function operator(nsp, m) {
  let target = nsp;
  if (m.local) target = target.local;
  if (m.volatile) target = target.volatile;
  for (const room of m.rooms ?? []) target = target.to(room);
  for (const room of m.except ?? []) target = target.except(room);
  if (m.timeout) target = target.timeout(m.timeout);
  return target;
}

function revive(args) {
  // {"$binary": "base64"} stands for a Buffer in messages from the test,
  // {"$repeat": n} for a string of n characters.
  return (args ?? []).map((a) => {
    if (a && typeof a === "object" && a.$binary) return Buffer.from(a.$binary, "base64");
    if (a && typeof a === "object" && a.$repeat) return "x".repeat(a.$repeat);
    return a;
  });
}

function describe(value) {
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (Array.isArray(value)) return value.map(describe);
  if (value instanceof Error) return { $error: value.message };
  return value;
}

/** An error as the test sees it: message, code and what the adapter attached. */
function failure(error) {
  return {
    error: error.message,
    code: error.code,
    codeName: error.codeName,
    missing: error.missing,
    responses: describe(error.responses ?? null),
  };
}

// Operations started by "start" and awaited by "outcome": what a call does
// while something else happens (a close, a restart).
const started = new Map();

const handlers = {
  ports: () => servers.map((s) => s.httpServer.address()?.port ?? null),
  // The sockets connected here, as connection state recovery left them.
  sockets: (m) =>
    [...io(m.server).of(m.ns ?? "/").sockets.values()].map((socket) => ({
      id: socket.id,
      recovered: socket.recovered,
      rooms: [...socket.rooms],
      data: socket.data,
    })),
  // socket.emit to one socket of this server (with recovery on, through the adapter).
  socketEmit: (m) => {
    const socket = io(m.server).of(m.ns ?? "/").sockets.get(m.sid);
    if (!socket) return false;
    for (let i = 0; i < (m.times ?? 1); i++) socket.emit(m.event, ...(m.numbered ? [i] : []), ...revive(m.args));
    return true;
  },
  of: (m) => {
    for (const server of servers) setUp(server.of(m.ns));
    return true;
  },
  emit: (m) => {
    const args = revive(m.args);
    // m.numbered: each emit's first argument is its number (0, 1, ...).
    for (let i = 0; i < (m.times ?? 1); i++) {
      operator(io(m.server).of(m.ns ?? "/"), m).emit(m.event, ...(m.numbered ? [i, ...args] : args));
    }
    return true;
  },
  emitWithAck: async (m) => {
    try {
      return { responses: describe(await operator(io(m.server).of(m.ns ?? "/"), m).emitWithAck(m.event, ...revive(m.args))) };
    } catch (error) {
      return failure(error);
    }
  },
  emitWithAckCallback: (m) =>
    new Promise((done) => {
      operator(io(m.server).of(m.ns ?? "/"), m).emit(m.event, ...revive(m.args), (err, responses) =>
        done({ error: err?.message ?? null, responses: describe(responses) }),
      );
    }),
  emitThenDisconnect: (m) => {
    const nsp = io(m.server).of(m.ns ?? "/");
    operator(nsp, m).emit(m.event, ...revive(m.args));
    operator(nsp, m).disconnectSockets(!!m.close);
    return true;
  },
  socketsJoin: (m) => {
    operator(io(m.server).of(m.ns ?? "/"), m).socketsJoin(m.join);
    return true;
  },
  socketsLeave: (m) => {
    operator(io(m.server).of(m.ns ?? "/"), m).socketsLeave(m.leave);
    return true;
  },
  disconnectSockets: (m) => {
    operator(io(m.server).of(m.ns ?? "/"), m).disconnectSockets(!!m.close);
    return true;
  },
  fetchSockets: async (m) => {
    const sockets = await operator(io(m.server).of(m.ns ?? "/"), m).fetchSockets();
    return sockets.map((s) => ({ id: s.id, auth: s.handshake?.auth, rooms: [...s.rooms].sort(), data: s.data }));
  },
  remoteEmitWithAck: async (m) => {
    const sockets = await io(m.server).of(m.ns ?? "/").fetchSockets();
    const socket = sockets.find((s) => s.id === m.socketId);
    if (!socket) return { error: `socket ${m.socketId} not found among ${sockets.length}` };
    return { response: describe(await socket.timeout(m.timeout ?? 3000).emitWithAck(m.event, ...revive(m.args))) };
  },
  remoteJoin: async (m) => {
    const sockets = await io(m.server).of(m.ns ?? "/").fetchSockets();
    sockets.find((s) => s.id === m.socketId)?.join(m.join);
    return true;
  },
  serverSideEmit: (m) => {
    io(m.server).of(m.ns ?? "/").serverSideEmit(m.event, ...revive(m.args));
    return true;
  },
  serverSideEmitWithAck: async (m) => {
    try {
      return { responses: await io(m.server).of(m.ns ?? "/").serverSideEmitWithAck(m.event, ...revive(m.args)) };
    } catch (error) {
      return failure(error);
    }
  },
  start: (m) => {
    const run = handlers[m.call](m.params ?? {});
    // A failure comes as {error, code, ...} whether the operation threw or reported it.
    const settled = Promise.resolve(run).then(
      (result) => (result && typeof result === "object" && "error" in result ? result : { result }),
      (error) => failure(error),
    );
    started.set(m.key, settled);
    return true;
  },
  outcome: (m) => started.get(m.key),
  block: (m) => {
    // Stops reading everything (event loop included) until the test creates `m.until`.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (!existsSync(m.until)) Atomics.wait(pause, 0, 0, 20);
    return true;
  },
  allRooms: async (m) => [...(await io(m.server).of(m.ns ?? "/").adapter.allRooms())].sort(),
  received: () => received,
  serverCount: (m) => io(m.server).of(m.ns ?? "/").adapter.serverCount(),
  errors: () => errors,
  // How the daemon sent this server its Commands (the adapter's diagnostics).
  batches: (m) => {
    const session = io(m.server).of(m.ns ?? "/").adapter.server.session;
    return { readsBatches: session.readsBatches, batches: session.batchesReceived, commands: session.batchedCommands };
  },
  socketWrites: () => socketWrites,
  // What the adapter sent again after daemon restarts, and what it let go unconfirmed.
  resends: (m) => {
    const session = io(m.server).of(m.ns ?? "/").adapter.server.session;
    return { resent: session.resent, givenUp: session.givenUp, unconfirmed: session.unconfirmed.length };
  },
  // How this process wrote its Attach stream: calls and the stream messages that carried them.
  writes: (m) => {
    const writer = io(m.server).of(m.ns ?? "/").adapter.server.session.connection.writer;
    return { messages: writer.messagesWritten, streamMessages: writer.streamMessagesWritten };
  },
  closeServer: async (m) => {
    await new Promise((done) => io(m.server).close(() => done()));
    return true;
  },
};

process.on("message", async (m) => {
  try {
    const result = await handlers[m.op](m);
    process.send({ id: m.id, result });
  } catch (error) {
    process.send({ id: m.id, error: error.message, code: error.code });
  }
});
// "ready" once every open Server's namespace "/" is joined in the daemon: a
// call goes on the Attach stream after the Hello and the joins, so its answer
// means the daemon applied them (work sent to "/" from then on reaches this
// process). A daemon that is not there yet: ready after the call's timeout.
const closedAtStart = new Set(options.closeAtStart ?? []);
Promise.all(servers.filter((_, i) => !closedAtStart.has(i)).map((io) => io.of("/").adapter.serverCount())).then(
  () => process.send({ event: "ready" }),
);
