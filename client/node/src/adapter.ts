// SiobridgeAdapter: a socket.io Adapter whose cluster is reached through the
// siobridged daemon of this host. Each operation is applied to this server's
// own sockets here (the in-memory Adapter underneath) and sent to the daemon
// for every other server; the daemon's Commands (work of other servers) are
// applied here through the same in-memory Adapter.
import { Adapter, BroadcastOptions, Room } from "socket.io-adapter";
import { hostname } from "node:os";

import { decodeDetail, decodePayload, decodeValue, encodeDetail, encodePayload, encodeValue, Parser } from "./codec";
import { Connection, Session, SessionSink } from "./connection";

export interface SiobridgeAdapterOptions {
  /** The daemon: a Unix socket path or "host:port". Default: siobridged's default socket. */
  address?: string;
  /** How long cluster-wide requests may take (serverSideEmit acks, safety net of queries). Default 5000 ms. */
  requestsTimeout?: number;
  /** Reattach backoff after the daemon went away. Default 100 ms doubling to 5000 ms. */
  reconnect?: { minDelay?: number; maxDelay?: number };
  /** The socket.io parser in use; detected from the Server when not given. */
  parser?: Parser;
  /** How this server is named in the daemon's status and logs. Default "<hostname> pid <pid>". */
  name?: string;
  /** Calls kept while the daemon is unreachable (then refused). Default 10000. */
  maxQueuedCalls?: number;
  /** Errors of fire-and-forget operations and of the connection. Default: console.warn. */
  onError?: (error: Error) => void;
}

export function defaultAddress(): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : -1;
  return uid === 0 ? "unix:/run/siobridge/siobridged.sock" : `unix:/tmp/siobridge-${uid}/siobridged.sock`;
}

const RESERVED_HANDSHAKE_KEYS = new Set(["sessionStore"]);

// The socket.io Servers of this process: one session each, shared by their namespaces.
const sessions = new WeakMap<object, ServerSession>();
let serverNumber = 0;

/** One socket.io Server attached to the daemon: dispatches Commands to the adapter of their namespace. */
class ServerSession implements SessionSink {
  readonly session: Session;
  readonly adapters = new Map<string, SiobridgeAdapter>();

  constructor(connection: Connection, name: string, private readonly onError: (error: Error) => void) {
    this.session = connection.register(name, this);
  }

  onAttached(): void {}

  onCommand(command: any): void {
    const adapter = this.adapters.get(command.namespace);
    if (!adapter) {
      // A namespace this server no longer has: answer empty, do not make the cluster wait.
      this.answerEmpty(command);
      return;
    }
    try {
      adapter.onCommand(command);
    } catch (error) {
      // Work another node sent that this server cannot read (e.g. data from a
      // node with another socket.io parser): skipped and reported, never thrown
      // into the app.
      this.onError(new Error(`skipped a ${command.kind} command in ${command.namespace}: ${(error as Error).message}`));
      this.answerEmpty(command);
    }
  }

  private answerEmpty(command: any): void {
    if (command.id === "0") return;
    if (command.kind === "all_rooms") this.session.reply({ command_id: command.id, rooms: { rooms: [] } });
    if (command.kind === "fetch_sockets") this.session.reply({ command_id: command.id, sockets: { sockets: [] } });
    if (command.kind === "broadcast_with_ack") this.session.reply({ command_id: command.id, ack_count: 0 });
  }
}

interface ProtoOptions {
  rooms: string[];
  except: string[];
  exclude_sid: boolean;
  volatile: boolean;
  local: boolean;
}

function toProto(opts: BroadcastOptions): ProtoOptions {
  return {
    rooms: [...(opts.rooms ?? [])],
    except: [...(opts.except ?? [])],
    // socket.io's "no rooms" means every socket: PROTOCOL.md's Broadcast flag.
    exclude_sid: true,
    volatile: !!opts.flags?.volatile,
    local: false,
  };
}

