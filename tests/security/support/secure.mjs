// What the security suites share: the authenticated test MongoDB (scripts/mongo
// start --auth: a replica set with access control and a keyfile), users and
// roles made for each test through its admin, certificates made with openssl,
// a stunnel4 TLS front, and siobridgectl.
//
// The daemons, socket.io server processes and clients come from the Node
// adapter's test support (client/node/test/support/), as in the fault suites.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { Daemon, daemonBinary, eventually, scrapeMetrics } from "../../../client/node/test/support/daemon.mjs";
import { ServerProcess, using } from "../../../client/node/test/support/cluster.mjs";

export { Daemon, ServerProcess, daemonBinary, eventually, scrapeMetrics, using };

export const root = resolve(import.meta.dirname, "..", "..", "..");
const run = promisify(execFile);
/** socket.io-client, from the Node adapter's dependencies. */
export const { io: connectClient } = createRequire(join(root, "client", "node", "package.json"))("socket.io-client");

/**
 * The authenticated MongoDB's port: $SIOBRIDGE_AUTH_MONGO_PORT, else the test
 * MongoDB's port + 4 (scripts/test runs this stage after the C++ suites, whose
 * private servers use + 4 and + 5); the TLS front listens on the next port.
 */
export const authPort = Number(
  process.env.SIOBRIDGE_AUTH_MONGO_PORT ?? Number(process.env.SIOBRIDGE_MONGO_PORT ?? 27117) + 4,
);
export const proxyPort = authPort + 1;

export const siobridgectl = process.env.SIOBRIDGE_CTL ?? join(dirname(daemonBinary), "..", "..", "client", "cpp", "siobridgectl");

/** Why these suites cannot run here, or undefined. */
export function unavailable() {
  if (!existsSync(join(root, ".cache", "mongodb", "mongod.exe"))) return "no test MongoDB binary (scripts/setup)";
  return undefined;
}

async function mongo(args) {
  try {
    const { stdout } = await run(join(root, "scripts", "mongo"), args, {
      env: { ...process.env, SIOBRIDGE_MONGO_PORT: String(authPort) },
      timeout: 180000,
    });
    return stdout.trim();
  } catch (error) {
    throw new Error(`scripts/mongo ${args.join(" ")} failed: ${error.stderr ?? error.message}`);
  }
}

/** Starts the authenticated replica set, or finds it running; resolves with the URI of the user siobridge. */
export function startAuthMongo() {
  return mongo(["start", "--auth"]);
}

/** Runs `command` (an object) on `db` as the admin; resolves with the reply. */
export async function adminCommand(db, command) {
  return JSON.parse(await mongo(["command", "--auth", "--db", db, JSON.stringify(command)]));
}

