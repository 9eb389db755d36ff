// One socket.io server of the end-to-end benchmark, in its own process, with
// the siobridge adapter (or none, for the ceiling). The sender emits on
// request; the receiver only serves its clients.
const { join } = require("node:path");
const clientDir = join(__dirname, "..", "..", "client", "node");
const { Server } = require(join(clientDir, "node_modules", "socket.io"));
const { createAdapter } = require(join(clientDir, "dist"));

const errors = [];
// Without an address: socket.io's own in-memory adapter (the benchmark's ceiling).
const io = process.env.SIOBRIDGE_ADDRESS
  ? new Server({ adapter: createAdapter({ address: process.env.SIOBRIDGE_ADDRESS, onError: (e) => errors.push(e.message) }) })
  : new Server();
io.listen(0);

const now = () => performance.timeOrigin + performance.now();

// Emits `count` events of `bytes` bytes: paced at `rate` per second, or as
// fast as the event loop allows when rate is 0 (in chunks, so I/O goes on).
function run({ count, rate, bytes }) {
  const padding = "x".repeat(bytes);
  return new Promise((done) => {
    let sent = 0;
    const start = now();
    const tick = () => {
      const due = rate > 0 ? Math.min(count, Math.floor(((now() - start) / 1000) * rate) + 1) : Math.min(count, sent + 200);
      while (sent < due) {
        io.emit("m", sent, now(), padding);
        sent += 1;
      }
      if (sent >= count) done({ sent, seconds: (now() - start) / 1000 });
      else if (rate > 0) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });
}

const actions = {
  port: () => io.httpServer.address().port,
  serverCount: () => io.of("/").adapter.serverCount(),
  run,
  errors: () => errors,
};
process.on("message", async ({ id, action, args }) => {
  try {
    process.send({ id, result: await actions[action](args ?? {}) });
  } catch (error) {
    process.send({ id, error: error.message });
  }
});
process.send({ ready: true });
process.on("SIGTERM", () => process.exit(0));
