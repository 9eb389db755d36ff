// How socket.io data crosses the daemon (PROTOCOL.md section 3): event data
// as the socket.io parser would encode it, so that Rust socketioxide servers
// in the same cluster understand it.
//
// - JSON parser (socket.io's default): the JSON text of the data array, binary
//   arguments replaced by {"_placeholder":true,"num":i}, their bytes carried
//   beside it as attachments.
// - msgpack parser (socket.io-msgpack-parser): the msgpack encoding of the
//   data array; no attachments.
import * as notepack from "notepack.io";

import type { Value__Output } from "./messages";
import type { Parser } from "./parser";

/** The Value message of the API (bridge.proto), as the adapter makes it. */
export interface Value {
  kind: 0 | 1; // 0 = KIND_STR (JSON), 1 = KIND_BYTES (msgpack)
  data: Buffer;
  attachments: Buffer[];
}

const KIND_STR = 0;
const KIND_BYTES = 1;

function isBinary(value: unknown): value is Buffer | ArrayBuffer | ArrayBufferView {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function toBuffer(value: Buffer | ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Replaces binary values by placeholders, collecting their bytes. */
function deconstruct(value: unknown, attachments: Buffer[]): unknown {
  if (value === null || value === undefined) return value;
  if (isBinary(value)) {
    attachments.push(toBuffer(value));
    return { _placeholder: true, num: attachments.length - 1 };
  }
  if (Array.isArray(value)) return value.map((item) => deconstruct(item, attachments));
  if (typeof value === "object" && !(value instanceof Date)) {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      out[key] = deconstruct(item, attachments);
    }
    return out;
  }
  return value;
}

/** Puts the attachments back where their placeholders are. */
function reconstruct(value: unknown, attachments: Buffer[]): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => reconstruct(item, attachments));
  const record = value as Record<string, unknown>;
  if (record._placeholder === true && typeof record.num === "number") {
    const attachment = attachments[record.num];
    if (attachment === undefined) throw new Error(`binary placeholder ${record.num} has no attachment`);
    return attachment;
  }
  for (const key of Object.keys(record)) record[key] = reconstruct(record[key], attachments);
  return record;
}

/** Encodes an array of event arguments (or ack arguments) as a Value. */
export function encodeValue(items: unknown[], parser: Parser): Value {
  if (parser === "msgpack") {
    return { kind: KIND_BYTES, data: notepack.encode(items), attachments: [] };
  }
  const attachments: Buffer[] = [];
  const text = JSON.stringify(deconstruct(items, attachments));
  return { kind: KIND_STR, data: Buffer.from(text, "utf8"), attachments };
}

/** Decodes a Value to its array of arguments, whichever parser made it. */
export function decodeValue(value: Value__Output | Value | null | undefined): unknown[] {
  if (!value) return [];
  const decoded =
    value.kind === KIND_BYTES
      ? notepack.decode(value.data)
      : reconstruct(JSON.parse(value.data.toString("utf8")), value.attachments ?? []);
  if (!Array.isArray(decoded)) throw new Error("event data is not an array");
  return decoded;
}

/** Opaque payloads between siobridge-attached servers (serverSideEmit). */
export function encodePayload(items: unknown[], parser: Parser): Buffer {
  return parser === "msgpack" ? notepack.encode(items) : Buffer.from(JSON.stringify(items), "utf8");
}

export function decodePayload(payload: Buffer): unknown[] {
  if (payload.length === 0) return [];
  // JSON text always starts with '[' here; msgpack arrays never do (0x90-0x9f, 0xdc, 0xdd).
  const decoded = payload[0] === 0x5b ? JSON.parse(payload.toString("utf8")) : notepack.decode(payload);
  return Array.isArray(decoded) ? decoded : [decoded];
}

/** socket.io handshake and socket.data for fetchSockets, as JSON. */
export function encodeDetail(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value ?? null), "utf8");
}

export function decodeDetail(bytes: Buffer | undefined): unknown {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
