// One gRPC channel and one Attach stream per process (per daemon address),
// shared by every namespace and every socket.io Server of the process. Each
// Server attaches as its own server ("session") on that stream, so the daemon
// never sends a Server its own work but does send it the work of the process's
// other Servers.
//
// Calls go on the stream, so the daemon applies them in the order they were
// made. While the daemon is away (restart), calls wait in a bounded queue and
// the stream reattaches with backoff, restoring every session's namespaces.
// One call's failure stays that call's: a payload over the daemon's limit is
// refused here before it is sent (StreamWriter), since the daemon would end
// the whole stream for it. Each Hello asks for "command_batch": the daemon then
// sends the Commands that queued while it was writing as one CommandBatch
// message, applied exactly as that many single Commands. It asks for
// "message_batch" too: once a Welcome accepts it, the messages of one turn go
// to the daemon as MessageBatches, read in one read each.
//
// Each Server also numbers its calls ("confirm", docs/PROTOCOL.md section 20):
// it keeps every call that answers only on failure until the daemon confirms
// it settled (stored in MongoDB), and after reattaching to a restarted daemon
// sends the others again with their numbers, once the daemon said which of
// them the cluster already has: a daemon that dies loses none of them, and
// the cluster applies none twice. Commands caused by another Server's call on
// the same daemon carry that call's number: one applied already (before the
// daemon restarted) is skipped.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

import { SiobridgeError, Status } from "./errors";
import {
  AckEvent,
  oneof,
  AnsweredKind,
  answerOf,
  CallAnswers,
  CallKind,
  CallRequest,
  Command,
  DaemonMessage,
  DaemonMessage__Output,
  payloadBytes,
  Reply,
  Result,
  ServerMessage,
} from "./messages";
import { channelCredentials, TlsOptions } from "./tls";
import { batched, MAX_BATCH_BYTES, StreamWriter } from "./writer";

const PROTO_PATH = join(__dirname, "..", "proto", "siobridge", "v1", "bridge.proto");

/** The Hello.features this adapter asks for. */
const FEATURES = ["command_batch", "message_batch", "confirm"];

interface AttachCodec {
  path: string;
  serialize: (message: ServerMessage) => Buffer;
  deserialize: (bytes: Buffer) => DaemonMessage;
}

// The Attach method's codec, loaded once per process. The adapter serializes
// ServerMessages itself (to know their size before writing), so gRPC carries
// them as bytes.
let attachCodec: AttachCodec | undefined;
function codec(): AttachCodec {
  if (!attachCodec) {
    const definition = protoLoader.loadSync(PROTO_PATH, {
      keepCase: true,
      longs: String,
      enums: Number,
      defaults: true,
      oneofs: true,
    });
    const service = definition["siobridge.v1.Bridge"] as protoLoader.ServiceDefinition;
    const attach = service.Attach as protoLoader.MethodDefinition<ServerMessage, DaemonMessage__Output>;
    attachCodec = {
      path: attach.path,
      serialize: attach.requestSerialize,
      deserialize: (bytes) => oneof(attach.responseDeserialize(bytes), "kind"),
    };
  }
  return attachCodec;
}

export interface ConnectionOptions {
  /** "unix:/path", "/path" (a Unix socket) or "host:port". */
  address: string;
  /** TLS for a "host:port" address. */
  tls?: TlsOptions;
  reconnectMinDelay: number;
  reconnectMaxDelay: number;
  /** Calls kept while the daemon is unreachable. */
  maxQueuedCalls: number;
  /**
   * Calls kept until the daemon confirms them, to send again after a daemon
   * restart: at most this many bytes of event data, for at most this long.
   * Past either, the oldest is no longer kept (reported through onError).
   */
  resendMaxBytes: number;
  resendTimeoutMs: number;
  onError: (error: SiobridgeError) => void;
}

/** What a session does with the daemon's messages for it. */
export interface SessionSink {
  onCommand(command: Command): void;
  onAttached(nodeUid: string): void;
}

/** A call that answers, until it is settled (answered, failed, timed out or cancelled). */
interface Pending {
  readonly kind: AnsweredKind;
  /** Handles a Result of this call; true once it settled the call. */
  receive(result: Result): boolean;
  fail(error: SiobridgeError): void;
}

