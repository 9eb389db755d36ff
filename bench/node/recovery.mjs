// What socket.io's connectionStateRecovery costs (scripts/bench recovery):
// one socket.io server, BENCH_CLIENTS clients on it, one siobridged on the
// in-memory bus; events/s of private emits (socket.emit to each client, which
// socket.io routes through the adapter when recovery is on) and of broadcasts
// (io.emit), with recovery off and on, for socket.io's own in-memory adapter
// and for siobridge. Server and clients share this process, the same way for
// every system, so the ratios are what to read. Medians of --rounds rounds.
//
// Usage: node bench/node/recovery.mjs --daemon <siobridged> [--rounds 3] [--events 20000]
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createAdapter } = require(join(import.meta.dirname, "..", "..", "client", "node", "dist"));

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const daemonBinary = option("daemon");
const rounds = Number(option("rounds", 3));
const events = Number(option("events", 20000));
const clientCount = Number(process.env.BENCH_CLIENTS ?? 10);
if (!daemonBinary) throw new Error("--daemon <siobridged> is required");

const dir = mkdtempSync(join(tmpdir(), "siobridge-recovery-bench-"));
const socketPath = join(dir, "siobridged.sock");
const daemon = spawn(daemonBinary, ["--listen-unix", socketPath, "--log-level", "warn"], { stdio: "inherit" });
process.on("exit", () => {
  daemon.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function until(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function runCell(system, recovery, mode) {
  const io = new Server({
    ...(system === "siobridge" ? { adapter: createAdapter({ address: `unix:${socketPath}` }) } : {}),
    ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000 } } : {}),
  });
  io.listen(0);
  const port = io.httpServer.address().port;
  const clients = [];
  let received = 0;
  for (let i = 0; i < clientCount; i++) {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true });
    socket.on("m", () => (received += 1));
    clients.push(socket);
  }
  await until(() => io.of("/").sockets.size === clientCount, "clients");
  if (system === "siobridge") await new Promise((r) => setTimeout(r, 200)); // attached and joined
  const sockets = [...io.of("/").sockets.values()];
  const payload = "x".repeat(100);
  const expected = mode === "private" ? events : events * clientCount;
  const started = performance.now();
  // Sent in slices so that the clients read while the server sends.
  for (let sent = 0; sent < events; ) {
    const slice = Math.min(500, events - sent);
    for (let i = 0; i < slice; i++, sent++) {
      if (mode === "private") sockets[sent % sockets.length].emit("m", sent, payload);
      else io.emit("m", sent, payload);
    }
    await new Promise((r) => setImmediate(r));
  }
  await until(() => received >= expected, `${expected} deliveries`, 120000);
  const seconds = (performance.now() - started) / 1000;
  for (const socket of clients) socket.close();
  io.close();
  await new Promise((r) => setTimeout(r, 100));
  return expected / seconds;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
await until(async () => {
  try {
    const { statSync } = await import("node:fs");
    return statSync(socketPath).isSocket();
  } catch {
    return false;
  }
}, "siobridged");

const cells = [];
for (const mode of ["private", "broadcast"]) {
  for (const system of ["socket.io", "siobridge"]) {
    for (const recovery of [false, true]) cells.push({ mode, system, recovery, results: [] });
  }
}
for (let round = 0; round < rounds; round++) {
  for (const cell of cells) cell.results.push(await runCell(cell.system, cell.recovery, cell.mode));
}
console.log(`connection state recovery: ${clientCount} clients, ${events} emits per cell, median of ${rounds} rounds (deliveries/s)`);
console.log("| emits | system | recovery off | recovery on | on / off |");
console.log("|---|---|---|---|---|");
for (const mode of ["private", "broadcast"]) {
  for (const system of ["socket.io", "siobridge"]) {
    const off = median(cells.find((c) => c.mode === mode && c.system === system && !c.recovery).results);
    const on = median(cells.find((c) => c.mode === mode && c.system === system && c.recovery).results);
    const label = mode === "private" ? "socket.emit (private)" : "io.emit (broadcast)";
    console.log(`| ${label} | ${system} | ${Math.round(off)} | ${Math.round(on)} | ${(on / off).toFixed(2)} |`);
  }
}
process.exit(0);
