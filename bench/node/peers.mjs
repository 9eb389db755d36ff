// scripts/bench peers: siobridge next to the systems it is measured against, in
// one run, with interleaved rounds and medians (bench/README.md describes the
// method and the table). For every system the same socket.io 4.8 sender and
// receiver servers (server.cjs, separate processes) and the same clients
// (clients.cjs, one process) on the receiver; io.emit("m", seq, sentAt, payload).
//
//   node bench/node/peers.mjs --daemon build/release/daemon/app/siobridged \
//        --mongodb-uri URI [--quick] [--rounds N] [--systems a,b] [--out DIR]
//
// Writes the raw results as JSON to --out (peers-<time>.json and
// peers-latest.json). Exit status 1 when a system failed in some round.
//
// Single-threaded (Node event loop); the measured processes are children.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { cpus, tmpdir, totalmem, release } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { MongoClient } from "mongodb";
import { startNode, stopChild, stopAll, liveNames } from "./lib/children.mjs";
import { SYSTEMS, startSystem, until } from "./lib/systems.mjs";
import { burst, paced, roundTrips } from "./lib/cells.mjs";
import { memory, untilQuiet } from "./lib/proc.mjs";
import { summarize, tables, median } from "./lib/report.mjs";

const USAGE = "usage: peers.mjs --daemon PATH --mongodb-uri URI [--mongod-pid PID] [--quick] [--rounds N]\n" +
  "  [--seconds S] [--rate-seconds S] [--systems a,b] [--sizes 100,1024] [--rates 1000,5000]\n" +
  "  [--payload random|json|repeat] [--out DIR]\n" +
  "  (scripts/bench --help describes them)";

function parseOptions(options) {
  try {
    return parseArgs({ options }).values;
  } catch (error) {
    console.error(`peers: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
}

const args = parseOptions({
  daemon: { type: "string" },
  "mongodb-uri": { type: "string" },
  "mongod-pid": { type: "string" },
  quick: { type: "boolean", default: false },
  rounds: { type: "string" },
  seconds: { type: "string" },
  "rate-seconds": { type: "string" },
  systems: { type: "string" },
  sizes: { type: "string" },
  rates: { type: "string" },
  payload: { type: "string" },
  out: { type: "string" },
});

function list(text, flag) {
  const values = text.split(",").map(Number);
  if (!values.length || values.some((v) => !Number.isInteger(v) || v <= 0)) {
    console.error(`peers: ${flag} wants positive integers separated by commas, got "${text}"`);
    process.exit(2);
  }
  return values;
}

const quick = args.quick;
const opts = {
  mode: quick ? "quick" : "full",
  rounds: Number(args.rounds ?? (quick ? 1 : 3)),
  // Target length of a saturation burst; its event count comes from the rate
  // measured before (a short pilot burst in the first round).
  burstSeconds: Number(args.seconds ?? (quick ? 2 : 5)),
  rateSeconds: Number(args["rate-seconds"] ?? (quick ? 2 : 10)),
  sizes: list(args.sizes ?? "100,1024,10240", "--sizes"),
  rates: list(args.rates ?? "1000,5000", "--rates"),
  payload: args.payload ?? "random",
  pacedBytes: 100,
  clients: 10,
  warmupSeconds: quick ? 1 : 2,
  minBurst: quick ? 300 : 1000,
  maxBurst: 200000,
  // A burst carries at most this many payload bytes (the servers buffer what the clients have not read).
  maxBurstBytes: 40 * 1024 * 1024,
  roundTrips: quick ? 20 : 100,
  // Deliveries still missing when nothing arrived for this long are lost.
  idleSeconds: 5,
  hardSeconds: 120,
  // A paced cell stops sending once the clients are this far behind (not sustained).
  maxLagSeconds: 1,
};
// Comparison variants (`compare: true`) run only when named.
const selected = args.systems ? args.systems.split(",") : SYSTEMS.filter((s) => !s.compare).map((s) => s.key);
for (const key of selected) {
  if (!SYSTEMS.some((s) => s.key === key)) {
    console.error(`peers: unknown system ${key} (known: ${SYSTEMS.map((s) => s.key).join(", ")})`);
    process.exit(2);
  }
}
const systems = SYSTEMS.filter((s) => selected.includes(s.key));
if (!["json", "random", "repeat"].includes(opts.payload)) {
  console.error(`peers: --payload is json, random or repeat, got "${opts.payload}"\n${USAGE}`);
  process.exit(2);
}
const mongoUri = args["mongodb-uri"];
if (systems.some((s) => s.mongo) && !mongoUri) {
  console.error("peers: --mongodb-uri is needed for the MongoDB systems");
  process.exit(2);
}
if (systems.some((s) => s.key.startsWith("siobridge")) && !args.daemon) {
  console.error("peers: --daemon is needed for the siobridge systems");
  process.exit(2);
}
const mongodPid = args["mongod-pid"] ? Number(args["mongod-pid"]) : null;
const outDir = args.out ?? join(import.meta.dirname, "..", "..", "build", "bench");
const workDir = mkdtempSync(join(tmpdir(), "siobridge-peers-"));
const here = import.meta.dirname;

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\npeers: ${signal}: stopping ${liveNames().join(", ") || "nothing"}`);
    await stopAll(3000);
    process.exit(130);
  });
}

