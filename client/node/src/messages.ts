// The daemon's API (proto/siobridge/v1/bridge.proto) as TypeScript types.
// The message types are generated from the proto at build time (src/generated,
// scripts/gen-types.mjs); here each oneof becomes a discriminated union, so a
// `switch` on its virtual field (proto-loader's `oneofs: true`) narrows to the
// one variant that is set, and the calls the adapter makes are typed by kind.
import type { Ack__Output } from "./generated/siobridge/v1/Ack";
import type { AckDone__Output } from "./generated/siobridge/v1/AckDone";
import type { AckEvent__Output } from "./generated/siobridge/v1/AckEvent";
import type { AllRoomsReply__Output } from "./generated/siobridge/v1/AllRoomsReply";
import type { Call } from "./generated/siobridge/v1/Call";
import type { Command__Output } from "./generated/siobridge/v1/Command";
import type { DaemonMessage__Output } from "./generated/siobridge/v1/DaemonMessage";
import type { FetchSocketsReply__Output } from "./generated/siobridge/v1/FetchSocketsReply";
import type { Reply } from "./generated/siobridge/v1/Reply";
import type { Result__Output } from "./generated/siobridge/v1/Result";
import type { RestoreSessionReply__Output } from "./generated/siobridge/v1/RestoreSessionReply";
import type { ServerCountReply__Output } from "./generated/siobridge/v1/ServerCountReply";
import type { ServerMessage } from "./generated/siobridge/v1/ServerMessage";
import type { ServerSideEmitReply__Output } from "./generated/siobridge/v1/ServerSideEmitReply";

export type { BroadcastOptions } from "./generated/siobridge/v1/BroadcastOptions";
export type { BroadcastOptions__Output } from "./generated/siobridge/v1/BroadcastOptions";
export type { Missing__Output as Missing } from "./generated/siobridge/v1/Missing";
export type { Packet, Packet__Output } from "./generated/siobridge/v1/Packet";
export type { SocketInfo, SocketInfo__Output } from "./generated/siobridge/v1/SocketInfo";
export type { Value, Value__Output } from "./generated/siobridge/v1/Value";
export type { Welcome__Output as Welcome } from "./generated/siobridge/v1/Welcome";
export type { ServerMessage, Reply };

// ------------------------------------------------------------ oneof unions

/** The field names of the oneof whose virtual field is `D`. */
type Members<T, D extends keyof T> = Extract<NonNullable<T[D]>, string>;

/** The variant of T whose oneof `D` holds field K: K is present, the other members are not. */
type Variant<T, D extends keyof T, K extends string> = Omit<T, D | Members<T, D>> & { [P in D]: K } & {
  [P in K & keyof T]-?: NonNullable<T[P]>;
};

/**
 * A decoded message with oneof `D` as a discriminated union. The last variant
 * has nothing set: an error Result, or a kind this adapter does not know yet
 * (a newer daemon).
 */
export type OneofUnion<T, D extends keyof T> =
  | { [K in Members<T, D>]: Variant<T, D, K> }[Members<T, D>]
  | (Omit<T, D | Members<T, D>> & { [P in D]?: undefined });

export type { DaemonMessage__Output };
export type DaemonMessage = OneofUnion<DaemonMessage__Output, "kind">;
/** Work another server asks of this server's sockets. */
export type Command = OneofUnion<Command__Output, "kind">;
/** The answer to a Call. */
export type Result = OneofUnion<Result__Output, "kind">;
export type AckEvent = OneofUnion<AckEvent__Output, "kind">;
export type Ack = OneofUnion<Ack__Output, "result">;

export type CommandKind = Members<Command__Output, "kind">;

/** A decoded message as the discriminated union of its oneof `field`. */
export function oneof<T, D extends keyof T>(message: T, field: D): OneofUnion<T, D> {
  void field; // names the oneof for the type; proto-loader already set it
  return message as OneofUnion<T, D>;
}

// ------------------------------------------------------------------- calls

/** The operations made on the Attach stream (Call.kind). */
export type CallKind = Members<Call, "kind">;
/** The request of a call kind. */
export type CallRequest<K extends CallKind> = NonNullable<Call[K]>;

/** What the calls that answer resolve to. */
export interface CallAnswers {
  broadcast_with_ack: AckDone__Output;
  fetch_sockets: FetchSocketsReply__Output;
  all_rooms: AllRoomsReply__Output;
  server_count: ServerCountReply__Output;
  server_side_emit: ServerSideEmitReply__Output;
  restore_session: RestoreSessionReply__Output;
}
export type AnsweredKind = keyof CallAnswers & CallKind;

/**
 * The final answer of a call of kind K in `result`, undefined when the Result
 * is not (yet) that: a broadcast with ack answers with AckEvents, the last of
 * them Done.
 */
export function answerOf<K extends AnsweredKind>(kind: K, result: Result): CallAnswers[K] | undefined {
  const answers: { [A in AnsweredKind]: (r: Result) => CallAnswers[A] | undefined } = {
    broadcast_with_ack: (r) => {
      if (r.kind !== "ack_event") return undefined;
      const event = oneof(r.ack_event, "kind");
      return event.kind === "done" ? event.done : undefined;
    },
    fetch_sockets: (r) => (r.kind === "fetch_sockets" ? r.fetch_sockets : undefined),
    all_rooms: (r) => (r.kind === "all_rooms" ? r.all_rooms : undefined),
    server_count: (r) => (r.kind === "server_count" ? r.server_count : undefined),
    server_side_emit: (r) => (r.kind === "server_side_emit" ? r.server_side_emit : undefined),
    restore_session: (r) => (r.kind === "restore_session" ? r.restore_session : undefined),
  };
  return answers[kind](result) as CallAnswers[K] | undefined;
}

/** Bytes of event data in a call, as the daemon counts them against max_message_bytes. */
export function payloadBytes<K extends CallKind>(kind: K, request: CallRequest<K>): number {
  const size = (bytes: Buffer | Uint8Array | string | undefined) =>
    bytes === undefined ? 0 : typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length;
  if (kind === "broadcast" || kind === "broadcast_with_ack") {
    const value = (request as CallRequest<"broadcast">).packet?.data;
    if (!value) return 0;
    return (value.attachments ?? []).reduce((sum: number, a) => sum + size(a), size(value.data));
  }
  if (kind === "server_side_emit") return size((request as CallRequest<"server_side_emit">).payload);
  return 0;
}
