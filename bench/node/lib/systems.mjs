// The systems scripts/bench peers compares, and how each is started and
// stopped: its infrastructure (redis-server, siobridged daemons, a MongoDB
// database and collection of its own) and the environment that selects its
// adapter in server.cjs. Every system gets a fresh infrastructure per round.
//
// Single-threaded (Node event loop of the orchestrator).
import { createRequire } from "node:module";
import { openSync, closeSync, mkdirSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { join } from "node:path";
import { startProcess, stopChild } from "./children.mjs";

const repo = join(import.meta.dirname, "..", "..", "..");
const clientRequire = createRequire(join(repo, "client", "node", "package.json"));

// In table order. `servers`: 1 = one socket.io server with its own clients (no
// cluster); `mongo`: uses the MongoDB server (its CPU counts); `requests`: the
// adapter answers fetchSockets / serverSideEmitWithAck across servers.
export const SYSTEMS = [
  { key: "socketio", label: "socket.io alone, one server", servers: 1, mongo: false, fetch: true, ack: false },
  { key: "redis", label: "@socket.io/redis-adapter + redis-server", servers: 2, mongo: false, fetch: true, ack: true },
  { key: "mongo-adapter", label: "@socket.io/mongo-adapter (capped)", servers: 2, mongo: true, fetch: true, ack: true },
  { key: "floor", label: "raw MongoDB floor (insertMany 100 + change stream)", servers: 2, mongo: true, fetch: false, ack: false },
  { key: "siobridge", label: "siobridge, two daemons, MongoDB", servers: 2, mongo: true, fetch: true, ack: true },
  { key: "siobridge-binary", label: "siobridge, two daemons, data_format: binary", servers: 2, mongo: true, fetch: true, ack: true },
  { key: "siobridge-memory", label: "siobridge, one daemon, memory bus", servers: 2, mongo: false, fetch: true, ack: true },
  // For comparison only: one command or call per stream message (no CommandBatch, no MessageBatch).
  { key: "siobridge-memory-single", label: "siobridge, one daemon, memory bus, no batches", servers: 2, mongo: false, fetch: true, ack: true, compare: true },
];

/** An error that ends an `until` wait at once (the process it waits for is gone). */
function fatal(message) {
  return Object.assign(new Error(message), { fatal: true });
}

/** Polls `check` until it is true; errors count as false until the deadline, unless fatal. */
export async function until(check, what, timeoutMs = 60000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error.fatal) throw error;
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const socket = netConnect(port, "127.0.0.1");
    let reply = "";
    socket.setTimeout(1000, () => socket.destroy());
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d;
      if (reply.includes("\r\n")) socket.end();
    });
    socket.on("close", () => resolve(reply.startsWith("+PONG")));
    socket.on("error", () => {});
  });
}

async function startRedis(dir) {
  const port = await freePort();
  const log = openSync(join(dir, "redis.log"), "a");
  // No persistence (no RDB snapshots, no AOF), as a pure message bus.
  const child = startProcess("redis-server", "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"],
    { logFd: log });
  closeSync(log);
  await until(async () => {
    if (child.spawnError) throw fatal(`redis-server: ${child.spawnError.message}`);
    if (child.exitCode !== null) throw fatal(`redis-server exited with code ${child.exitCode} (log: ${dir}/redis.log)`);
    return redisPing(port);
  }, "redis-server ready", 20000);
  return { child, port };
}

let Bridge;
function daemonStatus(address) {
  if (!Bridge) {
    const grpc = clientRequire("@grpc/grpc-js");
    const loader = clientRequire("@grpc/proto-loader");
    const definition = loader.loadSync(join(repo, "proto", "siobridge", "v1", "bridge.proto"), {
      keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true,
    });
    Bridge = { grpc, service: grpc.loadPackageDefinition(definition).siobridge.v1.Bridge };
  }
  const client = new Bridge.service(address, Bridge.grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Status({}, { deadline: Date.now() + 2000 }, (e, r) => {
      client.close();
      if (e) reject(e);
      else resolve(r);
    }));
}

