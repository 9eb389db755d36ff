// One socket.io 4.8 server of scripts/bench peers, in its own process, with the
// adapter of the system under test (BENCH_ADAPTER):
//   none       socket.io's in-memory adapter (socket.io alone)
//   siobridge  @siobridge/socket.io-adapter on BENCH_SIOBRIDGE_ADDRESS
//   redis      @socket.io/redis-adapter on BENCH_REDIS_URL (node-redis clients)
//   mongo      @socket.io/mongo-adapter on BENCH_MONGODB_URI / _DB / _COLLECTION
//   floor      the raw MongoDB floor (floor-adapter.cjs), same variables
// Every system gets the same server code: the sender emits
// io.emit("m", seq, sentAt, payload) when told; the receiver serves the
// clients and answers serverSideEmitWithAck("ping"). Driven over the IPC
// channel by peers.mjs ({id, action, args} -> {id, result | error}); exits when
// the channel closes, so a killed benchmark leaves no server behind.
//
// Single-threaded (Node event loop).
const { createServer } = require("node:http");
const { join } = require("node:path");
const { randomBytes } = require("node:crypto");
const { Server } = require("socket.io");

const env = process.env;
const errors = [];
const onError = (error) => {
  if (errors.length < 100) errors.push(String(error?.message ?? error));
};
const now = () => performance.timeOrigin + performance.now();
const closers = [];

async function makeAdapter() {
  switch (env.BENCH_ADAPTER) {
    case "none":
      return undefined;
    case "siobridge": {
      const { createAdapter } = require(join(__dirname, "..", "..", "client", "node", "dist"));
      return createAdapter({
        address: env.BENCH_SIOBRIDGE_ADDRESS,
        onError,
        commandBatches: env.BENCH_SIOBRIDGE_BATCHES !== "0",
        messageBatches: env.BENCH_SIOBRIDGE_BATCHES !== "0" && env.BENCH_SIOBRIDGE_MESSAGE_BATCHES !== "0",
        coalesceWrites: env.BENCH_SIOBRIDGE_COALESCE !== "0",
      });
    }
    case "redis": {
      const { createClient } = require("redis");
      const { createAdapter } = require("@socket.io/redis-adapter");
      const pub = createClient({ url: env.BENCH_REDIS_URL });
      const sub = pub.duplicate();
      pub.on("error", onError);
      sub.on("error", onError);
      await Promise.all([pub.connect(), sub.connect()]);
      closers.push(() => pub.quit(), () => sub.quit());
      return createAdapter(pub, sub);
    }
    case "mongo":
    case "floor": {
      const { MongoClient } = require("mongodb");
      const client = new MongoClient(env.BENCH_MONGODB_URI);
      await client.connect();
      closers.push(() => client.close());
      const collection = client.db(env.BENCH_MONGODB_DB).collection(env.BENCH_MONGODB_COLLECTION);
      if (env.BENCH_ADAPTER === "floor") return require("./floor-adapter.cjs").createFloorAdapter(collection, { onError });
      return require("@socket.io/mongo-adapter").createAdapter(collection);
    }
    default:
      throw new Error(`unknown BENCH_ADAPTER ${env.BENCH_ADAPTER}`);
  }
}

let io;
let stopRequested = false;

