// The raw MongoDB floor of scripts/bench peers, as a socket.io adapter: what
// any adapter through MongoDB must at least pay, and nothing else. The sender
// writes broadcasts with ordered insertMany of up to 100 documents, one call in
// flight (what queued during a call goes in the next one); the receiver reads
// one change stream with one consumer and emits each document to its local
// clients. No rooms, no requests, no heartbeats, no serialization beyond what
// the driver does: the packet's data array is stored as BSON.
//
// Single-threaded (Node event loop); one instance per namespace and process.
const { Adapter } = require("socket.io-adapter");
const { randomBytes } = require("node:crypto");

const BATCH = 100;

/**
 * createFloorAdapter(collection, { onError }) -> Adapter constructor. The
 * collection must exist (the benchmark creates it before the servers start).
 */
function createFloorAdapter(collection, { onError = () => {} } = {}) {
  const uid = randomBytes(8).toString("hex");
  return class FloorAdapter extends Adapter {
    constructor(nsp) {
      super(nsp);
      this.queue = [];
      this.writing = false;
      // maxAwaitTimeMS as siobridged's change stream, so an idle stream answers as quickly.
      this.stream = collection.watch([{ $match: { "fullDocument.uid": { $ne: uid } } }], { maxAwaitTimeMS: 100 });
      this.stream.on("change", (event) => {
        if (event.operationType !== "insert" || event.fullDocument.nsp !== nsp.name) return;
        super.broadcast({ type: 2, data: event.fullDocument.data, nsp: nsp.name }, { rooms: new Set(), except: new Set(), flags: {} });
      });
      this.stream.on("error", (error) => onError(error));
    }

    broadcast(packet, opts) {
      super.broadcast(packet, opts);
      this.queue.push({ uid, nsp: this.nsp.name, data: packet.data });
      if (!this.writing) this.write();
    }

    write() {
      if (this.queue.length === 0) {
        this.writing = false;
        return;
      }
      this.writing = true;
      const batch = this.queue.splice(0, BATCH);
      collection.insertMany(batch, { ordered: true }).then(
        () => this.write(),
        (error) => {
          onError(error);
          this.write();
        },
      );
    }

    serverCount() {
      return Promise.resolve(2);
    }

    close() {
      return this.stream.close();
    }
  };
}

module.exports = { createFloorAdapter };
