#include "daemon/core/socket_aliases.h"

#include "daemon/wire/ids.h"

namespace siobridge::core {

std::string SocketAliases::report(const std::string& sid) {
  std::string alias = wire::socket_alias(sid);
  if (alias == sid || capacity_ == 0) return alias;
  auto it = by_alias_.find(alias);
  if (it != by_alias_.end()) {
    order_.splice(order_.end(), order_, it->second.age);
    it->second.sid = sid;
    return alias;
  }
  order_.push_back(alias);
  by_alias_.emplace(alias, Entry{sid, std::prev(order_.end())});
  if (by_alias_.size() > capacity_) {
    by_alias_.erase(order_.front());
    order_.pop_front();
  }
  return alias;
}

const std::string& SocketAliases::resolve(const std::string& id) const {
  auto it = by_alias_.find(id);
  return it == by_alias_.end() ? id : it->second.sid;
}

void SocketAliases::resolve(wire::BroadcastOptions& opts) const {
  if (by_alias_.empty()) return;
  if (opts.sid) opts.sid = resolve(*opts.sid);
  for (auto& room : opts.rooms) room = resolve(room);
  for (auto& room : opts.except) room = resolve(room);
}

}  // namespace siobridge::core
