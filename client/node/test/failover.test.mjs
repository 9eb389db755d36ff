// Failover on a real 3-member replica set, under traffic: two daemons, each
// with a socket.io server (this adapter) and socket.io-client clients; one
// client per side broadcasts 50 messages/s, every client counts what it
// receives. Three faults, one after the other on the same replica set:
//   (b) the primary killed with SIGKILL (started again while traffic goes on),
//   (a) replSetStepDown on the primary,
//   (c) a secondary killed with SIGKILL (started again while traffic goes on):
//       the one that stepped down in (a), primary when the daemons last
//       (re)opened their change streams,
//   (d) the primary frozen with SIGSTOP (a host that stops answering), thawed
//       once delivery resumed without it.
// Each case checks that nothing is lost, duplicated or reordered, that the
// daemons' bus state and gRPC health follow the election (NOT_SERVING during
// it, SERVING after) and that the outage metric records it; it prints the
// figures (sent, received, duplicates, order, seconds without delivery).
//
// Runs when SIOBRIDGE_FAILOVER_URI names the set that scripts/mongo started
// (SIOBRIDGE_MONGO_PORT, SIOBRIDGE_MONGO_MEMBERS=3 select it): scripts/test
// does that. SIOBRIDGE_FAILOVER_WRITE_CONCERN (majority, the default, or 1)
// sets the daemons' mongodb.write_concern; SIOBRIDGE_FAILOVER_REPORT names a
// JSON file for the figures. Daemon A's change stream reads from a secondary
// (mongodb.read_preference: secondaryPreferred), daemon B's from the primary:
// every case runs with both.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Daemon, eventually, scrapeMetrics } from "./support/daemon.mjs";
import { ServerProcess } from "./support/cluster.mjs";

const uri = process.env.SIOBRIDGE_FAILOVER_URI;
const writeConcern = process.env.SIOBRIDGE_FAILOVER_WRITE_CONCERN ?? "majority";
const root = resolve(import.meta.dirname, "..", "..", "..");
const skip = uri ? false : "SIOBRIDGE_FAILOVER_URI is not set (scripts/test sets it)";
const RATE = 50; // broadcasts per second, per direction
const BEFORE_MS = 3000; // traffic before the fault
const AFTER_MS = 3000; // traffic after recovery

const Health = grpc.loadPackageDefinition(
  protoLoader.loadSync(join(import.meta.dirname, "support", "health.proto"), { enums: String }),
).grpc.health.v1.Health;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** scripts/mongo on the replica set of this run; resolves with its stdout. */
function mongo(...args) {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    execFile(join(root, "scripts", "mongo"), args, { env: { ...process.env, SIOBRIDGE_MONGO_MEMBERS: "3" } },
      (error, stdout, stderr) => {
        const took = `${((Date.now() - started) / 1000).toFixed(2)} s`;
        if (error) reject(new Error(`scripts/mongo ${args.join(" ")} (${took}): ${stderr || error.message}`));
        else {
          console.log(`# scripts/mongo ${args.join(" ")}: ${took}`);
          resolvePromise(stdout.trim());
        }
      });
  });
}

