// Which encoding the socket.io parser of a Server produces, found by what it
// does: the Server's encoder encodes a probe packet and the output is read
// back. Comparing module identity (is this socket.io-parser?) fails as soon as
// the app's socket.io has its own copy of the parser, and a wrong answer puts
// msgpack bytes where socketioxide nodes expect JSON text.
import * as notepack from "notepack.io";
import { isDeepStrictEqual } from "node:util";

import { SiobridgeError, Status } from "./errors";

export type Parser = "json" | "msgpack";

const PROBE = { type: 2, nsp: "/", data: ["siobridge-probe", 1, { n: [true, null] }] };

interface ParserModule {
  Encoder: new () => { encode(packet: typeof PROBE): unknown };
}

function isParserModule(value: unknown): value is ParserModule {
  return typeof (value as { Encoder?: unknown } | undefined)?.Encoder === "function";
}

/** The encoding of `parser` (a socket.io parser module), or undefined when it is neither. */
export function encodingOf(parser: unknown): Parser | undefined {
  if (!isParserModule(parser)) return undefined;
  let encoded: unknown;
  try {
    encoded = new parser.Encoder().encode(PROBE);
  } catch {
    return undefined;
  }
  if (!Array.isArray(encoded) || encoded.length !== 1) return undefined;
  const [first] = encoded;
  if (typeof first === "string") {
    // socket.io's JSON parser: the packet type, then the JSON of the data.
    if (!first.startsWith(String(PROBE.type))) return undefined;
    try {
      return isDeepStrictEqual(JSON.parse(first.slice(1)), PROBE.data) ? "json" : undefined;
    } catch {
      return undefined;
    }
  }
  if (first instanceof Uint8Array || first instanceof ArrayBuffer) {
    // socket.io-msgpack-parser: the whole packet as one msgpack map.
    try {
      const decoded = notepack.decode(Buffer.from(first instanceof ArrayBuffer ? new Uint8Array(first) : first));
      const packet = decoded as { type?: unknown; nsp?: unknown; data?: unknown } | null;
      return packet?.type === PROBE.type && isDeepStrictEqual(packet.data, PROBE.data) ? "msgpack" : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The encoding to use for a Server with parser module `parser` (socket.io's
 * `server._parser`). `configured` (the adapter's `parser` option) is needed
 * only when the parser's output is neither encoding, and must agree with it
 * otherwise.
 */
export function resolveParser(parser: unknown, configured: Parser | undefined): Parser {
  if (configured !== undefined && configured !== "json" && configured !== "msgpack") {
    throw new SiobridgeError(
      Status.INVALID_ARGUMENT,
      `siobridge adapter: option parser must be "json" or "msgpack", not ${JSON.stringify(configured)}`,
    );
  }
  const detected = encodingOf(parser);
  if (detected && configured && detected !== configured) {
    throw new SiobridgeError(
      Status.INVALID_ARGUMENT,
      `siobridge adapter: option parser is "${configured}", but the Server's socket.io parser encodes ${detected}`,
    );
  }
  const parserOf = detected ?? configured;
  if (!parserOf) {
    throw new SiobridgeError(
      Status.INVALID_ARGUMENT,
      "siobridge adapter: cannot tell whether the Server's socket.io parser encodes JSON (socket.io's default) or " +
        'msgpack (socket.io-msgpack-parser); pass parser: "json" or parser: "msgpack" to createAdapter()',
    );
  }
  return parserOf;
}