async function startDaemon(ctx, name, mongo) {
  const socket = join(ctx.dir, `${name}.sock`);
  const flags = ["--listen-unix", socket, "--log-file", join(ctx.dir, `${name}.log`), "--log-level", "warn",
                 "--mongodb-state-dir", join(ctx.dir, `${name}-state`)];
  if (mongo) {
    flags.push("--mongodb-uri", ctx.mongoUri, "--mongodb-database", ctx.database);
    if (mongo.dataFormat) flags.push("--mongodb-data-format", mongo.dataFormat);
    // Measured as it is meant to run between siobridge daemons alone.
    flags.push("--mongodb-pack-messages", "true");
    // Compare a setting against the same run without it, one lever at a time (bench/README.md).
    const env = process.env;
    if (env.BENCH_SIOBRIDGE_COMPRESS === "0") flags.push("--mongodb-compress-packs", "false");
    if (env.BENCH_SIOBRIDGE_COMPRESS_SKIP === "0") flags.push("--mongodb-compress-skip", "false");
    if (env.BENCH_SIOBRIDGE_WRITE_WINDOW_US) flags.push("--mongodb-write-window-us", env.BENCH_SIOBRIDGE_WRITE_WINDOW_US);
    if (env.BENCH_SIOBRIDGE_DISCOVERY_LOOKUP === "1") flags.push("--node-discovery-lookup", "true");
  }
  const child = startProcess(name, ctx.daemon, flags);
  const address = `unix:${socket}`;
  await until(async () => {
    if (child.spawnError) throw fatal(`${name}: ${child.spawnError.message}`);
    if (child.exitCode !== null) throw fatal(`${name} exited with code ${child.exitCode} (log: ${ctx.dir}/${name}.log)`);
    return (await daemonStatus(address)).bus_state === "ready";
  }, `${name} ready`, 60000, 100);
  return { child, address };
}

/**
 * Starts the infrastructure of `system` for one round. ctx: { dir, daemon,
 * mongoUri, mongo (a connected MongoClient), database }. Resolves to
 * { processes: [{ role, pid }], env: [senderEnv, receiverEnv], stop(), ready()? }:
 * ready() resolves once the system is in its steady state with its servers.
 */
export async function startSystem(system, ctx) {
  mkdirSync(ctx.dir, { recursive: true });
  const owned = [];
  const processes = [];
  const stop = async () => {
    for (const child of owned.reverse()) await stopChild(child);
    if (system.mongo) await ctx.mongo.db(ctx.database).dropDatabase().catch(() => {});
  };
  try {
    switch (system.key) {
      case "socketio":
        return { processes, env: [{ BENCH_ADAPTER: "none" }], stop };
      case "redis": {
        const redis = await startRedis(ctx.dir);
        owned.push(redis.child);
        processes.push({ role: "redis-server", kind: "broker", pid: redis.child.pid });
        const env = { BENCH_ADAPTER: "redis", BENCH_REDIS_URL: `redis://127.0.0.1:${redis.port}` };
        return { processes, env: [env, env], stop };
      }
      case "mongo-adapter":
      case "floor": {
        const collection = "socket.io-adapter-events";
        // Created once, before the servers: the test server under Wine does not survive two
        // clients creating one namespace at once (docs/testing.md). The mongo adapter's
        // documented set-up: a capped collection of 1e6 bytes.
        if (system.key === "mongo-adapter") await ctx.mongo.db(ctx.database).createCollection(collection, { capped: true, size: 1e6 });
        else await ctx.mongo.db(ctx.database).createCollection(collection);
        const env = {
          BENCH_ADAPTER: system.key === "floor" ? "floor" : "mongo",
          BENCH_MONGODB_URI: ctx.mongoUri, BENCH_MONGODB_DB: ctx.database, BENCH_MONGODB_COLLECTION: collection,
        };
        return { processes, env: [env, env], stop };
      }
      case "siobridge":
      case "siobridge-binary": {
        const mongo = { dataFormat: system.key === "siobridge-binary" ? "binary" : undefined };
        // One after the other: the first creates the collection (see above).
        const a = await startDaemon(ctx, "daemon-a", mongo);
        owned.push(a.child);
        const b = await startDaemon(ctx, "daemon-b", mongo);
        owned.push(b.child);
        processes.push({ role: "daemon (sender)", kind: "daemon", pid: a.child.pid },
                       { role: "daemon (receiver)", kind: "daemon", pid: b.child.pid });
        // A cluster in its steady state: once the servers attached, each daemon
        // packs once discovery tells it no socketioxide node is in the namespace
        // (at once, or one heartbeat interval later: docs/PROTOCOL.md section 18).
        const ready = () => until(async () => {
          for (const address of [a.address, b.address]) {
            const ns = (await daemonStatus(address)).namespaces.find((n) => n.namespace === "/");
            if (!ns?.packing) return false;
          }
          return true;
        }, `${system.key}: both daemons pack`, 30000, 200);
        return { processes, env: [{ BENCH_ADAPTER: "siobridge", BENCH_SIOBRIDGE_ADDRESS: a.address },
                                  { BENCH_ADAPTER: "siobridge", BENCH_SIOBRIDGE_ADDRESS: b.address }], stop, ready };
      }
      case "siobridge-memory":
      case "siobridge-memory-single": {
        const d = await startDaemon(ctx, "daemon", null);
        owned.push(d.child);
        processes.push({ role: "daemon", kind: "daemon", pid: d.child.pid });
        const env = { BENCH_ADAPTER: "siobridge", BENCH_SIOBRIDGE_ADDRESS: d.address,
                      BENCH_SIOBRIDGE_BATCHES: system.key === "siobridge-memory" ? "1" : "0" };
        return { processes, env: [env, env], stop };
      }
      default:
        throw new Error(`unknown system ${system.key}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
}