// PROTOCOL.md section 3: how options select sockets, in socket.io's terms.
// Returns null when they select none.
function fromProto(opts: any): BroadcastOptions | null {
  const rooms = new Set<Room>(opts?.rooms ?? []);
  const except = new Set<Room>(opts?.except ?? []);
  const sid: string | undefined = opts?.sid || undefined;
  if (sid) {
    if (opts.exclude_sid) except.add(sid);
    else if (rooms.size === 0) rooms.add(sid);
  } else if (rooms.size === 0 && !opts?.exclude_sid) {
    return null;
  }
  return { rooms, except, flags: { volatile: !!opts?.volatile } };
}

const PACKET_EVENT = 2;
const PACKET_BINARY_EVENT = 5;

export class SiobridgeAdapter extends Adapter {
  private readonly options: Required<Omit<SiobridgeAdapterOptions, "parser" | "name">> & { parser: Parser };
  private readonly server: ServerSession;
  private lastServerCount: Promise<number> = Promise.resolve(1);
  private closed = false;

  constructor(nsp: any, options: SiobridgeAdapterOptions = {}) {
    super(nsp);
    const onError = options.onError ?? ((error: Error) => console.warn(`[siobridge] ${error.message}`));
    this.options = {
      address: options.address ?? process.env.SIOBRIDGE_ADDRESS ?? defaultAddress(),
      requestsTimeout: options.requestsTimeout ?? 5000,
      reconnect: options.reconnect ?? {},
      maxQueuedCalls: options.maxQueuedCalls ?? 10000,
      onError,
      parser: options.parser ?? detectParser(nsp.server),
    };
    let server = sessions.get(nsp.server);
    if (!server) {
      const connection = Connection.get({
        address: this.options.address,
        reconnectMinDelay: this.options.reconnect.minDelay ?? 100,
        reconnectMaxDelay: this.options.reconnect.maxDelay ?? 5000,
        maxQueuedCalls: this.options.maxQueuedCalls,
        onError,
      });
      serverNumber += 1;
      const name = options.name ?? `${hostname()} pid ${process.pid}${serverNumber > 1 ? ` #${serverNumber}` : ""}`;
      server = new ServerSession(connection, name, onError);
      sessions.set(nsp.server, server);
    }
    this.server = server;
    this.server.adapters.set(nsp.name, this);
    this.server.session.joinNamespace(nsp.name);
  }

  private get session(): Session {
    return this.server.session;
  }

