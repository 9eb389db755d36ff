// The transport between cluster nodes, as the core sees it: publish a document
// for the other nodes; documents from them arrive through a BusListener. The
// core never sees MongoDB types. Implementations: bus/memory (in-process) and
// bus/mongodb.
//
// publish() is called on the core thread and never blocks. The listener is
// called on the core thread (the runtime arranges that for buses with threads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "daemon/common/flow_gate.h"
#include "daemon/common/result.h"
#include "daemon/common/time.h"
#include "daemon/wire/document.h"

namespace siobridge::bus {

namespace mongodb {
class MongoBus;
struct MongoBusStats;
}  // namespace mongodb

enum class BusState : std::uint8_t {
  kStarting,     // connecting, setting up the collection
  kReady,        // publishing and receiving
  kUnavailable,  // the server cannot be reached; retrying by itself
  kFailed,       // a configuration problem no retry fixes (e.g. a standalone server)
};

const char* to_string(BusState state);

class BusListener {
 public:
  virtual ~BusListener() = default;
  // `position`: the document's place in the cluster's delivery order, when the
  // bus knows it (wire::format_position); empty otherwise.
  virtual void on_document(wire::Document document, const std::string& position) = 0;
  virtual void on_bus_state(BusState state, const std::string& detail) = 0;
  // The first `count` documents published are settled: stored, or given up
  // for good (refused by the store, expired in the queue; counted by the
  // bus). Only from buses that settle later (Bus::settles_later), in order.
  virtual void on_settled(std::uint64_t count) { (void)count; }
};

// Who has to be able to read a document. Heartbeats and what a socketioxide
// node of the namespace must read go to every node; the rest may travel in a
// form only siobridge nodes read (packed: docs/PROTOCOL.md section 18).
enum class Audience : std::uint8_t { kEveryNode, kSiobridgeOnly };

class Bus {
 public:
  virtual ~Bus() = default;
  // Queues `document` for every other node, after everything published before.
  // kUnavailable when it cannot be accepted (the server is down and the queue
  // is full, or the bus failed), kResourceExhausted when it never can be (a
  // document larger than the store takes): nothing was queued.
  virtual Status publish(wire::Document document, Audience audience) = 0;
  virtual BusState state() const = 0;
  // Whether other nodes read what this node publishes. Then a document marked
  // echo (wire::Document::echo) also comes back to this node, in the cluster's
  // order and with its position.
  virtual bool shared() const = 0;
  // Whether a published document is settled later (BusListener::on_settled)
  // rather than when publish() accepts it.
  virtual bool settles_later() const { return false; }
  // Calls `done` on the core thread with the highest call number of server
  // `instance` among the stored documents (wire::Document::calls; 0: none),
  // or an error while the store cannot be asked. A bus that stores nothing
  // answers 0 at once.
  virtual void find_last_call(const std::string& instance,
                              std::function<void(Result<std::uint64_t>)> done) {
    (void)instance;
    done(std::uint64_t{0});
  }
  // Discovery at once (docs/PROTOCOL.md section 18): calls `done` on the core
  // thread with whether the store holds a request of namespace `ns` from a
  // socketioxide node (one without the `siobridge` field) written within the
  // last `lookback`, or an error when the store cannot tell (it keeps
  // documents for less than that, or cannot be asked now): the namespace then
  // waits for heartbeats. A bus that stores nothing cannot tell.
  virtual void find_socketioxide(const std::string& ns, Millis lookback,
                                 std::function<void(Result<bool>)> done) {
    (void)ns;
    (void)lookback;
    done(make_error(ErrorCode::kFailedPrecondition, "this bus keeps no documents"));
  }
};

// A bus as the runtime drives it (made by bus::make_bus, daemon/bus/factory.h):
// a Bus with the parts only some implementations have, neutral where they
// have none. start(), stop() and set_rank() belong to the owner's thread; the
// accessors are thread-safe.
class RunningBus : public Bus {
 public:
  // Starts the bus's own threads, if it has any.
  virtual void start() {}
  // Writes what is queued for up to `drain`, then stops those threads; the
  // bus posts nothing after it returns.
  virtual void stop(Millis drain) { (void)drain; }
  // This node's rank among its live peers (by uid): the MongoDB bus staggers
  // re-creating a dropped collection by it.
  virtual void set_rank(unsigned rank) { (void)rank; }
  // Closed while the bus's own write queue is past its back-pressure mark;
  // null when it has none.
  virtual FlowGate* write_gate() { return nullptr; }
  // Where documents go: "database.collection" on MongoDB, empty in memory.
  virtual std::string location() const { return {}; }
  // The MongoDB bus and its counters, or null (the app's reconnect on SIGHUP
  // and its metrics need them; the runtime does not).
  virtual mongodb::MongoBus* mongodb() { return nullptr; }
  virtual const mongodb::MongoBusStats* mongodb_stats() const { return nullptr; }
};

}  // namespace siobridge::bus
