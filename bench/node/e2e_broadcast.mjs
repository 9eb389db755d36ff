// End-to-end broadcast benchmark: a sending socket.io server and a receiving
// one (separate processes, the siobridge adapter), 10 socket.io-client clients
// on the receiver, 100-byte events. Two topologies in one run: both servers on
// one daemon (memory bus: the cost of Node, gRPC and the daemon alone), and one
// server on each of two daemons sharing MongoDB (the product's real path); and,
// as the ceiling, one socket.io server without adapter sending to its own
// clients (what Node and socket.io cost on this machine).
//
//   node bench/node/e2e_broadcast.mjs --daemon build/release/daemon/app/siobridged \
//        [--mongodb-uri URI] [--seconds 10] [--burst 20000]
//
// Prints msgs/s at saturation (a burst sent as fast as the sender can; timed
// until every client has every message) and latency percentiles at a steady
// 1,000 msgs/s (send time to client receipt, one clock: one host).
// BENCH_PROF=1 writes CPU profiles of the two servers to /tmp/prof.
import { fork, spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const clientDir = join(import.meta.dirname, "..", "..", "client", "node");
const require = createRequire(join(clientDir, "package.json"));
const { io: connect } = require("socket.io-client");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values: opts } = parseArgs({
  options: {
    daemon: { type: "string" },
    "mongodb-uri": { type: "string" },
    seconds: { type: "string", default: "10" },
    burst: { type: "string", default: "20000" },
    clients: { type: "string", default: "10" },
  },
});
const SECONDS = Number(opts.seconds);
const BURST = Number(opts.burst);
const CLIENTS = Number(opts.clients);
const RATE = 1000;
const PADDING = 60; // ["m",<seq>,<time>,"x…"] is about 100 bytes of JSON

const workDir = mkdtempSync(join(tmpdir(), "siobridge-e2e-bench-"));
const children = [];
const now = () => performance.timeOrigin + performance.now();

const Bridge = grpc.loadPackageDefinition(
  protoLoader.loadSync(join(import.meta.dirname, "..", "..", "proto", "siobridge", "v1", "bridge.proto"), {
    keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true,
  }),
).siobridge.v1.Bridge;

function daemonStatus(address) {
  const client = new Bridge(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Status({}, new grpc.Metadata({ waitForReady: true }), { deadline: Date.now() + 30000 }, (e, r) => {
      client.close();
      if (e) reject(e);
      else resolve(r);
    }));
}

async function until(check, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startDaemon(name, mongoUri, database) {
  const socket = join(workDir, `${name}.sock`);
  const flags = ["--listen-unix", socket, "--log-file", join(workDir, `${name}.log`), "--log-level", "warn",
                 "--mongodb-state-dir", join(workDir, `${name}-state`)];
  if (mongoUri) flags.push("--mongodb-uri", mongoUri, "--mongodb-database", database);
  children.push(spawn(opts.daemon, flags, { stdio: "ignore" }));
  const address = `unix:${socket}`;
  await until(async () => (await daemonStatus(address)).bus_state === "ready", `${name} ready`);
  return address;
}

function startServer(address) {
  const child = fork(join(import.meta.dirname, "bench-server.cjs"), {
    execArgv: process.env.BENCH_PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : [],
    env: { ...process.env, SIOBRIDGE_ADDRESS: address ?? "" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  const pending = new Map();
  let nextId = 1;
  const ask = (action, args) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, action, args });
    });
  return new Promise((resolve) =>
    child.on("message", (m) => {
      if (m.ready) resolve({ ask });
      const waiter = pending.get(m.id);
      if (!waiter) return;
      pending.delete(m.id);
      if (m.error) waiter.reject(new Error(m.error));
      else waiter.resolve(m.result);
    }));
}

