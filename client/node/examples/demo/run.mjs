// The siobridge demo: siobridged daemons, four socket.io chat servers attached
// to them (separate processes: two Node.js, one Python with python-socketio's
// AsyncServer, one Flask-SocketIO app), socket.io-client users talking across
// them, and an emitter process sending to a room. Run through scripts/demo,
// which builds everything first.
//
//   node run.mjs --daemon <siobridged> --ctl <siobridgectl> [--mongodb-uri URI]
//
// Without a MongoDB URI one daemon bridges the servers in memory; with one,
// there are two daemons (alpha on the first, beta, gamma and delta on the second)
// that meet in MongoDB.
import { spawn, fork, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { io as connect } from "socket.io-client";

const { values: args } = parseArgs({
  options: { daemon: { type: "string" }, ctl: { type: "string" }, "mongodb-uri": { type: "string" } },
});
const mongoUri = args["mongodb-uri"];
const workDir = mkdtempSync(join(tmpdir(), "siobridge-demo-"));
const children = [];

const say = (text) => console.log(text);
const indent = (text) => text.trimEnd().replace(/^/gm, "  ");
const step = (text) => console.log(`\n== ${text}`);

async function startDaemon(name) {
  const socket = join(workDir, `${name}.sock`);
  const log = join(workDir, `${name}.log`);
  const flags = ["--listen-unix", socket, "--log-file", log, "--mongodb-state-dir", join(workDir, `${name}-state`)];
  if (mongoUri) {
    flags.push("--mongodb-uri", mongoUri, "--mongodb-database", "siobridge_demo",
               "--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", "5s");
  }
  const child = spawn(args.daemon, flags, { stdio: "ignore" });
  children.push(child);
  let exited = null;
  child.once("exit", (code) => (exited = code));
  const daemon = { name, socket, address: `unix:${socket}` };
  await waitFor(() => {
    if (exited !== null) {
      const lines = readFileSync(log, "utf8").trim().split("\n");
      throw new Fatal(`${name} exited (code ${exited}): ${lines[lines.length - 1]}`);
    }
    return status(daemon).bus_state === "ready";
  }, `${name} ready`);
  return daemon;
}

class Fatal extends Error {}

function ctl(daemon, ...rest) {
  return execFileSync(args.ctl, ["--address", daemon.address, ...rest], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const status = (daemon) => JSON.parse(ctl(daemon, "--json", "status"));

async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof Fatal) throw error;
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (logs in ${workDir})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const python = process.env.SIOBRIDGE_PYTHON ?? "/usr/bin/python3";
const pythonPath = join(import.meta.dirname, "..", "..", "..", "python", "src");

/** The demo's emitter script: a process with no socket.io server sends to `room`. */
function emitNews(daemon, room, text) {
  return execFileSync(python, [join(import.meta.dirname, "emit_news.py"), room, text], {
    encoding: "utf8",
    env: { ...process.env, SIOBRIDGE_ADDRESS: daemon.address, PYTHONPATH: pythonPath },
  });
}

function startServer(name, daemon, language = "node") {
  const options = {
    env: { ...process.env, NAME: name, SIOBRIDGE_ADDRESS: daemon.address, PORT: "0" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  };
  // The Python servers (chat_server.py, flask_chat_server.py) speak the same
  // IPC (Node's channel on NODE_CHANNEL_FD).
  const script = { python: "chat_server.py", flask: "flask_chat_server.py" }[language];
  const child = script
    ? spawn(python, [join(import.meta.dirname, script)], { ...options, env: { ...options.env, PYTHONPATH: pythonPath } })
    : fork(join(import.meta.dirname, "chat-server.cjs"), options);
  children.push(child);
  const pending = new Map();
  let nextId = 1;
  const server = {
    name,
    ask: (action, actionArgs) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        child.send({ id, action, args: actionArgs });
      }),
  };
  return new Promise((resolve) => {
    child.on("message", (m) => {
      if (m.ready) resolve({ ...server, port: m.port });
      const waiter = pending.get(m.id);
      if (!waiter) return;
      pending.delete(m.id);
      if (m.error) waiter.reject(new Error(m.error));
      else waiter.resolve(m.result);
    });
  });
}

async function user(name, server, room, transports = ["websocket"]) {
  const socket = connect(`http://127.0.0.1:${server.port}`, {
    auth: { user: name, room },
    transports,
    reconnection: false,
  });
  socket.on("said", ({ from, via, text }) => say(`  ${name} (on ${server.name}) got "${text}" from ${from} via ${via}`));
  socket.on("poll", (question, answer) => answer(`${name} says ${name === "bob" ? "sushi" : "pizza"}`));
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") say(`  ${name} was disconnected (${reason})`);
  });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

/** Resolves once every socket got `count` more "said" events. */
function heardBy(sockets, count = 1) {
  return Promise.all(
    sockets.map((s) => new Promise((resolve) => {
      let left = count;
      const on = () => {
        if (--left === 0) {
          s.off("said", on);
          resolve();
        }
      };
      s.on("said", on);
    })),
  );
}

