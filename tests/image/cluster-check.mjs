// Two socket.io chat servers (client/node/examples/demo/chat-server.cjs, real
// socket.io with the siobridge adapter, separate processes), each attached to
// its own siobridged, exchange broadcasts through MongoDB with real
// socket.io-client users. scripts/image-test runs it with one daemon inside the
// container image (reached through the socket in a bind-mounted directory) and
// one outside.
//
//   node cluster-check.mjs --a unix:/dir/siobridged.sock --b unix:/other/siobridged.sock
//
// Prints what it checked; exits 0 when every broadcast reached exactly the
// users it was meant for, 1 otherwise.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(join(root, "client/node/package.json"));
const { io: connect } = require("socket.io-client");

const { values: args } = parseArgs({ options: { a: { type: "string" }, b: { type: "string" } } });
if (!args.a || !args.b) {
  console.error("usage: cluster-check.mjs --a ADDRESS --b ADDRESS");
  process.exit(2);
}

const children = [];
const sockets = [];

// Cluster membership is only observable by asking: every 50 ms until it holds.
async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startServer(name, address) {
  const child = fork(join(root, "client/node/examples/demo/chat-server.cjs"), {
    env: { ...process.env, NAME: name, SIOBRIDGE_ADDRESS: address, PORT: "0" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  const pending = new Map();
  let nextId = 1;
  const ask = (action, actionArgs) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, action, args: actionArgs });
    });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server ${name} exited (${code})`)));
    child.on("message", (m) => {
      if (m.ready) resolve({ name, port: m.port, ask });
      const waiter = pending.get(m.id);
      if (!waiter) return;
      pending.delete(m.id);
      if (m.error) waiter.reject(new Error(m.error));
      else waiter.resolve(m.result);
    });
  });
}

async function user(name, server, room) {
  const socket = connect(`http://127.0.0.1:${server.port}`, {
    auth: { user: name, room },
    transports: ["websocket"],
    reconnection: false,
  });
  socket.heard = [];
  socket.on("said", (message) => socket.heard.push(message));
  sockets.push(socket);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

// Resolves once every socket of `group` has heard the message `text`.
function heardBy(group, text) {
  return Promise.all(
    group.map(
      (s) =>
        new Promise((resolve) => {
          if (s.heard.some((m) => m.text === text)) return resolve();
          const on = (m) => {
            if (m.text !== text) return;
            s.off("said", on);
            resolve();
          };
          s.on("said", on);
        }),
    ),
  );
}

const count = (socket, text) => socket.heard.filter((m) => m.text === text).length;
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok" : "not ok"} - ${what}`);
  if (!ok) failures++;
}

async function main() {
  const alpha = await startServer("alpha", args.a);
  const beta = await startServer("beta", args.b);
  for (const server of [alpha, beta]) {
    await waitFor(async () => (await server.ask("serverCount")) === 2, `${server.name} counts 2 servers`);
  }
  check(true, "both servers count 2 servers in the cluster");

  // Three users on alpha, two on beta; the lobby spans both servers.
  const a1 = await user("a1", alpha, "lobby");
  const a2 = await user("a2", alpha, "lobby");
  const a3 = await user("a3", alpha, "quiet");
  const b1 = await user("b1", beta, "lobby");
  const b2 = await user("b2", beta, "quiet");
  const everyone = [a1, a2, a3, b1, b2];
  const lobby = [a1, a2, b1];

  const rounds = 5;
  // Shouts from both sides reach everyone, each exactly once.
  for (let i = 0; i < rounds; i++) {
    a1.emit("shout", `from alpha ${i}`);
    b2.emit("shout", `from beta ${i}`);
  }
  await Promise.all(
    Array.from({ length: rounds }, (_, i) => [heardBy(everyone, `from alpha ${i}`), heardBy(everyone, `from beta ${i}`)]).flat(),
  );
  // Room broadcasts from each side reach the lobby members of both servers only.
  b1.emit("say", "lobby via beta");
  a2.emit("say", "lobby via alpha");
  await Promise.all([heardBy(lobby, "lobby via beta"), heardBy(lobby, "lobby via alpha")]);
  // A last broadcast from each server marks the end: anything duplicated or
  // misrouted before it has arrived by the time both markers have.
  a3.emit("shout", "end alpha");
  b2.emit("shout", "end beta");
  await Promise.all([heardBy(everyone, "end alpha"), heardBy(everyone, "end beta")]);

  for (const s of everyone) {
    const name = s.auth.user;
    const shouts = Array.from({ length: rounds }, (_, i) => [count(s, `from alpha ${i}`), count(s, `from beta ${i}`)]).flat();
    check(shouts.every((n) => n === 1), `${name} heard each of the ${2 * rounds} shouts exactly once (${shouts.join(",")})`);
    const inLobby = lobby.includes(s);
    const roomCounts = [count(s, "lobby via beta"), count(s, "lobby via alpha")];
    const want = inLobby ? 1 : 0;
    check(roomCounts.every((n) => n === want),
      `${name} heard the lobby's messages ${want} time(s) each (${roomCounts.join(",")})`);
    check(s.heard.length === 2 * rounds + 2 * want + 2, `${name} heard ${s.heard.length} messages in all`);
  }

  // A cluster-wide query crosses the container boundary too.
  const who = await alpha.ask("who");
  check(who.length === everyone.length && who.filter((s) => s.server === "beta").length === 2,
    `alpha's fetchSockets sees all ${everyone.length} users, 2 of them on beta`);
}

main()
  .catch((error) => {
    console.log(`not ok - ${error.message}`);
    failures++;
  })
  .finally(() => {
    for (const s of sockets) s.close();
    for (const c of children) c.kill("SIGTERM");
    console.log(failures === 0 ? "cluster check passed" : `cluster check: ${failures} failure(s)`);
    process.exit(failures === 0 ? 0 : 1);
  });
