// TLS both ways. To MongoDB: the test MongoDB under Wine cannot serve TLS
// itself, so a stunnel4 front terminates TLS before it and the daemons connect
// with tls=true, tlsCAFile and directConnection (docs/running.md, "TLS", says
// what this does not cover); a wrong CA, a wrong host name and a client
// without TLS each get an error that names TLS. To the daemon: the Node
// adapter and siobridgectl over TLS and mutual TLS (listen.tls_client_ca),
// and clients with no certificate or one another CA signed are refused.
// Certificates are made by the test with openssl.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Inbox } from "../../client/node/test/support/cluster.mjs";
import {
  Daemon,
  ServerProcess,
  Scratch,
  Stunnel,
  Users,
  authPort,
  authUri,
  checkConnection,
  createCollection,
  eventually,
  freePort,
  makeCertificates,
  privileges,
  proxyPort,
  randomName,
  runProgram,
  siobridgectl,
  startAuthMongo,
  unavailable,
  using,
} from "./support/secure.mjs";

const COLLECTION = "socket.io-adapter";

/** One client of `receiver` hears what `sender` broadcasts. */
async function heardAcross(sender, receiver, text) {
  const socket = await receiver.client();
  try {
    const inbox = new Inbox(socket, "news");
    await eventually(async () => {
      await sender.do("emit", { event: "news", args: [text] });
      return inbox.items.length > 0;
    }, 30000, `${receiver.label} hears ${sender.label}`);
    assert.equal(inbox.items[0][0], text);
  } finally {
    socket.close();
  }
}