class PendingCall<K extends AnsweredKind> implements Pending {
  private settled = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    readonly kind: K,
    private readonly resolve: (answer: CallAnswers[K]) => void,
    private readonly reject: (error: SiobridgeError) => void,
    private readonly onEvent?: (event: AckEvent) => void,
  ) {}

  /** Runs `cleanup` when the call settles (forgets its ref, timer, session entry). */
  onSettled(cleanup: () => void): void {
    if (this.settled) cleanup();
    else this.cleanups.push(cleanup);
  }

  receive(result: Result): boolean {
    if (this.settled) return true;
    const answer = answerOf(this.kind, result);
    if (answer !== undefined) {
      this.settle();
      this.resolve(answer);
      return true;
    }
    if (result.kind === "ack_event") {
      this.onEvent?.(oneof(result.ack_event, "kind"));
      return false;
    }
    this.fail(
      new SiobridgeError(Status.INTERNAL, `siobridged answered a ${this.kind} call with ${result.kind ?? "no result"}`),
    );
    return true;
  }

  fail(error: SiobridgeError): void {
    if (this.settled) return;
    this.settle();
    this.reject(error);
  }

  private settle(): void {
    this.settled = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

/** A call on its way: queued until its session is attached, then sent. */
interface OutgoingCall {
  kind: CallKind;
  /** Bytes of event data, as the daemon counts them against max_message_bytes. */
  payload: number;
  message(ref: string, attachmentId: string, seq: number): ServerMessage;
  /** Absent for calls that answer only when they fail. */
  pending?: Pending & { onSettled(cleanup: () => void): void };
  /** Its number among the calls of its Server, once sent ("confirm"). */
  seq?: number;
  /** The ref it was last sent with. */
  ref?: string;
  /** When it was first sent (ms). */
  sentAt?: number;
}

export class Session {
  attachmentId: string | undefined;
  nodeUid: string | undefined;
  /** The namespaces in use, each with its connection state recovery duration (ms; 0: off). */
  readonly namespaces = new Map<string, number>();
  readonly queue: OutgoingCall[] = [];
  /** Calls of this session waiting for an answer, queued or sent: settled at close. */
  readonly pending = new Set<Pending>();
  /**
   * The position of the last command applied that came through MongoDB. After
   * a daemon restart the daemon delivers again what it may not have delivered
   * before it died; what this server already applied is skipped.
   */
  lastPosition = "";
  /** Commands skipped as repeats, for tests and diagnostics. */
  repeatsSkipped = 0;
  /** Whether the daemon sends this server CommandBatches (its Welcome accepted "command_batch"). */
  readsBatches = false;
  /** CommandBatch messages received, and the Commands they held, for tests and diagnostics. */
  batchesReceived = 0;
  batchedCommands = 0;
  /** This Server's name across reattachments (Hello.instance): call numbers count per instance. */
  readonly instance = randomBytes(12).toString("base64url");
  /** The number of its next call. */
  nextSeq = 1;
  /** Calls sent that answer only on failure, not confirmed yet, in order: sent again after a restart. */
  readonly unconfirmed: OutgoingCall[] = [];
  /** Bytes of event data in `unconfirmed`. */
  unconfirmedBytes = 0;
  /** The highest number the daemon confirmed. */
  confirmed = 0;
  /** Whether the daemon numbers this Server's calls (its Welcome accepted "confirm"). */
  confirms = false;
  /** Waiting for the daemon to say which calls it holds before sending any (Hello.resend_from). */
  awaitingResend = false;
  /** Calls sent again after a daemon restart, and calls given up unconfirmed, for tests and diagnostics. */
  resent = 0;
  givenUp = 0;
  /** Per other Server of this daemon: the number of its last call whose commands were applied here. */
  readonly originSeqs = new Map<string, number>();

  constructor(
    readonly connection: Connection,
    readonly clientRef: string,
    readonly name: string,
    readonly sink: SessionSink,
    /** What this server asks of the daemon in its Hello (Hello.features). */
    readonly features: string[] = FEATURES,
  ) {}

  joinNamespace(ns: string, recoveryMs = 0): void {
    if (this.namespaces.has(ns)) return;
    this.namespaces.set(ns, recoveryMs);
    if (!this.attachmentId) return; // the Hello or the Welcome's catch-up joins it
    this.connection.write({
      join_namespace: { namespace: ns, attachment_id: this.attachmentId, recovery_ms: recoveryMs },
    });
  }

  leaveNamespace(ns: string): void {
    if (!this.namespaces.delete(ns)) return;
    if (!this.attachmentId) return;
    this.connection.write({ leave_namespace: { namespace: ns, attachment_id: this.attachmentId } });
  }

  /**
   * Answers a Command (dropped if the stream it came on is gone). Returns an
   * error when the answer is larger than the daemon accepts: it is not sent.
   */
  reply(reply: Reply): SiobridgeError | undefined {
    if (!this.attachmentId) return undefined;
    return this.connection.write({ reply: { ...reply, attachment_id: this.attachmentId } });
  }

  /**
   * A call that answers (queries, broadcast with ack): resolves with its
   * answer, or rejects with a SiobridgeError (the daemon's, or
   * DEADLINE_EXCEEDED after `timeoutMs`, or CANCELLED at close).
   */
  call<K extends AnsweredKind>(
    kind: K,
    request: CallRequest<K>,
    timeoutMs: number,
    onEvent?: (event: AckEvent) => void,
  ): Promise<CallAnswers[K]> {
    return new Promise((resolve, reject) => {
      const pending = new PendingCall(kind, resolve, reject, onEvent);
      this.pending.add(pending);
      pending.onSettled(() => this.pending.delete(pending));
      // The deadline covers the time a call waits for the daemon too.
      const timer = setTimeout(() => {
        pending.fail(
          new SiobridgeError(Status.DEADLINE_EXCEEDED, `siobridged did not answer ${kind} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      pending.onSettled(() => clearTimeout(timer));
      this.connection.send(this, outgoing(kind, request, true, pending));
    });
  }

  /** A call whose answer nobody waits for: only its failure is reported, through onError. */
  send<K extends CallKind>(kind: K, request: CallRequest<K>): void {
    this.connection.send(this, outgoing(kind, request, false));
  }

  close(): void {
    this.connection.unregister(this);
  }
}

function outgoing<K extends CallKind>(
  kind: K,
  request: CallRequest<K>,
  wantResult: boolean,
  pending?: OutgoingCall["pending"],
): OutgoingCall {
  return {
    kind,
    payload: payloadBytes(kind, request),
    message: (ref, attachmentId, seq) => ({
      call: { ref, attachment_id: attachmentId, want_result: wantResult, seq, [kind]: request },
    }),
    pending,
  };
}

export class Connection {
  private static readonly shared = new Map<string, Connection>();

  static get(options: ConnectionOptions): Connection {
    let connection = Connection.shared.get(options.address);
    if (!connection) {
      connection = new Connection(options);
      Connection.shared.set(options.address, connection);
    }
    return connection;
  }

  private client: grpc.Client | undefined;
  /** Checked when the adapter is made: bad TLS options fail its construction. */
  private readonly credentials: grpc.ChannelCredentials;
  private stream: grpc.ClientDuplexStream<Buffer, DaemonMessage> | undefined;
  /** Writes the Attach stream; public for tests and diagnostics (its counters). */
  readonly writer = new StreamWriter((message) => codec().serialize(message));
  private readonly sessions = new Map<string, Session>();
  private readonly byAttachment = new Map<string, Session>();
  private readonly pending = new Map<string, Pending>();
  private commands: { session: Session; command: Command }[] = [];
  private maxMessageBytes: number | undefined;
  private nextRef = 1;
  private nextSession = 1;
  private reconnectDelay: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly options: ConnectionOptions) {
    this.reconnectDelay = options.reconnectMinDelay;
    this.credentials = channelCredentials(options.address, options.tls);
  }

  /** Attaches one socket.io Server. */
  register(name: string, sink: SessionSink, { commandBatches = true, messageBatches = true } = {}): Session {
    const features = FEATURES.filter(
      (feature) =>
        (feature !== "command_batch" || commandBatches) && (feature !== "message_batch" || messageBatches),
    );
    const session = new Session(this, String(this.nextSession++), name, sink, features);
    this.sessions.set(session.clientRef, session);
    this.closed = false;
    if (this.stream) this.hello(session);
    else this.open();
    return session;
  }

  /** Detaches a Server: its calls still waiting for an answer fail at once with CANCELLED. */
  unregister(session: Session): void {
    if (!this.sessions.delete(session.clientRef)) return;
    if (session.attachmentId) {
      this.write({ detach: { attachment_id: session.attachmentId } });
      this.byAttachment.delete(session.attachmentId);
      session.attachmentId = undefined;
    }
    session.queue.length = 0;
    session.unconfirmed.length = 0;
    session.unconfirmedBytes = 0;
    for (const pending of [...session.pending]) {
      pending.fail(new SiobridgeError(Status.CANCELLED, `${pending.kind} cancelled: the adapter was closed`));
    }
    if (this.sessions.size === 0) this.shutdown();
  }

  /** Sends a call now if the session is attached, else queues it. */
  send(session: Session, call: OutgoingCall): void {
    if (session.attachmentId && this.stream && !session.awaitingResend) {
      this.transmit(session, call);
      return;
    }
    if (session.queue.length >= this.options.maxQueuedCalls) {
      this.refuse(
        call,
        new SiobridgeError(
          Status.UNAVAILABLE,
          `siobridged is unreachable at ${this.options.address}: ${session.queue.length} calls are waiting`,
        ),
      );
      return;
    }
    session.queue.push(call);
    call.pending?.onSettled(() => {
      const index = session.queue.indexOf(call);
      if (index >= 0) session.queue.splice(index, 1);
    });
  }

  /** Queues a message on the stream; an error when it is too large to send. */
  write(message: ServerMessage): SiobridgeError | undefined {
    return this.writer.enqueue(message);
  }

  private refuse(call: OutgoingCall, error: SiobridgeError): void {
    if (call.pending) call.pending.fail(error);
    else this.options.onError(error);
  }

  private transmit(session: Session, call: OutgoingCall): void {
    if (this.maxMessageBytes !== undefined && call.payload > this.maxMessageBytes) {
      this.refuse(
        call,
        new SiobridgeError(
          Status.RESOURCE_EXHAUSTED,
          `${call.kind}: payload of ${call.payload} bytes exceeds max_message_bytes (${this.maxMessageBytes}) ` +
            `of siobridged: not sent`,
        ),
      );
      return;
    }
    const ref = String(this.nextRef++);
    if (call.pending) {
      const pending = call.pending;
      this.pending.set(ref, pending);
      pending.onSettled(() => this.pending.delete(ref));
    }
    const first = call.seq === undefined;
    if (session.confirms && first) call.seq = session.nextSeq++;
    call.ref = ref;
    const error = this.write(call.message(ref, session.attachmentId!, session.confirms ? call.seq! : 0));
    if (error) {
      this.refuse(call, new SiobridgeError(error.code, `${call.kind}: ${error.message}`));
      return;
    }
    // Kept until confirmed, to send again after a daemon restart; calls that
    // answer fail instead when the stream is lost.
    if (session.confirms && first && !call.pending) {
      call.sentAt = Date.now();
      session.unconfirmed.push(call);
      session.unconfirmedBytes += call.payload;
      this.bound(session);
    }
  }

  /** Drops from `session`'s kept calls those past the bounds (reported once per turn). */
  private bound(session: Session): void {
    const tooOld = Date.now() - this.options.resendTimeoutMs;
    let dropped = 0;
    while (
      session.unconfirmed.length > 0 &&
      (session.unconfirmedBytes > this.options.resendMaxBytes || session.unconfirmed[0].sentAt! < tooOld)
    ) {
      session.unconfirmedBytes -= session.unconfirmed.shift()!.payload;
      dropped += 1;
    }
    if (dropped === 0) return;
    session.givenUp += dropped;
    this.options.onError(
      new SiobridgeError(
        Status.DEADLINE_EXCEEDED,
        `server '${session.name}': ${dropped} calls were not confirmed by siobridged within ` +
          `${this.options.resendTimeoutMs} ms or ${this.options.resendMaxBytes} bytes; they are no longer kept ` +
          `to be sent again, so a daemon restart now could lose them`,
      ),
    );
  }

  /** The daemon settled `session`'s calls up to `seq`. */
  private onConfirmed(session: Session, seq: number): void {
    if (seq > session.confirmed) session.confirmed = seq;
    let kept = 0;
    while (kept < session.unconfirmed.length && session.unconfirmed[kept].seq! <= session.confirmed) kept += 1;
    for (const call of session.unconfirmed.splice(0, kept)) session.unconfirmedBytes -= call.payload;
    if (!session.awaitingResend) return;
    // The daemon said which calls the cluster has: the others again, in
    // order and with their numbers, then what waited meanwhile.
    session.awaitingResend = false;
    for (const call of session.unconfirmed) {
      session.resent += 1;
      this.transmit(session, call);
    }
    for (const call of session.queue.splice(0)) this.transmit(session, call);
  }

  /** A call that failed: it is not to be sent again. */
  private forgetUnconfirmed(ref: string): void {
    for (const session of this.sessions.values()) {
      const index = session.unconfirmed.findIndex((call) => call.ref === ref);
      if (index < 0) continue;
      session.unconfirmedBytes -= session.unconfirmed[index].payload;
      session.unconfirmed.splice(index, 1);
      return;
    }
  }

  private open(): void {
    if (this.closed || this.sessions.size === 0) return;
    if (!this.client) {
      const target = this.options.address.startsWith("/") ? `unix:${this.options.address}` : this.options.address;
      this.client = new grpc.Client(target, this.credentials, {
        // The adapter checks sizes itself (StreamWriter), message by message:
        // gRPC's limits would end the shared stream instead of one call.
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.initial_reconnect_backoff_ms": this.options.reconnectMinDelay,
        "grpc.max_reconnect_backoff_ms": this.options.reconnectMaxDelay,
      });
    }
    // Wait for the daemon rather than fail while it is (re)starting.
    const metadata = new grpc.Metadata({ waitForReady: true });
    const { path, deserialize } = codec();
    const stream = this.client.makeBidiStreamRequest(path, (bytes: Buffer) => bytes, deserialize, metadata, {});
    this.stream = stream;
    this.writer.attach(stream);
    stream.on("data", (message: DaemonMessage) => this.onMessage(message));
    stream.on("error", (error: grpc.ServiceError) => {
      if (error.code === Status.CANCELLED && this.closed) return;
      this.options.onError(
        new SiobridgeError(error.code, `siobridged ended the Attach stream: ${error.details || error.message}`),
      );
    });
    // "status" comes once when the call ends, however it ends; "close" needs
    // our side ended too, which a lost daemon does not do.
    stream.on("status", () => this.onClosed(stream));
    stream.on("close", () => this.onClosed(stream));
    for (const session of this.sessions.values()) this.hello(session);
  }

  private hello(session: Session): void {
    const error = this.write({
      hello: {
        name: session.name,
        namespaces: [...session.namespaces.keys()],
        client_ref: session.clientRef,
        features: session.features,
        instance: session.instance,
        resend_from: session.unconfirmed.length > 0 ? session.unconfirmed[0].seq! : 0,
      },
    });
    if (error) {
      this.options.onError(new SiobridgeError(error.code, `server '${session.name}' cannot attach: ${error.message}`));
    }
  }

  private onMessage(message: DaemonMessage): void {
    switch (message.kind) {
      case "welcome": {
        const welcome = message.welcome;
        const session = this.sessions.get(welcome.client_ref);
        if (!session || session.attachmentId !== undefined) {
          // Its Server closed while the Hello was on its way: leave no server
          // behind in the cluster's counts.
          this.write({ detach: { attachment_id: welcome.attachment_id } });
          return;
        }
        session.attachmentId = welcome.attachment_id;
        session.nodeUid = welcome.node_uid;
        session.readsBatches = welcome.features.includes("command_batch");
        session.confirms = welcome.features.includes("confirm");
        if (!session.confirms) {
          // A daemon that does not number calls cannot say which it has.
          session.unconfirmed.length = 0;
          session.unconfirmedBytes = 0;
        }
        // With calls to send again: none goes before the daemon's first Confirmed.
        session.awaitingResend = session.unconfirmed.length > 0;
        this.maxMessageBytes = Number(welcome.max_message_bytes);
        this.writer.setMaxMessageBytes(this.maxMessageBytes);
        // Batches are the stream's: any server of the process may have asked.
        if (welcome.features.includes("message_batch")) {
          this.writer.framing = batched(Math.min(MAX_BATCH_BYTES, this.writer.limit));
        }
        this.byAttachment.set(welcome.attachment_id, session);
        this.reconnectDelay = this.options.reconnectMinDelay;
        // Namespaces joined while the Hello was on its way (joining twice is a
        // no-op), before the calls that were waiting for the attachment.
        for (const [ns, recoveryMs] of session.namespaces) {
          this.write({
            join_namespace: { namespace: ns, attachment_id: welcome.attachment_id, recovery_ms: recoveryMs },
          });
        }
        session.sink.onAttached(welcome.node_uid);
        if (!session.awaitingResend) for (const call of session.queue.splice(0)) this.transmit(session, call);
        return;
      }
      case "confirmed": {
        const session = this.byAttachment.get(message.confirmed.attachment_id);
        if (session) this.onConfirmed(session, Number(message.confirmed.seq));
        return;
      }
      case "command":
        this.receive(oneof(message.command, "kind"));
        return;
      case "command_batch": {
        // Commands that queued in the daemon while it wrote: one message,
        // applied exactly as that many single Commands, in order.
        const commands = message.command_batch.commands;
        const session = commands.length > 0 ? this.byAttachment.get(commands[0].attachment_id) : undefined;
        if (session) {
          session.batchesReceived += 1;
          session.batchedCommands += commands.length;
        }
        for (const command of commands) this.receive(oneof(command, "kind"));
        return;
      }
      case "result": {
        const result = oneof(message.result, "kind");
        const pending = this.pending.get(result.ref);
        if (result.status_code !== Status.OK) {
          const error = new SiobridgeError(result.status_code, result.status_message);
          if (pending) pending.fail(error);
          else {
            this.forgetUnconfirmed(result.ref);
            this.options.onError(error);
          }
          return;
        }
        // A restored socket joins its rooms as soon as this answer resolves,
        // before the commands queued for this turn would be applied: apply
        // those first, since the answer already counts them as missed.
        if (result.kind === "restore_session" && this.commands.length > 0) this.applyCommands();
        pending?.receive(result);
        return;
      }
      case "namespace_error": {
        const refused = message.namespace_error;
        // The daemon's status code; daemons that sent none refused for a
        // precondition: the server cannot use that namespace.
        this.options.onError(
          new SiobridgeError(
            refused.status_code || Status.FAILED_PRECONDITION,
            `namespace ${refused.namespace}: ${refused.message}`,
          ),
        );
        return;
      }
      default:
        return; // a message of a newer API version
    }
  }

  /**
   * A Command from the daemon, single or from a batch. Applied together once
   * this turn of the event loop has read what arrived, so that engine.io
   * flushes the packets of many commands to a client together (one write,
   * coalesce.ts). Order is kept.
   */
  private receive(command: Command): void {
    const session = this.byAttachment.get(command.attachment_id);
    if (!session) return;
    if (command.position) {
      // Positions are fixed-width hex: text order is delivery order.
      if (command.position <= session.lastPosition) {
        session.repeatsSkipped += 1;
        return;
      }
      session.lastPosition = command.position;
    }
    if (command.origin_instance) {
      // Another Server's call on this daemon, sent again after a daemon restart.
      const seq = Number(command.origin_seq);
      if (seq <= (session.originSeqs.get(command.origin_instance) ?? 0)) {
        session.repeatsSkipped += 1;
        return;
      }
      session.originSeqs.set(command.origin_instance, seq);
    }
    this.commands.push({ session, command });
    if (this.commands.length === 1) setImmediate(() => this.applyCommands());
  }

  private applyCommands(): void {
    const commands = this.commands;
    this.commands = [];
    for (const { session, command } of commands) {
      // Work that arrived before a close is still applied; a closed adapter's is not.
      if (this.sessions.get(session.clientRef) === session) session.sink.onCommand(command);
    }
  }

  private onClosed(stream: grpc.ClientDuplexStream<Buffer, DaemonMessage>): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.writer.attach(undefined);
    this.byAttachment.clear();
    for (const session of this.sessions.values()) session.attachmentId = undefined;
    // Calls already sent may or may not have been applied: queries fail now,
    // rather than at their timeout.
    for (const pending of [...this.pending.values()]) {
      pending.fail(new SiobridgeError(Status.UNAVAILABLE, `${pending.kind}: the connection to siobridged was lost`));
    }
    this.pending.clear();
    if (this.closed || this.sessions.size === 0) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open();
    }, this.reconnectDelay);
    this.reconnectDelay = Math.min(this.options.reconnectMaxDelay, this.reconnectDelay * 2);
  }

  private shutdown(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.writer.flush(true);
    this.writer.attach(undefined);
    this.stream?.end();
    this.stream?.cancel();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
    Connection.shared.delete(this.options.address);
  }
}
