// The errors the adapter reports. Every one carries a gRPC status code: the
// daemon's own (a refused call) or the one the adapter chose for what it saw
// itself (README.md, "Errors", lists which). An app can branch on
// `error.code` (a number, as in @grpc/grpc-js's `status`) or on
// `error.codeName` (its name, e.g. "RESOURCE_EXHAUSTED").
import { status as Status } from "@grpc/grpc-js";

import type { Missing__Output as Missing } from "./generated/siobridge/v1/Missing";

export { Status };

export class SiobridgeError extends Error {
  /** The gRPC status code (a number). */
  readonly code: Status;
  /** Its name, e.g. "DEADLINE_EXCEEDED". */
  readonly codeName: string;
  /**
   * Who did not answer, for a cluster operation that timed out: uids of other
   * daemons (`nodes`) and names of servers attached to this host's daemon
   * (`local_servers`).
   */
  missing?: { nodes: string[]; local_servers: string[] };
  /** What did arrive, for fetchSockets and allRooms that timed out. */
  partial?: unknown[];

  constructor(code: Status, message: string) {
    super(message);
    this.name = "SiobridgeError";
    this.code = code;
    this.codeName = Status[code] ?? `CODE_${code}`;
  }
}

/**
 * Whose words a cluster request that timed out is reported in: socket.io 4.8's
 * MongoDB adapter ("mongo", the default) or socket.io-adapter's
 * ClusterAdapterWithHeartbeat ("cluster"). Apps and libraries match these
 * messages.
 */
export type TimeoutMessages = "mongo" | "cluster";

const TIMEOUT_MESSAGES: readonly TimeoutMessages[] = ["mongo", "cluster"];

/** The `timeoutMessages` option: "mongo" when absent; INVALID_ARGUMENT for a value it does not know. */
export function checkTimeoutMessages(wording: TimeoutMessages | undefined): TimeoutMessages {
  if (wording === undefined) return "mongo";
  if (TIMEOUT_MESSAGES.includes(wording)) return wording;
  throw new SiobridgeError(
    Status.INVALID_ARGUMENT,
    `timeoutMessages must be one of ${TIMEOUT_MESSAGES.map((w) => `"${w}"`).join(", ")}, not ${JSON.stringify(wording)}`,
  );
}

/**
 * socket.io's message, word for word, for a request that `expected` servers
 * should have answered and `received` did (lib/index.ts of
 * @socket.io/mongo-adapter, lib/cluster-adapter.ts of socket.io-adapter).
 */
export function timeoutMessage(wording: TimeoutMessages, received: number, expected: number): string {
  return wording === "cluster"
    ? `timeout reached: missing ${expected - received} responses`
    : `timeout reached: only ${received} responses received out of ${expected}`;
}

/**
 * A DEADLINE_EXCEEDED error with socket.io's message; who did not answer is
 * in `missing` (the message stays socket.io's, for apps that match it).
 */
export function timeoutError(message: string, missing: Missing | null | undefined): SiobridgeError {
  const error = new SiobridgeError(Status.DEADLINE_EXCEEDED, message);
  error.missing = { nodes: [...(missing?.nodes ?? [])], local_servers: [...(missing?.local_servers ?? [])] };
  return error;
}
