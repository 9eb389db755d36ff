// SiobridgeAdapter: a socket.io Adapter whose cluster is reached through the
// siobridged daemon of this host. Each operation is applied to this server's
// own sockets here (the in-memory Adapter underneath) and sent to the daemon
// for every other server; the daemon's Commands (work of other servers) are
// applied here through the same in-memory Adapter.
import { Adapter, BroadcastOptions, PrivateSessionId, Room, Session as RecoveredSession } from "socket.io-adapter";
import type { Namespace } from "socket.io";
import type { EventEmitter } from "node:events";
import { hostname } from "node:os";

import { coalesceFlushes } from "./coalesce";
import { decodeDetail, decodePayload, decodeValue, encodeDetail, encodePayload, encodeValue } from "./codec";
import { Connection, Session, SessionSink } from "./connection";
import { SiobridgeError, Status, TimeoutMessages, checkTimeoutMessages, timeoutError, timeoutMessage } from "./errors";
import {
  Command,
  Missing,
  oneof,
  Packet,
  Packet__Output,
  Reply,
  SocketInfo__Output,
} from "./messages";
import { fromProto, reachesSession, toProto } from "./options";
import { Parser, resolveParser } from "./parser";
import type { TlsOptions } from "./tls";

export type { Parser, TimeoutMessages, TlsOptions };

export interface SiobridgeAdapterOptions {
  /** The daemon: a Unix socket path or "host:port". Default: siobridged's default socket. */
  address?: string;
  /**
   * TLS to a "host:port" daemon: `ca` (the CA of its certificate) and, for a
   * daemon that requires client certificates, `cert` and `key`; each a PEM
   * file's path or a Buffer of it.
   */
  tls?: TlsOptions;
  /** How long cluster-wide requests may take (serverSideEmit acks, safety net of queries). Default 5000 ms. */
  requestsTimeout?: number;
  /** Reattach backoff after the daemon went away. Default 100 ms doubling to 5000 ms. */
  reconnect?: { minDelay?: number; maxDelay?: number };
  /**
   * The encoding of the Server's socket.io parser. Found by encoding a probe
   * packet with the Server's parser; needed only for a parser whose output is
   * neither, and must agree with it otherwise.
   */
  parser?: Parser;
  /**
   * Whose words cluster requests that timed out (fetchSockets, allRooms,
   * serverSideEmitWithAck) are reported in, word for word: socket.io's MongoDB
   * adapter ("mongo", the default: `timeout reached: only 1 responses received
   * out of 2`) or its ClusterAdapterWithHeartbeat ("cluster": `timeout
   * reached: missing 1 responses`). Who did not answer is in `error.missing`.
   */
  timeoutMessages?: TimeoutMessages;
  /** How this server is named in the daemon's status and logs. Default "<hostname> pid <pid>". */
  name?: string;
  /** Calls kept while the daemon is unreachable (then refused). Default 10000. */
  maxQueuedCalls?: number;
  /**
   * Calls that answer only on failure (broadcasts, socketsJoin/Leave,
   * disconnectSockets, serverSideEmit) are kept until the daemon confirms that
   * the cluster has them, and sent again after a daemon restart, so that a
   * daemon that dies loses none and the cluster applies none twice. At most
   * `maxBytes` of event data (default 64 MiB) for at most `timeoutMs` (default
   * 120000) are kept; past either the oldest is let go, reported through
   * onError with DEADLINE_EXCEEDED.
   */
  resend?: { maxBytes?: number; timeoutMs?: number };
  /**
   * Whether the daemon may send several commands per message (CommandBatch)
   * while this server reads. Default true; false only to compare.
   */
  commandBatches?: boolean;
  /**
   * Whether this adapter may send the daemon several messages per stream
   * message (MessageBatch). Default true; false only to compare.
   */
  messageBatches?: boolean;
  /**
   * Whether the frames of each engine.io flush go to the client's socket in one
   * system call (coalesce.ts). Default true.
   */
  coalesceWrites?: boolean;
  /** Errors of fire-and-forget operations and of the connection. Default: console.warn. */
  onError?: (error: SiobridgeError) => void;
}