  override close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.adapters.delete(this.nsp.name);
    this.session.leaveNamespace(this.nsp.name);
    if (this.server.adapters.size === 0) {
      sessions.delete(this.nsp.server);
      this.session.close();
    }
  }

  // ------------------------------------------------ this server's operations

  override serverCount(): Promise<number> {
    const count = this.session
      .call("server_count", { namespace: this.nsp.name }, this.callTimeout())
      .then((reply: any) => Math.max(1, reply.count));
    this.lastServerCount = count.catch(() => 1);
    return count;
  }

  override broadcast(packet: any, opts: BroadcastOptions): void {
    if (!opts.flags?.local) {
      this.session.send("broadcast", { packet: this.encodePacket(packet), opts: toProto(opts) });
    }
    super.broadcast(packet, opts);
  }

  override broadcastWithAck(
    packet: any,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: any[]) => void,
  ): void {
    if (!opts.flags?.local) {
      let counts = 0;
      const request = {
        packet: this.encodePacket(packet),
        opts: toProto(opts),
        ack_timeout_ms: opts.flags?.timeout ?? this.options.requestsTimeout,
      };
      const timeout = (opts.flags?.timeout ?? this.options.requestsTimeout) * 2 + 5000;
      this.session
        .call("broadcast_with_ack", request, timeout, (event: any) => {
          if (event.kind === "count") {
            counts += 1;
            clientCountCallback(event.count);
          } else if (event.kind === "ack") {
            const result = event.ack;
            if (result.result === "value") ack(...decodeValue(result.value));
          }
        })
        .then(async () => {
          // socket.io expects one count per server, while a remote daemon counts
          // all of its servers at once: make up the difference with zeros.
          const servers = await this.lastServerCount;
          for (let i = counts + 1; i < servers; i++) clientCountCallback(0);
        })
        .catch((error: Error) => this.options.onError(error));
    }
    super.broadcastWithAck(packet, opts, clientCountCallback, ack);
  }

  override addSockets(opts: BroadcastOptions, rooms: Room[]): void {
    if (!opts.flags?.local) {
      this.session.send("add_sockets", { namespace: this.nsp.name, opts: toProto(opts), rooms });
    }
    super.addSockets(opts, rooms);
  }

  override delSockets(opts: BroadcastOptions, rooms: Room[]): void {
    if (!opts.flags?.local) {
      this.session.send("del_sockets", { namespace: this.nsp.name, opts: toProto(opts), rooms });
    }
    super.delSockets(opts, rooms);
  }

  override disconnectSockets(opts: BroadcastOptions, close: boolean): void {
    if (!opts.flags?.local) {
      this.session.send("disconnect_sockets", { namespace: this.nsp.name, opts: toProto(opts), close });
    }
    super.disconnectSockets(opts, close);
  }

  override async fetchSockets(opts: BroadcastOptions): Promise<any[]> {
    const local = super.fetchSockets(opts);
    if (opts.flags?.local) return local;
    const remote = this.session.call(
      "fetch_sockets",
      { namespace: this.nsp.name, opts: toProto(opts) },
      this.callTimeout(opts.flags?.timeout),
    );
    const [mine, reply] = await Promise.all([local, remote]);
    const theirs = reply.sockets.map((socket: any) => ({
      id: socket.id,
      handshake: socket.has_details ? decodeDetail(socket.handshake) ?? {} : {},
      rooms: socket.rooms,
      data: socket.has_details ? decodeDetail(socket.data) : undefined,
    }));
    const all = [...mine, ...theirs];
    if (reply.missing.nodes.length + reply.missing.local_servers.length > 0) {
      throw partialError(reply.missing, all);
    }
    return all;
  }

  /** Every room of this namespace on every server of the cluster. */
  async allRooms(): Promise<Set<Room>> {
    const reply = await this.session.call(
      "all_rooms",
      { namespace: this.nsp.name, opts: toProto({ rooms: new Set(), except: new Set() }) },
      this.callTimeout(),
    );
    const rooms = new Set<Room>(this.rooms.keys());
    for (const room of reply.rooms) rooms.add(room);
    if (reply.missing.nodes.length + reply.missing.local_servers.length > 0) {
      throw partialError(reply.missing, [...rooms]);
    }
    return rooms;
  }

  override serverSideEmit(packet: any[]): void {
    const withAck = typeof packet[packet.length - 1] === "function";
    if (!withAck) {
      this.session.send("server_side_emit", {
        namespace: this.nsp.name,
        payload: encodePayload(packet, this.options.parser),
        wants_ack: false,
      });
      return;
    }
    const ack = packet.pop();
    const timeout = this.options.requestsTimeout;
    this.session
      .call(
        "server_side_emit",
        { namespace: this.nsp.name, payload: encodePayload(packet, this.options.parser), wants_ack: true, timeout_ms: timeout },
        this.callTimeout(timeout),
      )
      .then((reply: any) => {
        const responses = reply.responses.map((payload: Buffer) => decodePayload(payload)[0]);
        if (responses.length < reply.expected) {
          ack(new Error(`timeout reached: only ${responses.length} responses received out of ${reply.expected}`), responses);
        } else {
          ack(null, responses);
        }
      })
      .catch((error: Error) => ack(error, []));
  }

  // ------------------------------------------- work other servers ask of us

  /** A Command from the daemon for this namespace. */
  onCommand(command: any): void {
    const reply = (body: any) => this.session.reply({ command_id: command.id, ...body });
    const opts = fromProto(command.opts);
    switch (command.kind) {
      case "broadcast":
        if (opts) super.broadcast(this.decodePacket(command.broadcast), opts);
        return;
      case "broadcast_with_ack": {
        if (!opts) {
          reply({ ack_count: 0 });
          return;
        }
        const parser = this.options.parser;
        super.broadcastWithAck(
          this.decodePacket(command.broadcast_with_ack.packet),
          opts,
          (count: number) => reply({ ack_count: count }),
          // socket.io calls acks with the answering socket as `this`.
          function (this: any, ...args: any[]) {
            reply({ ack: { sid: this?.id ?? "", value: encodeValue(args, parser) } });
          },
        );
        return;
      }
      case "add_sockets":
        if (opts) super.addSockets(opts, command.add_sockets.rooms);
        return;
      case "del_sockets":
        if (opts) super.delSockets(opts, command.del_sockets.rooms);
        return;
      case "disconnect_sockets":
        if (opts) super.disconnectSockets(opts, command.disconnect_sockets.close);
        return;
      case "fetch_sockets": {
        if (!opts) {
          reply({ sockets: { sockets: [] } });
          return;
        }
        super.fetchSockets(opts).then((sockets: any[]) => {
          reply({
            sockets: {
              sockets: sockets.map((socket) => ({
                id: socket.id,
                rooms: [...socket.rooms],
                handshake: encodeDetail(withoutReserved(socket.handshake)),
                data: encodeDetail(socket.data),
              })),
            },
          });
        });
        return;
      }
      case "all_rooms":
        reply({ rooms: { rooms: [...this.rooms.keys()] } });
        return;
      case "server_side_emit": {
        const args = decodePayload(command.server_side_emit.payload);
        if (!command.server_side_emit.wants_ack) {
          this.nsp._onServerSideEmit(args);
          return;
        }
        let answered = false;
        this.nsp._onServerSideEmit([
          ...args,
          (response: unknown) => {
            if (answered) return;
            answered = true;
            reply({ emit_reply: encodePayload([response], this.options.parser) });
          },
        ]);
        return;
      }
    }
  }

  // ------------------------------------------------------------- packets

  private encodePacket(packet: any): any {
    const value = encodeValue(packet.data ?? [], this.options.parser);
    return {
      namespace: this.nsp.name,
      type: value.attachments.length > 0 ? PACKET_BINARY_EVENT : packet.type ?? PACKET_EVENT,
      data: value,
      ...(packet.id !== undefined ? { ack_id: String(packet.id) } : {}),
    };
  }

  private decodePacket(packet: any): any {
    return { type: PACKET_EVENT, data: decodeValue(packet.data), nsp: this.nsp.name };
  }

  private callTimeout(timeout?: number): number {
    return (timeout ?? this.options.requestsTimeout) * 2 + 5000;
  }
}

function detectParser(server: any): Parser {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const defaultParser = require("socket.io-parser");
    return !server?._parser || server._parser === defaultParser ? "json" : "msgpack";
  } catch {
    return "json";
  }
}

function withoutReserved(handshake: any): any {
  if (!handshake || typeof handshake !== "object") return handshake;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(handshake)) if (!RESERVED_HANDSHAKE_KEYS.has(key)) out[key] = value;
  return out;
}

function partialError(missing: any, partial: unknown[]): Error {
  const names = [...missing.nodes, ...missing.local_servers.map((s: string) => `server '${s}'`)];
  const error = new Error(`timeout reached: no answer from ${names.join(", ")}`) as Error & {
    missing: unknown;
    partial: unknown[];
  };
  error.missing = missing;
  error.partial = partial;
  return error;
}
