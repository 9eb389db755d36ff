// One system call per engine.io flush instead of one per packet. engine.io
// writes each packet of a flush as its own WebSocket frame, and Node writes a
// frame to the kernel at once whenever the socket is idle, which it is again
// as soon as the previous write completed synchronously: a burst of N events
// costs every client N writes. Corking the client's TCP socket for the length
// of the flush makes it one writev. That system call was most of the CPU of a
// server delivering a burst to its clients.
//
// The TCP socket is reached through the ws WebSocket of engine.io's websocket
// transport (`transport.socket._socket`); for any other transport, or a
// WebSocket implementation without it, nothing is done. Every cork is undone:
// at the flush's "drain", or at the end of the turn should the flush throw.
import type { EventEmitter } from "node:events";

interface Corkable {
  cork(): void;
  uncork(): void;
}

interface EngineSocket {
  transport?: { socket?: { _socket?: unknown } };
}

/** What the coalescing did, for tests and diagnostics. */
export const coalesceStats = { corkedFlushes: 0 };

const installed = new WeakSet<object>();
const corked = new WeakSet<Corkable>();

function tcpSocketOf(socket: EngineSocket | undefined): Corkable | undefined {
  const raw = socket?.transport?.socket?._socket as Partial<Corkable> | undefined;
  return raw && typeof raw.cork === "function" && typeof raw.uncork === "function" ? (raw as Corkable) : undefined;
}

function release(raw: Corkable): void {
  if (!corked.delete(raw)) return;
  raw.uncork();
}

/**
 * Coalesces the frames of each flush of `engine` (a socket.io Server's
 * engine.io Server). Returns false while there is no engine yet (the Server is
 * not attached to an HTTP server): call again later.
 */
export function coalesceFlushes(engine: EventEmitter | undefined): boolean {
  if (!engine || typeof engine.on !== "function") return false;
  if (installed.has(engine)) return true;
  installed.add(engine);
  engine.on("flush", (socket: EngineSocket) => {
    const raw = tcpSocketOf(socket);
    if (!raw || corked.has(raw)) return;
    raw.cork();
    corked.add(raw);
    coalesceStats.corkedFlushes += 1;
    process.nextTick(release, raw);
  });
  engine.on("drain", (socket: EngineSocket) => {
    const raw = tcpSocketOf(socket);
    if (raw) release(raw);
  });
  return true;
}