// Payloads of `bytes` characters (ASCII: as many bytes), taken in turn:
// - "random" (the default): random base64 text, a different string for every
//   event: consecutive slices of a pool of 16 MiB of it (randomBytes in
//   base64), so that no text repeats within 16 MiB of payloads, more than a
//   pack, a zstd window or any burst of 100 B or 1 KiB events holds. What
//   compresses least among texts (zstd at its fastest level leaves about
//   three quarters), and what the outside measurements used;
// - "json": JSON text such as applications send, chat-like records of ids,
//   names, times and words from a fixed-seed generator, 1,024 different
//   payloads per size, the same for every system and every run (zstd at its
//   fastest level makes it about a third);
// - "repeat": one character repeated (what runs before 2026-12-05 sent).
const PAYLOAD_VARIANTS = 1024;
const RANDOM_POOL_CHARS = 16 << 20;
let randomPool = null;
let randomAt = 0;
const payloadCache = new Map();
function payloadOf(bytes, kind, index) {
  if (kind === "random") {
    randomPool ??= randomBytes((RANDOM_POOL_CHARS / 4) * 3).toString("base64");
    if (randomAt + bytes > randomPool.length) randomAt = 0;
    const payload = randomPool.slice(randomAt, randomAt + bytes);
    randomAt += bytes;
    return payload;
  }
  const key = `${kind} ${bytes}`;
  if (!payloadCache.has(key)) payloadCache.set(key, makePayloads(bytes, kind));
  const payloads = payloadCache.get(key);
  return payloads[index % payloads.length];
}
function makePayloads(bytes, kind) {
  let state = 0x2545f491;
  const next = (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
  if (kind === "repeat") return ["x".repeat(bytes)];
  if (kind !== "json") throw new Error(`unknown payload ${kind}`);
  const syllables = ["ka", "lo", "mi", "ne", "ru", "so", "ta", "vi", "de", "po", "an", "el", "is", "or", "un", "be"];
  const word = () => Array.from({ length: 1 + next(3) }, () => syllables[next(syllables.length)]).join("");
  const words = Array.from({ length: 400 }, word);
  let id = 0;
  const one = () => {
    const records = [];
    let length = 2;
    while (length < bytes) {
      const record = JSON.stringify({
        id: 100000 + id++,
        user: `${words[next(words.length)]}-${next(1000)}`,
        room: `room-${next(50)}`,
        at: 1764892800000 + id * 250 + next(250),
        text: Array.from({ length: 4 + next(12) }, () => words[next(words.length)]).join(" "),
        likes: next(20),
      });
      records.push(record);
      length += record.length + 1;
    }
    return `[${records.join(",")}]`.slice(0, bytes);
  };
  return Array.from({ length: PAYLOAD_VARIANTS }, one);
}

// Emits `count` events with `bytes` of payload, seq from `firstSeq`: paced at
// `rate` per second, or as fast as the event loop allows when rate is 0 (in
// chunks, so that I/O goes on). Stops early when told (the system fell behind).
function run({ count, rate, bytes, payload: kind, firstSeq }) {
  payloadOf(bytes, kind, 0);  // the pool or the variants, before the clock starts
  stopRequested = false;
  return new Promise((done) => {
    let sent = 0;
    const start = now();
    const tick = () => {
      const due =
        rate > 0 ? Math.min(count, Math.floor(((now() - start) / 1000) * rate) + 1) : Math.min(count, sent + 200);
      while (sent < due && !stopRequested) {
        io.emit("m", firstSeq + sent, now(), payloadOf(bytes, kind, sent));
        sent += 1;
      }
      if (sent >= count || stopRequested) done({ sent, startedAt: start, seconds: (now() - start) / 1000, stopped: stopRequested });
      else if (rate > 0) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });
}

// Sequential round trips of a cluster operation; milliseconds each.
async function roundTrips(count, call) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const start = now();
    await call();
    times.push(now() - start);
  }
  return times;
}

const actions = {
  port: () => io.httpServer.address().port,
  serverCount: async () => io.of("/").adapter.serverCount(),
  run,
  stop: () => {
    stopRequested = true;
  },
  fetchSockets: ({ count, expect }) =>
    roundTrips(count, async () => {
      const sockets = await io.fetchSockets();
      if (sockets.length !== expect) throw new Error(`fetchSockets returned ${sockets.length} sockets, expected ${expect}`);
    }),
  emitWithAck: ({ count, expect }) =>
    roundTrips(count, async () => {
      const replies = await io.serverSideEmitWithAck("ping");
      if (replies.length !== expect) throw new Error(`serverSideEmitWithAck got ${replies.length} replies, expected ${expect}`);
    }),
  errors: () => errors.splice(0),
};

process.on("message", async ({ id, action, args }) => {
  try {
    const result = await actions[action](args ?? {});
    process.send({ id, result });
  } catch (error) {
    process.send({ id, error: String(error?.message ?? error) });
  }
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", async () => {
  for (const close of closers) await Promise.resolve(close()).catch(() => {});
  process.exit(0);
});

makeAdapter().then(
  (adapter) => {
    const http = createServer();
    io = new Server(http, adapter ? { adapter } : {});
    io.on("ping", (ack) => ack("pong"));
    http.listen(0, "127.0.0.1", () => process.send({ ready: true }));
  },
  (error) => {
    process.send({ failed: String(error?.message ?? error) });
    process.exit(1);
  },
);
