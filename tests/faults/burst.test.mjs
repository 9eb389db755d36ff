// A burst on one host (in-memory bus): 2,000 events of 10 KiB from one
// socket.io server to another attached to the same daemon, ten
// socket.io-client clients on the receiving server. The receiving server is
// slower than the burst: it is paused (its whole event loop) while the burst
// arrives, until the daemon stops queuing more for it (or closes it), well
// inside limits.stall_timeout. Every one of the 20,000 deliveries arrives, once and in
// order, and the receiving server stays attached: past
// limits.backpressure_bytes the daemon stops reading the sender instead.
//
// On the code before issue 9 the receiving server's queue in the daemon hit its
// 16 MiB limit: the daemon closed the healthy server and the rest of the burst
// was lost for it (16,360 of 20,000 deliveries in the run). Without
// the pause this machine's receiving server keeps up with the burst, and the
// old code passes too: the pause is what makes it "slower than a burst" on
// any machine.
//
// The same burst through MongoDB, two daemons writing one document per
// message (what a namespace with a socketioxide node gets: int32-array
// payloads, ~110 KB each as stored; packed, the burst would be a tenth of
// that and might not reach the write queue's mark): MongoDB takes it
// slower than the sender sends it. The sending daemon's write queue stops at
// mongodb.write_backpressure_bytes (the daemon stops reading from its server,
// whose adapter keeps the rest, in order), and the receiving daemon's change
// stream never has more than 4 MiB read that its core has not taken. Every
// delivery arrives, once and in order. Before these bounds the write queue
// took the whole burst (up to mongodb.queue_bytes, 96 MiB) and the change
// stream read as fast as MongoDB answered, whatever the core had yet to take.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  Daemon, ServerProcess, Tally, dispose, eventually, figure, freePort, metric, mongoArgs, seconds, settle,
  startDaemons, total,
} from "./support/faults.mjs";

const EVENTS = 2000;
const CLIENTS = 10;
const SIZE = 10 << 10;
// The paused server resumes once at least this many events wait for it in the
// daemon and none were added for PLATEAU_MS.
const PAUSED_AT_LEAST = 300;
const PLATEAU_MS = 1000;

describe("a 10 KiB burst on one daemon", () => {
  let daemon, sending, receiving;
  const clients = [];

  before(async () => {
    daemon = await new Daemon().start();
    sending = await new ServerProcess({ address: daemon.address, label: "sending" }).start();
    receiving = await new ServerProcess({ address: daemon.address, label: "receiving" }).start();
    await eventually(async () => (await sending.do("serverCount")) === 2, 20000, "two servers");
    for (let i = 0; i < CLIENTS; i++) clients.push(await receiving.client());
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await sending?.stop();
    await receiving?.stop();
    await dispose(daemon);
  });

  test("2,000 events of 10 KiB to 10 clients of another server: every delivery arrives", { timeout: 180000 },
       async (t) => {
    const tallies = clients.map((c) => new Tally(c, "burst"));
    const sizes = new Set();
    clients[0].on("burst", (_seq, payload) => sizes.add(payload.length));
    const resume = join(daemon.dir, "resume-receiving");
    const paused = receiving.do("block", { until: resume });
    const sentAt = Date.now();
    await sending.do("emit", { event: "burst", args: [{ $repeat: SIZE }], times: EVENTS, numbered: true });
    // Paused until the daemon stops taking more for it (back-pressure: the
    // queue no longer grows) or gives up on it (the old code's queue limit).
    let peak = 0, grewAt = Date.now(), closed = false;
    try {
      await eventually(async () => {
        const attachment = (await daemon.status()).attachments.find((x) => x.name === "receiving");
        const queued = Number(attachment?.queued_messages ?? 0);
        if (queued > peak) [peak, grewAt] = [queued, Date.now()];
        closed = !attachment;
        return closed || (peak >= PAUSED_AT_LEAST && Date.now() - grewAt > PLATEAU_MS);
      }, 8000, "work waiting for the paused server");
    } catch {
      // Resumed anyway, before limits.stall_timeout; the figures show the peak.
    }
    writeFileSync(resume, "");
    await paused;
    const resumedAt = Date.now();
    await settle([[tallies, EVENTS]], { quietMs: 15000, timeoutMs: 150000 });
    const sum = total(tallies, EVENTS);
    const doneAt = Math.max(...tallies.map((tally) => tally.allArrivedAt(EVENTS) ?? NaN));
    const status = await daemon.status();
    figure(t, "10 KiB burst, one daemon", {
      ...sum,
      peak_queued_messages: peak,
      closed_while_paused: closed,
      paused_s: seconds(sentAt, resumedAt),
      all_received_after_s: seconds(sentAt, doneAt),
    });

    assert.equal(sum.lost, 0, JSON.stringify(sum));
    assert.equal(sum.duplicates, 0, JSON.stringify(sum));
    assert.equal(sum.outOfOrder, 0, JSON.stringify(sum));
    assert.deepEqual([...sizes], [SIZE]);
    assert.deepEqual(status.attachments.map((x) => x.name).sort(), ["receiving", "sending"]);
    assert.ok(!receiving.errors.some((e) => /Attach stream/.test(e.message)), JSON.stringify(receiving.errors));
  });
});

