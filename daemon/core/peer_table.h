// PeerTable: the other nodes known in one namespace (PROTOCOL.md section 6),
// with when each was last heard from and how many servers it stands for.
//
// Not thread-safe: core thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/time.h"

namespace siobridge::core {

struct Peer {
  Millis last_seen{0};
  // Servers attached to a siobridge node, from its heartbeats. A socketioxide
  // node advertises nothing and counts as one server.
  std::optional<std::uint32_t> servers;

  bool is_siobridge() const { return servers.has_value(); }
  std::uint32_t server_count() const { return servers ? *servers : 1; }
};

class PeerTable {
 public:
  // A heartbeat from `uid`. Returns true when the peer was not known before.
  bool on_heartbeat(const std::string& uid, Millis now, std::optional<std::uint32_t> servers);
  // Any other message from a known peer keeps it alive.
  void touch(const std::string& uid, Millis now);
  // Forgets `uid`; returns what it was, if it was known.
  std::optional<Peer> remove(const std::string& uid);
  // Removes the peers not heard from for `timeout`; returns their uids.
  std::vector<std::string> expire(Millis now, Millis timeout);

  bool contains(const std::string& uid) const { return peers_.count(uid) != 0; }
  const Peer* find(const std::string& uid) const;
  std::vector<std::string> uids() const;
  std::uint32_t server_count() const;  // sum over peers
  // Some peer is a socketioxide node (it reads only the reference's documents).
  bool has_socketioxide() const;
  std::size_t size() const { return peers_.size(); }
  const std::map<std::string, Peer>& all() const { return peers_; }

 private:
  std::map<std::string, Peer> peers_;
};

}  // namespace siobridge::core