describe("TLS to MongoDB through a stunnel4 front", { skip: unavailable() }, () => {
  const users = new Users();
  const scratch = new Scratch();
  const daemons = [];
  let certificates, proxy, user, password, database;

  before(async () => {
    await startAuthMongo();
    certificates = await makeCertificates(scratch);
    proxy = await new Stunnel(scratch, proxyPort, authPort, certificates.proxy).start();
    database = randomName("siobridge_security");
    await createCollection(database, COLLECTION);
    ({ user, password } = await users.make("tls", privileges(database, COLLECTION, {
      onCollection: ["changeStream", "find", "insert", "listIndexes"], onDatabase: ["listCollections"] })));
  });

  after(async () => {
    for (const daemon of daemons) await daemon.dispose();
    await proxy?.stop();
    await users.dropAll();
    scratch.cleanup();
  });

  const through = (host, options) =>
    scratch.write(randomName("uri"), authUri(user, password, { host, port: proxyPort, options }));

  test("two daemons over TLS (tls=true, tlsCAFile, directConnection) carry broadcasts", async () => {
    const uriFile = through("localhost", `directConnection=true&tls=true&tlsCAFile=${certificates.ca}`);
    const args = ["--mongodb-uri-file", uriFile, "--mongodb-database", database, "--node-heartbeat-interval", "1s"];
    for (let i = 0; i < 2; i++) {
      const daemon = await new Daemon(args).start();
      daemons.push(daemon);
      await eventually(async () => (await daemon.status()).bus_state === "ready", 60000, "the bus ready over TLS");
    }
    const one = await new ServerProcess({ address: daemons[0].address, label: "one" }).start();
    const two = await new ServerProcess({ address: daemons[1].address, label: "two" }).start();
    await using([one, two], async () => {
      await heardAcross(one, two, "over TLS");
      await heardAcross(two, one, "back over TLS");
    });
    const check = await checkConnection(["--mongodb-uri-file", uriFile, "--mongodb-database", database]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  for (const [name, host, options, expected] of [
    ["a CA that did not sign the server's certificate", "localhost",
     () => `directConnection=true&tls=true&tlsCAFile=${certificates.otherCa}`, /TLS .*certificate verify failed.*tlsCAFile/],
    ["a host name the certificate does not hold", "127.0.0.1",
     () => `directConnection=true&tls=true&tlsCAFile=${certificates.ca}`, /TLS .*mismatch.*does not name 127\.0\.0\.1/],
    ["a client without TLS at the TLS front", "localhost",
     () => "directConnection=true", /closed the connection without answering.*tls=true/],
  ]) {
    test(`${name}: an error that names TLS, in Status and from --connect`, async () => {
      const uriFile = through(host, options());
      const daemon = await new Daemon(["--mongodb-uri-file", uriFile, "--mongodb-database", database]).start();
      daemons.push(daemon);
      await eventually(async () => expected.test((await daemon.status()).bus_detail), 20000, `${expected} in Status`);
      const errors = daemon.log().split("\n").filter((line) => line.includes(" error MongoDB: "));
      assert.ok(errors.length >= 1 && expected.test(errors[0]), daemon.log());
      const check = await checkConnection(["--mongodb-uri-file", uriFile, "--mongodb-database", database]);
      assert.equal(check.code, 3, check.stdout + check.stderr);
      assert.match(check.stdout, expected);
      await daemon.dispose();
    });
  }
});

describe("TLS and mutual TLS to the daemon", { skip: unavailable() }, () => {
  const scratch = new Scratch();
  let certificates, tlsDaemon, mutualDaemon;

  // A daemon on the memory bus with a Unix socket and a TCP port with TLS;
  // `mutual`: client certificates required.
  async function tcpDaemon(mutual) {
    const address = `127.0.0.1:${await freePort()}`;
    const daemon = await new Daemon([
      "--listen-tcp", address,
      "--listen-tls-cert", certificates.daemon.cert, "--listen-tls-key", certificates.daemon.key,
      ...(mutual ? ["--listen-tls-client-ca", certificates.ca] : []),
    ]).start();
    daemon.tcp = address;
    return daemon;
  }

  before(async () => {
    certificates = await makeCertificates(scratch);
    tlsDaemon = await tcpDaemon(false);
    mutualDaemon = await tcpDaemon(true);
  });

  after(async () => {
    await tlsDaemon?.dispose();
    await mutualDaemon?.dispose();
    scratch.cleanup();
  });

  const attachedNames = async (daemon) => (await daemon.status()).attachments.map((a) => a.name);

  for (const mutual of [false, true]) {
    test(`the Node adapter over ${mutual ? "mutual TLS" : "TLS"}: broadcasts to and from a server on the Unix socket`, async () => {
      const daemon = mutual ? mutualDaemon : tlsDaemon;
      const tls = mutual ? { ca: certificates.ca, ...certificates.client } : { ca: certificates.ca };
      const overTls = await new ServerProcess({ address: daemon.tcp, tls, label: "over-tls" }).start();
      const local = await new ServerProcess({ address: daemon.address, label: "local" }).start();
      await using([overTls, local], async () => {
        await eventually(async () => (await overTls.do("serverCount")) === 2, 20000, "both servers attached");
        await heardAcross(overTls, local, "from TLS");
        await heardAcross(local, overTls, "to TLS");
      });
    });
  }

  for (const [name, tls, refusal] of [
    ["no certificate", () => ({ ca: certificates.ca }), /peer did not return a certificate/],
    ["a certificate another CA signed", () => ({ ca: certificates.ca, ...certificates.stranger }), /certificate verify failed/],
  ]) {
    test(`the Node adapter with ${name} is refused by the daemon that requires client certificates`, async () => {
      const before = mutualDaemon.log().split("\n").filter((line) => refusal.test(line)).length;
      const refused = await new ServerProcess({ address: mutualDaemon.tcp, tls: tls(), label: "refused" }).start();
      await using([refused], async () => {
        await eventually(() => mutualDaemon.log().split("\n").filter((line) => refusal.test(line)).length > before,
                         20000, `the daemon refused the handshake (${refusal})`);
        assert.ok(!(await attachedNames(mutualDaemon)).includes("refused"), "the refused server is not attached");
      });
    });
  }

  test("siobridgectl over TLS and mutual TLS; refused without a certificate or with a stranger's", async () => {
    const ctl = (daemon, extra, command = ["status", "--json"]) =>
      runProgram(siobridgectl, ["--address", daemon.tcp, "--timeout-ms", "5000", "--tls-ca", certificates.ca, ...extra, ...command]);
    const client = ["--tls-cert", certificates.client.cert, "--tls-key", certificates.client.key];
    const stranger = ["--tls-cert", certificates.stranger.cert, "--tls-key", certificates.stranger.key];

    const overTls = await ctl(tlsDaemon, []);
    assert.equal(overTls.code, 0, overTls.stderr);
    assert.equal(JSON.parse(overTls.stdout).backend, "memory");
    const mutual = await ctl(mutualDaemon, client, ["health"]);
    assert.equal(mutual.code, 0, mutual.stderr);
    // From the environment, as a probe in a container would give them.
    const fromEnvironment = await runProgram(siobridgectl, ["--address", mutualDaemon.tcp, "status"], {
      env: { SIOBRIDGE_TLS_CA: certificates.ca, SIOBRIDGE_TLS_CERT: certificates.client.cert,
             SIOBRIDGE_TLS_KEY: certificates.client.key },
    });
    assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr);

    // An emit over mutual TLS reaches a client of a server on the Unix socket.
    const local = await new ServerProcess({ address: mutualDaemon.address, label: "local" }).start();
    await using([local], async () => {
      const socket = await local.client();
      const inbox = new Inbox(socket, "news");
      const emitted = await ctl(mutualDaemon, client, ["emit", "--event", "news", "--data", '"from siobridgectl"']);
      assert.equal(emitted.code, 0, emitted.stderr);
      assert.deepEqual((await inbox.next(1))[0], ["from siobridgectl"]);
      socket.close();
    });

    for (const extra of [[], stranger]) {
      const refused = await ctl(mutualDaemon, extra);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stderr, /UNAVAILABLE|failed to connect/);
    }
    const plain = await runProgram(siobridgectl, ["--address", tlsDaemon.tcp, "--timeout-ms", "3000", "status"]);
    assert.equal(plain.code, 1, "a plain-text client at a TLS port is refused");
    const unix = await runProgram(siobridgectl, ["--address", tlsDaemon.address, "--tls-ca", certificates.ca, "status"]);
    assert.equal(unix.code, 2);
    assert.match(unix.stderr, /TLS is for a TCP address/);
  });
});