export function defaultAddress(): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : -1;
  return uid === 0 ? "unix:/run/siobridge/siobridged.sock" : `unix:/tmp/siobridge-${uid}/siobridged.sock`;
}

/** A socket.io packet as the Adapter receives and applies it. */
interface SocketIoPacket {
  type: number;
  data?: unknown[];
  nsp?: string;
  id?: number;
}

/** What fetchSockets yields for a socket: socket.io builds a RemoteSocket from it. */
interface SocketDetails {
  id: string;
  handshake: unknown;
  rooms: Iterable<Room>;
  data: unknown;
}

const RESERVED_HANDSHAKE_KEYS = new Set(["sessionStore"]);

// The socket.io Servers of this process: one session each, shared by their namespaces.
const sessions = new WeakMap<object, ServerSession>();
let serverNumber = 0;

/** One socket.io Server attached to the daemon: dispatches Commands to the adapter of their namespace. */
class ServerSession implements SessionSink {
  readonly session: Session;
  readonly adapters = new Map<string, SiobridgeAdapter>();

  constructor(
    connection: Connection,
    name: string,
    private readonly onError: (error: SiobridgeError) => void,
    batches: { commandBatches: boolean; messageBatches: boolean },
    private readonly coalesce: boolean,
  ) {
    this.session = connection.register(name, this, batches);
  }

  private coalescing = false;

  /** One system call per flush to each client (coalesce.ts), once the Server has its engine. */
  coalesceWrites(engine: unknown): void {
    if (this.coalesce && !this.coalescing) this.coalescing = coalesceFlushes(engine as EventEmitter | undefined);
  }

  onAttached(): void {}

  onCommand(command: Command): void {
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
      this.onError(
        new SiobridgeError(
          Status.INVALID_ARGUMENT,
          `skipped a ${command.kind} command in ${command.namespace}: ${(error as Error).message}`,
        ),
      );
      this.answerEmpty(command);
    }
  }

  private answerEmpty(command: Command): void {
    if (command.id === "0") return;
    const id = command.id;
    if (command.kind === "all_rooms") this.session.reply({ command_id: id, rooms: { rooms: [] } });
    if (command.kind === "fetch_sockets") this.session.reply({ command_id: id, sockets: { sockets: [] } });
    if (command.kind === "broadcast_with_ack") this.session.reply({ command_id: id, ack_count: 0 });
  }
}

/** A recoverable packet this server broadcast while a session was being restored. */
interface OwnPacket {
  data: unknown[];
  opts: BroadcastOptions;
}

const PACKET_EVENT = 2; // Packet.TYPE_EVENT
const PACKET_BINARY_EVENT = 5; // Packet.TYPE_BINARY_EVENT

export class SiobridgeAdapter extends Adapter {
  declare readonly nsp: Namespace;
  private readonly options: Required<
    Omit<
      SiobridgeAdapterOptions,
      "parser" | "name" | "commandBatches" | "messageBatches" | "coalesceWrites" | "resend" | "tls" | "timeoutMessages"
    >
  > & {
    timeoutMessages: TimeoutMessages;
    parser: Parser;
  };
  private readonly server: ServerSession;
  private lastServerCount: Promise<number> = Promise.resolve(1);
  private closed = false;
  // Connection state recovery (docs/recovery.md): the Server's
  // maxDisconnectionDuration (0: off), the daemon's last mark for this
  // namespace, this server's recoverable broadcasts so far, and what it
  // broadcast while restores were waiting for their answer.
  private readonly recoveryMs: number;
  private recoveryBase = "";
  private ownRecoverable = 0;
  private readonly restoring = new Set<OwnPacket[]>();