export function randomName(prefix) {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/**
 * A connection string of the authenticated set: with `user` and `password`,
 * with `user` alone (password undefined: for mongodb.password_file), or with
 * no credentials.
 */
export function authUri(user, password, { host = "127.0.0.1", port = authPort, options = "replicaSet=rs0" } = {}) {
  if (!user) return `mongodb://${host}:${port}/?${options}`;
  const credentials = password === undefined
    ? `${encodeURIComponent(user)}@`
    : `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;
  return `mongodb://${credentials}${host}:${port}/?${options}&authSource=admin`;
}

/** Actions on the collection and on its database, as MongoDB's createRole takes them. */
export function privileges(database, collection, { onCollection = [], onDatabase = [] }) {
  const out = [];
  if (onCollection.length) out.push({ resource: { db: database, collection }, actions: onCollection });
  if (onDatabase.length) out.push({ resource: { db: database, collection: "" }, actions: onDatabase });
  return out;
}

/** Users (each with a role of its own) made for a test, dropped by dropAll(). */
export class Users {
  constructor() {
    this.made = [];
  }

  /** A user with exactly `privilegeList`; resolves with {user, password}. */
  async make(prefix, privilegeList) {
    const user = randomName(prefix);
    const password = randomBytes(12).toString("hex");
    await adminCommand("admin", { createRole: user, privileges: privilegeList, roles: [] });
    await adminCommand("admin", { createUser: user, pwd: password, roles: [{ role: user, db: "admin" }] });
    this.made.push(user);
    return { user, password };
  }

  async dropAll() {
    for (const user of this.made.splice(0)) {
      await adminCommand("admin", { dropUser: user }).catch(() => {});
      await adminCommand("admin", { dropRole: user }).catch(() => {});
    }
  }
}

/** The collection and its TTL index, made by the admin (the daemon's user then needs no creation privileges). */
export async function createCollection(database, collection, ttlSeconds = 60) {
  await adminCommand(database, { create: collection });
  await adminCommand(database, {
    createIndexes: collection,
    indexes: [{ key: { createdAt: 1 }, name: "createdAt_1", expireAfterSeconds: ttlSeconds }],
  });
}

/** A directory of its own, removed by cleanup(); files written there with mode 0600. */
export class Scratch {
  constructor(prefix = "siobridge-security-") {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  write(name, content) {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  path(name) {
    return join(this.dir, name);
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function openssl(args, cwd) {
  try {
    await run("openssl", args, { cwd, timeout: 60000 });
  } catch (error) {
    throw new Error(`openssl ${args.join(" ")} failed: ${error.stderr ?? error.message}`);
  }
}

/**
 * Certificates for the tests, made with openssl in `scratch`: a CA and a
 * second, unrelated CA; `daemon` (localhost, 127.0.0.1) and `proxy`
 * (localhost only: reached as 127.0.0.1 its name does not match), signed by
 * the CA; `client` signed by the CA and `stranger` by the other CA. Each
 * name's files are <name>.pem and <name>.key.
 */
export async function makeCertificates(scratch) {
  const dir = scratch.dir;
  const ca = async (name, subject) =>
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
             "-keyout", `${name}.key`, "-out", `${name}.pem`], dir);
  const leaf = async (name, issuer, subject, altNames) => {
    await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", `${name}.key`,
                   "-out", `${name}.csr`], dir);
    const extensions = altNames ? `subjectAltName=${altNames}\n` : "extendedKeyUsage=clientAuth\n";
    writeFileSync(join(dir, `${name}.ext`), extensions);
    await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`,
                   "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`], dir);
  };
  await ca("ca", "/CN=siobridge test CA");
  await ca("other-ca", "/CN=another CA");
  await leaf("daemon", "ca", "/CN=localhost", "DNS:localhost,IP:127.0.0.1");
  await leaf("proxy", "ca", "/CN=localhost", "DNS:localhost");
  await leaf("client", "ca", "/CN=siobridge test client");
  await leaf("stranger", "other-ca", "/CN=stranger");
  const files = (name) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
  return {
    ca: join(dir, "ca.pem"),
    otherCa: join(dir, "other-ca.pem"),
    daemon: files("daemon"),
    proxy: files("proxy"),
    client: files("client"),
    stranger: files("stranger"),
  };
}

/** A stunnel4 TLS front on 127.0.0.1:`accept` for the plain-text server on `connect`. */
export class Stunnel {
  constructor(scratch, accept, connect, certificate) {
    this.config = scratch.write(
      "stunnel.conf",
      ["foreground = yes", "pid =", "[mongodb]", `accept = 127.0.0.1:${accept}`, `connect = 127.0.0.1:${connect}`,
       `cert = ${certificate.cert}`, `key = ${certificate.key}`, ""].join("\n"),
    );
    this.accept = accept;
    this.output = "";
  }

  async start() {
    this.process = spawn("stunnel4", [this.config], { stdio: ["ignore", "pipe", "pipe"] });
    this.process.stdout.on("data", (chunk) => (this.output += chunk));
    this.process.stderr.on("data", (chunk) => (this.output += chunk));
    this.exited = once(this.process, "exit");
    await eventually(() => this.output.includes("Configuration successful") || this.process.exitCode !== null,
                     20000, "stunnel4 started");
    if (this.process.exitCode !== null) throw new Error(`stunnel4 exited: ${this.output}`);
    return this;
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill("SIGTERM");
    await this.exited;
  }
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Runs a program to its end; resolves with {code, stdout, stderr} whatever the exit code. */
export function runProgram(program, args, { env = {}, timeout = 60000 } = {}) {
  return new Promise((done, fail) => {
    execFile(program, args, { env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0", ...env }, timeout },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return fail(error);
        done({ code: error ? error.code : 0, stdout, stderr });
      });
  });
}

/** `siobridged ARGS --check-config --connect`: {code, stdout, stderr}. */
export function checkConnection(args, env = {}) {
  return runProgram(daemonBinary, [...args, "--check-config", "--connect"], { env });
}

/** The command line and environment of a running process, as `ps` and /proc show them. */
export function processText(pid) {
  const read = (name) => {
    try {
      return readFileSync(`/proc/${pid}/${name}`, "latin1").replaceAll("\0", " ");
    } catch {
      return "";
    }
  };
  return `${read("cmdline")}\n${read("environ")}`;
}

/**
 * Starts a daemon that may fail at once: resolves with it, started or not
 * (a daemon that checks its privileges may answer Status before it exits).
 */
export async function startDaemonMaybe(args) {
  const daemon = new Daemon(args);
  try {
    await daemon.start();
  } catch {
    // exited at start: its log and exit code tell why
  }
  return daemon;
}
