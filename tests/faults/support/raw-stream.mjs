// An Attach stream driven by hand: several servers on one stream, and Calls
// the Node adapter would refuse before sending (a payload over the daemon's
// limit), so that the daemon's own handling of them is what a test sees. Its
// servers hold no sockets and answer fetchSockets with none.
import { createRequire } from "node:module";
import { join } from "node:path";
import { eventually, root } from "./faults.mjs";

const grpc = createRequire(join(root, "client", "node", "package.json"))("@grpc/grpc-js");

export class RawStream {
  constructor(daemon) {
    this.client = daemon.client();
    this.welcomes = new Map(); // client_ref -> Welcome
    this.results = new Map(); // ref -> Result
    this.confirmed = new Map(); // attachment id -> the Confirmed numbers, in order
    this.nextRef = 1;
    this.stream = this.client.Attach(new grpc.Metadata({ waitForReady: true }));
    this.stream.on("error", () => {}); // the end is kept by "status"
    this.stream.on("status", (status) => {
      this.ended = status;
    });
    this.stream.on("data", (message) => {
      if (message.kind === "welcome") this.welcomes.set(message.welcome.client_ref, message.welcome);
      if (message.kind === "result") this.results.set(message.result.ref, message.result);
      if (message.kind === "confirmed") {
        const { attachment_id, seq } = message.confirmed;
        this.confirmed.set(attachment_id, [...(this.confirmed.get(attachment_id) ?? []), Number(seq)]);
      }
      // Queries of the other servers are answered at once: this stream's servers hold no sockets.
      if (message.kind === "command" && message.command.kind === "fetch_sockets") {
        const { id, attachment_id } = message.command;
        this.stream.write({ reply: { command_id: id, attachment_id, sockets: { sockets: [] } } });
      }
    });
  }

  /**
   * Attaches a server named `name` on this stream; resolves with its
   * attachment id. `hello`: more Hello fields (features, instance, resend_from).
   */
  async hello(name, namespaces = ["/"], hello = {}) {
    this.stream.write({ hello: { name, namespaces, client_ref: name, ...hello } });
    const welcome = await eventually(() => {
      if (this.ended) throw new Error(`the Attach stream ended: code ${this.ended.code}, ${this.ended.details}`);
      return this.welcomes.get(name);
    }, 15000, `the Welcome of ${name}`);
    return welcome.attachment_id;
  }

  /** Sends a Call of `kind` for server `attachmentId` (numbered `seq`); returns its ref (see result()). */
  call(attachmentId, kind, request, seq = 0) {
    const ref = String(this.nextRef++);
    this.stream.write({ call: { ref, attachment_id: attachmentId, want_result: true, seq, [kind]: request } });
    return ref;
  }

  /** The first Confirmed of `attachmentId` at or above `seq`. */
  confirmedAtLeast(attachmentId, seq, timeoutMs = 15000) {
    return eventually(() => {
      if (this.ended) throw new Error(`the Attach stream ended: code ${this.ended.code}, ${this.ended.details}`);
      return (this.confirmed.get(attachmentId) ?? []).find((n) => n >= seq);
    }, timeoutMs, `a Confirmed of ${attachmentId} at or above ${seq}`);
  }

  /** The first Result of call `ref`, or a rejection naming how the stream ended. */
  result(ref, timeoutMs = 15000) {
    return eventually(() => {
      if (this.results.has(ref)) return this.results.get(ref);
      if (this.ended) throw new Error(`the Attach stream ended: code ${this.ended.code}, ${this.ended.details}`);
      return undefined;
    }, timeoutMs, `the result of call ${ref}`);
  }

  close() {
    this.stream.end();
    this.stream.cancel();
    this.client.close();
  }
}

/** A socket.io event packet ["event", ...args] as the default parser encodes it, for Call.broadcast. */
export function eventPacket(event, ...args) {
  return {
    namespace: "/",
    type: 2, // TYPE_EVENT
    data: { kind: 0, data: Buffer.from(JSON.stringify([event, ...args])) },
  };
}
