// make_bus: the bus a node uses, chosen by its configuration: the MongoDB bus
// when a MongoDB configuration is given, else an in-memory hub with this node
// alone (its attached servers fan out locally). Callers see bus.h only: they
// compile against neither implementation (nor libmongoc).
//
// Thread-safe (a pure function); the bus it makes is as RunningBus says.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/bus/bus.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/common/flow_gate.h"
#include "daemon/common/result.h"

namespace siobridge::bus {

struct BusSetup {
  std::optional<mongodb::MongoBusConfig> mongodb;  // none: in memory
  std::string own_uid;
  // Where documents and state changes go. A bus with threads calls it through
  // `post`, which must run the function on the listener's thread.
  BusListener* listener = nullptr;
  std::function<void(std::function<void()>)> post;
  // May be null: pauses reading from the bus while consumers have too much
  // waiting.
  FlowGate* flow_gate = nullptr;
};

// kInvalidArgument for a malformed MongoDB URI.
Result<std::unique_ptr<RunningBus>> make_bus(BusSetup setup);

}  // namespace siobridge::bus