function freePort() {
  return new Promise((resolvePromise) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

/** A daemon with its metrics endpoint, its health watched and its bus state sampled. */
class WatchedDaemon {
  constructor(database, label, readPreference) {
    this.label = label;
    this.database = database;
    this.readPreference = readPreference;
    // Names the daemon's connections in MongoDB's $currentOp.
    this.appName = `failover-${label.replace(/\W+/g, "-")}-${randomBytes(3).toString("hex")}`;
    this.health = []; // {at, status}
    this.states = []; // {at, state}: changes of Status().bus_state
  }

  async start() {
    this.metricsPort = await freePort();
    this.daemon = await new Daemon([
      "--mongodb-uri", `${uri}${uri.includes("?") ? "&" : "?"}appName=${this.appName}`,
      "--mongodb-database", this.database,
      "--mongodb-write-concern", writeConcern,
      "--mongodb-read-preference", this.readPreference,
      "--metrics-listen", `127.0.0.1:${this.metricsPort}`,
      "--node-heartbeat-interval", "1s",
      "--node-heartbeat-timeout", "30s",
    ]).start();
    await eventually(async () => (await this.daemon.status()).bus_state === "ready", 60000, `${this.label} bus ready`);
    this.watchHealth();
    this.sampling = setInterval(() => this.sample(), 50);
    return this;
  }

  watchHealth() {
    this.healthClient = new Health(this.daemon.address, grpc.credentials.createInsecure());
    this.healthCall = this.healthClient.Watch({ service: "" });
    this.healthCall.on("data", (reply) => this.health.push({ at: Date.now(), status: reply.status }));
    this.healthCall.on("error", () => {}); // cancelled at the end
  }

  async sample() {
    if (this.sampleBusy) return;
    this.sampleBusy = true;
    try {
      const state = (await this.daemon.status(2000)).bus_state;
      if (this.states.at(-1)?.state !== state) this.states.push({ at: Date.now(), state });
    } catch {
      // a slow answer is no state
    } finally {
      this.sampleBusy = false;
    }
  }

  async metrics() {
    const text = await scrapeMetrics(`127.0.0.1:${this.metricsPort}`);
    const value = (name) => {
      const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    return {
      outages: value("siobridge_mongodb_outages_total"),
      outageSeconds: value("siobridge_mongodb_outage_seconds_total"),
      lastOutageSeconds: value("siobridge_mongodb_last_outage_seconds"),
      inserted: value("siobridge_mongodb_inserted_documents_total"),
      insertFailures: value("siobridge_mongodb_insert_failures_total"),
      dropped: value("siobridge_mongodb_dropped_documents_total"),
      expired: value("siobridge_mongodb_expired_documents_total"),
      streamErrors: value("siobridge_change_stream_errors_total"),
      streamOpens: value("siobridge_change_stream_opens_total"),
      resumeFailures: value("siobridge_change_stream_resume_failures_total"),
      gaps: value("siobridge_change_stream_gaps_total"),
      duplicatesSkipped: value("siobridge_mongodb_duplicates_total"),
    };
  }

  async stop() {
    clearInterval(this.sampling);
    this.healthCall?.cancel();
    this.healthClient?.close();
    await this.daemon?.dispose();
  }
}

/** One side: a socket.io server on a daemon, a sending client and a listening one. */
class Side {
  constructor(name, daemon) {
    this.name = name;
    this.daemon = daemon;
  }
  async start() {
    this.server = await new ServerProcess({ address: this.daemon.daemon.address, label: `failover-${this.name}` }).start();
    this.sender = await this.server.client();
    this.listener = await this.server.client();
    return this;
  }
  async stop() {
    this.sender?.close();
    this.listener?.close();
    await this.server?.stop();
  }
}

/** What every client receives from every sender: {at, seq} in arrival order. */
class Tally {
  constructor() {
    this.received = new Map(); // "receiver<-sender" -> [{seq, at}]
  }
  listen(label, socket) {
    socket.on("heard", (message) => {
      const key = `${label}<-${message.from}`;
      if (!this.received.has(key)) this.received.set(key, []);
      this.received.get(key).push({ seq: message.seq, at: Date.now() });
    });
  }
}

/** Sends RATE broadcasts/s from each side's sender until stopped; numbered per case. */
class Traffic {
  constructor(sides, caseName) {
    this.sides = sides;
    this.caseName = caseName;
    this.sent = new Map(sides.map((s) => [s.name, 0]));
  }
  start() {
    this.startedAt = Date.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.startedAt) * RATE) / 1000);
      for (const side of this.sides) {
        while (this.sent.get(side.name) < due) {
          const seq = this.sent.get(side.name) + 1;
          this.sent.set(side.name, seq);
          side.sender.emit("shout", { from: `${this.caseName}/${side.name}`, seq });
        }
      }
    }, 5);
  }
  stop() {
    clearInterval(this.timer);
    this.stoppedAt = Date.now();
  }
}

/** Sent, received, lost, duplicated, out of order, longest silence, per (receiver, sender). */
function figures(tally, traffic, caseName) {
  const rows = [];
  for (const [senderName, sent] of traffic.sent) {
    const from = `${caseName}/${senderName}`;
    for (const receiver of ["a.sender", "a.listener", "b.sender", "b.listener"]) {
      if (receiver === `${senderName}.sender`) continue; // a socket does not hear its own broadcast
      const got = tally.received.get(`${receiver}<-${from}`) ?? [];
      const seen = new Set();
      let duplicates = 0;
      let outOfOrder = 0;
      let last = 0;
      let longestGapMs = 0;
      let previousAt = traffic.startedAt;
      for (const { seq, at } of got) {
        if (seen.has(seq)) duplicates += 1;
        seen.add(seq);
        if (seq < last) outOfOrder += 1;
        last = Math.max(last, seq);
        if (at <= traffic.stoppedAt) longestGapMs = Math.max(longestGapMs, at - previousAt);
        previousAt = at;
      }
      const remote = !receiver.startsWith(`${senderName}.`);
      rows.push({ from: senderName, to: receiver, remote, sent, received: got.length, unique: seen.size,
        lost: sent - seen.size, duplicates, outOfOrder, secondsWithoutDelivery: longestGapMs / 1000 });
    }
  }
  return rows;
}

