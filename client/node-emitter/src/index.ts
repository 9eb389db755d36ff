// @siobridge/emitter: emit to the sockets of a siobridge cluster from any
// Node.js process (a worker, a cron job, another service), with the API of
// @socket.io/redis-emitter.
//
//   import { Emitter } from "@siobridge/emitter";
//   const emitter = new Emitter();              // the daemon of this host
//   await emitter.to("room1").except("room2").emit("news", { text: "hi" });
//
// Calls are the daemon's unary operations made as an external emitter (no
// attachment: every server of the cluster is reached, this host's included).
// The emitter holds no Attach stream, except for a moment before its first
// call: a Hello whose Welcome says how large a payload the daemon takes, so
// that a call past it is refused here, before it is sent. Calls are made one
// at a time, in the order they were made; each returns a promise settled once
// the daemon took the call or refused it.
import { readFileSync } from "node:fs";
import { join } from "node:path";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as notepack from "notepack.io";

export const Status = grpc.status;

/** An error of a call, with the gRPC status code of the refusal (as the adapter's SiobridgeError). */
export class SiobridgeError extends Error {
  readonly code: grpc.status;
  readonly codeName: string;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.name = "SiobridgeError";
    this.code = code;
    this.codeName = grpc.status[code] ?? `CODE_${code}`;
  }
}

export type Parser = "json" | "msgpack";

export interface EmitterOptions {
  /** The daemon: "unix:/path", "/path" or "host:port". Default: $SIOBRIDGE_ADDRESS, else its default Unix socket. */
  address?: string;
  /** The socket.io parser of the cluster's servers (default "json", socket.io's default). */
  parser?: Parser;
  /** Milliseconds a call may take before it fails with DEADLINE_EXCEEDED (default 10000). */
  timeout?: number;
  /** Receives the error of every failed call (the call's promise rejects too). */
  onError?: (error: SiobridgeError) => void;
}

/** The daemon's default Unix socket, as siobridged and the adapter use it. */
export function defaultAddress(): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : -1;
  return uid === 0 ? "unix:/run/siobridge/siobridged.sock" : `unix:/tmp/siobridge-${uid}/siobridged.sock`;
}

const PACKET_EVENT = 2;
const PACKET_BINARY_EVENT = 5;
const KIND_STR = 0;
const KIND_BYTES = 1;
// The daemon refuses a message above max_message_bytes plus room for ids,
// room lists and the envelope (daemon/app/api_server.cc), as the adapter counts it.
const ENVELOPE_ALLOWANCE = 256 << 10;
// What the daemon sends to every server: socket.io's reserved event names.
const RESERVED_EVENTS = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

interface Value {
  kind: number;
  data: Buffer;
  attachments: Buffer[];
}

interface Options {
  rooms: string[];
  except: string[];
  exclude_sid: boolean;
  volatile: boolean;
}

// ------------------------------------------------------------------ codec

function isBinary(value: unknown): value is Buffer | ArrayBuffer | ArrayBufferView {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function toBuffer(value: Buffer | ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Binary values become socket.io's placeholders, their bytes collected (the JSON parser's form). */
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
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) out[key] = deconstruct(item, attachments);
    return out;
  }
  return value;
}

function encodeValue(items: unknown[], parser: Parser): Value {
  if (parser === "msgpack") return { kind: KIND_BYTES, data: notepack.encode(items), attachments: [] };
  const attachments: Buffer[] = [];
  return { kind: KIND_STR, data: Buffer.from(JSON.stringify(deconstruct(items, attachments)), "utf8"), attachments };
}

function encodePayload(items: unknown[], parser: Parser): Buffer {
  return parser === "msgpack" ? notepack.encode(items) : Buffer.from(JSON.stringify(items), "utf8");
}

// ----------------------------------------------------------------- daemon

