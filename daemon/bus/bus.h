// The transport between cluster nodes, as the core sees it: publish a document
// for the other nodes; documents from them arrive through a BusListener. The
// core never sees MongoDB types. Implementations: bus/memory (in-process) and
// bus/mongodb.
//
// publish() is called on the core thread and never blocks. The listener is
// called on the core thread (the runtime arranges that for buses with threads).
#pragma once

#include <string>

#include "daemon/common/result.h"
#include "daemon/wire/document.h"

namespace siobridge::bus {

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
};

}  // namespace siobridge::bus