const log = (line) => console.log(line);
const fmt = (x) => Math.round(x).toLocaleString("en-US");
const sizeName = (b) => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);

// Rates measured so far per system and size, to size the next bursts.
const measuredRates = {};

function plannedBurst(system, bytes, estimate) {
  const known = median(measuredRates[system.key]?.[bytes] ?? []);
  const rate = Math.max(known ?? 0, estimate ?? 0);
  const byBytes = Math.floor(opts.maxBurstBytes / bytes);
  return Math.max(Math.min(opts.minBurst, byBytes), Math.min(Math.round(rate * opts.burstSeconds), opts.maxBurst, byBytes));
}

async function runSystem(system, round, mongo) {
  const tag = `[round ${round + 1}/${opts.rounds} ${system.key}]`;
  const database = `siobridge_peers_${process.pid}_${round}_${system.key.replace(/-/g, "_")}`;
  const started = [];
  if (system.mongo && mongodPid) {
    // What the systems before left mongod to do (dropped databases, a
    // checkpoint) must not be measured as this one's.
    const waited = await untilQuiet(mongodPid);
    log(`${tag} mongod ${waited === null ? "still busy after 60 s" : `quiet after ${waited.toFixed(0)} s`}`);
  }
  const startedAt = Date.now();
  const record = { cells: {}, processes: [] };
  let infra = null;
  try {
    infra = await startSystem(system, { dir: join(workDir, `${round}-${system.key}`), daemon: args.daemon, mongoUri, mongo, database });
    const roles = system.servers === 1 ? ["server"] : ["sender server", "receiver server"];
    const servers = [];
    for (let i = 0; i < roles.length; i++) {
      const server = await startNode(`${system.key} ${roles[i]}`, join(here, "server.cjs"), infra.env[i]);
      started.push(server.child);
      servers.push(server);
    }
    const sender = servers[0];
    const receiver = servers[servers.length - 1];
    // Both servers must see each other (the mongo adapter, for one, counts from heartbeats).
    const bothCounted = async () => {
      if (servers.length < 2) return;
      for (const server of servers) {
        await until(async () => Number(await server.ask("serverCount", {}, 5000)) === 2, `${system.key}: both servers counted`, 30000, 100);
      }
    };
    await bothCounted();
    const clients = await startNode(`${system.key} clients`, join(here, "clients.cjs"), { BENCH_CLIENTS: String(opts.clients) });
    started.push(clients.child);
    await clients.ask("connect", { port: await receiver.ask("port") }, 30000);
    const processes = [
      ...servers.map((s, i) => ({ role: roles[i], kind: "server", pid: s.pid })),
      ...infra.processes,
      ...(system.mongo && mongodPid ? [{ role: "mongod", kind: "broker", pid: mongodPid }] : []),
      { role: "clients", kind: "clients", pid: clients.pid },
    ];
    record.processes = processes;
    const run = { sender, receiver, clients, servers, processes, opts, nextSeq: 0, peakMiB: {} };
    record.idleMiB = Object.fromEntries(processes.map((p) => [p.role, memory(p.pid)?.rssMiB]));

    // Right after start: the first burst once the servers count each other and the clients
    // are connected, before any warm-up or wait (for siobridge: whether the daemons pack yet),
    // after a primer of 200 events for the sender's JIT. Sized like the settled burst of the
    // first size (from earlier rounds; 5,000 events/s before any), compared with it.
    await burst(run, 200, opts.sizes[0]);
    const start = await burst(run, plannedBurst(system, opts.sizes[0], measuredRates[system.key]?.[opts.sizes[0]] ? null : 5000), opts.sizes[0]);
    record.cells[`start-${opts.sizes[0]}`] = start;
    log(`${tag} right after start: ${sizeName(opts.sizes[0])} burst of ${fmt(start.events)}: ${fmt(start.eventsPerSecond)} ev/s`);
    if (infra.ready) await infra.ready();

    // Warm-up: connections, JIT, change streams, the daemons' first batches. A cold sender can
    // emit ten times slower than a warm one: a short burst, then one sized from its rate.
    let warm = await burst(run, opts.minBurst, opts.pacedBytes);
    warm = await burst(run, Math.max(opts.minBurst, Math.min(opts.maxBurst, Math.round(warm.eventsPerSecond * opts.warmupSeconds))), opts.pacedBytes);
    log(`${tag} warm-up ${fmt(warm.eventsPerSecond)} ev/s`);
    for (const bytes of opts.sizes) {
      // First time at this size: a pilot burst sizes the measured one (and warms up).
      const estimate = measuredRates[system.key]?.[bytes] ? null : (await burst(run, opts.minBurst, bytes)).eventsPerSecond;
      let cell = await burst(run, plannedBurst(system, bytes, estimate), bytes);
      // Far shorter than planned (the estimate was low: a cold pilot): once more, sized from this one.
      if (cell.span < opts.burstSeconds / 2 && !cell.lost) {
        const again = plannedBurst(system, bytes, cell.eventsPerSecond);
        if (again > cell.events * 1.5) cell = await burst(run, again, bytes);
      }
      record.cells[`burst-${bytes}`] = cell;
      ((measuredRates[system.key] ??= {})[bytes] ??= []).push(cell.eventsPerSecond);
      const lost = cell.lost ? `, LOST ${fmt(cell.lost)} of ${fmt(cell.events * opts.clients)} deliveries` : "";
      log(`${tag} ${sizeName(bytes)} burst of ${fmt(cell.events)} (sent at ${fmt(cell.sentPerSecond)}/s): ${fmt(cell.eventsPerSecond)} ev/s in ${cell.span?.toFixed(2)} s${lost}`);
    }
    for (const rate of opts.rates) {
      const cell = await paced(run, rate, opts.rateSeconds, opts.pacedBytes);
      record.cells[`rate-${rate}`] = cell;
      const l = cell.latency ?? {};
      log(`${tag} ${fmt(rate)}/s: p50 ${l.p50?.toFixed(2)} ms, p99 ${l.p99?.toFixed(2)} ms, reached ${fmt(cell.deliveredEventsPerSecond)}/s` +
          (cell.sustained ? "" : " (not sustained)"));
    }
    for (const [what, supported] of [["fetchSockets", system.fetch], ["emitWithAck", system.ack]]) {
      if (!supported) continue;
      // After the bursts a server may briefly count the other as gone (missed heartbeats):
      // round trips are measured in a complete cluster.
      await bothCounted();
      const cell = await roundTrips(run, what, opts.roundTrips);
      if (cell.error) {
        record.cellErrors = [...(record.cellErrors ?? []), `${what}: ${cell.error}`];
        log(`${tag} ${what}: FAILED: ${cell.error}`);
        continue;
      }
      record.cells[what] = cell;
      log(`${tag} ${what}: p50 ${cell.p50.toFixed(2)} ms, p99 ${cell.p99.toFixed(2)} ms`);
    }
    record.peakMiB = run.peakMiB;
    const daemons = processes.filter((p) => p.kind === "daemon");
    if (daemons.length) {
      // Peak over every burst (each reset the kernel's peak) and over whatever came after the last.
      record.daemonPeakMiB = Math.max(...daemons.map((d) => Math.max(run.peakMiB[d.role] ?? 0, memory(d.pid)?.peakMiB ?? 0)));
    }
    await clients.ask("close");
  } catch (error) {
    record.error = interrupted ? "interrupted" : error.message;
    if (!interrupted) log(`${tag} FAILED: ${error.message} (logs in ${workDir})`);
  } finally {
    for (const child of started.reverse()) await stopChild(child);
    if (infra) await infra.stop();
  }
  record.seconds = (Date.now() - startedAt) / 1000;
  return record;
}