type Callback<T> = (error: grpc.ServiceError | null, reply?: T) => void;
type Unary = (request: object, options: grpc.CallOptions, callback: Callback<unknown>) => grpc.ClientUnaryCall;
interface BridgeClient extends grpc.Client {
  Broadcast: Unary;
  AddSockets: Unary;
  DelSockets: Unary;
  DisconnectSockets: Unary;
  ServerSideEmit: Unary;
  Attach(options: grpc.CallOptions): grpc.ClientDuplexStream<object, { kind?: string; welcome?: { max_message_bytes: string } }>;
}

let bridgeClass: (new (address: string, credentials: grpc.ChannelCredentials, options?: object) => BridgeClient) | undefined;
let serializers: Record<string, (request: object) => Buffer> = {};

function loadBridge(): NonNullable<typeof bridgeClass> {
  if (!bridgeClass) {
    const protoPath = join(__dirname, "..", "proto", "siobridge", "v1", "bridge.proto");
    readFileSync(protoPath); // a clear error when the package was not built
    const definition = protoLoader.loadSync(protoPath, {
      keepCase: true,
      longs: String,
      enums: Number,
      defaults: true,
      oneofs: true,
    });
    const service = definition["siobridge.v1.Bridge"] as protoLoader.ServiceDefinition;
    serializers = Object.fromEntries(
      Object.entries(service).map(([name, method]) => [name, method.requestSerialize as (request: object) => Buffer]),
    );
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      siobridge: { v1: { Bridge: NonNullable<typeof bridgeClass> } };
    };
    bridgeClass = loaded.siobridge.v1.Bridge;
  }
  return bridgeClass;
}

function target(address: string): string {
  return address.startsWith("/") ? `unix:${address}` : address;
}

function errorOf(error: grpc.ServiceError, address: string): SiobridgeError {
  const details = error.details || error.message;
  if (error.code === grpc.status.UNAVAILABLE) {
    return new SiobridgeError(error.code, `siobridged is not reachable at ${address}: ${details}`);
  }
  if (error.code === grpc.status.DEADLINE_EXCEEDED) {
    return new SiobridgeError(error.code, `siobridged at ${address} did not answer in time: ${details}`);
  }
  return new SiobridgeError(error.code, details);
}

/** The connection of every Emitter made from one `new Emitter()`: its channel, limit and order of calls. */
class Link {
  readonly address: string;
  readonly parser: Parser;
  private readonly timeout: number;
  private readonly onError?: (error: SiobridgeError) => void;
  private client?: BridgeClient;
  private maxMessageBytes?: number;
  private last: Promise<unknown> = Promise.resolve();

  constructor(options: EmitterOptions) {
    this.address = options.address ?? process.env.SIOBRIDGE_ADDRESS ?? defaultAddress();
    this.parser = options.parser ?? "json";
    this.timeout = options.timeout ?? 10000;
    this.onError = options.onError;
  }

  /** Runs `kind` after every call made before it; rejects with a SiobridgeError. */
  call(method: string, kind: string, request: object, payloadBytes: number): Promise<void> {
    const done = this.last.then(() => this.send(method, kind, request, payloadBytes));
    this.last = done.catch(() => undefined);
    if (this.onError) {
      const report = this.onError;
      done.catch((error: SiobridgeError) => report(error));
    }
    return done;
  }

  /** A call refused before it is made: reported as a failed call is. */
  refuse(error: SiobridgeError): Promise<void> {
    const refused = Promise.reject(error);
    if (this.onError) {
      const report = this.onError;
      refused.catch((e: SiobridgeError) => report(e));
    }
    return refused;
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private bridge(): BridgeClient {
    if (!this.client) {
      const Bridge = loadBridge();
      // gRPC's own limits stay off: sizes are checked here against the daemon's.
      this.client = new Bridge(target(this.address), grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": -1,
        "grpc.max_receive_message_length": -1,
      });
    }
    return this.client;
  }

  private deadline(): Date {
    return new Date(Date.now() + this.timeout);
  }

