// Settings of one cluster node (PROTOCOL.md section 6 defaults). Plain value type.
#pragma once

#include <string>

#include "daemon/core/time.h"

namespace siobridge::core {

struct NodeConfig {
  std::string uid;                    // empty: a fresh random uid at start
  Millis heartbeat_interval{10'000};  // Heartbeat per active namespace
  Millis heartbeat_timeout{60'000};   // a peer not heard from for this long is gone
  Millis request_timeout{5'000};      // waiting for other nodes' answers
  Millis ack_timeout{5'000};          // waiting for clients' acks after the counts
  Millis local_timeout{2'000};        // waiting for an attached server's answer
};

}  // namespace siobridge::core
