// siobridged against a MongoDB with access control (scripts/mongo start
// --auth): the least privileges at work across two daemons, a missing
// privilege named before the daemon stops, a failed login named in the log,
// Status, health and metrics and fixed by SIGHUP, the URI and password read
// from files, and no password shown anywhere (process list, logs, Status,
// metrics, --check-config). Real daemons, socket.io servers in separate
// processes, socket.io-client clients. docs/running.md, "MongoDB privileges"
// and "Secrets".
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Inbox } from "../../client/node/test/support/cluster.mjs";
import {
  Daemon,
  ServerProcess,
  Scratch,
  Users,
  authUri,
  checkConnection,
  daemonBinary,
  connectClient,
  createCollection,
  eventually,
  freePort,
  privileges,
  processText,
  randomName,
  runProgram,
  scrapeMetrics,
  siobridgectl,
  startAuthMongo,
  startDaemonMaybe,
  unavailable,
  using,
} from "./support/secure.mjs";

const COLLECTION = "socket.io-adapter";
// The least privileges (docs/running.md): the collection and its TTL index exist.
const LEAST = {
  onCollection: ["changeStream", "find", "insert", "listIndexes"],
  onDatabase: ["listCollections"],
};
const recovery = { maxDisconnectionDuration: 60000, skipMiddlewares: true };
const timing = ["--node-heartbeat-interval", "1s", "--node-heartbeat-timeout", "5s",
                "--node-request-timeout", "3s", "--node-local-timeout", "1s"];

async function busState(daemon) {
  return (await daemon.status()).bus_state;
}