  private async send(method: string, kind: string, request: object, payloadBytes: number): Promise<void> {
    if (this.maxMessageBytes === undefined) this.maxMessageBytes = await this.welcome();
    const limit = this.maxMessageBytes;
    if (limit > 0 && payloadBytes > limit) {
      throw new SiobridgeError(
        grpc.status.RESOURCE_EXHAUSTED,
        `${kind}: payload of ${payloadBytes} bytes exceeds max_message_bytes (${limit}) of siobridged: not sent`,
      );
    }
    const whole = serializers[method](request).length;
    if (limit > 0 && whole > limit + ENVELOPE_ALLOWANCE) {
      throw new SiobridgeError(
        grpc.status.RESOURCE_EXHAUSTED,
        `${kind}: a request of ${whole} bytes is larger than siobridged accepts (${limit + ENVELOPE_ALLOWANCE} bytes): not sent`,
      );
    }
    const client = this.bridge();
    await new Promise<void>((resolve, reject) => {
      (client[method as "Broadcast"] as Unary).call(client, request, { deadline: this.deadline() }, (error) =>
        error ? reject(errorOf(error, this.address)) : resolve(),
      );
    });
  }

  /** The daemon's max_message_bytes, from the Welcome of a Hello made for it (0: unknown). */
  private welcome(): Promise<number> {
    const stream = this.bridge().Attach({ deadline: this.deadline() });
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      stream.on("data", (message) => {
        if (settled || message.kind !== "welcome" || !message.welcome) return;
        settled = true;
        resolve(Number(message.welcome.max_message_bytes));
        stream.cancel(); // the daemon forgets the attachment with the stream
      });
      stream.on("error", (error: grpc.ServiceError) => {
        if (settled) return;
        settled = true;
        reject(errorOf(error, this.address));
      });
      stream.on("end", () => {
        if (settled) return;
        settled = true;
        reject(new SiobridgeError(grpc.status.UNAVAILABLE, `siobridged at ${this.address} ended the stream before its Welcome`));
      });
      stream.write({ hello: { name: `emitter pid ${process.pid}`, client_ref: "emitter" } });
    });
  }
}

// ---------------------------------------------------------------- the API

function options(rooms: Set<string>, except: Set<string>, volatile: boolean): Options {
  // No rooms means every socket (PROTOCOL.md's Broadcast flag).
  return { rooms: [...rooms], except: [...except], exclude_sid: true, volatile };
}

function roomsOf(room: string | string[]): string[] {
  return (Array.isArray(room) ? room : [room]).map(String);
}

/** Where the next call goes: socket.io's BroadcastOperator, for an emitter. */
export class BroadcastOperator {
  constructor(
    private readonly link: Link,
    private readonly nsp: string,
    private readonly rooms: Set<string> = new Set(),
    private readonly exceptRooms: Set<string> = new Set(),
    private readonly isVolatile = false,
  ) {}

  /** Only the sockets in `room` (a room, a socket id, or a list of them); calls add up. */
  to(room: string | string[]): BroadcastOperator {
    const rooms = new Set(this.rooms);
    for (const r of roomsOf(room)) rooms.add(r);
    return new BroadcastOperator(this.link, this.nsp, rooms, this.exceptRooms, this.isVolatile);
  }

  /** The same as to(). */
  in(room: string | string[]): BroadcastOperator {
    return this.to(room);
  }

  /** Not the sockets in `room`. */
  except(room: string | string[]): BroadcastOperator {
    const exceptRooms = new Set(this.exceptRooms);
    for (const r of roomsOf(room)) exceptRooms.add(r);
    return new BroadcastOperator(this.link, this.nsp, this.rooms, exceptRooms, this.isVolatile);
  }

  /** The event may be dropped for clients that are not ready to receive it. */
  get volatile(): BroadcastOperator {
    return new BroadcastOperator(this.link, this.nsp, this.rooms, this.exceptRooms, true);
  }

  /** socket.io sends compressed where it can: accepted for redis-emitter's API. */
  compress(compress: boolean): BroadcastOperator {
    void compress;
    return this;
  }

