// What the fault suites share: a private test MongoDB per suite (so that
// stopping or killing it touches nobody else), daemons that can be killed,
// traffic pumps that number every message, and tallies that count what each
// socket.io-client received (lost, duplicated, out of order, when).
//
// The daemons, socket.io server processes and clients come from the Node
// adapter's test support (client/node/test/support/), so these suites run the
// same real components as the adapter's own.
import { execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { Daemon, daemonBinary, eventually, scrapeMetrics } from "../../../client/node/test/support/daemon.mjs";
import { ServerProcess, using } from "../../../client/node/test/support/cluster.mjs";

export { Daemon, ServerProcess, eventually, using };

export const root = resolve(import.meta.dirname, "..", "..", "..");
const run = promisify(execFile);

export const Code = { OK: 0, CANCELLED: 1, DEADLINE_EXCEEDED: 4, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14 };

/**
 * The port of the private MongoDB of suite `index`: $SIOBRIDGE_FAULTS_MONGO_PORT
 * (default: the test MongoDB's port + 1) plus `index`.
 */
export function faultsMongoPort(index) {
  const base = Number(process.env.SIOBRIDGE_FAULTS_MONGO_PORT ?? Number(process.env.SIOBRIDGE_MONGO_PORT ?? 27117) + 1);
  return base + index;
}

/** Why the MongoDB suites cannot run here, or undefined. */
export function mongoUnavailable() {
  if (!existsSync(join(root, ".cache", "mongodb", "mongod.exe"))) {
    return "no test MongoDB binary in .cache/mongodb (scripts/setup)";
  }
  return undefined;
}

/** A test MongoDB of its own (scripts/mongo on a port only this suite uses). */
export class PrivateMongo {
  constructor(port) {
    this.port = port;
    this.dir = join(root, ".cache", "mongo", String(port));
  }

  async mongo(command) {
    try {
      const { stdout } = await run(join(root, "scripts", "mongo"), [command], {
        env: { ...process.env, SIOBRIDGE_MONGO_PORT: String(this.port) },
        timeout: 180000,
      });
      return stdout.trim();
    } catch (error) {
      throw new Error(`scripts/mongo ${command} (port ${this.port}) failed: ${error.stderr ?? error.message}`);
    }
  }

  /** Starts it (or a new one on the data of one that died); resolves with the URI once it is a writable primary. */
  async start() {
    this.uri = await this.mongo("start");
    return this.uri;
  }

  /** Clean shutdown (the shutdown command). */
  async stop() {
    await this.mongo("stop");
  }

  /** kill -9 of mongod, resolved once the process is gone. */
  async kill() {
    const pid = Number(readFileSync(join(this.dir, "mongod.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    await eventually(() => !processAlive(pid), 30000, `mongod ${pid} gone after SIGKILL`);
  }
}

function processAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** kill -9 of a daemon, resolved once it is gone (its state directory stays for a restart). */
export async function killDaemon(daemon) {
  daemon.process.kill("SIGKILL");
  await daemon.exited;
}

/**
 * Stops a daemon and deletes its directory, unless $SIOBRIDGE_FAULTS_KEEP is
 * set: then its log and state stay, and where they are is printed.
 */
export async function dispose(daemon) {
  if (!daemon) return;
  if (!process.env.SIOBRIDGE_FAULTS_KEEP) return daemon.dispose();
  await daemon.stop();
  console.error(`kept ${daemon.dir} (daemon.log)`);
}

/**
 * When the daemon first logged a line matching `pattern` at or after `since`
 * (a Date.now() value), from its log's timestamps; undefined if it did not.
 */
export function loggedAt(daemon, pattern, since = 0) {
  for (const line of daemon.log().split("\n")) {
    const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) /.exec(line);
    if (!match || !pattern.test(line)) continue;
    const at = new Date(`${match[1]}T${match[2]}`).getTime(); // local time, like the daemon's
    if (at >= since) return at;
  }
  return undefined;
}

/** Daemon arguments for a MongoDB cluster on `uri`, database `database`. */
export function mongoArgs(uri, database, extra = []) {
  return ["--mongodb-uri", uri, "--mongodb-database", database, ...extra];
}

/**
 * Starts the daemons one after the other, each once its bus is ready (the
 * test MongoDB cannot take concurrent creation of the collection).
 */
export async function startDaemons(argsList) {
  const daemons = [];
  for (const args of argsList) {
    const daemon = await new Daemon(args).start();
    daemons.push(daemon);
    await eventually(async () => (await daemon.status()).bus_state === "ready", 60000, "the bus ready");
  }
  return daemons;
}

const running = new Set();

/** Stops every Pump still running (a test that failed half-way): for after() hooks. */
export async function stopPumps() {
  await Promise.all([...running].map((pump) => pump.stop()));
}

/**
 * Sends `event` with a sequence number 0, 1, 2, ... from one Server of
 * `server` (a ServerProcess) at `rate` per second, paced by the clock, until
 * stop(). Every emit goes through the adapter; `sentAt[n]` is when n was
 * handed to it.
 */
export class Pump {
  constructor(server, event, { rate = 50, index = 0 } = {}) {
    Object.assign(this, { server, event, rate, index });
    this.sent = 0;
    this.sentAt = [];
    this.failures = [];
  }

  start() {
    this.began = Date.now();
    this.running = true;
    running.add(this);
    this.done = (async () => {
      while (this.running && this.server.child.exitCode === null) {
        const seq = this.sent++;
        this.sentAt[seq] = Date.now();
        try {
          await this.server.do("emit", { server: this.index, event: this.event, args: [seq] });
        } catch (error) {
          this.failures.push({ seq, error: error.message });
        }
        const next = this.began + (this.sent * 1000) / this.rate;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing, not waiting for an event
      }
    })();
    return this;
  }

  async stop() {
    this.running = false;
    running.delete(this);
    const child = this.server.child;
    if (child.exitCode !== null) return; // an emit in flight would never be answered
    await Promise.race([this.done, once(child, "exit")]);
  }

  /** The number of messages sent before `time`. */
  sentBefore(time) {
    let n = 0;
    while (n < this.sent && this.sentAt[n] < time) n++;
    return n;
  }
}

/** Every `event` a socket.io-client receives, with when it arrived. */
export class Tally {
  constructor(socket, event) {
    this.seqs = [];
    this.arrivals = new Map(); // seq -> first arrival time
    socket.on(event, (seq) => {
      this.seqs.push(seq);
      if (!this.arrivals.has(seq)) this.arrivals.set(seq, Date.now());
    });
  }

  /** received, duplicates, out-of-order and lost against `sent` messages numbered from 0. */
  summary(sent) {
    let outOfOrder = 0;
    for (let i = 1; i < this.seqs.length; i++) if (this.seqs[i] <= this.seqs[i - 1]) outOfOrder++;
    const missing = [];
    for (let seq = 0; seq < sent; seq++) if (!this.arrivals.has(seq)) missing.push(seq);
    return {
      received: this.seqs.length,
      duplicates: this.seqs.length - this.arrivals.size,
      outOfOrder,
      lost: missing.length,
      missing: ranges(missing),
    };
  }

  /** When the last of messages 0 .. n-1 arrived (undefined if one is missing). */
  allArrivedAt(n) {
    let last = 0;
    for (let seq = 0; seq < n; seq++) {
      const at = this.arrivals.get(seq);
      if (at === undefined) return undefined;
      last = Math.max(last, at);
    }
    return last;
  }

  has(n) {
    for (let seq = 0; seq < n; seq++) if (!this.arrivals.has(seq)) return false;
    return true;
  }

  /** The longest time (ms) between two deliveries, from the first to the last. */
  longestGap() {
    const times = [...this.arrivals.values()].sort((x, y) => x - y);
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i] - times[i - 1]);
    return longest;
  }
}

/** [1,2,3,7] -> "1-3,7": missing messages, readable in a failure. */
function ranges(numbers) {
  const parts = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) j++;
    parts.push(i === j ? `${numbers[i]}` : `${numbers[i]}-${numbers[j]}`);
    i = j + 1;
  }
  return parts.slice(0, 20).join(",") + (parts.length > 20 ? ",..." : "");
}