function healthDuring(daemon, from, to) {
  return daemon.health.filter((h) => h.at >= from && h.at <= to).map((h) => h.status);
}
function statesDuring(daemon, from, to) {
  return daemon.states.filter((s) => s.at >= from && s.at <= to).map((s) => s.state);
}

/** How long the daemon's health said NOT_SERVING after `from` (0 when it did not). */
function notServingSeconds(daemon, from) {
  let total = 0;
  let since;
  for (const { at, status } of daemon.health.filter((h) => h.at >= from)) {
    if (status === "NOT_SERVING" && since === undefined) since = at;
    if (status === "SERVING" && since !== undefined) {
      total += at - since;
      since = undefined;
    }
  }
  return total / 1000;
}

let daemons = [];
let sides = [];
const tally = new Tally();
const report = { writeConcern, readPreferences: { A: "secondaryPreferred", B: "primary" }, rate: RATE, cases: {} };

before(async () => {
  if (skip) return;
  const database = `failover_${randomBytes(4).toString("hex")}`;
  // One after the other: the first creates the collection.
  daemons.push(await new WatchedDaemon(database, "daemon A", "secondaryPreferred").start());
  daemons.push(await new WatchedDaemon(database, "daemon B", "primary").start());
  sides = [await new Side("a", daemons[0]).start(), await new Side("b", daemons[1]).start()];
  for (const side of sides) {
    tally.listen(`${side.name}.sender`, side.sender);
    tally.listen(`${side.name}.listener`, side.listener);
  }
  // A broadcast crosses from one daemon to the other before traffic starts.
  const probe = { from: "probe", seq: 1 };
  sides[0].sender.emit("shout", probe);
  await eventually(() => tally.received.get("b.listener<-probe")?.length, 30000, "a first broadcast across the daemons");
});

after(async () => {
  for (const side of sides) await side.stop();
  for (const daemon of daemons) await daemon.stop();
  if (process.env.SIOBRIDGE_FAILOVER_REPORT) {
    writeFileSync(process.env.SIOBRIDGE_FAILOVER_REPORT, `${JSON.stringify(report, null, 2)}\n`);
  }
});

/**
 * Runs traffic around `fault` (which returns when the fault is done and may
 * return a `recover` function, run while traffic goes on), then waits for
 * every message and returns the figures.
 */
async function runCase(caseName, { fault, election }) {
  await mongo("start"); // every member up, one PRIMARY, the others SECONDARY
  const metricsBefore = await Promise.all(daemons.map((d) => d.metrics()));
  const traffic = new Traffic(sides, caseName);
  traffic.start();
  await sleep(BEFORE_MS);
  const faultAt = Date.now();
  const { recover, detail } = await fault();
  const faultDoneAt = Date.now();
  if (election) {
    // The daemons notice the election and come back by themselves.
    for (const daemon of daemons) {
      await eventually(() => daemon.health.some((h) => h.at >= faultAt && h.status === "NOT_SERVING"), 60000,
        `${daemon.label} NOT_SERVING during the election`).catch(() => {});
      await eventually(() => daemon.health.at(-1)?.status === "SERVING" && daemon.states.at(-1)?.state === "ready",
        90000, `${daemon.label} serving again after the election`).catch(() => {});
    }
  }
  if (recover) await recover();
  await sleep(AFTER_MS);
  traffic.stop();
  const expected = (traffic.sent.get("a") + traffic.sent.get("b")) * 3;
  const count = () => {
    let n = 0;
    for (const [key, list] of tally.received) if (key.includes(`<-${caseName}/`)) n += new Set(list.map((m) => m.seq)).size;
    return n;
  };
  await eventually(() => count() >= expected, 60000, "every message delivered").catch(() => {});
  await sleep(500); // late duplicates, if any, would arrive now
  const metricsAfter = await Promise.all(daemons.map((d) => d.metrics()));
  const rows = figures(tally, traffic, caseName);
  const delta = metricsAfter.map((after, i) =>
    Object.fromEntries(Object.entries(after).map(([k, v]) => [k, k === "lastOutageSeconds" ? v : +(v - metricsBefore[i][k]).toFixed(3)])));
  const remote = rows.filter((r) => r.remote);
  const summary = {
    detail,
    sent: traffic.sent.get("a") + traffic.sent.get("b"),
    deliveriesExpected: expected,
    deliveries: rows.reduce((n, r) => n + r.received, 0),
    lost: rows.reduce((n, r) => n + r.lost, 0),
    duplicates: rows.reduce((n, r) => n + r.duplicates, 0),
    outOfOrder: rows.reduce((n, r) => n + r.outOfOrder, 0),
    secondsWithoutDelivery: Math.max(...remote.map((r) => r.secondsWithoutDelivery)),
    secondsOfFaultCommand: (faultDoneAt - faultAt) / 1000,
    secondsNotServing: daemons.map((d) => notServingSeconds(d, faultAt)),
    health: daemons.map((d) => healthDuring(d, faultAt, Date.now())),
    busStates: daemons.map((d) => statesDuring(d, faultAt, Date.now())),
    metrics: delta,
    rows,
  };
  report.cases[caseName] = summary;
  console.log(`# failover ${caseName} (${detail}; w: ${writeConcern}): sent ${summary.sent}, ` +
    `deliveries ${summary.deliveries}/${expected}, lost ${summary.lost}, duplicates ${summary.duplicates}, ` +
    `out of order ${summary.outOfOrder}, longest time without remote delivery ${summary.secondsWithoutDelivery.toFixed(2)} s, ` +
    `NOT_SERVING for ${summary.secondsNotServing.map((x) => x.toFixed(2)).join("/")} s; health ${JSON.stringify(summary.health)}; ` +
    `outages +${delta.map((d) => d.outages).join("/+")} (last ${delta.map((d) => d.lastOutageSeconds.toFixed(2)).join("/")} s); ` +
    `insert failures +${delta.map((d) => d.insertFailures).join("/+")}; stream errors +${delta.map((d) => d.streamErrors).join("/+")}, ` +
    `opens +${delta.map((d) => d.streamOpens).join("/+")}; fault command ${summary.secondsOfFaultCommand.toFixed(2)} s`);
  return summary;
}

