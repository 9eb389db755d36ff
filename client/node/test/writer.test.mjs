// How the adapter writes its Attach stream (src/writer.ts): the messages of one
// event-loop turn together and in order after the turn, sizes checked before
// anything is written, back-pressure honoured, MessageBatch framing. The sink here stands for the
// grpc-js stream; the process-level tests (lifecycle.test.mjs) use the real one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { setImmediate as nextTurn } from "node:timers/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { ENVELOPE_ALLOWANCE, StreamWriter, batched, encodeBatch, oneByOne } from "../dist/writer.js";

/** A stream that records what is written; `full` makes write() ask the writer to wait. */
class Sink extends EventEmitter {
  constructor() {
    super();
    this.chunks = [];
    this.full = false;
  }
  write(chunk) {
    this.chunks.push(chunk.toString());
    return !this.full;
  }
}

const serialize = (message) => Buffer.from(JSON.stringify(message));

test("the messages of one turn are written after the turn, together and in order", async () => {
  const sink = new Sink();
  const writer = new StreamWriter(serialize);
  const writes = [];
  writer.attach(sink);
  writer.framing = (messages) => {
    writes.push(messages.map(String));
    return messages;
  };
  for (let i = 0; i < 3; i++) assert.equal(writer.enqueue({ n: i }), undefined);
  assert.deepEqual(sink.chunks, [], "nothing is written during the turn");
  await nextTurn();
  assert.deepEqual(writes, [['{"n":0}', '{"n":1}', '{"n":2}']]);
  writer.enqueue({ n: 3 });
  await nextTurn();
  assert.deepEqual(writes.at(-1), ['{"n":3}']);
  assert.deepEqual(sink.chunks, ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']);
});

test("a message larger than the daemon accepts is refused alone with RESOURCE_EXHAUSTED", async () => {
  const sink = new Sink();
  const writer = new StreamWriter(serialize);
  writer.attach(sink);
  writer.setMaxMessageBytes(100);
  assert.equal(writer.limit, 100 + ENVELOPE_ALLOWANCE);
  writer.enqueue({ before: true });
  const error = writer.enqueue({ big: "x".repeat(100 + ENVELOPE_ALLOWANCE) });
  writer.enqueue({ after: true });
  assert.equal(error.code, 8);
  assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
  assert.match(error.message, /a message of \d+ bytes is larger than siobridged accepts \(\d+ bytes\): not sent/);
  await nextTurn();
  assert.deepEqual(sink.chunks, ['{"before":true}', '{"after":true}']);
});

test("while the stream takes no more, messages wait and then go together", async () => {
  const sink = new Sink();
  const writer = new StreamWriter(serialize);
  const writes = [];
  writer.attach(sink);
  writer.framing = (messages) => {
    writes.push(messages.length);
    return messages;
  };
  sink.full = true;
  writer.enqueue({ n: 0 });
  await nextTurn();
  sink.full = false;
  writer.enqueue({ n: 1 });
  await nextTurn();
  writer.enqueue({ n: 2 });
  await nextTurn();
  assert.deepEqual(sink.chunks, ['{"n":0}'], "nothing more before drain");
  sink.emit("drain");
  assert.deepEqual(sink.chunks, ['{"n":0}', '{"n":1}', '{"n":2}']);
  assert.deepEqual(writes, [1, 2]);
});

test("a new stream starts empty: what was queued for the lost one is dropped", async () => {
  const lost = new Sink(), fresh = new Sink();
  const writer = new StreamWriter(serialize);
  writer.attach(lost);
  writer.enqueue({ old: true });
  writer.attach(fresh);
  writer.enqueue({ hello: true });
  await nextTurn();
  assert.deepEqual(lost.chunks, []);
  assert.deepEqual(fresh.chunks, ['{"hello":true}']);
  writer.attach(undefined);
  assert.equal(writer.enqueue({ nowhere: true }), undefined);
});

test("flush(true) writes at once, even while waiting for drain (the stream is about to end)", async () => {
  const sink = new Sink();
  const writer = new StreamWriter(serialize);
  writer.attach(sink);
  sink.full = true;
  writer.enqueue({ n: 0 });
  await nextTurn();
  writer.enqueue({ detach: true });
  writer.flush(true);
  assert.deepEqual(sink.chunks, ['{"n":0}', '{"detach":true}']);
});

// MessageBatch framing, decoded with the .proto itself: what the daemon parses.
const ServerMessage = protobuf
  .loadSync(join(dirname(fileURLToPath(import.meta.url)), "..", "proto", "siobridge", "v1", "bridge.proto"))
  .lookupType("siobridge.v1.ServerMessage");
const encode = (message) => Buffer.from(ServerMessage.encode(ServerMessage.fromObject(message)).finish());
const decode = (bytes) => ServerMessage.toObject(ServerMessage.decode(bytes), { longs: Number });
const call = (ref, bytes = 10) => ({ call: { ref, broadcast: { packet: { nsp: "/", data: { data: Buffer.alloc(bytes, 120) } } } } });

test("a MessageBatch holds the serialized messages, in order, as the .proto decodes them", () => {
  const messages = [call(1), { detach: { attachmentId: "a.1" } }, call(300, 200)];
  const batch = decode(encodeBatch(messages.map(encode)));
  assert.deepEqual(batch.batch.messages, messages.map((m) => decode(encode(m))));
});

test("batched framing: one message goes as it is; a group is cut before it passes the cap", () => {
  const frame = batched(1000, 1 << 20);
  const one = encode(call(1));
  assert.deepEqual(frame([one]), [one]);

  const small = Array.from({ length: 10 }, (_, i) => encode(call(i + 1, 150)));
  const chunks = frame(small);
  assert.ok(chunks.length > 1, "ten messages of ~170 bytes do not fit one 1000-byte batch");
  assert.ok(chunks.every((chunk) => chunk.length <= 1000), chunks.map((c) => c.length).join(" "));
  const refs = chunks.flatMap((chunk) => {
    const message = decode(chunk);
    return message.batch ? message.batch.messages.map((m) => m.call.ref) : [message.call.ref];
  });
  assert.deepEqual(refs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

  // A message that fills the cap alone goes alone, between batches of the others.
  const big = encode(call(99, 2000));
  const mixed = frame([small[0], small[1], big, small[2]]);
  assert.equal(mixed.length, 3);
  assert.deepEqual(mixed[1], big);
  assert.deepEqual(decode(mixed[0]).batch.messages.map((m) => m.call.ref), [1, 2]);
  assert.deepEqual(decode(mixed[2]).call.ref, 3);
});

test("batched framing: a message of the solo size or more goes alone, between batches of the others", () => {
  const frame = batched(1 << 20, 500);
  const small = [1, 2, 3, 4].map((ref) => encode(call(ref, 100)));
  const large = encode(call(50, 600));
  const chunks = frame([small[0], small[1], large, small[2], small[3]]);
  assert.equal(chunks.length, 3);
  assert.deepEqual(chunks[1], large);
  assert.deepEqual(decode(chunks[0]).batch.messages.map((m) => m.call.ref), [1, 2]);
  assert.deepEqual(decode(chunks[2]).batch.messages.map((m) => m.call.ref), [3, 4]);
  assert.deepEqual(frame([large, large]), [large, large]);
});

test("the writer counts the messages and the stream messages that carried them; a new stream unbatches", async () => {
  const sink = new Sink();
  const writer = new StreamWriter(serialize);
  writer.attach(sink);
  writer.framing = batched(1 << 20);
  for (let i = 0; i < 5; i++) writer.enqueue({ n: i });
  await nextTurn();
  assert.equal(writer.messagesWritten, 5);
  assert.equal(writer.streamMessagesWritten, 1);
  writer.attach(new Sink());
  assert.equal(writer.framing, oneByOne);
});