  constructor(nsp: Namespace, options: SiobridgeAdapterOptions = {}) {
    super(nsp);
    const onError =
      options.onError ?? ((error: SiobridgeError) => console.warn(`[siobridge] ${error.codeName}: ${error.message}`));
    this.options = {
      address: options.address ?? process.env.SIOBRIDGE_ADDRESS ?? defaultAddress(),
      requestsTimeout: options.requestsTimeout ?? 5000,
      reconnect: options.reconnect ?? {},
      maxQueuedCalls: options.maxQueuedCalls ?? 10000,
      onError,
      parser: resolveParser(nsp.server._parser, options.parser),
      timeoutMessages: checkTimeoutMessages(options.timeoutMessages),
    };
    let server = sessions.get(nsp.server);
    if (!server) {
      const connection = Connection.get({
        address: this.options.address,
        tls: options.tls,
        reconnectMinDelay: this.options.reconnect.minDelay ?? 100,
        reconnectMaxDelay: this.options.reconnect.maxDelay ?? 5000,
        maxQueuedCalls: this.options.maxQueuedCalls,
        resendMaxBytes: options.resend?.maxBytes ?? 64 * 1024 * 1024,
        resendTimeoutMs: options.resend?.timeoutMs ?? 120000,
        onError,
      });
      serverNumber += 1;
      const name = options.name ?? `${hostname()} pid ${process.pid}${serverNumber > 1 ? ` #${serverNumber}` : ""}`;
      server = new ServerSession(connection, name, onError, {
        commandBatches: options.commandBatches ?? true,
        messageBatches: options.messageBatches ?? true,
      }, options.coalesceWrites ?? true);
      sessions.set(nsp.server, server);
    }
    this.server = server;
    const recovery = (
      nsp.server as unknown as { opts?: { connectionStateRecovery?: { maxDisconnectionDuration?: number } } }
    ).opts?.connectionStateRecovery;
    this.recoveryMs = recovery ? Math.max(1, recovery.maxDisconnectionDuration ?? 2 * 60 * 1000) : 0;
    this.server.adapters.set(nsp.name, this);
    this.server.session.joinNamespace(nsp.name, this.recoveryMs);
  }

  private get session(): Session {
    return this.server.session;
  }

  /** Leaves the namespace; the last namespace of a Server detaches it, settling its pending calls. */
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

  /**
   * Never rejects: socket.io awaits it without a catch (broadcast with ack).
   * When the daemon cannot say, the last count known stands, and the failure
   * goes to onError (unless the adapter was closed meanwhile).
   */
  override serverCount(): Promise<number> {
    const known = this.lastServerCount;
    const count = this.session
      .call("server_count", { namespace: this.nsp.name }, this.callTimeout())
      .then(
        (reply) => Math.max(1, reply.count),
        (error: SiobridgeError) => {
          if (error.code !== Status.CANCELLED) this.options.onError(error);
          return known;
        },
      );
    this.lastServerCount = count;
    return count;
  }

  override broadcast(packet: SocketIoPacket, opts: BroadcastOptions): void {
    this.server.coalesceWrites(this.nsp.server.engine);
    if (this.recoveryMs > 0 && isRecoverable(packet, opts)) {
      this.broadcastRecoverable(packet, opts);
      return;
    }
    if (!opts.flags?.local) {
      this.session.send("broadcast", { packet: this.encodePacket(packet), opts: toProto(opts) });
    }
    this.broadcastLocally(packet, opts);
  }

  /**
   * The in-memory adapter's broadcast to this server's sockets. It encodes the
   * packet before it looks for them: a server without sockets in the
   * namespace (one that only emits) skips it.
   */
  private broadcastLocally(packet: SocketIoPacket, opts: BroadcastOptions): void {
    if (this.nsp.sockets.size === 0) return;
    super.broadcast(packet, opts);
  }

