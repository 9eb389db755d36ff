// One stalled socket.io server beside a working one on the same host. Two
// daemons on MongoDB: A with the sending server; B with two receiving servers,
// one of which is frozen (SIGSTOP) for the whole traffic. A 10 KiB burst fills
// the frozen server's queue in B past limits.backpressure_bytes, then a paced
// stream of small events follows. The working server's client gets every event
// while the other server is still frozen; once it thaws, its own client gets
// every event too (limits.stall_timeout is longer than the freeze here), and
// neither server is closed. The working client's delivery delays are the
// figures (docs/running.md, "Faults and what they cost").
//
// On the code before issue 26 the frozen server's queue closed the daemon's
// flow gate for everyone: B's change stream paused ("servers"), and the working
// server got nothing more until stall_timeout closed the frozen one, and the
// frozen one's events were lost with it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { scrapeMetrics } from "../../client/node/test/support/daemon.mjs";
import {
  Pump, ServerProcess, Tally, dispose, eventually, figure, freePort, mongoArgs, seconds, startDaemons, stopPumps,
  total,
} from "./support/faults.mjs";

const BALLAST = 600; // 10 KiB each: ~6 MB, past the 4 MiB mark, under the 16 MiB total mark
const RATE = 200;
const PACED = 1000;

const skip = process.env.MONGODB_URI ? undefined : "MONGODB_URI is not set (scripts/test sets it)";

describe("a stalled server beside a working one", { skip }, () => {
  let a, b, sender, working, frozen, metricsB, workingClient, frozenClient;

  before(async () => {
    const args = mongoArgs(process.env.MONGODB_URI, `siobridge_faults_${randomBytes(5).toString("hex")}`, [
      "--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", "10s",
      // Longer than the freeze: the frozen server must come back with everything.
      "--limits-stall-timeout", "120s",
    ]);
    metricsB = `127.0.0.1:${await freePort()}`;
    [a, b] = await startDaemons([args, [...args, "--metrics-listen", metricsB]]);
    sender = await new ServerProcess({ address: a.address, label: "sender" }).start();
    working = await new ServerProcess({ address: b.address, label: "working" }).start();
    frozen = await new ServerProcess({ address: b.address, label: "frozen" }).start();
    await eventually(async () => (await sender.do("serverCount")) === 3, 30000, "three servers counted");
    workingClient = await working.client();
    frozenClient = await frozen.client();
  });

  after(async () => {
    await stopPumps();
    if (frozen?.child?.exitCode === null) frozen.child.kill("SIGCONT");
    for (const socket of [workingClient, frozenClient]) socket?.disconnect();
    for (const server of [sender, working, frozen]) await server?.stop();
    for (const daemon of [a, b]) await dispose(daemon);
  });

  async function metricSum(prefix) {
    const text = await scrapeMetrics(metricsB);
    return text.split("\n").filter((l) => l.startsWith(prefix))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  }

  test("the working server gets every event while the other is frozen; the frozen one gets them after",
       { timeout: 240000 }, async (t) => {
    const ballastWorking = new Tally(workingClient, "ballast");
    const ballastFrozen = new Tally(frozenClient, "ballast");
    const pacedWorking = new Tally(workingClient, "paced");
    const pacedFrozen = new Tally(frozenClient, "paced");
    const closedBefore = await metricSum("siobridge_attachments_closed_total{");

    frozen.child.kill("SIGSTOP");
    const frozenAt = Date.now();
    await sender.do("emit", { event: "ballast", args: [{ $repeat: 10 << 10 }], times: BALLAST, numbered: true });
    // The burst reaches the working server while all of it waits in B for the
    // frozen one, past the back-pressure mark.
    await eventually(() => ballastWorking.has(BALLAST), 60000, "the burst at the working server");
    const frozenQueue = Number((await b.status()).attachments.find((x) => x.name === "frozen")?.queued_messages);
    // Then a paced stream: its delays at the working server are the figure.
    const pump = new Pump(sender, "paced", { rate: RATE }).start();
    await eventually(() => pump.sent >= PACED, 60000, "the paced events sent");
    await pump.stop();
    await eventually(() => pacedWorking.has(pump.sent), 60000, "the paced events at the working server");
    const stillFrozen = frozen.child.signalCode === null && frozen.child.exitCode === null;
    const thawedAt = Date.now();
    frozen.child.kill("SIGCONT");
    await eventually(() => ballastFrozen.has(BALLAST) && pacedFrozen.has(pump.sent), 60000,
                     "every event at the thawed server");

    const delays = [];
    for (const [seq, at] of pacedWorking.arrivals) delays.push(at - pump.sentAt[seq]);
    delays.sort((x, y) => x - y);
    const at = (q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
    const closed = (await metricSum("siobridge_attachments_closed_total{")) - closedBefore;
    figure(t, "a stalled server beside a working one", {
      frozen_s: seconds(frozenAt, thawedAt),
      frozen_queue: frozenQueue,
      paced_sent: pump.sent,
      working_delay_p50_ms: at(0.5),
      working_delay_p99_ms: at(0.99),
      working_delay_max_ms: delays[delays.length - 1],
           ballast_at_working_s: seconds(frozenAt, ballastWorking.allArrivedAt(BALLAST)),
      streams_closed: closed,
    });

    assert.ok(stillFrozen, "the frozen server was still frozen when the working one had everything");
    assert.ok(frozenQueue * (10 << 10) > 4 << 20, `the burst waited for the frozen server past the 4 MiB mark (${frozenQueue} queued)`);
    for (const [name, tally, sent] of [["ballast at the working server", ballastWorking, BALLAST],
                                       ["paced at the working server", pacedWorking, pump.sent],
                                       ["ballast at the thawed server", ballastFrozen, BALLAST],
                                       ["paced at the thawed server", pacedFrozen, pump.sent]]) {
      const sum = total([tally], sent);
      assert.equal(sum.lost, 0, `${name}: ${JSON.stringify(sum)}`);
      assert.equal(sum.duplicates, 0, `${name}: ${JSON.stringify(sum)}`);
      assert.equal(sum.outOfOrder, 0, `${name}: ${JSON.stringify(sum)}`);
    }
    assert.equal(closed, 0, "no Attach stream closed");
    assert.deepEqual([...working.errors, ...frozen.errors], []);
    assert.deepEqual(pump.failures, []);
  });
});
