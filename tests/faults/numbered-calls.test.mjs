// Numbered calls on a raw Attach stream (docs/PROTOCOL.md section 20), the
// daemon's side of what the adapters do when their daemon dies: two daemons on
// MongoDB; a server on A numbers its broadcasts, a client of B's server counts
// them. A call sent again is applied once, whether the daemon that took it
// first is still running (it remembers) or was killed and restarted (it looks
// the instance up in MongoDB); a server that attaches with calls to send again
// hears first which of them the cluster holds.
//
// On the code before issue 26 there were no numbers: the Welcome has no
// "confirm", no Confirmed comes, and every call sent again is delivered again.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  ServerProcess, Tally, dispose, eventually, figure, freePort, killDaemon, metric, mongoArgs, startDaemons,
} from "./support/faults.mjs";
import { RawStream, eventPacket } from "./support/raw-stream.mjs";

const skip = process.env.MONGODB_URI ? undefined : "MONGODB_URI is not set (scripts/test sets it)";
const INSTANCE = randomBytes(12).toString("base64url");
const REPEATED = "siobridge_repeated_calls_total";

describe("numbered calls sent again", { skip }, () => {
  let a, b, receiver, listener, metricsA;

  before(async () => {
    const args = mongoArgs(process.env.MONGODB_URI, `siobridge_faults_${randomBytes(5).toString("hex")}`, [
      "--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", "10s",
    ]);
    metricsA = `127.0.0.1:${await freePort()}`;
    [a, b] = await startDaemons([[...args, "--metrics-listen", metricsA], args]);
    receiver = await new ServerProcess({ address: b.address, label: "receiver" }).start();
    listener = await receiver.client();
  });

  after(async () => {
    listener?.disconnect();
    await receiver?.stop();
    for (const daemon of [a, b]) await dispose(daemon);
  });

  /** Attaches the numbered server on a new stream of A; `resendFrom` as in Hello. */
  async function attach(resendFrom) {
    const raw = new RawStream(a);
    const id = await raw.hello("numbered", ["/"], { features: ["confirm"], instance: INSTANCE, resend_from: resendFrom });
    return { raw, id };
  }

  /** Broadcasts the numbered calls `seqs` (event "n", its number as argument); all answered OK. */
  async function send({ raw, id }, seqs) {
    const refs = seqs.map((seq) => raw.call(id, "broadcast", { attachment_id: id, packet: eventPacket("n", seq),
                                                              opts: { exclude_sid: true } }, seq));
    for (const ref of refs) assert.equal((await raw.result(ref)).status_code, 0);
  }

  test("each number is applied once, before and after a kill -9 of the daemon that took it", { timeout: 180000 },
       async (t) => {
    const heard = new Tally(listener, "n");

    // First stream: calls 1-5, confirmed once MongoDB stored them.
    let stream = await attach(0);
    await eventually(async () => (await b.status()).namespaces.some((ns) => ns.server_count === 2), 30000,
                     "B counts the numbered server");
    const features = stream.raw.welcomes.get("numbered").features;
    await send(stream, [1, 2, 3, 4, 5]);
    assert.equal(await stream.raw.confirmedAtLeast(stream.id, 5), 5);
    await eventually(() => heard.seqs.length >= 5, 30000, "calls 1-5 at B");
    stream.raw.close();

    // Same daemon, new stream, holding 3-5 as if unconfirmed: the daemon says it has them all.
    stream = await attach(3);
    const sameDaemon = await stream.raw.confirmedAtLeast(stream.id, 2);
    await send(stream, [4, 5, 6]);
    await eventually(() => heard.seqs.includes(6), 30000, "call 6 at B");
    stream.raw.close();

    // kill -9: the new daemon knows nothing of the instance but what MongoDB holds.
    await killDaemon(a);
    await a.start();
    stream = await attach(5);
    const afterRestart = await stream.raw.confirmedAtLeast(stream.id, 4);
    await send(stream, [5, 6, 7]);
    await eventually(() => heard.seqs.includes(7), 30000, "call 7 at B");
    const repeated = await metric(metricsA, REPEATED);
    stream.raw.close();

    figure(t, "numbered calls sent again", {
      heard: heard.seqs, first_confirmed_same_daemon: sameDaemon, first_confirmed_after_kill: afterRestart,
      repeats_not_applied_after_kill: repeated,
    });
    assert.ok(features.includes("confirm"), `the Welcome accepts "confirm": ${features}`);
    assert.deepEqual(heard.seqs, [1, 2, 3, 4, 5, 6, 7], "each call once, in order");
    assert.equal(sameDaemon, 6 - 1, "the same daemon: everything it applied (5)");
    assert.equal(afterRestart, 6, "after the restart: the highest call MongoDB holds (6)");
    assert.equal(repeated, 2, "calls 5 and 6 answered, not applied again");
  });
});
