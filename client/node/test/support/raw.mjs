// A server attached to a daemon by hand, over a raw Attach stream: it sees the
// Commands exactly as the daemon sends them (as a socketioxide node or another
// language's adapter would) and answers only what a test tells it to. With
// features ["command_batch"] it reads CommandBatches too: their Commands join
// `commands`, and `batches` holds how many Commands each batch held.
import * as grpc from "@grpc/grpc-js";

export class RawAttachment {
  constructor(daemon, { name = "raw", namespaces = ["/"], features = [] } = {}) {
    this.commands = [];
    this.batches = [];
    // The kind of every message after the Welcome.
    this.kinds = [];
    this.waiters = [];
    this.client = daemon.client();
    this.stream = this.client.Attach(new grpc.Metadata({ waitForReady: true }));
    this.stream.on("error", () => {});
    this.welcome = new Promise((resolve, reject) => {
      this.stream.on("data", (message) => {
        if (message.kind !== "welcome") this.kinds.push(message.kind);
        if (message.kind === "welcome") {
          this.attachmentId = message.welcome.attachment_id;
          resolve(message.welcome);
        } else if (message.kind === "command") {
          this.commands.push(message.command);
          this.waiters.splice(0).forEach((wake) => wake());
        } else if (message.kind === "command_batch") {
          this.batches.push(message.command_batch.commands.length);
          this.commands.push(...message.command_batch.commands);
          this.waiters.splice(0).forEach((wake) => wake());
        }
      });
      this.stream.on("status", (status) => reject(new Error(`attach ended: ${status.details}`)));
    });
    this.stream.write({ hello: { name, namespaces, client_ref: "raw", features } });
  }

  async attached() {
    await this.welcome;
    return this;
  }

  /** The next Command of `kind` (those already received count). */
  async command(kind, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.commands.findIndex((c) => c.kind === kind);
      if (index >= 0) return this.commands.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${kind} command within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once `commands` holds `count` Commands (for tests that take none with command()). */
  async received(count, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    while (this.commands.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.commands.length} of ${count} commands within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  reply(reply) {
    this.stream.write({ reply: { ...reply, attachment_id: this.attachmentId } });
  }

  close() {
    this.stream.end();
    this.stream.cancel();
    this.client.close();
  }
}
