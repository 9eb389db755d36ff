// siobridged processes for the adapter's tests. The binary comes from
// $SIOBRIDGE_DAEMON (scripts/test sets it) or the default build tree.
import { spawn } from "node:child_process";
import { get } from "node:http";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = resolve(import.meta.dirname, "..", "..", "..", "..");
export const daemonBinary = process.env.SIOBRIDGE_DAEMON ?? join(root, "build", "test", "daemon", "app", "siobridged");

const definition = protoLoader.loadSync(join(root, "proto", "siobridge", "v1", "bridge.proto"), {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const Bridge = grpc.loadPackageDefinition(definition).siobridge.v1.Bridge;

export class Daemon {
  constructor(args = []) {
    this.args = args;
    this.dir = mkdtempSync(join(tmpdir(), "siobridge-node-test-"));
    this.socket = join(this.dir, "siobridged.sock");
    this.address = `unix:${this.socket}`;
  }

  async start() {
    const log = openSync(join(this.dir, "daemon.log"), "a");
    this.process = spawn(
      daemonBinary,
      ["--listen-unix", this.socket, "--mongodb-state-dir", join(this.dir, "state"), ...this.args],
      { stdio: ["ignore", log, log], env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" } },
    );
    this.exited = new Promise((done) => this.process.once("exit", (code, signal) => done({ code, signal })));
    const exitedEarly = this.exited.then(({ code, signal }) => {
      throw new Error(`siobridged exited at start (${signal ?? code}): ${this.log().trim()}`);
    });
    await Promise.race([this.status(30000), exitedEarly]);
    exitedEarly.catch(() => {});
    return this;
  }

  /** The daemon's Status, waiting for it to answer (gRPC wait-for-ready). */
  status(timeoutMs = 10000) {
    const client = new Bridge(this.address, grpc.credentials.createInsecure());
    return new Promise((resolveStatus, reject) => {
      const metadata = new grpc.Metadata({ waitForReady: true });
      client.Status({}, metadata, { deadline: Date.now() + timeoutMs }, (error, reply) => {
        client.close();
        if (error) reject(error);
        else resolveStatus(reply);
      });
    });
  }

  /** A raw API client, for calls the adapter would never make. */
  client() {
    return new Bridge(this.address, grpc.credentials.createInsecure());
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill("SIGTERM");
    await this.exited;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  log() {
    return readFileSync(join(this.dir, "daemon.log"), "utf8");
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Asks `check` again until it holds: for state of another process. */
export async function eventually(check, timeoutMs = 20000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not hold within ${timeoutMs} ms (last: ${last})`);
}

/**
 * The text of a daemon's Prometheus endpoint (`--metrics-listen address`).
 * Each scrape opens its own connection: the endpoint answers HTTP/1.1 without
 * `Connection: close` and then closes, so a pooled connection (fetch's) can be
 * reused just as the daemon closes it and the next scrape fails.
 */
export function scrapeMetrics(address) {
  return new Promise((resolveText, reject) => {
    const request = get(`http://${address}/metrics`, { agent: false }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`GET http://${address}/metrics: HTTP ${response.statusCode}`));
        return;
      }
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolveText(text));
      response.on("error", reject);
    });
    request.on("error", reject);
  });
}
