// Settings of one cluster node (PROTOCOL.md section 6 defaults), and the
// hand-over a restarted node starts from. Plain value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/time.h"
#include "daemon/core/recovery_log.h"

namespace siobridge::core {

struct NodeConfig {
  std::string uid;  // empty: a fresh random uid at start
  // This run of the node (a restart makes a new one): the recovery offsets it
  // gives name it. Empty: 8 random id characters.
  std::string instance;
  Millis heartbeat_interval{10'000};  // Heartbeat per active namespace
  Millis heartbeat_timeout{60'000};   // a peer not heard from for this long is gone
  Millis request_timeout{5'000};      // waiting for other nodes' answers
  Millis ack_timeout{5'000};          // waiting for clients' acks after the counts
  Millis local_timeout{2'000};        // waiting for an attached server's answer
  // After a restart: how long what the cluster sent to the namespaces in use
  // before is held for their servers to attach again, and how much of it.
  Millis restart_grace{10'000};
  std::size_t restart_hold_bytes = 32u << 20;
  // Discovery at once (docs/PROTOCOL.md section 18): a namespace packs as
  // soon as the bus shows that no socketioxide node wrote to it within two
  // heartbeat intervals (Bus::find_socketioxide), rather than one interval
  // after it became active. Off by default: with it on, an engine restarted
  // with its state directory lost what was published while it was down in
  // about 1 run of 5 (engine_faults_test); on again once that is understood.
  bool discovery_lookup = false;
  // Sockets reported to socketioxide nodes under an alias that are remembered
  // (SocketAliases).
  std::size_t socket_aliases = 100'000;
  // Connection state recovery, per namespace (RecoveryLog).
  RecoveryLimits recovery;
};

// A peer as a node knew it when it stopped.
struct PeerSnapshot {
  std::string uid;
  std::optional<std::uint32_t> servers;  // none: a socketioxide node
  Millis seen_ago{0};                    // last heard from, before the snapshot
  bool operator==(const PeerSnapshot&) const = default;
};

struct NamespaceSnapshot {
  std::uint32_t servers = 0;  // attached servers using the namespace
  std::vector<PeerSnapshot> peers;
  bool operator==(const NamespaceSnapshot&) const = default;
};

// What a node was doing when it stopped, kept by the runtime in the state
// directory: the namespaces its servers used and the peers it knew there. A
// node resumed from it holds the documents of those namespaces until as many
// servers use them again (or restart_grace passes), then delivers them in
// order: servers that reattach after a daemon restart miss nothing the cluster
// sent meanwhile.
struct Handover {
  std::map<std::string, NamespaceSnapshot> namespaces;
  bool operator==(const Handover&) const = default;
};

}  // namespace siobridge::core