/** Sums the summaries of several tallies of the same stream. */
export function total(tallies, sent) {
  const sum = { sent: sent * tallies.length, received: 0, duplicates: 0, outOfOrder: 0, lost: 0, missing: [] };
  for (const tally of tallies) {
    const s = tally.summary(sent);
    sum.received += s.received;
    sum.duplicates += s.duplicates;
    sum.outOfOrder += s.outOfOrder;
    sum.lost += s.lost;
    if (s.missing) sum.missing.push(s.missing);
  }
  return sum;
}

/**
 * Waits until every tally has all its messages (`streams` is a list of
 * [tallies, sent]), or nothing arrived for `quietMs` (a stream that lost
 * messages: the caller's assertions and figures show which), or `timeoutMs`.
 */
export async function settle(streams, { quietMs = 5000, timeoutMs = 60000, busy } = {}) {
  const tallies = streams.flatMap(([list]) => list);
  const received = () => tallies.reduce((n, t) => n + t.seqs.length, 0);
  let count = received(), changedAt = Date.now();
  try {
    await eventually(async () => {
      if (streams.every(([list, sent]) => list.every((t) => t.has(sent)))) return true;
      // Work still queued somewhere is progress to come: quiet time starts
      // only once nothing is left in the daemons.
      if (received() !== count || (busy && (await busy()))) [count, changedAt] = [received(), Date.now()];
      return Date.now() - changedAt > quietMs;
    }, timeoutMs, "every message received");
  } catch {
    // reported by the assertions on the figures
  }
}

