// NodeContext: what every part of a Node (node.h) shares, handed to each part
// as references instead of a pointer back to the Node, so that a part sees
// only what its job needs and can be built on its own in a test with a fake
// clock and a fake bus (testing/parts_fixture.h).
//
// Not thread-safe: the referenced objects belong to the core thread.
#pragma once

#include <string>

#include "daemon/bus/bus.h"
#include "daemon/common/skip_log.h"
#include "daemon/common/time.h"
#include "daemon/core/node_config.h"
#include "daemon/core/node_status.h"
#include "daemon/core/timer_queue.h"

namespace siobridge::core {

struct NodeContext {
  const NodeConfig& config;
  const std::string& uid;       // this node's uid on the bus
  const std::string& instance;  // this run of the node (recovery offsets name it)
  const Clock& clock;
  TimerQueue& timers;
  NodeStats& stats;
  SkipLog& skipped_input;  // documents of the bus skipped because they did not decode
};

// The bus as last reported (Node::on_bus_state).
struct BusHealth {
  bus::BusState state = bus::BusState::kStarting;
  std::string detail;
};

}  // namespace siobridge::core
