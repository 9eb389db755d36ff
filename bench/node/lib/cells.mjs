// The measurements of scripts/bench peers on one running system ("a run": its
// sender and receiver servers, its clients, the pids whose CPU counts):
//   burst(run, count, bytes)      saturation: `count` events sent as fast as the
//                                 sender can, timed from the first send to the
//                                 last receipt; lost deliveries counted
//   paced(run, rate, seconds)     latency at a fixed rate, and whether the rate
//                                 was sustained
//   roundTrips(run, what, count)  fetchSockets / serverSideEmitWithAck
// Each cell reports the CPU seconds of every process over its span (/proc) and
// the peak RSS of each process during it.
//
// Single-threaded (Node event loop of the orchestrator).
import { cpuSeconds, memory, resetPeak } from "./proc.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuSnapshot(processes) {
  return processes.map((p) => cpuSeconds(p.pid));
}

function cpuDelta(processes, from, to) {
  const out = {};
  processes.forEach((p, i) => {
    if (from[i] !== null && to[i] !== null) out[p.role] = to[i] - from[i];
  });
  return out;
}

function peaks(processes) {
  const out = {};
  for (const p of processes) {
    const m = memory(p.pid);
    if (m) out[p.role] = m.peakMiB;
  }
  return out;
}

// A system is at work while its processes (servers, daemons, broker; not the
// clients) use more than this share of a core: a burst can sit for seconds in
// MongoDB before its first delivery, and that is no loss.
const BUSY_CORES = 0.1;

/** Tells, sampled every ~100 ms, whether the system's processes worked during the last second. */
function activityMeter(processes) {
  const counted = processes.filter((p) => p.kind !== "clients");
  const samples = [];
  return () => {
    const now = Date.now();
    const cpu = counted.reduce((sum, p) => sum + (cpuSeconds(p.pid) ?? 0), 0);
    samples.push({ now, cpu });
    while (samples.length > 2 && now - samples[1].now >= 1000) samples.shift();
    const first = samples[0];
    return now - first.now >= 500 && (cpu - first.cpu) / ((now - first.now) / 1000) > BUSY_CORES;
  };
}

/**
 * Resolves once nothing arrived at the clients and the system was idle for
 * idleSeconds (bounded by hardSeconds): after a cell that ended with
 * deliveries missing, what is still on its way must not land in the next one.
 */
async function settle(run) {
  if (!run.unsettled) return;
  const busy = activityMeter(run.processes);
  const since = Date.now();
  let lastBusy = Date.now();
  for (;;) {
    await sleep(100);
    if (busy()) lastBusy = Date.now();
    const { quietMs } = await run.clients.ask("progress");
    const idleMs = Math.min(quietMs, Date.now() - lastBusy);
    if (idleMs >= run.opts.idleSeconds * 1000 || Date.now() - since > run.opts.hardSeconds * 1000) break;
  }
  run.unsettled = false;
}

/**
 * Sends `count` events of `bytes` at `rate` (0: burst) and waits until every
 * client has them all, or, after the sender finished, nothing arrived and the
 * system was idle for idleSeconds (the rest is lost), or hardSeconds passed. A
 * paced send is stopped once the clients are more than `maxLagSeconds` of
 * events behind it.
 */
