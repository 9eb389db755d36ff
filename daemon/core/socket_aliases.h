// SocketAliases: the real ids of the sockets this node reported to other nodes
// under their alias (wire::socket_alias: socketioxide reads only 16-character
// ids, socket.io makes 20-character ones). When a socketioxide node later names
// such a socket (to(sid), socketsJoin, fetch_sockets of one socket), the alias
// is mapped back before the work reaches the attached servers. Bounded: the
// least recently reported sockets are forgotten first.
//
// Not thread-safe: core thread only.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/wire/messages.h"

namespace siobridge::core {

class SocketAliases {
 public:
  explicit SocketAliases(std::size_t capacity) : capacity_(capacity) {}

  // `sid` is being reported to other nodes; returns the id to report.
  std::string report(const std::string& sid);
  // The real id behind `id`, or `id` itself when it is no alias of ours.
  const std::string& resolve(const std::string& id) const;
  // Maps every socket id in the options (sid, rooms, except) back.
  void resolve(wire::BroadcastOptions& opts) const;
  std::size_t size() const { return by_alias_.size(); }

 private:
  struct Entry {
    std::string sid;
    std::list<std::string>::iterator age;  // in order_, most recent at the back
  };
  std::size_t capacity_;
  std::unordered_map<std::string, Entry> by_alias_;
  std::list<std::string> order_;  // aliases, least recently reported first
};

}  // namespace siobridge::core