async function main() {
  step(mongoUri ? `two siobridged daemons sharing MongoDB (${mongoUri})` : "one siobridged daemon, in-memory bus");
  // One after the other: the first creates the collection.
  const daemons = [];
  for (const name of mongoUri ? ["daemon-1", "daemon-2"] : ["daemon"]) {
    const daemon = await startDaemon(name);
    daemons.push(daemon);
    const { node_uid: uid, backend } = status(daemon);
    say(`  ${daemon.name}: uid ${uid}, backend ${backend}, API on ${daemon.socket}`);
  }

  step("four socket.io chat servers attach: alpha and beta (Node.js), gamma (python-socketio), delta (Flask-SocketIO)");
  const alpha = await startServer("alpha", daemons[0]);
  const beta = await startServer("beta", daemons[daemons.length - 1]);
  const gamma = await startServer("gamma", daemons[daemons.length - 1], "python");
  const delta = await startServer("delta", daemons[daemons.length - 1], "flask");
  for (const server of [alpha, beta, gamma, delta]) {
    await waitFor(async () => (await server.ask("serverCount")) === 4, `${server.name} sees the four servers`);
    say(`  ${server.name} listens on port ${server.port} and counts ${await server.ask("serverCount")} servers`);
  }

  step("users connect: alice to alpha, bob and carol to beta, dave to gamma, erin to delta (long-polling)");
  const alice = await user("alice", alpha, "lobby");
  const bob = await user("bob", beta, "lobby");
  const carol = await user("carol", beta, "vip");
  const dave = await user("dave", gamma, "lobby");
  const erin = await user("erin", delta, "lobby", ["polling"]);
  const lobby = [alice, bob, dave, erin];

  step("alice says hello to the lobby (alpha -> beta, gamma and delta through the cluster)");
  let heard = heardBy(lobby);
  alice.emit("say", "hello lobby");
  await heard;

  step("carol shouts to everyone");
  heard = heardBy([...lobby, carol]);
  carol.emit("shout", "hi all");
  await heard;

  step("dave (on the python-socketio server) says hello to the lobby");
  heard = heardBy(lobby);
  dave.emit("say", "hello from python");
  await heard;

  step("erin (on the Flask-SocketIO server) says hello to the lobby");
  heard = heardBy(lobby);
  erin.emit("say", "hello from flask");
  await heard;

  step("an emitter process (no socket.io server) sends to the lobby, delta's room included");
  heard = heardBy(lobby);
  say(emitNews(daemons[daemons.length - 1], "lobby", "the build is green").trimEnd());
  await heard;

  step("alpha polls every user of every server (broadcast with acks)");
  for (const answer of await alpha.ask("poll", { question: "pizza or sushi?" })) say(`  ${answer}`);

  step("alpha fetches every socket of the cluster");
  for (const s of await alpha.ask("who")) say(`  ${s.id} ${s.user} on ${s.server}, rooms ${s.rooms.join(", ")}`);

  step("beta puts the lobby in the 'news' room; alpha announces to 'news'");
  await beta.ask("join", { room: "lobby", newRoom: "news" });
  await waitFor(async () => (await alpha.ask("rooms")).includes("news"), "room 'news' everywhere");
  heard = heardBy(lobby);
  await alpha.ask("announce", { room: "news", text: "the news room is open" });
  await heard;

  step("alpha pings the other servers (serverSideEmit with ack)");
  say(`  ${JSON.stringify(await alpha.ask("pingServers"))}`);

  step("gamma (Python) fetches the cluster's sockets, announces to 'news' and pings the other servers");
  for (const s of await gamma.ask("who")) say(`  ${s.id} ${s.user} on ${s.server}, rooms ${s.rooms.join(", ")}`);
  heard = heardBy(lobby);
  await gamma.ask("announce", { room: "news", text: "python is in the cluster too" });
  await heard;
  say(`  ${JSON.stringify(await gamma.ask("pingServers"))}`);

  step("delta (Flask-SocketIO) fetches the cluster's sockets, announces to 'news' and pings the other servers");
  for (const s of await delta.ask("who")) say(`  ${s.id} ${s.user} on ${s.server}, rooms ${s.rooms.join(", ")}`);
  heard = heardBy(lobby);
  await delta.ask("announce", { room: "news", text: "flask is in the cluster too" });
  await heard;
  say(`  ${JSON.stringify(await delta.ask("pingServers"))}`);

  step("siobridgectl: rooms of the cluster, then an emit from the command line");
  say(indent(ctl(daemons[0], "rooms")));
  heard = heardBy([...lobby, carol]);
  ctl(daemons[0], "emit", "--event", "said",
      "--data", JSON.stringify({ from: "siobridgectl", via: "the command line", text: "maintenance at noon" }));
  await heard;

  step("alpha disconnects the vip room (carol, on beta)");
  const gone = new Promise((resolve) => carol.once("disconnect", resolve));
  await alpha.ask("kick", { room: "vip" });
  await gone;

  step("siobridgectl status");
  say(indent(ctl(daemons[0], "status")));
  for (const socket of lobby) socket.disconnect();
  say("\ndemo finished");
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`demo failed: ${error.message}`);
} finally {
  for (const child of children.reverse()) {
    if (child.exitCode === null) {
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGTERM");
      await exited;
    }
  }
  if (!failed) rmSync(workDir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
