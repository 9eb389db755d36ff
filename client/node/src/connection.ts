// One gRPC channel and one Attach stream per process (per daemon address),
// shared by every namespace and every socket.io Server of the process. Each
// Server attaches as its own server ("session") on that stream, so the daemon
// never sends a Server its own work but does send it the work of the process's
// other Servers.
//
// Calls go on the stream, so the daemon applies them in the order they were
// made. While the daemon is away (restart), calls wait in a bounded queue and
// the stream reattaches with backoff, restoring every session's namespaces.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

const PROTO_PATH = join(__dirname, "..", "proto", "siobridge", "v1", "bridge.proto");

// The Bridge service client, loaded once per process.
let BridgeClient: grpc.ServiceClientConstructor | undefined;
function bridgeClient(): grpc.ServiceClientConstructor {
  if (!BridgeClient) {
    const definition = protoLoader.loadSync(PROTO_PATH, {
      keepCase: true,
      longs: String,
      enums: Number,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as any;
    BridgeClient = loaded.siobridge.v1.Bridge as grpc.ServiceClientConstructor;
  }
  return BridgeClient;
}

export interface ConnectionOptions {
  /** "unix:/path", "/path" (a Unix socket) or "host:port". */
  address: string;
  reconnectMinDelay: number;
  reconnectMaxDelay: number;
  /** Calls kept while the daemon is unreachable. */
  maxQueuedCalls: number;
  onError: (error: Error) => void;
}

/** What a session does with the daemon's messages for it. */
export interface SessionSink {
  onCommand(command: any): void;
  onAttached(nodeUid: string): void;
}

export class CallError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "SiobridgeCallError";
  }
}

interface PendingCall {
  resolve: (result: any) => void;
  reject: (error: Error) => void;
  onEvent?: (event: any) => void;
  timer?: NodeJS.Timeout;
  // Set once sent: removes it from the calls awaiting a Result.
  forget?: () => void;
}

interface QueuedCall {
  kind: string;
  request: any;
  wantResult: boolean;
  pending?: PendingCall;
}

export class Session {
  attachmentId: string | undefined;
  nodeUid: string | undefined;
  readonly namespaces = new Set<string>();
  readonly queue: QueuedCall[] = [];

  constructor(
    readonly connection: Connection,
    readonly clientRef: string,
    readonly name: string,
    readonly sink: SessionSink,
  ) {}

  joinNamespace(ns: string): void {
    if (this.namespaces.has(ns)) return;
    this.namespaces.add(ns);
    if (this.attachmentId) this.connection.write({ join_namespace: { namespace: ns, attachment_id: this.attachmentId } });
  }

  leaveNamespace(ns: string): void {
    if (!this.namespaces.delete(ns)) return;
    if (this.attachmentId) this.connection.write({ leave_namespace: { namespace: ns, attachment_id: this.attachmentId } });
  }

  /** Answers a Command (dropped if the stream it came on is gone). */
  reply(reply: any): void {
    if (!this.attachmentId) return;
    this.connection.write({ reply: { ...reply, attachment_id: this.attachmentId } });
  }

