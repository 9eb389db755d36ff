// Snapshots of a Node for tools (siobridgectl status) and metrics. Plain value
// types, copied out of the core thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/bus/bus.h"
#include "daemon/common/time.h"
#include "daemon/core/local_server.h"

namespace siobridge::core {

struct PeerStatus {
  std::string uid;
  Millis last_seen_ago{0};
  bool siobridge = false;
  std::uint32_t servers = 1;
};

struct NamespaceStatus {
  std::string ns;
  std::vector<std::string> local_servers;  // names of the attached servers using it
  std::vector<PeerStatus> peers;
  std::uint32_t server_count = 0;
  bool packing = false;  // see Membership::audience_for
};

struct AttachmentStatus {
  AttachmentId id = 0;
  std::string name;
  std::vector<std::string> namespaces;
};

struct NodeStatus {
  std::string uid;
  bus::BusState bus_state = bus::BusState::kStarting;
  std::string bus_detail;
  std::vector<NamespaceStatus> namespaces;
  std::vector<AttachmentStatus> attachments;
  std::size_t operations_in_flight = 0;
};

// Counters since start. Index request counters by wire::RequestType value,
// response counters by wire::ResponseType value.
struct NodeStats {
  std::array<std::uint64_t, 22> requests_in{};
  std::array<std::uint64_t, 22> requests_out{};
  std::array<std::uint64_t, 4> responses_in{};
  std::array<std::uint64_t, 4> responses_out{};
  std::uint64_t extensions_in = 0;
  std::uint64_t extensions_out = 0;
  std::uint64_t decode_errors = 0;       // documents whose payload did not decode
  std::uint64_t inactive_namespace = 0;  // documents for namespaces no local server uses
  std::uint64_t late_responses = 0;      // answers to requests already finished
  std::uint64_t publish_failures = 0;    // the bus refused a document
  std::uint64_t peers_expired = 0;
  std::uint64_t local_timeouts = 0;  // attached servers that did not answer in time
  std::uint64_t commands_out = 0;
  std::uint64_t peers_left = 0;  // peers that said goodbye (a graceful stop)
  // Discovery at once (NodeConfig::discovery_lookup): namespaces the bus
  // showed free of socketioxide nodes, and those where it found one.
  std::uint64_t discovery_clear = 0;
  std::uint64_t discovery_seen = 0;
  // After a restart (node_config.h, Handover): documents held for servers to
  // reattach, delivered once they did, dropped because the hold was full, and
  // delivered to no server because none came back within restart_grace.
  std::uint64_t handover_held = 0;
  std::uint64_t handover_delivered = 0;
  std::uint64_t handover_dropped = 0;
  std::uint64_t handover_unclaimed = 0;
};

}  // namespace siobridge::core