describe("a 10 KiB burst through MongoDB", { skip: process.env.MONGODB_URI ? false : "MONGODB_URI is not set" }, () => {
  const WRITE_BACKPRESSURE = 4 << 20; // mongodb.write_backpressure_bytes's default
  const CORE_BACKLOG = 4 << 20; // the change stream pauses past this (BusContext::kCoreBacklogHigh)
  let sendingDaemon, receivingDaemon, sending, receiving, metricsSending, metricsReceiving;
  const clients = [];

  before(async () => {
    const database = `siobridge_burst_${randomBytes(5).toString("hex")}`;
    metricsSending = `127.0.0.1:${await freePort()}`;
    metricsReceiving = `127.0.0.1:${await freePort()}`;
    const args = mongoArgs(process.env.MONGODB_URI, database,
                           ["--node-heartbeat-interval", "1s", "--mongodb-pack-messages", "false"]);
    [sendingDaemon, receivingDaemon] = await startDaemons([
      [...args, "--metrics-listen", metricsSending],
      [...args, "--metrics-listen", metricsReceiving],
    ]);
    sending = await new ServerProcess({ address: sendingDaemon.address, label: "sending" }).start();
    receiving = await new ServerProcess({ address: receivingDaemon.address, label: "receiving" }).start();
    await eventually(async () => (await sending.do("serverCount")) === 2, 30000, "two servers");
    for (let i = 0; i < 5; i++) clients.push(await receiving.client());
  });

  after(async () => {
    for (const socket of clients) socket.disconnect();
    await sending?.stop();
    await receiving?.stop();
    await dispose(sendingDaemon);
    await dispose(receivingDaemon);
  });

  test("2,000 events of 10 KiB: bounded queues in both daemons, every delivery arrives once, in order",
       { timeout: 240000 }, async (t) => {
    const tallies = clients.map((c) => new Tally(c, "burst"));
    const sentAt = Date.now();
    await sending.do("emit", { event: "burst", args: [{ $repeat: SIZE }], times: EVENTS, numbered: true });
    await settle([[tallies, EVENTS]], { quietMs: 15000, timeoutMs: 200000 });
    const sum = total(tallies, EVENTS);
    const doneAt = Math.max(...tallies.map((tally) => tally.allArrivedAt(EVENTS) ?? NaN));
    const peaks = {
      write_queue_peak_bytes: await metric(metricsSending, "siobridge_mongodb_write_queue_peak_bytes"),
      write_pauses: await metric(metricsSending, "siobridge_mongodb_write_pauses_total"),
      core_backlog_peak_bytes: await metric(metricsReceiving, "siobridge_change_stream_core_backlog_peak_bytes"),
    };
    figure(t, "10 KiB burst through MongoDB, two daemons", {
      ...sum,
      ...peaks,
      all_received_after_s: seconds(sentAt, doneAt),
    });

    assert.equal(sum.lost, 0, JSON.stringify(sum));
    assert.equal(sum.duplicates, 0, JSON.stringify(sum));
    assert.equal(sum.outOfOrder, 0, JSON.stringify(sum));
    // The burst (~220 MB as stored) went through the write queue, which was
    // held near its mark: past it, what the daemon had already read still
    // goes in (at most 1 MiB of calls, ~11 MB as int32 arrays).
    assert.ok(peaks.write_pauses > 0, JSON.stringify(peaks));
    assert.ok(peaks.write_queue_peak_bytes > WRITE_BACKPRESSURE, JSON.stringify(peaks));
    assert.ok(peaks.write_queue_peak_bytes < WRITE_BACKPRESSURE + (12 << 20), JSON.stringify(peaks));
    // Past the mark the watcher stops before its next document (one, ~100 KB).
    assert.ok(peaks.core_backlog_peak_bytes > 0, JSON.stringify(peaks));
    assert.ok(peaks.core_backlog_peak_bytes < CORE_BACKLOG + (1 << 20), JSON.stringify(peaks));
  });
});