function machine() {
  let commit = null;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: here, encoding: "utf8" }).trim();
  } catch {
    // Not a checkout.
  }
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, commit, loadAtStart: load };
}

const result = { date: new Date().toISOString(), machine: machine(), opts, systems: systems.map((s) => s.key), rounds: [] };
let failures = 0;
const mongo = mongoUri ? new MongoClient(mongoUri) : null;
try {
  if (mongo) {
    await mongo.connect();
    // Databases left by a benchmark that was killed (its pid is gone).
    const { databases } = await mongo.db("admin").admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) {
      const pid = Number(/^siobridge_peers_(\d+)_/.exec(name)?.[1]);
      if (!pid) continue;
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) await mongo.db(name).dropDatabase();
    }
  }
  log(`peers (${opts.mode}): ${opts.rounds} round(s) of ${systems.length} systems, ${result.machine.cpus} cores, load ${result.machine.loadAtStart}`);
  for (let round = 0; round < opts.rounds && !interrupted; round++) {
    // Interleaved: every system once per round, the order rotated from round
    // to round and reversed every other round, so that no system always
    // follows the same one.
    const rotated = systems.map((_, i) => systems[(i + round) % systems.length]);
    const order = round % 2 ? rotated.reverse() : rotated;
    const records = {};
    for (const system of order) {
      if (interrupted) break;
      records[system.key] = await runSystem(system, round, mongo);
      if (records[system.key].error) failures += 1;
    }
    result.rounds.push(records);
  }
} finally {
  await stopAll();
  if (mongo) await mongo.close();
}