  /**
   * A call that answers (queries, broadcast with ack): resolves with its Result,
   * or rejects with a CallError or after `timeoutMs`.
   */
  call(kind: string, request: any, timeoutMs: number, onEvent?: (event: any) => void): Promise<any> {
    return new Promise((resolve, reject) => {
      const pending: PendingCall = { resolve, reject, onEvent };
      // The deadline covers the time a call waits for the daemon too.
      pending.timer = setTimeout(() => {
        pending.forget?.();
        const reject = pending.reject;
        pending.resolve = pending.reject = () => {};
        reject(new Error(`siobridged did not answer ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.connection.send(this, { kind, request, wantResult: true, pending });
    });
  }

  /** A call that answers only when it fails (broadcast, socket changes): reported through onError. */
  send(kind: string, request: any): void {
    this.connection.send(this, { kind, request, wantResult: false });
  }

  close(): void {
    this.connection.unregister(this);
  }
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
  private stream: grpc.ClientDuplexStream<any, any> | undefined;
  private readonly sessions = new Map<string, Session>();
  private readonly byAttachment = new Map<string, Session>();
  private readonly pending = new Map<string, PendingCall>();
  private commands: { session: Session; command: any }[] = [];
  private nextRef = 1;
  private nextSession = 1;
  private reconnectDelay: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly options: ConnectionOptions) {
    this.reconnectDelay = options.reconnectMinDelay;
  }

  /** Attaches one socket.io Server. */
  register(name: string, sink: SessionSink): Session {
    const session = new Session(this, String(this.nextSession++), name, sink);
    this.sessions.set(session.clientRef, session);
    this.closed = false;
    if (this.stream) this.hello(session);
    else this.open();
    return session;
  }

  unregister(session: Session): void {
    if (!this.sessions.delete(session.clientRef)) return;
    if (session.attachmentId) {
      this.write({ detach: { attachment_id: session.attachmentId } });
      this.byAttachment.delete(session.attachmentId);
    }
    for (const queued of session.queue) queued.pending?.reject(new Error("the adapter was closed"));
    session.queue.length = 0;
    if (this.sessions.size === 0) this.shutdown();
  }

  /** Sends a call now if the session is attached, else queues it. */
  send(session: Session, call: QueuedCall): void {
    if (session.attachmentId && this.stream) {
      this.transmit(session, call);
      return;
    }
    if (session.queue.length >= this.options.maxQueuedCalls) {
      const error = new Error(
        `siobridged is unreachable at ${this.options.address}: ${session.queue.length} calls are waiting`,
      );
      if (call.pending) this.settle(call.pending, () => call.pending!.reject(error));
      else this.options.onError(error);
      return;
    }
    session.queue.push(call);
  }

  write(message: any): void {
    this.stream?.write(message);
  }

  private transmit(session: Session, call: QueuedCall): void {
    const ref = String(this.nextRef++);
    if (call.pending) {
      this.pending.set(ref, call.pending);
      call.pending.forget = () => this.pending.delete(ref);
    }
    this.write({
      call: { ref, attachment_id: session.attachmentId, want_result: call.wantResult, [call.kind]: call.request },
    });
  }

  private open(): void {
    if (this.closed || this.sessions.size === 0) return;
    if (!this.client) {
      const Client = bridgeClient();
      const target = this.options.address.startsWith("/") ? `unix:${this.options.address}` : this.options.address;
      this.client = new Client(target, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 64 << 20,
        "grpc.max_send_message_length": 64 << 20,
        "grpc.initial_reconnect_backoff_ms": this.options.reconnectMinDelay,
        "grpc.max_reconnect_backoff_ms": this.options.reconnectMaxDelay,
      });
    }
    // Wait for the daemon rather than fail while it is (re)starting.
    const metadata = new grpc.Metadata({ waitForReady: true });
    const stream: grpc.ClientDuplexStream<any, any> = (this.client as any).Attach(metadata);
    this.stream = stream;
    stream.on("data", (message: any) => this.onMessage(message));
    stream.on("error", (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED || !this.closed) {
        this.options.onError(new Error(`siobridged stream: ${error.details || error.message}`));
      }
    });
    // "status" comes once when the call ends, however it ends; "close" needs
    // our side ended too, which a lost daemon does not do.
    stream.on("status", () => this.onClosed(stream));
    stream.on("close", () => this.onClosed(stream));
    for (const session of this.sessions.values()) this.hello(session);
  }

  private hello(session: Session): void {
    this.write({ hello: { name: session.name, namespaces: [...session.namespaces], client_ref: session.clientRef } });
  }

  private onMessage(message: any): void {
    switch (message.kind) {
      case "welcome": {
        const session = this.sessions.get(message.welcome.client_ref);
        if (!session) return;
        session.attachmentId = message.welcome.attachment_id;
        session.nodeUid = message.welcome.node_uid;
        this.byAttachment.set(session.attachmentId!, session);
        this.reconnectDelay = this.options.reconnectMinDelay;
        // Namespaces joined while the Hello was on its way (joining twice is a
        // no-op), before the calls that were waiting for the attachment.
        for (const ns of session.namespaces) {
          this.write({ join_namespace: { namespace: ns, attachment_id: session.attachmentId } });
        }
        session.sink.onAttached(session.nodeUid!);
        const queued = session.queue.splice(0);
        for (const call of queued) this.transmit(session, call);
        return;
      }
      case "command": {
        // Applied together once this turn of the event loop has read what
        // arrived: the sockets' writes of many commands then leave in one
        // system call per client instead of one per command. Order is kept.
        const session = this.byAttachment.get(message.command.attachment_id);
        if (!session) return;
        this.commands.push({ session, command: message.command });
        if (this.commands.length === 1) setImmediate(() => this.applyCommands());
        return;
      }
      case "result": {
        const result = message.result;
        const pending = this.pending.get(result.ref);
        if (result.status_code !== 0) {
          const error = new CallError(result.status_message, result.status_code);
          if (pending) {
            this.pending.delete(result.ref);
            this.settle(pending, () => pending.reject(error));
          } else {
            this.options.onError(error);
          }
          return;
        }
        if (!pending) return;
        if (result.kind === "ack_event") {
          pending.onEvent?.(result.ack_event);
          if (result.ack_event.kind !== "done") return;
        }
        this.pending.delete(result.ref);
        this.settle(pending, () => pending.resolve(result[result.kind]));
        return;
      }
      case "namespace_error":
        this.options.onError(
          new Error(`namespace ${message.namespace_error.namespace}: ${message.namespace_error.message}`),
        );
        return;
    }
  }

  private applyCommands(): void {
    const commands = this.commands;
    this.commands = [];
    for (const { session, command } of commands) {
      // Work that arrived before a close is still applied; a closed adapter's is not.
      if (this.sessions.get(session.clientRef) === session) session.sink.onCommand(command);
    }
  }

  private settle(pending: PendingCall, outcome: () => void): void {
    if (pending.timer) clearTimeout(pending.timer);
    outcome();
  }

  private onClosed(stream: grpc.ClientDuplexStream<any, any>): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.byAttachment.clear();
    for (const session of this.sessions.values()) session.attachmentId = undefined;
    // Calls already sent may or may not have been applied: queries fail now,
    // rather than at their timeout.
    const lost = new Error("the connection to siobridged was lost");
    for (const pending of this.pending.values()) this.settle(pending, () => pending.reject(lost));
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
    this.stream?.end();
    this.stream?.cancel();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
    Connection.shared.delete(this.options.address);
  }
}