function assertDelivery(summary, { allowLoss = false } = {}) {
  for (const row of summary.rows) {
    if (!allowLoss) assert.equal(row.lost, 0, `${row.to} lost ${row.lost} of ${row.sent} from ${row.from}`);
    assert.equal(row.duplicates, 0, `${row.to} got ${row.duplicates} duplicates from ${row.from}`);
    assert.equal(row.outOfOrder, 0, `${row.to} got ${row.outOfOrder} out of order from ${row.from}`);
  }
  for (const m of summary.metrics) {
    assert.equal(m.dropped + m.expired, 0, "no document dropped by the writer");
    assert.equal(m.gaps + m.resumeFailures, 0, "the change stream resumed from its token");
  }
}

function assertElectionSeen(summary) {
  summary.health.forEach((statuses, i) => {
    assert.ok(statuses.includes("NOT_SERVING"), `daemon ${i}: health NOT_SERVING during the election (${statuses})`);
    assert.equal(statuses.at(-1), "SERVING", `daemon ${i}: health SERVING after the election (${statuses})`);
    assert.equal(daemons[i].states.at(-1).state, "ready", `daemon ${i}: bus ready after the election`);
    assert.ok(summary.metrics[i].outages >= 1, `daemon ${i}: the outage is counted`);
    assert.ok(summary.metrics[i].lastOutageSeconds > 0, `daemon ${i}: the outage's length is recorded`);
  });
}

// A frozen primary is only marked unknown when its heartbeat times out; a daemon
// whose monitor has already found the new primary by then never lacks one, so
// NOT_SERVING is seen by some daemons, not necessarily by all.
function assertRecovered(summary) {
  summary.health.forEach((statuses, i) => {
    if (statuses.length > 0) {
      assert.equal(statuses.at(-1), "SERVING", `daemon ${i}: health SERVING after the election (${statuses})`);
    }
    if (statuses.includes("NOT_SERVING")) {
      assert.ok(summary.metrics[i].outages >= 1, `daemon ${i}: the outage is counted`);
    }
    assert.equal(daemons[i].states.at(-1).state, "ready", `daemon ${i}: bus ready after the election`);
  });
}

/** The ports of the members where a change stream of `appName` is open (running or idle). */
async function streamMembers(appName) {
  const base = Number(process.env.SIOBRIDGE_MONGO_PORT);
  const command = {
    aggregate: 1,
    pipeline: [
      { $currentOp: { allUsers: true, idleCursors: true } },
      { $match: { appName, "cursor.originatingCommand.pipeline.0.$changeStream": { $exists: true } } },
    ],
    cursor: {},
  };
  const members = [];
  for (const port of [base, base + 1, base + 2]) {
    const reply = JSON.parse(await mongo("command", "--member", String(port), JSON.stringify(command)));
    if (reply.cursor.firstBatch.length > 0) members.push(String(port));
  }
  return members;
}