  /**
   * A packet socket.io gives an offset: counted, sent to the daemon (which
   * logs it, and with `recovery_only` sends it nowhere: a local broadcast, or
   * a private emit to a socket of this server), then delivered here with its
   * offset appended, as socket.io's own adapter does.
   */
  private broadcastRecoverable(packet: SocketIoPacket & { data: unknown[] }, opts: BroadcastOptions): void {
    this.ownRecoverable += 1;
    const onlyMine = !!opts.flags?.local || this.isOwnSocket(opts);
    this.session.send("broadcast", {
      packet: this.encodePacket(packet),
      opts: toProto(opts),
      recovery_seq: String(this.ownRecoverable),
      recovery_only: onlyMine,
    });
    packet.data.push(`${this.recoveryBase}.${this.ownRecoverable}`);
    for (const sink of this.restoring) sink.push({ data: packet.data, opts });
    this.broadcastLocally(packet, opts);
  }

  /** Whether `opts` name exactly one socket, and it is one of this server's. */
  private isOwnSocket(opts: BroadcastOptions): boolean {
    if (opts.rooms.size !== 1 || (opts.except?.size ?? 0) !== 0) return false;
    const [room] = opts.rooms;
    return this.sids.has(room as string);
  }

  override persistSession(session: { sid: string; pid: string; rooms: Room[]; data: unknown }): void {
    if (this.recoveryMs === 0) return;
    this.session.send("persist_session", {
      namespace: this.nsp.name,
      pid: session.pid,
      sid: session.sid,
      rooms: session.rooms.map(String),
      data: encodeDetail(session.data),
    });
  }

  /**
   * The session and what it missed, from the daemon; null when there is
   * nothing to restore (socket.io then gives the client a new session). A
   * failure (the daemon unreachable) rejects, which socket.io treats the same.
   */
  // socket.io's declaration says Promise<Session>, its code and its own adapter use null for "none".
  // @ts-expect-error null is what socket.io expects when there is nothing to restore
  override async restoreSession(pid: PrivateSessionId, offset: string): Promise<RecoveredSession | null> {
    if (this.recoveryMs === 0) return null;
    const ownMeanwhile: OwnPacket[] = [];
    this.restoring.add(ownMeanwhile);
    try {
      const reply = await this.session.call(
        "restore_session",
        { namespace: this.nsp.name, pid, offset },
        this.callTimeout(),
      );
      if (!reply.found) return null;
      const missedPackets = reply.missed.map((missed) => {
        const data = decodeValue(missed.packet?.data);
        data.push(missed.offset);
        return data;
      });
      // Delivered here before the socket was back, after the daemon's answer was made.
      for (const own of ownMeanwhile) if (reachesSession(own.opts, reply.rooms)) missedPackets.push(own.data);
      return { sid: reply.sid, pid, rooms: reply.rooms, data: decodeDetail(reply.data), missedPackets };
    } finally {
      this.restoring.delete(ownMeanwhile);
    }
  }