/**
 * Whether a daemon still holds work on its way: its write queue to MongoDB,
 * what its change stream read that the core has not taken, what waits for its
 * servers (for settle()'s `busy`).
 */
export async function daemonBusy(metricsAddress) {
  const text = await scrapeMetrics(metricsAddress);
  const value = (sample) => {
    const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
    return line ? Number(line.slice(sample.length + 1)) : 0;
  };
  return ["siobridge_mongodb_write_queue_bytes", "siobridge_change_stream_core_backlog_bytes",
          "siobridge_servers_queued_bytes"].some((sample) => value(sample) > 0);
}

/** An operation of a Server, as {result} or {error, code, missing}. */
export async function outcome(server, call, params = {}) {
  const key = `${call}-${Math.random()}`;
  await server.do("start", { key, call, params });
  return server.do("outcome", { key });
}

/** The figures of one fault, printed for docs/running.md ("# FIGURE {...}" in the TAP output). */
export function figure(t, name, values) {
  t.diagnostic(`FIGURE ${JSON.stringify({ fault: name, ...values })}`);
}

/** Seconds between two Date.now() values, to one decimal. */
export function seconds(from, to) {
  return to === undefined || from === undefined ? null : Math.round((to - from) / 100) / 10;
}

// The adapter's own dependencies (tests/faults has no node_modules of its own).
const fromAdapter = createRequire(join(root, "client", "node", "package.json"));
const grpc = fromAdapter("@grpc/grpc-js");
const HEALTH = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/**
 * The daemon's standard gRPC health status for the whole server (service ""),
 * e.g. "SERVING". The messages are tiny: an empty request, and a response whose
 * only field is the status (field 1, varint).
 */
export function health(daemon, timeoutMs = 5000) {
  const client = new grpc.Client(daemon.address, grpc.credentials.createInsecure());
  return new Promise((resolveHealth, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      () => Buffer.alloc(0),
      (bytes) => (bytes.length >= 2 && bytes[0] === 0x08 ? bytes[1] : 0),
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error, status) => {
        client.close();
        if (error) reject(error);
        else resolveHealth(HEALTH[status] ?? String(status));
      },
    );
  });
}

/** A TCP port free right now on 127.0.0.1 (for a daemon's metrics endpoint). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * The value of one Prometheus sample of a daemon started with
 * --metrics-listen `address`, e.g. metric(address, 'siobridge_x_total{outcome="held"}'); 0 when absent.
 */
export async function metric(address, sample) {
  const text = await scrapeMetrics(address);
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** The bus state as siobridgectl reports it (`siobridgectl --json status`). */
export async function ctlBusState(daemon) {
  const ctl = join(dirname(daemonBinary), "..", "..", "client", "cpp", "siobridgectl");
  const { stdout } = await run(ctl, ["--address", daemon.socket, "--json", "--timeout-ms", "3000", "status"]);
  return JSON.parse(stdout).bus_state;
}
