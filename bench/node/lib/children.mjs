// The processes scripts/bench peers starts (servers, clients, daemons,
// redis-server), and their end: each is stopped by its pid with SIGTERM, then
// SIGKILL after a grace period; on any exit of the benchmark (normal, error,
// Ctrl-C) every one still alive is killed. Their pids are also kept in a file
// (BENCH_PIDFILE) so that scripts/bench can stop them if the benchmark itself
// is killed.
//
// Single-threaded (Node event loop of the orchestrator).
import { fork, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";

const live = new Set();
const pidfile = process.env.BENCH_PIDFILE;

function savePids() {
  if (!pidfile) return;
  try {
    writeFileSync(pidfile, [...live].map((c) => `${c.pid}\n`).join(""));
  } catch {
    // The pid file is a safety net only.
  }
}

function track(child, name) {
  child.benchName = name;
  live.add(child);
  savePids();
  child.once("exit", () => {
    live.delete(child);
    savePids();
  });
  return child;
}

/** A non-Node process (daemon, redis-server); its output goes to `logFd` or nowhere. */
export function startProcess(name, command, args, { logFd } = {}) {
  const child = spawn(command, args, { stdio: ["ignore", logFd ?? "ignore", logFd ?? "ignore"] });
  child.on("error", (error) => (child.spawnError = error));
  return track(child, name);
}

/**
 * Extra node flags for every child, from BENCH_NODE_ARGS (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof" to profile a cell; NODE_OPTIONS refuses those).
 */
function nodeArgs() {
  return (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
}

/**
 * A Node child driven over IPC: resolves, once it reported ready, to
 * { child, pid, ask(action, args, timeoutMs), onEvent(fn) }.
 */
export function startNode(name, script, env, { execArgv = nodeArgs(), timeoutMs = 60000 } = {}) {
  const child = track(
    fork(script, [], { env: { ...process.env, ...env }, execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    name,
  );
  const pending = new Map();
  let nextId = 1;
  let eventHandler = () => {};
  let exitError = null;
  const ask = (action, args, ms = 600000) =>
    new Promise((resolve, reject) => {
      if (exitError) return reject(exitError);
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${name}: ${action} did not answer within ${ms} ms`));
      }, ms);
      pending.set(id, { resolve, reject, timer });
      child.send({ id, action, args });
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready within ${timeoutMs} ms`)), timeoutMs);
    child.on("exit", (code, signal) => {
      exitError = new Error(`${name} exited (${signal ?? `code ${code}`})`);
      clearTimeout(timer);
      reject(exitError);
      for (const waiter of pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(exitError);
      }
      pending.clear();
    });
    child.on("message", (m) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve({ child, pid: child.pid, ask, onEvent: (fn) => (eventHandler = fn) });
      } else if (m.failed) {
        clearTimeout(timer);
        reject(new Error(`${name}: ${m.failed}`));
      } else if (m.event) {
        eventHandler(m);
      } else {
        const waiter = pending.get(m.id);
        if (!waiter) return;
        pending.delete(m.id);
        clearTimeout(waiter.timer);
        if (m.error) waiter.reject(new Error(`${name}: ${m.error}`));
        else waiter.resolve(m.result);
      }
    });
  });
}

/** SIGTERM, SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopChild(child, graceMs = 10000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every live child, the last started first. */
export async function stopAll(graceMs) {
  for (const child of [...live].reverse()) await stopChild(child, graceMs);
}

export function liveNames() {
  return [...live].map((c) => `${c.benchName} (pid ${c.pid})`);
}

// Whatever way the benchmark ends, nothing it started outlives it.
process.on("exit", () => {
  for (const child of live) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
});