/** 10 clients; `expect(n)` resolves when each got n more events. */
async function connectClients(port) {
  const state = { received: 0, latencies: null, target: Infinity, done: null, perClient: [] };
  const sockets = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true, reconnection: false });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    state.perClient.push(0);
    socket.on("m", (_seq, sentAt) => {
      state.perClient[i] += 1;
      state.received += 1;
      if (state.latencies) state.latencies.push(now() - sentAt);
      if (state.received >= state.target && state.done) {
        const done = state.done;
        state.done = null;
        done(now());
      }
    });
    sockets.push(socket);
  }
  return {
    sockets,
    state,
    /** Resets counters; resolves with the time of the last expected receipt. */
    expect(perClient, { latencies = false } = {}) {
      state.received = 0;
      state.perClient.fill(0);
      state.latencies = latencies ? [] : null;
      state.target = perClient * CLIENTS;
      return new Promise((resolve) => (state.done = resolve));
    },
  };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(name, addresses) {
  // No addresses: one server without adapter, sending to its own clients.
  const sender = await startServer(addresses?.[0]);
  const receiver = addresses ? await startServer(addresses[1]) : sender;
  for (const server of addresses ? [sender, receiver] : []) {
    await until(async () => (await server.ask("serverCount")) === 2, `${name}: both servers counted`);
  }
  const clients = await connectClients(await receiver.ask("port"));

  // Warm-up: connections, JIT, the daemons' first batches.
  let arrived = clients.expect(2000);
  await sender.ask("run", { count: 2000, rate: 0, bytes: PADDING });
  await withTimeout(arrived, 60000, `${name}: warm-up`);

  // Saturation: a burst, timed from the first send to the last receipt.
  arrived = clients.expect(BURST);
  const started = now();
  const sent = await sender.ask("run", { count: BURST, rate: 0, bytes: PADDING });
  const finished = await withTimeout(arrived, 120000, `${name}: burst`, clients.state);
  const saturation = BURST / ((finished - started) / 1000);

  // Steady 1,000 msgs/s.
  const steadyCount = RATE * SECONDS;
  arrived = clients.expect(steadyCount, { latencies: true });
  await sender.ask("run", { count: steadyCount, rate: RATE, bytes: PADDING });
  await withTimeout(arrived, 60000, `${name}: steady`, clients.state);
  const latencies = clients.state.latencies.sort((a, b) => a - b);
  const errors = [];
  for (const server of new Set([sender, receiver])) errors.push(...(await server.ask("errors")));
  for (const socket of clients.sockets) socket.disconnect();
  return {
    name,
    sendRate: BURST / sent.seconds,
    saturation,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
    errors,
  };
}

function withTimeout(promise, ms, what, state) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        const got = state ? ` (clients got ${state.perClient.join(", ")} of ${state.target / CLIENTS})` : "";
        reject(new Error(`${what}: not complete within ${ms} ms${got}`));
      }, ms);
    }),
  ]);
}

async function stopAll() {
  for (const child of children.splice(0).reverse()) {
    if (child.exitCode !== null) continue;
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGTERM");
    await exited;
  }
}

const results = [];
let failed = false;
try {
  results.push(await measure("socket.io alone", null));
  await stopAll();
  const memory = await startDaemon("memory");
  results.push(await measure("one daemon, memory bus", [memory, memory]));
  await stopAll();
  if (opts["mongodb-uri"]) {
    const database = `siobridge_e2e_${process.pid}`;
    const first = await startDaemon("first", opts["mongodb-uri"], database);
    const second = await startDaemon("second", opts["mongodb-uri"], database);
    results.push(await measure("two daemons, MongoDB", [first, second]));
  }
} catch (error) {
  failed = true;
  console.error(`e2e benchmark failed: ${error.message} (logs in ${workDir})`);
} finally {
  await stopAll();
}

const cpu = execFileSync("nproc", { encoding: "utf8" }).trim();
console.log(`\nend-to-end broadcast: 2 socket.io servers, ${CLIENTS} clients on the receiver, ~100 B events, ${cpu} cores`);
console.log(`burst ${BURST} events; steady ${RATE} events/s for ${SECONDS} s (${RATE * SECONDS * CLIENTS} receipts)\n`);
console.log("topology                  sender emit/s  saturation msgs/s  client deliveries/s   p50 ms   p99 ms   max ms");
for (const r of results) {
  console.log(
    `${r.name.padEnd(25)} ${r.sendRate.toFixed(0).padStart(13)}  ${r.saturation.toFixed(0).padStart(17)}  ` +
      `${(r.saturation * CLIENTS).toFixed(0).padStart(18)}  ${r.p50.toFixed(2).padStart(7)}  ${r.p99.toFixed(2).padStart(7)}  ${r.max.toFixed(2).padStart(7)}`,
  );
  if (r.errors.length) console.log(`  adapter errors: ${r.errors.length} (first: ${r.errors[0]})`);
}
if (!failed) rmSync(workDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
