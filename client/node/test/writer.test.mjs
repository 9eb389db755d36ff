// How the adapter writes its Attach stream (src/writer.ts): the messages of one
// event-loop turn together and in order after the turn, sizes checked before
// anything is written, back-pressure honoured. The sink here stands for the
// grpc-js stream; the process-level tests (lifecycle.test.mjs) use the real one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { setImmediate as nextTurn } from "node:timers/promises";
import { ENVELOPE_ALLOWANCE, StreamWriter } from "../dist/writer.js";

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
  writer.framing = (messages) => {
    writes.push(messages.map(String));
    return messages;
  };
  writer.attach(sink);
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
  writer.framing = (messages) => {
    writes.push(messages.length);
    return messages;
  };
  writer.attach(sink);
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
