// The Value encoding of PROTOCOL.md section 3, as socketioxide nodes expect it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodePayload, decodeValue, encodePayload, encodeValue } from "../dist/codec.js";

test("JSON parser: the event array as JSON text, as in PROTOCOL.md vector 3", () => {
  const value = encodeValue(["test", 2], "json");
  assert.equal(value.kind, 0);
  assert.equal(value.data.toString("utf8"), '["test",2]');
  assert.deepEqual(value.attachments, []);
  assert.deepEqual(decodeValue(value), ["test", 2]);
});

test("JSON parser: binary arguments become placeholders and attachments, in order", () => {
  const first = Buffer.from([1, 2, 3]);
  const second = new Uint8Array([9, 8]);
  const value = encodeValue(["upload", first, { nested: [second] }], "json");
  assert.equal(
    value.data.toString("utf8"),
    '["upload",{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]}]',
  );
  assert.deepEqual(value.attachments.map((a) => [...a]), [[1, 2, 3], [9, 8]]);
  const [event, bytes, { nested }] = decodeValue(value);
  assert.equal(event, "upload");
  assert.ok(Buffer.isBuffer(bytes) && bytes.equals(first));
  assert.deepEqual([...nested[0]], [9, 8]);
});

test("JSON parser: a placeholder without its attachment is an error, not undefined data", () => {
  const value = { kind: 0, data: Buffer.from('["x",{"_placeholder":true,"num":3}]'), attachments: [] };
  assert.throws(() => decodeValue(value), /placeholder 3 has no attachment/);
});

test("msgpack parser: the parser's bytes, no attachments", () => {
  const value = encodeValue(["packed", { n: 1 }, Buffer.from([7])], "msgpack");
  assert.equal(value.kind, 1);
  assert.deepEqual(value.attachments, []);
  // fixarray(3) fixstr(6)"packed" fixmap(1) "n" 1, bin8(1) 07
  assert.equal(value.data.toString("hex"), "93a67061636b656481a16e01c40107");
  const [event, object, bytes] = decodeValue(value);
  assert.deepEqual([event, object, [...bytes]], ["packed", { n: 1 }, [7]]);
});

test("event data that is not an array is refused", () => {
  assert.throws(() => decodeValue({ kind: 0, data: Buffer.from('{"a":1}'), attachments: [] }), /not an array/);
});

test("serverSideEmit payloads: JSON and msgpack both read back", () => {
  assert.deepEqual(decodePayload(encodePayload(["note", 1], "json")), ["note", 1]);
  assert.deepEqual(decodePayload(encodePayload(["note", 1], "msgpack")), ["note", 1]);
  assert.deepEqual(decodePayload(Buffer.alloc(0)), []);
});
