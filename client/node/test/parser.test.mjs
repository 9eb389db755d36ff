// The adapter tells the socket.io parser of its Server by what it encodes,
// not by which module it is: with the app's own copy of socket.io-parser the
// data must still cross the cluster as JSON text, where socketioxide nodes
// read it. A raw Attach stream sees the data exactly as the daemon passes it on.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Daemon, eventually } from "./support/daemon.mjs";
import { ServerProcess, using } from "./support/cluster.mjs";
import { RawAttachment } from "./support/raw.mjs";
import { encodingOf } from "../dist/parser.js";

const INVALID_ARGUMENT = 3;

test("encodingOf: by what the parser writes", async () => {
  assert.equal(encodingOf(await import("socket.io-parser")), "json");
  assert.equal(encodingOf((await import("socket.io-msgpack-parser")).default), "msgpack");
  assert.equal(encodingOf({ Encoder: class { encode() { return ["not a packet"]; } } }), undefined);
  assert.equal(encodingOf({ Encoder: class { encode() { throw new Error("no"); } } }), undefined);
  assert.equal(encodingOf(undefined), undefined);
});

describe("parser detection", () => {
  let daemon;
  before(async () => {
    daemon = await new Daemon().start();
  });
  after(async () => daemon?.dispose());

  for (const parser of ["json", "msgpack"]) {
    test(`a ${parser}-parser Server beside another copy of socket.io-parser sends ${parser} data`, async () => {
      const raw = await new RawAttachment(daemon).attached();
      const server = await new ServerProcess({ address: daemon.address, parser, separateParserCopy: true }).start();
      await using([server, raw], async () => {
        await eventually(async () => (await server.do("serverCount")) === 2, 10000, "two servers");
        await server.do("emit", { event: "probe", args: ["hi", 1] });
        const { broadcast } = await raw.command("broadcast");
        // What a socketioxide node reads: KIND_STR JSON text, or KIND_BYTES msgpack.
        if (parser === "json") {
          assert.equal(broadcast.data.kind, 0);
          assert.deepEqual(JSON.parse(broadcast.data.data.toString("utf8")), ["probe", "hi", 1]);
        } else {
          assert.equal(broadcast.data.kind, 1);
          assert.equal(broadcast.data.data[0], 0x93); // a msgpack array of 3
        }
      });
    });
  }

  test("a parser whose output is neither JSON nor msgpack needs the option, and gets a clear error without it", async () => {
    await assert.rejects(new ServerProcess({ address: daemon.address, parser: "opaque" }).start(), (error) => {
      assert.equal(error.code, INVALID_ARGUMENT);
      assert.equal(error.codeName, "INVALID_ARGUMENT");
      assert.match(error.message, /cannot tell whether the Server's socket.io parser encodes JSON .* pass parser: "json"/);
      return true;
    });
    const named = await new ServerProcess({ address: daemon.address, parser: "opaque", adapterParser: "json" }).start();
    await named.stop();
  });

  test("an option that contradicts the Server's parser is refused", async () => {
    await assert.rejects(
      new ServerProcess({ address: daemon.address, parser: "msgpack", adapterParser: "json" }).start(),
      (error) => error.code === INVALID_ARGUMENT && /option parser is "json", but .* encodes msgpack/.test(error.message),
    );
  });
});