async function send(run, { count, bytes, rate, latencies, maxLagSeconds = Infinity }) {
  const { sender, clients, processes, opts } = run;
  const hardMs = opts.hardSeconds * 1000;
  await settle(run);
  const base = run.nextSeq;
  run.nextSeq += count;
  await clients.ask("expect", { base, count, latencies });
  let doneAt = 0;
  clients.onEvent((m) => {
    if (m.event === "done") doneAt = Date.now();
  });
  for (const p of processes) resetPeak(p.pid);
  const cpuStart = cpuSnapshot(processes);
  let cpuEnd = cpuStart;
  let senderResult = null;
  let senderError = null;
  let stoppedForLag = false;
  const started = Date.now();
  const sending = sender.ask("run", { count, rate, bytes, payload: run.opts.payload, firstSeq: base }).then(
    (r) => (senderResult = r),
    (e) => (senderError = e),
  );
  let lastReceived = -1;
  const busy = activityMeter(processes);
  let lastBusy = Date.now();
  for (;;) {
    await Promise.race([sending, sleep(100)]);
    if (doneAt) {
      cpuEnd = cpuSnapshot(processes);
      break;
    }
    const { received, quietMs } = await clients.ask("progress");
    if (received !== lastReceived) {
      lastReceived = received;
      cpuEnd = cpuSnapshot(processes);
    }
    if (senderError) throw senderError;
    if (!senderResult && rate > 0 && !stoppedForLag) {
      const due = Math.min(count, ((Date.now() - started) / 1000) * rate);
      if (due - received / opts.clients > rate * maxLagSeconds) {
        stoppedForLag = true;
        await sender.ask("stop");
      }
    }
    if (senderResult && received >= senderResult.sent * opts.clients) {
      cpuEnd = cpuSnapshot(processes);
      break;
    }
    // Lost: after the sender finished, nothing arrived and nothing worked for idleSeconds.
    if (busy()) lastBusy = Date.now();
    const idleMs = Math.min(quietMs, Date.now() - lastBusy);
    const sinceSent = senderResult ? Date.now() - (senderResult.startedAt + senderResult.seconds * 1000) : 0;
    if (senderResult && idleMs > opts.idleSeconds * 1000 && sinceSent > opts.idleSeconds * 1000) break;
    if (Date.now() - started > hardMs) break;
  }
  await sending;
  if (senderError) throw senderError;
  const result = await clients.ask("finish");
  run.unsettled = result.received < senderResult.sent * opts.clients;
  const events = senderResult.sent;
  const span = result.lastReceipt > 0 ? (result.lastReceipt - senderResult.startedAt) / 1000 : null;
  const cpu = cpuDelta(processes, cpuStart, cpuEnd);
  const peakMiB = peaks(processes);
  for (const [role, mib] of Object.entries(peakMiB)) run.peakMiB[role] = Math.max(run.peakMiB[role] ?? 0, mib);
  const errors = [];
  for (const server of run.servers) errors.push(...(await server.ask("errors")));
  return {
    events,
    bytes,
    sentPerSecond: events / senderResult.seconds,
    senderSeconds: senderResult.seconds,
    delivered: result.received,
    lost: events * opts.clients - result.received,
    duplicates: result.duplicates,
    stray: result.stray,
    span,
    deliveredEventsPerSecond: span ? result.received / opts.clients / span : 0,
    latency: result.latency,
    stoppedForLag,
    cpu,
    peakMiB,
    disconnects: result.disconnects,
    errors,
  };
}

/** Saturation at `bytes`: a burst of `count` events. */
export async function burst(run, count, bytes) {
  const r = await send(run, { count, bytes, rate: 0, latencies: false });
  return { ...r, eventsPerSecond: r.deliveredEventsPerSecond };
}

/** Latency at a fixed `rate` for `seconds` (100 B payloads). */
export async function paced(run, rate, seconds, bytes) {
  const count = Math.round(rate * seconds);
  const r = await send(run, { count, bytes, rate, latencies: true, maxLagSeconds: run.opts.maxLagSeconds });
  // Sustained: everything sent on time and delivered, never a second behind, and the
  // delivered rate (first send to last receipt, so a latency tail counts) within 10 %.
  const sustained =
    !r.stoppedForLag && r.lost === 0 && r.events === count &&
    r.sentPerSecond >= 0.95 * rate && r.deliveredEventsPerSecond >= 0.9 * rate;
  return { ...r, rate, sustained };
}

/** Sequential round trips of `what` ("fetchSockets" or "emitWithAck") from the sender. */
export async function roundTrips(run, what, count) {
  const expect = what === "fetchSockets" ? run.opts.clients : 1;
  await settle(run);
  let times;
  try {
    times = await run.sender.ask(what, { count, expect }, 120000);
  } catch (error) {
    return { count: 0, error: error.message };
  }
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  return { count: times.length, p50: at(50), p99: at(99), max: times[times.length - 1] };
}

/** Sum of the CPU seconds of the processes that count (servers, daemons, broker, mongod), per 10k events. */
export function cpuPer10k(cell, processes) {
  let total = 0;
  const per = {};
  for (const p of processes) {
    if (p.kind === "clients" || !(p.role in cell.cpu)) continue;
    per[p.role] = (cell.cpu[p.role] / cell.events) * 10000;
    total += per[p.role];
  }
  return { total, per };
}