test("the change streams read from the members the daemons asked for", { skip }, async () => {
  const primary = await mongo("primary");
  // A stream is opened once the bus is ready; its getMore may be between
  // rounds: ask until each shows up.
  const found = await eventually(async () => {
    const a = await streamMembers(daemons[0].appName);
    const b = await streamMembers(daemons[1].appName);
    return a.length > 0 && b.length > 0 ? { a, b } : null;
  }, 30000, "both change streams in $currentOp");
  console.log(`# primary ${primary}; daemon A (secondaryPreferred) streams from ${found.a}, daemon B (primary) from ${found.b}`);
  report.streamMembers = { primary, A: found.a, B: found.b };
  assert.deepEqual(found.b, [primary], "daemon B's stream on the primary");
  assert.equal(found.a.length, 1, "daemon A has one stream");
  assert.notEqual(found.a[0], primary, "daemon A's stream on a secondary");
});

// Daemon B opened its change stream on the first primary: (b) kills it.
let steppedDown;

test("(b) the primary killed (SIGKILL) and started later: nothing acknowledged is lost", { skip }, async () => {
  const summary = await runCase("primary-killed", {
    election: true,
    fault: async () => {
      const primary = await mongo("primary");
      await mongo("kill", "--member", primary);
      return { detail: `primary ${primary} killed, started again after the election`, recover: () => mongo("start") };
    },
  });
  // With w: majority every acknowledged write survives the election and the
  // writer re-sends what was not acknowledged: nothing may be lost. With w: 1
  // what the old primary had acknowledged alone is rolled back: counted, not failed.
  assertDelivery(summary, { allowLoss: writeConcern !== "majority" });
  assertElectionSeen(summary);
});

test("(a) replSetStepDown on the primary: nothing lost, duplicated or reordered", { skip }, async () => {
  const summary = await runCase("stepdown", {
    election: true,
    fault: async () => {
      steppedDown = await mongo("stepdown");
      return { detail: `primary ${steppedDown} stepped down` };
    },
  });
  assertDelivery(summary);
  assertElectionSeen(summary);
});

test("(c) a secondary killed: nothing lost, duplicated or reordered, no outage", { skip }, async () => {
  const summary = await runCase("secondary-killed", {
    election: false,
    fault: async () => {
      // The member that stepped down in (a) was the primary when (b) made the
      // daemons re-open their change streams: killing it makes them go on
      // from another member.
      const primary = await mongo("primary");
      const base = Number(process.env.SIOBRIDGE_MONGO_PORT);
      const secondary =
        steppedDown && steppedDown !== primary ? steppedDown : [base, base + 1, base + 2].find((p) => String(p) !== primary);
      await mongo("kill", "--member", String(secondary));
      return { detail: `secondary ${secondary} killed, started again`, recover: () => mongo("start") };
    },
  });
  assertDelivery(summary);
  summary.health.forEach((statuses, i) => {
    assert.ok(!statuses.includes("NOT_SERVING"), `daemon ${i}: no outage without an election (${statuses})`);
    assert.equal(summary.metrics[i].outages, 0, `daemon ${i}: no outage counted`);
  });
});

// The primary stops answering without closing its connections (SIGSTOP, as a
// frozen host or a partition), and is thawed only once delivery resumed
// without it (or after 150 s): the daemons must not wait for its answers.
test("(d) the primary frozen (SIGSTOP): delivery resumes on the new primary while it stays frozen", { skip }, async () => {
  let frozenAt;
  let resumedWhileFrozen = false;
  const summary = await runCase("primary-frozen", {
    election: true,
    fault: async () => {
      const primary = await mongo("primary");
      await mongo("freeze", "--member", primary);
      frozenAt = Date.now();
      return {
        detail: `primary ${primary} frozen, thawed after delivery resumed`,
        recover: async () => {
          // A message sent by the other side after the freeze, received here.
          resumedWhileFrozen = await eventually(() => {
            for (const [key, list] of tally.received) {
              if (key.startsWith("a.listener<-primary-frozen/b") && list.some((m) => m.at > frozenAt + 3000)) return true;
            }
            return false;
          }, 150000, "delivery while the old primary is frozen").catch(() => false);
          console.log(`# delivery resumed while frozen: ${resumedWhileFrozen} after ${((Date.now() - frozenAt) / 1000).toFixed(2)} s`);
          await mongo("thaw", "--member", primary);
          await mongo("start");
        },
      };
    },
  });
  assert.ok(resumedWhileFrozen, "delivery resumed while the old primary was frozen");
  assertDelivery(summary);
  assertRecovered(summary);
});