  /** Emits to the selected sockets. Acks cannot reach an emitter: a function argument is refused. */
  emit(event: string, ...args: unknown[]): Promise<void> {
    if (RESERVED_EVENTS.has(event)) {
      return this.link.refuse(new SiobridgeError(grpc.status.INVALID_ARGUMENT, `"${event}" is a reserved event name`));
    }
    if (args.some((arg) => typeof arg === "function")) {
      return this.link.refuse(new SiobridgeError(grpc.status.INVALID_ARGUMENT, "an emitter cannot receive acknowledgements"));
    }
    const value = encodeValue([event, ...args], this.link.parser);
    const packet = {
      namespace: this.nsp,
      type: value.attachments.length > 0 ? PACKET_BINARY_EVENT : PACKET_EVENT,
      data: value,
    };
    const payload = value.attachments.reduce((sum, a) => sum + a.length, value.data.length);
    return this.link.call(
      "Broadcast",
      "broadcast",
      { packet, opts: options(this.rooms, this.exceptRooms, this.isVolatile) },
      payload,
    );
  }

  /** The selected sockets join `room` (a room or a list of them). */
  socketsJoin(room: string | string[]): Promise<void> {
    const request = { namespace: this.nsp, opts: options(this.rooms, this.exceptRooms, false), rooms: roomsOf(room) };
    return this.link.call("AddSockets", "add_sockets", request, 0);
  }

  /** The selected sockets leave `room`. */
  socketsLeave(room: string | string[]): Promise<void> {
    const request = { namespace: this.nsp, opts: options(this.rooms, this.exceptRooms, false), rooms: roomsOf(room) };
    return this.link.call("DelSockets", "del_sockets", request, 0);
  }

  /** The selected sockets are disconnected; with `close`, their whole connections close. */
  disconnectSockets(close = false): Promise<void> {
    const request = { namespace: this.nsp, opts: options(this.rooms, this.exceptRooms, false), close };
    return this.link.call("DisconnectSockets", "disconnect_sockets", request, 0);
  }
}

/** Emits to a siobridge cluster (its namespace "/" unless made with of()). */
export class Emitter {
  private readonly link: Link;
  private readonly nsp: string;

  constructor(options: EmitterOptions = {}, nsp = "/") {
    this.link = new Link(options);
    this.nsp = nsp;
  }

  private static within(link: Link, nsp: string): Emitter {
    const emitter = Object.create(Emitter.prototype) as Emitter;
    Object.assign(emitter, { link, nsp });
    return emitter;
  }

  /** The same emitter for namespace `nsp` (sharing its connection and order of calls). */
  of(nsp: string): Emitter {
    return Emitter.within(this.link, nsp.startsWith("/") ? nsp : `/${nsp}`);
  }

  private operator(): BroadcastOperator {
    return new BroadcastOperator(this.link, this.nsp);
  }

  /** Emits to every socket of the namespace. */
  emit(event: string, ...args: unknown[]): Promise<void> {
    return this.operator().emit(event, ...args);
  }

  to(room: string | string[]): BroadcastOperator {
    return this.operator().to(room);
  }

  in(room: string | string[]): BroadcastOperator {
    return this.operator().in(room);
  }

  except(room: string | string[]): BroadcastOperator {
    return this.operator().except(room);
  }

  get volatile(): BroadcastOperator {
    return this.operator().volatile;
  }

  socketsJoin(room: string | string[]): Promise<void> {
    return this.operator().socketsJoin(room);
  }

  socketsLeave(room: string | string[]): Promise<void> {
    return this.operator().socketsLeave(room);
  }

  disconnectSockets(close = false): Promise<void> {
    return this.operator().disconnectSockets(close);
  }

  /** An event for every socket.io server of the cluster (their serverSideEmit listeners). No ack. */
  serverSideEmit(event: string, ...args: unknown[]): Promise<void> {
    if (args.some((arg) => typeof arg === "function")) {
      return this.link.refuse(new SiobridgeError(grpc.status.INVALID_ARGUMENT, "an emitter cannot receive acknowledgements"));
    }
    const payload = encodePayload([event, ...args], this.link.parser);
    const request = { namespace: this.nsp, payload, wants_ack: false };
    return this.link.call("ServerSideEmit", "server_side_emit", request, payload.length);
  }

  /** Closes the channel to the daemon (a later call opens another). */
  close(): void {
    this.link.close();
  }
}
