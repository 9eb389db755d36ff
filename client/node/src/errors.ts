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
  /** Who did not answer, for a cluster operation that timed out. */
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

/** The names of who did not answer, for an error message. */
export function missingNames(missing: Missing | null | undefined): string[] {
  if (!missing) return [];
  return [...missing.nodes.map((uid) => `node ${uid}`), ...missing.local_servers.map((name) => `server '${name}'`)];
}

/** A DEADLINE_EXCEEDED error naming who did not answer. */
export function timeoutError(message: string, missing: Missing | null | undefined, separator = "; "): SiobridgeError {
  const names = missingNames(missing);
  const error = new SiobridgeError(
    Status.DEADLINE_EXCEEDED,
    names.length > 0 ? `${message}${separator}no answer from ${names.join(", ")}` : message,
  );
  error.missing = { nodes: [...(missing?.nodes ?? [])], local_servers: [...(missing?.local_servers ?? [])] };
  return error;
}
