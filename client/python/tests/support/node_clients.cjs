// Node.js socket.io-client clients for the Python manager's tests, in their
// own process, driven over IPC by the test: every message {id, op, ...} is
// answered {id, result} or {id, error}; what the clients receive is pushed as
// {event: "client-event", client, name, args} and {event: "client-disconnect",
// client, reason}. Buffers travel as {"$binary": base64}.
const { io } = require("socket.io-client");

const clients = new Map();
let nextClient = 1;

function describe(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(describe);
  if (value && typeof value === "object") {
    const out = {};
    for (const [key, item] of Object.entries(value)) out[key] = describe(item);
    return out;
  }
  return value;
}

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    if (typeof value.$binary === "string") return Buffer.from(value.$binary, "base64");
    const out = {};
    for (const [key, item] of Object.entries(value)) out[key] = revive(item);
    return out;
  }
  return value;
}

// Every event is reported; `answers` says what to ack per event (absent: no ack).
function track(socket, answers) {
  const handle = nextClient++;
  clients.set(handle, socket);
  socket.onAny((name, ...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
    process.send({ event: "client-event", client: handle, name, args: describe(args) });
    if (callback && Object.prototype.hasOwnProperty.call(answers, name)) callback(revive(answers[name]));
  });
  socket.on("disconnect", (reason) => process.send({ event: "client-disconnect", client: handle, reason }));
  return handle;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (error) => reject(new Error(`connect_error: ${error.message}`)));
  });
}

const handlers = {
  connect: async (m) => {
    const socket = io(m.url, {
      auth: m.auth,
      transports: m.transports ?? ["websocket"],
      forceNew: true,
      reconnection: false,
    });
    const handle = track(socket, m.answers ?? {});
    await connected(socket);
    return { client: handle, sid: socket.id };
  },
  // A second socket on the same connection (Manager), in another namespace.
  companion: async (m) => {
    const socket = clients.get(m.client).io.socket(m.namespace);
    const handle = track(socket, {}); // it connects by itself (autoConnect)
    await connected(socket);
    return { client: handle, sid: socket.id };
  },
  emit: async (m) => {
    clients.get(m.client).emit(m.event, ...revive(m.args ?? []));
    return true;
  },
  connected: (m) => clients.get(m.client).connected,
  // Loses the transport (connection state recovery keeps the session), then
  // reconnects presenting the session id and the last offset.
  drop: async (m) => {
    const socket = clients.get(m.client);
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.io.engine.close();
    await gone;
    return true;
  },
  reconnect: async (m) => {
    const socket = clients.get(m.client);
    socket.connect();
    await connected(socket);
    return { recovered: socket.recovered, sid: socket.id };
  },
  close: (m) => {
    clients.get(m.client).disconnect();
    return true;
  },
};

process.on("message", async (m) => {
  try {
    process.send({ id: m.id, result: (await handlers[m.op](m)) ?? null });
  } catch (error) {
    process.send({ id: m.id, error: error.message });
  }
});
process.on("SIGTERM", () => {
  for (const socket of clients.values()) socket.disconnect();
  process.exit(0);
});
process.send({ event: "ready" });
