// Test topologies: socket.io server processes attached to siobridged daemons,
// and socket.io-client clients.
import { fork } from "node:child_process";
import { io as connect } from "socket.io-client";
import { join } from "node:path";
import { Daemon, eventually } from "./daemon.mjs";

let serverNumber = 0;

export class ServerProcess {
  constructor(options) {
    this.options = { label: `server-${++serverNumber}`, ...options };
    this.label = this.options.label;
    this.pending = new Map();
    this.errors = [];
    this.nextId = 1;
  }

  async start() {
    this.child = fork(join(import.meta.dirname, "server-process.cjs"), {
      env: { ...process.env, SIOBRIDGE_TEST_SERVER: JSON.stringify(this.options) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const ready = new Promise((done, fail) => {
      this.child.on("message", (m) => {
        if (m.event === "ready") done();
        if (m.event === "startup-error") fail(Object.assign(new Error(m.message), { code: m.code, codeName: m.codeName }));
        if (m.event === "adapter-error") this.errors.push(m);
        if (m.id && this.pending.has(m.id)) {
          const { resolve, reject } = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.error) reject(Object.assign(new Error(m.error), { code: m.code }));
          else resolve(m.result);
        }
      });
    });
    await ready;
    this.ports = await this.do("ports");
    return this;
  }

  do(op, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, op, ...args });
    });
  }

  /** A socket.io-client connected to this process's server `index`. */
  async client({ index = 0, ns = "/", rooms = [], user = undefined, parser = undefined, padding = undefined } = {}) {
    const socket = connect(`http://127.0.0.1:${this.ports[index]}${ns}`, {
      auth: { rooms, user, ...(padding ? { padding } : {}) },
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      ...(parser ? { parser } : {}),
    });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return socket;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    await exited;
  }

  /** The adapter errors reported so far with `code`, waiting for the first. */
  async errorWith(code, timeoutMs = 15000) {
    return eventually(() => this.errors.find((e) => e.code === code), timeoutMs, `an adapter error with code ${code}`);
  }
}

/** Collects one event of a client socket; next() waits for the next one. */
export class Inbox {
  constructor(socket, event) {
    this.items = [];
    this.waiters = [];
    socket.on(event, (...args) => {
      const callback = typeof args[args.length - 1] === "function" ? args.pop() : undefined;
      this.items.push(args);
      this.waiters.splice(0).forEach((w) => w());
      if (callback) callback(...(this.answer ? this.answer(args) : []));
    });
  }
  async next(count = 1, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} events, got ${this.items.length}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.items;
  }
}

/** A second socket on the connection (Manager) of `socket`, in namespace `ns`. */
export async function companion(socket, ns) {
  const other = socket.io.socket(ns);
  await new Promise((resolve, reject) => {
    other.once("connect", resolve);
    other.once("connect_error", reject);
  });
  return other;
}

/** A disconnect, awaited. */
export function disconnected(socket) {
  return new Promise((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
}

/**
 * Daemons for a test: the memory bus (one daemon, returned twice) or `count`
 * daemons on MongoDB, with `extra` arguments (e.g. the expiration strategy).
 */
export async function startDaemons(kind, mongoDatabase, { count = 2, extra = [] } = {}) {
  if (kind === "memory") {
    const daemon = await new Daemon(["--node-request-timeout", "3s", "--node-local-timeout", "1s"]).start();
    return [daemon, daemon];
  }
  const args = [
    "--mongodb-uri", process.env.MONGODB_URI,
    "--mongodb-database", mongoDatabase,
    "--node-heartbeat-interval", "1s",
    "--node-heartbeat-timeout", "5s",
    "--node-request-timeout", "3s",
    "--node-local-timeout", "1s",
    ...extra,
  ];
  // One after the other: the test MongoDB cannot take concurrent collection creation.
  const daemons = [];
  for (let i = 0; i < count; i++) {
    const daemon = await new Daemon(args).start();
    daemons.push(daemon);
    await eventually(async () => (await daemon.status()).bus_state === "ready", 30000, `daemon ${i + 1}'s bus ready`);
  }
  return daemons;
}

/** Runs `body` with the given processes (or raw attachments), stopping them however it ends. */
export async function using(things, body) {
  try {
    return await body(...things);
  } finally {
    for (const thing of things) await (thing.stop ? thing.stop() : thing.close());
  }
}