  override broadcastWithAck(
    packet: SocketIoPacket,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    if (!opts.flags?.local) {
      let counts = 0;
      const ackTimeout = opts.flags?.timeout ?? this.options.requestsTimeout;
      const request = { packet: this.encodePacket(packet), opts: toProto(opts), ack_timeout_ms: ackTimeout };
      this.session
        .call("broadcast_with_ack", request, this.callTimeout(ackTimeout), (event) => {
          if (event.kind === "count") {
            counts += 1;
            clientCountCallback(event.count);
          } else if (event.kind === "ack") {
            const answer = oneof(event.ack, "result");
            if (answer.result !== "value") return;
            let args: unknown[];
            try {
              args = decodeValue(answer.value);
            } catch (error) {
              const message = `skipped an ack that could not be read: ${(error as Error).message}`;
              this.options.onError(new SiobridgeError(Status.INVALID_ARGUMENT, message));
              return;
            }
            ack(...args);
          }
        })
        .then(async () => {
          // socket.io expects one count per server, while a remote daemon counts
          // all of its servers at once: make up the difference with zeros.
          const servers = await this.lastServerCount;
          for (let i = counts + 1; i < servers; i++) clientCountCallback(0);
        })
        .catch((error: SiobridgeError) => this.options.onError(error));
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

  override async fetchSockets(opts: BroadcastOptions): Promise<SocketDetails[]> {
    const local: Promise<SocketDetails[]> = super.fetchSockets(opts);
    if (opts.flags?.local) return local;
    const remote = this.session.call(
      "fetch_sockets",
      { namespace: this.nsp.name, opts: toProto(opts) },
      this.callTimeout(opts.flags?.timeout),
    );
    const [mine, reply] = await Promise.all([local, remote]);
    const theirs = reply.sockets.map((socket: SocketInfo__Output) => ({
      id: socket.id,
      handshake: socket.has_details ? decodeDetail(socket.handshake) ?? {} : {},
      rooms: socket.rooms,
      data: socket.has_details ? decodeDetail(socket.data) : undefined,
    }));
    const all = [...mine, ...theirs];
    if (isMissing(reply.missing)) throw await this.partialError(reply.missing, all);
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
    if (isMissing(reply.missing)) throw await this.partialError(reply.missing, [...rooms]);
    return rooms;
  }

  override serverSideEmit(packet: unknown[]): void {
    const last = packet[packet.length - 1];
    if (typeof last !== "function") {
      this.session.send("server_side_emit", {
        namespace: this.nsp.name,
        payload: encodePayload(packet, this.options.parser),
        wants_ack: false,
      });
      return;
    }
    const ack = last as (error: Error | null, responses: unknown[]) => void;
    const args = packet.slice(0, -1);
    const timeout = this.options.requestsTimeout;
    this.session
      .call(
        "server_side_emit",
        {
          namespace: this.nsp.name,
          payload: encodePayload(args, this.options.parser),
          wants_ack: true,
          timeout_ms: timeout,
        },
        this.callTimeout(timeout),
      )
      .then(
        (reply) => {
          let responses: unknown[];
          try {
            responses = reply.responses.map((payload: Buffer) => decodePayload(payload)[0]);
          } catch (error) {
            const message = `serverSideEmit: an answer could not be read: ${(error as Error).message}`;
            ack(new SiobridgeError(Status.INVALID_ARGUMENT, message), []);
            return;
          }
          if (responses.length < reply.expected) {
            const message = timeoutMessage(this.options.timeoutMessages, responses.length, reply.expected);
            ack(timeoutError(message, reply.missing), responses);
          } else {
            ack(null, responses);
          }
        },
        (error: SiobridgeError) => ack(error, []),
      );
  }

  // ------------------------------------------- work other servers ask of us

  /** A Command from the daemon for this namespace. */
  onCommand(command: Command): void {
    this.server.coalesceWrites(this.nsp.server.engine);
    const reply = (what: string, body: Omit<Reply, "command_id" | "attachment_id">) => {
      const error = this.session.reply({ command_id: command.id, ...body });
      if (error) {
        this.options.onError(
          new SiobridgeError(error.code, `could not answer ${what} in ${this.nsp.name}: ${error.message}`),
        );
      }
    };
    const opts = fromProto(command.opts);
    switch (command.kind) {
      case "broadcast": {
        if (command.recovery_base) this.recoveryBase = command.recovery_base;
        if (!opts) return;
        const packet = this.decodePacket(command.broadcast);
        if (command.recovery_base) packet.data.push(`${command.recovery_base}.${this.ownRecoverable}`);
        this.broadcastLocally(packet, opts);
        return;
      }
      case "recovery_mark":
        this.recoveryBase = command.recovery_base;
        return;
      case "broadcast_with_ack": {
        if (!opts) {
          reply("a broadcast with ack", { ack_count: 0 });
          return;
        }
        const parser = this.options.parser;
        super.broadcastWithAck(
          this.decodePacket(command.broadcast_with_ack.packet),
          opts,
          (count: number) => reply("a broadcast with ack", { ack_count: count }),
          // socket.io calls acks with the answering socket as `this`.
          function (this: { id?: string } | undefined, ...args: unknown[]) {
            reply("a broadcast with ack", { ack: { sid: this?.id ?? "", value: encodeValue(args, parser) } });
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
          reply("fetchSockets", { sockets: { sockets: [] } });
          return;
        }
        super
          .fetchSockets(opts)
          .then((sockets: SocketDetails[]) => {
            reply("fetchSockets", {
              sockets: {
                sockets: sockets.map((socket) => ({
                  id: socket.id,
                  rooms: [...socket.rooms],
                  handshake: encodeDetail(withoutReserved(socket.handshake)),
                  data: encodeDetail(socket.data),
                })),
              },
            });
          })
          .catch((error: Error) => {
            const message = `could not answer fetchSockets in ${this.nsp.name}: ${error.message}`;
            this.options.onError(new SiobridgeError(Status.INTERNAL, message));
          });
        return;
      }
      case "all_rooms":
        reply("allRooms", { rooms: { rooms: [...this.rooms.keys()] } });
        return;
      case "server_side_emit": {
        const emit = command.server_side_emit;
        const args = decodePayload(emit.payload);
        if (!emit.wants_ack) {
          this.nsp._onServerSideEmit(args as [string, ...unknown[]]);
          return;
        }
        let answered = false;
        this.nsp._onServerSideEmit([
          ...(args as [string, ...unknown[]]),
          (response: unknown) => {
            if (answered) return;
            answered = true;
            reply("serverSideEmit", { emit_reply: encodePayload([response], this.options.parser) });
          },
        ]);
        return;
      }
      default:
        return; // a command of a newer API version
    }
  }

  // ------------------------------------------------------------- packets

  private encodePacket(packet: SocketIoPacket): Packet {
    const value = encodeValue(packet.data ?? [], this.options.parser);
    return {
      namespace: this.nsp.name,
      // socket.io broadcasts events; binary arguments make them binary events.
      type: value.attachments.length > 0 ? PACKET_BINARY_EVENT : PACKET_EVENT,
      data: value,
      ...(packet.id !== undefined ? { ack_id: String(packet.id) } : {}),
    };
  }

  private decodePacket(packet: Packet__Output | null): SocketIoPacket & { data: unknown[] } {
    return { type: PACKET_EVENT, data: decodeValue(packet?.data), nsp: this.nsp.name };
  }

  /**
   * A query some servers did not answer (fetchSockets, allRooms), in
   * socket.io's words. The daemon names who is missing; how many servers were
   * asked is the cluster's server count less this one (a daemon that did not
   * answer counts as one, whatever servers it has).
   */
  private async partialError(missing: Missing, partial: unknown[]): Promise<SiobridgeError> {
    const silent = missing.nodes.length + missing.local_servers.length;
    const expected = Math.max((await this.serverCount()) - 1, silent);
    const error = timeoutError(timeoutMessage(this.options.timeoutMessages, expected - silent, expected), missing);
    error.partial = partial;
    return error;
  }

  private callTimeout(timeout?: number): number {
    return (timeout ?? this.options.requestsTimeout) * 2 + 5000;
  }
}

function isRecoverable(packet: SocketIoPacket, opts: BroadcastOptions): packet is SocketIoPacket & { data: unknown[] } {
  return packet.type === PACKET_EVENT && packet.id === undefined && !opts.flags?.volatile && Array.isArray(packet.data);
}

function withoutReserved(handshake: unknown): unknown {
  if (!handshake || typeof handshake !== "object") return handshake;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(handshake)) if (!RESERVED_HANDSHAKE_KEYS.has(key)) out[key] = value;
  return out;
}

function isMissing(missing: Missing | null): missing is Missing {
  return !!missing && missing.nodes.length + missing.local_servers.length > 0;
}
