// The socket.io-client clients of scripts/bench peers, in their own process (so
// that their CPU is apart from the servers' and the orchestrator's): BENCH_CLIENTS
// websocket clients on the receiver at BENCH_PORT, counting the "m" events of
// the current cell (seq in [base, base + count)) per client, with duplicates
// apart, and, when asked, each delivery's latency (receipt minus the sender's
// sentAt: one host, one clock). Driven over the IPC channel by peers.mjs; sends
// {event: "done"} when every client has every event of the cell. Exits when the
// channel closes.
//
// Single-threaded (Node event loop).
const { io: connect } = require("socket.io-client");

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const now = () => performance.timeOrigin + performance.now();

let cell = null;
let lastAny = 0; // time of the last "m" event of any cell: whether deliveries still trickle in
const sockets = [];
const disconnects = [];

function onEvent(client, seq, sentAt) {
  lastAny = now();
  const c = cell;
  if (!c) return;
  const index = seq - c.base;
  if (index < 0 || index >= c.count) {
    c.stray += 1;
    return;
  }
  const seen = c.seen[client];
  if (seen[index]) {
    c.duplicates += 1;
    return;
  }
  seen[index] = 1;
  const t = now();
  c.perClient[client] += 1;
  c.received += 1;
  if (c.firstReceipt === 0) c.firstReceipt = t;
  c.lastReceipt = t;
  if (c.latencies) c.latencies[c.latencyCount++] = t - sentAt;
  if (c.received === c.target && !c.doneSent) {
    c.doneSent = true;
    process.send({ event: "done" });
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(c) {
  const out = {
    received: c.received,
    expected: c.target,
    perClient: c.perClient,
    duplicates: c.duplicates,
    stray: c.stray,
    firstReceipt: c.firstReceipt,
    lastReceipt: c.lastReceipt,
    disconnects: disconnects.splice(0),
  };
  if (c.latencies) {
    const sorted = c.latencies.subarray(0, c.latencyCount).sort();
    out.latency = { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: percentile(sorted, 100) };
  }
  return out;
}

const actions = {
  async connect({ port }) {
    for (let i = 0; i < CLIENTS; i++) {
      const socket = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      socket.on("m", (seq, sentAt) => onEvent(i, seq, sentAt));
      socket.on("disconnect", (reason) => disconnects.push(`client ${i}: ${reason}`));
      sockets.push(socket);
    }
    return sockets.length;
  },
  expect({ base, count, latencies }) {
    cell = {
      base,
      count,
      target: count * CLIENTS,
      received: 0,
      perClient: new Array(CLIENTS).fill(0),
      seen: Array.from({ length: CLIENTS }, () => new Uint8Array(count)),
      duplicates: 0,
      stray: 0,
      firstReceipt: 0,
      lastReceipt: 0,
      latencies: latencies ? new Float64Array(count * CLIENTS) : null,
      latencyCount: 0,
      doneSent: false,
    };
    return true;
  },
  progress: () => ({ received: cell?.received ?? 0, lastReceipt: cell?.lastReceipt ?? 0, quietMs: now() - lastAny }),
  finish() {
    const c = cell;
    cell = null;
    return c ? summary(c) : null;
  },
  close() {
    for (const socket of sockets.splice(0)) socket.disconnect();
    return true;
  },
};

process.on("message", async ({ id, action, args }) => {
  try {
    process.send({ id, result: await actions[action](args ?? {}) });
  } catch (error) {
    process.send({ id, error: String(error?.message ?? error) });
  }
});
process.on("disconnect", () => process.exit(0));
process.send({ ready: true });