result.summary = summarize(systems, result.rounds, opts);
const { main, cpu, cells } = tables(systems, result.summary, opts);
const sizes = opts.sizes.map(sizeName).join(" / ");
console.log(`\n${opts.mode} mode, ${result.rounds.length} round(s), medians; ${sizes} ${opts.payload} payloads, ${opts.clients} clients, ` +
            `${result.machine.cpus} cores (${result.machine.cpuModel}), ${result.date.slice(0, 10)}, commit ${result.machine.commit}`);
console.log("÷ R / M / F: ratio to the Redis adapter / the mongo adapter / the raw MongoDB floor (throughput: higher is better; p50: lower is better)\n");
console.log(main);
console.log(`\nCPU seconds per 10k events, whole system (servers, daemons, broker, mongod; clients not counted), every cell\n`);
console.log(cells);
console.log(`\nCPU seconds per 10k events at ${sizeName(opts.sizes[0])} saturation, per process (clients not counted)\n`);
console.log(cpu);

mkdirSync(outDir, { recursive: true });
const file = join(outDir, `peers-${result.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify(result, null, 1));
copyFileSync(file, join(outDir, "peers-latest.json"));
console.log(`\nraw results: ${file}`);
if (!failures) rmSync(workDir, { recursive: true, force: true });
process.exit(failures ? 1 : 0);
