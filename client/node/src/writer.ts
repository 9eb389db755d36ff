// Writes one Attach stream. Every message is serialized when it is made, so
// its exact size is known before anything is written: a message larger than
// the daemon accepts is refused on its own (RESOURCE_EXHAUSTED) and never
// reaches gRPC, whose limit would end the stream shared by every Server of the
// process. The messages of one event-loop turn are written together once the
// turn is over, in the order they were made, and while the stream does not
// take more (back-pressure) they wait here and go together with the next ones.
//
// `framing` turns the serialized messages of one write into what goes on the
// stream: today each message as it is. A batch message (one ServerMessage
// holding many, negotiated in Hello) needs only another Framing: its encoding
// is the serialized messages, each behind a tag and a length.
import { SiobridgeError, Status } from "./errors";
import type { ServerMessage } from "./messages";

/** The stream written to: grpc-js's client stream of serialized ServerMessages. */
export interface Sink {
  write(chunk: Buffer): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/** The chunks the stream carries for the serialized messages of one write. */
export type Framing = (messages: Buffer[]) => Buffer[];

/** One ServerMessage per stream message (the only framing of API version 1). */
export const oneByOne: Framing = (messages) => messages;

/**
 * How much larger than Welcome.max_message_bytes a whole message may be: the
 * daemon's receive limit leaves this room for ids, room lists and the envelope
 * (daemon/app/api_server.cc).
 */
export const ENVELOPE_ALLOWANCE = 256 << 10;

export class StreamWriter {
  private sink: Sink | undefined;
  private queued: Buffer[] = [];
  private scheduled = false;
  private waitingForDrain = false;
  private maxBytes = Number.POSITIVE_INFINITY;
  framing: Framing = oneByOne;

  constructor(private readonly serialize: (message: ServerMessage) => Buffer) {}

  /** Writes to `sink` from now on; what was queued for the previous stream is dropped. */
  attach(sink: Sink | undefined): void {
    this.sink = sink;
    this.queued = [];
    this.waitingForDrain = false;
  }

  /** The daemon's max_message_bytes, from Welcome. */
  setMaxMessageBytes(maxMessageBytes: number): void {
    this.maxBytes = maxMessageBytes + ENVELOPE_ALLOWANCE;
  }

  /** Largest whole message the daemon takes (infinite before the first Welcome). */
  get limit(): number {
    return this.maxBytes;
  }

  /**
   * Queues a message for the end of this turn. Returns an error instead when
   * the daemon would refuse its size; a message without a stream is dropped
   * (the stream that would have carried it is gone, and its attachments with it).
   */
  enqueue(message: ServerMessage): SiobridgeError | undefined {
    if (!this.sink) return undefined;
    const bytes = this.serialize(message);
    if (bytes.length > this.maxBytes) {
      return new SiobridgeError(
        Status.RESOURCE_EXHAUSTED,
        `a message of ${bytes.length} bytes is larger than siobridged accepts (${this.maxBytes} bytes): not sent`,
      );
    }
    this.queued.push(bytes);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
    return undefined;
  }

  /**
   * Writes everything queued now, unless the stream asked to wait; `force`
   * writes anyway (the stream is about to end: gRPC buffers it).
   */
  flush(force = false): void {
    const sink = this.sink;
    if (!sink || (this.waitingForDrain && !force) || this.queued.length === 0) return;
    const messages = this.queued;
    this.queued = [];
    let more = true;
    for (const chunk of this.framing(messages)) more = sink.write(chunk);
    if (!more) {
      this.waitingForDrain = true;
      sink.once("drain", () => {
        if (this.sink !== sink) return;
        this.waitingForDrain = false;
        this.flush();
      });
    }
  }
}
