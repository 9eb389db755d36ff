// Writes one Attach stream. Every message is serialized when it is made, so
// its exact size is known before anything is written: a message larger than
// the daemon accepts is refused on its own (RESOURCE_EXHAUSTED) and never
// reaches gRPC, whose limit would end the stream shared by every Server of the
// process. The messages of one event-loop turn are written together once the
// turn is over, in the order they were made, and while the stream does not
// take more (back-pressure) they wait here and go together with the next ones.
//
// `framing` turns the serialized messages of one write into what goes on the
// stream: each message as it is, or, once the daemon accepted "message_batch",
// consecutive messages wrapped in MessageBatch messages (`batched`), which the
// daemon reads with one read each instead of one per message. A MessageBatch
// is encoded here from the serialized messages, each behind a tag and a
// length, without decoding them again.
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

/** ServerMessage field 7 (batch) and MessageBatch field 1 (messages), both length-delimited. */
const BATCH_TAG = (7 << 3) | 2;
const MESSAGES_TAG = (1 << 3) | 2;

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length += 1;
  }
  return length;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/** One ServerMessage holding `messages` (serialized ServerMessages) as its MessageBatch. */
export function encodeBatch(messages: Buffer[]): Buffer {
  let inner = 0;
  for (const message of messages) inner += 1 + varintLength(message.length) + message.length;
  const out = Buffer.allocUnsafe(1 + varintLength(inner) + inner);
  let at = 0;
  out[at++] = BATCH_TAG;
  at = writeVarint(out, at, inner);
  for (const message of messages) {
    out[at++] = MESSAGES_TAG;
    at = writeVarint(out, at, message.length);
    at += message.copy(out, at);
  }
  return out;
}

/**
 * From this size on a message goes alone: copying it into a batch costs more
 * than the read it would save the daemon (a 10 KiB event: the sending server
 * spent 8 % of its CPU on that copy, mostly first touches of the new batch's
 * pages, for a saving of 1 read in 25).
 */
export const SOLO_MESSAGE_BYTES = 4 << 10;

/**
 * Consecutive messages grouped into MessageBatches of at most `maxBatchBytes`.
 * A message of SOLO_MESSAGE_BYTES or more, or one that would fill a batch
 * alone, goes as it is, between the batches of the others; so does a group of one.
 */
export function batched(maxBatchBytes: number, soloBytes = SOLO_MESSAGE_BYTES): Framing {
  return (messages) => {
    if (messages.length < 2) return messages;
    const out: Buffer[] = [];
    let group: Buffer[] = [];
    let groupBytes = 0;
    const close = () => {
      if (group.length === 1) out.push(group[0]);
      else if (group.length > 1) out.push(encodeBatch(group));
      group = [];
      groupBytes = 0;
    };
    for (const message of messages) {
      if (message.length >= soloBytes) {
        close();
        out.push(message);
        continue;
      }
      const framed = 6 + message.length; // its tag and length take at most 6 bytes
      if (group.length > 0 && groupBytes + framed > maxBatchBytes) close();
      group.push(message);
      groupBytes += framed;
    }
    close();
    return out;
  };
}

/** The largest MessageBatch the adapter makes (the daemon's own limit may be lower). */
export const MAX_BATCH_BYTES = 256 << 10;

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
  /** ServerMessages written, and the stream messages that carried them, for tests and diagnostics. */
  messagesWritten = 0;
  streamMessagesWritten = 0;

  constructor(private readonly serialize: (message: ServerMessage) => Buffer) {}

  /**
   * Writes to `sink` from now on; what was queued for the previous stream is
   * dropped. A new stream sends one message at a time until its daemon accepts
   * batches (the daemon may have been replaced by an older one).
   */
  attach(sink: Sink | undefined): void {
    this.sink = sink;
    this.queued = [];
    this.waitingForDrain = false;
    this.framing = oneByOne;
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
    const chunks = this.framing(messages);
    this.messagesWritten += messages.length;
    this.streamMessagesWritten += chunks.length;
    for (const chunk of chunks) more = sink.write(chunk);
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