async function readyDaemons(argsList) {
  const daemons = [];
  for (const args of argsList) {
    const daemon = await new Daemon(args).start();
    daemons.push(daemon);
    await eventually(async () => (await busState(daemon)) === "ready", 60000, "the bus ready");
  }
  return daemons;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve(socket);
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

describe("siobridged on a MongoDB with access control", { skip: unavailable() }, () => {
  const users = new Users();
  const scratch = new Scratch();
  const daemons = [];

  before(async () => {
    await startAuthMongo();
  });

  after(async () => {
    for (const daemon of daemons) await daemon.dispose();
    await users.dropAll();
    scratch.cleanup();
  });

  test("two daemons with the least role, the URI read from a file: rooms, acks, fetchSockets, recovery", async () => {
    const database = randomName("siobridge_security");
    await createCollection(database, COLLECTION);
    const { user, password } = await users.make("least", privileges(database, COLLECTION, LEAST));
    const uriFile = scratch.write(`${user}.uri`, `${authUri(user, password)}\n`);
    const args = ["--mongodb-uri-file", uriFile, "--mongodb-database", database, ...timing];
    const pair = await readyDaemons([args, args]);
    daemons.push(...pair);
    for (const daemon of pair) assert.ok(!processText(daemon.process.pid).includes(password), "no password in ps");

    const one = await new ServerProcess({ address: pair[0].address, label: "one", recovery }).start();
    const two = await new ServerProcess({ address: pair[1].address, label: "two", recovery }).start();
    await using([one, two], async () => {
      await eventually(async () => (await one.do("serverCount")) === 2 && (await two.do("serverCount")) === 2,
                       30000, "both servers counted");
      const red = await two.client({ rooms: ["red"] });
      const plain = await two.client();
      const redInbox = new Inbox(red, "news");
      const plainInbox = new Inbox(plain, "news");
      redInbox.answer = () => ["red here"];
      plainInbox.answer = () => ["plain here"];

      // Rooms: a broadcast to "red" reaches only the red client on the other host.
      await one.do("emit", { event: "news", rooms: ["red"], args: ["for red"] });
      await one.do("emit", { event: "news", args: ["for all"] });
      assert.deepEqual((await redInbox.next(2)).map((a) => a[0]), ["for red", "for all"]);
      assert.deepEqual((await plainInbox.next(1)).map((a) => a[0]), ["for all"]);

      // Acks from the other host's clients.
      const acked = await one.do("emitWithAck", { event: "news", timeout: 5000, args: ["ack?"] });
      assert.deepEqual([...acked.responses].sort(), ["plain here", "red here"]);

      // fetchSockets across the hosts.
      const fetched = await one.do("fetchSockets", { rooms: ["red"] });
      assert.deepEqual(fetched.map((s) => s.id), [red.id]);

      // Connection state recovery: a client of `two` loses its transport, misses
      // a broadcast from `one`, and recovers on `one`, across the hosts.
      const recovering = connectClient(`http://127.0.0.1:${two.ports[0]}/`, {
        transports: ["websocket"], forceNew: true, reconnection: false,
      });
      const missed = [];
      recovering.onAny((event, ...args) => missed.push({ event, text: args[0] }));
      await connected(recovering);
      await one.do("emit", { event: "seen", args: ["before the drop"] });
      await eventually(() => missed.length === 1, 15000, "the first broadcast");
      const sid = recovering.id;
      const pid = recovering._pid;
      const offset = recovering._lastOffset;
      recovering.io.engine.close();
      await eventually(async () => !(await two.do("sockets")).some((s) => s.id === sid), 15000, "the drop seen");
      await one.do("emit", { event: "seen", args: ["while away"] });
      recovering.close();
      const back = connectClient(`http://127.0.0.1:${one.ports[0]}/`, {
        transports: ["websocket"], forceNew: true, reconnection: false, autoConnect: false,
      });
      back._pid = pid;
      back._lastOffset = offset;
      const replayed = [];
      back.onAny((event, ...args) => replayed.push(args[0]));
      back.connect();
      await connected(back);
      assert.equal(back.id, sid, "the session was recovered on the other host");
      await eventually(() => replayed.includes("while away"), 15000, "the missed broadcast replayed");
      for (const socket of [red, plain, back]) socket.close();
    });
  });

  test("the daemon creates the collection and its TTL index with createCollection and createIndex", async () => {
    const database = randomName("siobridge_security");
    const { user, password } = await users.make("creator", privileges(database, COLLECTION, {
      onCollection: [...LEAST.onCollection, "createCollection", "createIndex"],
      onDatabase: LEAST.onDatabase,
    }));
    const uriFile = scratch.write(`${user}.uri`, authUri(user, password));
    const [daemon] = await readyDaemons([["--mongodb-uri-file", uriFile, "--mongodb-database", database]]);
    daemons.push(daemon);
  });

  test("a capped collection needs convertToCapped to be created and collStats to run", async () => {
    const database = randomName("siobridge_security");
    const capped = ["--mongodb-expiration", "capped", "--mongodb-database", database];
    const base = { onCollection: ["changeStream", "find", "insert", "createCollection"], onDatabase: LEAST.onDatabase };
    // Without collStats: named at start.
    const first = await users.make("capped", privileges(database, COLLECTION, base));
    const lacking = await startDaemonMaybe(["--mongodb-uri-file", scratch.write("capped1.uri", authUri(first.user, first.password)), ...capped]);
    daemons.push(lacking);
    assert.equal((await lacking.exited).code, 1);
    assert.match(lacking.log(), new RegExp(`error MongoDB: user ${first.user}@admin lacks what siobridged needs: collStats on ${database}\\.socket\\.io-adapter`));
    // With collStats but without convertToCapped: the creation is named.
    const second = await users.make("capped", privileges(database, COLLECTION, {
      ...base, onCollection: [...base.onCollection, "collStats"] }));
    const cannotCreate = await startDaemonMaybe(["--mongodb-uri-file", scratch.write("capped2.uri", authUri(second.user, second.password)), ...capped]);
    daemons.push(cannotCreate);
    assert.equal((await cannotCreate.exited).code, 1);
    assert.match(cannotCreate.log(), /error MongoDB: the collection .* \(capped\) is missing and user .* may not create it \(convertToCapped on /);
    // With both: ready.
    const third = await users.make("capped", privileges(database, COLLECTION, {
      ...base, onCollection: [...base.onCollection, "collStats", "convertToCapped"] }));
    const [daemon] = await readyDaemons([["--mongodb-uri-file", scratch.write("capped3.uri", authUri(third.user, third.password)), ...capped]]);
    daemons.push(daemon);
  });

  for (const [missing, where] of [["listCollections", "database"], ["changeStream", "collection"]]) {
    test(`a role without ${missing}: the daemon names it in one error line and exits 1`, async () => {
      const database = randomName("siobridge_security");
      await createCollection(database, COLLECTION);
      const granted = {
        onCollection: LEAST.onCollection.filter((a) => a !== missing),
        onDatabase: LEAST.onDatabase.filter((a) => a !== missing),
      };
      const { user, password } = await users.make("lacking", privileges(database, COLLECTION, granted));
      const daemon = await startDaemonMaybe(["--mongodb-uri-file", scratch.write(`${user}.uri`, authUri(user, password)),
                                             "--mongodb-database", database]);
      daemons.push(daemon);
      assert.equal((await daemon.exited).code, 1);
      const named = daemon.log().split("\n").filter((line) => line.includes(" error ") && line.includes(missing));
      const target = where === "database" ? `database ${database}` : `${database}.${COLLECTION}`;
      assert.equal(named.length, 1, daemon.log());
      assert.ok(named[0].includes(`lacks what siobridged needs: ${missing} on ${target}`), named[0]);
      const check = await checkConnection(["--mongodb-uri-file", scratch.path(`${user}.uri`), "--mongodb-database", database]);
      assert.equal(check.code, 5, check.stdout + check.stderr);
      assert.match(check.stdout, new RegExp(`connect: FAILED: user ${user}@admin lacks what siobridged needs: ${missing}`));
    });
  }

  test("a wrong password: \"authentication failed\" in the log, Status, health and metrics, fixed by SIGHUP", async () => {
    const database = randomName("siobridge_security");
    await createCollection(database, COLLECTION);
    const { user, password } = await users.make("rotated", privileges(database, COLLECTION, LEAST));
    const wrong = "not-the-password-" + randomName("x");
    const passwordFile = scratch.write(`${user}.password`, `${wrong}\n`);
    const metrics = `127.0.0.1:${await freePort()}`;
    const daemon = await new Daemon([
      "--mongodb-uri", authUri(user), "--mongodb-password-file", passwordFile,
      "--mongodb-database", database, "--metrics-listen", metrics, "--log-level", "debug",
    ]).start();
    daemons.push(daemon);
    // Within 5 s of the daemon answering, as docs/running.md promises.
    const started = Date.now();
    await eventually(async () => (await daemon.status()).bus_detail.startsWith("authentication failed"), 5000,
                     "authentication failed in Status");
    const waited = Date.now() - started;
    console.log(`FIGURE ${JSON.stringify({ case: "wrong password named in Status", ms: waited })}`);
    const errors = daemon.log().split("\n").filter((line) => / error MongoDB: authentication failed for user /.test(line));
    assert.equal(errors.length, 1, daemon.log());
    assert.ok(errors[0].includes(`user "${user}" (authSource "admin"`), errors[0]);
    const health = await runProgram(siobridgectl, ["--address", daemon.address, "health"]);
    assert.equal(health.code, 1);
    assert.match(health.stderr, /NOT_SERVING \(not serving: MongoDB bus (unavailable|starting): authentication failed for user/);
    assert.match(await scrapeMetrics(metrics), /siobridge_mongodb_problem\{cause="authentication_failed"\} 1/);
    const check = await checkConnection(["--mongodb-uri", authUri(user),
                                         "--mongodb-password-file", passwordFile, "--mongodb-database", database]);
    assert.equal(check.code, 4, check.stdout + check.stderr);

    // The right password in the file, and SIGHUP: the daemon connects anew.
    scratch.write(`${user}.password`, `${password}\n`);
    daemon.process.kill("SIGHUP");
    await eventually(async () => (await busState(daemon)) === "ready", 30000, "ready after SIGHUP");
    assert.match(await scrapeMetrics(metrics), /siobridge_mongodb_problem\{cause="authentication_failed"\} 0/);
    const healthy = await runProgram(siobridgectl, ["--address", daemon.address, "health"]);
    assert.equal(healthy.code, 0, healthy.stderr);

    // No secret anywhere: the process, the log (at debug level), Status, metrics.
    const shown = [processText(daemon.process.pid), daemon.log(), JSON.stringify(await daemon.status()),
                   await scrapeMetrics(metrics)].join("\n");
    for (const secret of [password, wrong]) assert.ok(!shown.includes(secret), `${secret} shown`);
  });

  test("no password in --check-config, errors, or the process list; one on the command line earns a warning", async () => {
    const database = randomName("siobridge_security");
    await createCollection(database, COLLECTION);
    const { user, password } = await users.make("shown", privileges(database, COLLECTION, LEAST));
    const uri = authUri(user, password);
    const fromEnvironment = await runProgram(daemonBinary, ["--check-config"], { env: { SIOBRIDGE_MONGODB_URI: uri } });
    assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr);
    assert.match(fromEnvironment.stdout, new RegExp(`mongodb\\.uri +.*mongodb://${user}:\\*\\*\\*@127\\.0\\.0\\.1`));
    const fromFile = await runProgram(daemonBinary, ["--check-config", "--mongodb-uri-file", scratch.write("shown.uri", uri)]);
    assert.match(fromFile.stdout, new RegExp(`mongodb\\.uri \\(from mongodb\\.uri_file\\) += mongodb://${user}:\\*\\*\\*@`));
    // A URI the driver refuses, with the password in it: the error hides it.
    const refused = await runProgram(daemonBinary, ["--listen-unix", scratch.path("refused.sock"),
                                                          "--mongodb-uri", `${uri}&w=bogus&tls=maybe`]);
    assert.notEqual(refused.code, 0);
    // On the command line: a warning, and the password hidden in the process list once read.
    const flagged = await new Daemon(["--mongodb-uri", uri, "--mongodb-database", database]).start();
    daemons.push(flagged);
    assert.match(flagged.log(), /warning mongodb\.uri was given on the command line with a password/);
    const cmdline = processText(flagged.process.pid);
    assert.ok(cmdline.includes(`mongodb://${user}:${"*".repeat(password.length)}@`), cmdline);
    const everything = [fromEnvironment.stdout, fromEnvironment.stderr, fromFile.stdout, fromFile.stderr,
                        refused.stdout, refused.stderr, cmdline, flagged.log()].join("\n");
    assert.ok(!everything.includes(password), everything);
  });

  test("--check-config --connect: 0 when all is well, 4 for a failed login, 3 for a host nobody listens on", async () => {
    const database = randomName("siobridge_security");
    const { user, password } = await users.make("checked", privileges(database, COLLECTION, {
      onCollection: [...LEAST.onCollection, "createCollection", "createIndex"], onDatabase: LEAST.onDatabase }));
    const good = await checkConnection(["--mongodb-uri", authUri(user, password), "--mongodb-database", database]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /connect: collection: .* does not exist yet: siobridged creates it/);
    assert.match(good.stdout, /connection OK/);
    const failed = await checkConnection(["--mongodb-uri", authUri(user, `${password}-wrong`), "--mongodb-database", database]);
    assert.equal(failed.code, 4, failed.stdout);
    assert.match(failed.stdout, /connect: FAILED: authentication failed for user/);
    const nobody = await checkConnection(["--mongodb-uri", authUri(user, password, { port: await freePort() })]);
    assert.equal(nobody.code, 3, nobody.stdout);
    for (const output of [good, failed, nobody]) assert.ok(!(output.stdout + output.stderr).includes(password));
  });
});
