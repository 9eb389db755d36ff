#include "daemon/core/peer_table.h"

namespace siobridge::core {

bool PeerTable::on_heartbeat(const std::string& uid, Millis now,
                             std::optional<std::uint32_t> servers) {
  auto [it, inserted] = peers_.try_emplace(uid);
  it->second.last_seen = now;
  it->second.servers = servers;
  return inserted;
}

void PeerTable::touch(const std::string& uid, Millis now) {
  if (auto it = peers_.find(uid); it != peers_.end()) it->second.last_seen = now;
}

std::optional<Peer> PeerTable::remove(const std::string& uid) {
  auto it = peers_.find(uid);
  if (it == peers_.end()) return std::nullopt;
  Peer peer = it->second;
  peers_.erase(it);
  return peer;
}

std::vector<std::string> PeerTable::expire(Millis now, Millis timeout) {
  std::vector<std::string> gone;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (now - it->second.last_seen >= timeout) {
      gone.push_back(it->first);
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

const Peer* PeerTable::find(const std::string& uid) const {
  auto it = peers_.find(uid);
  return it == peers_.end() ? nullptr : &it->second;
}

std::vector<std::string> PeerTable::uids() const {
  std::vector<std::string> out;
  out.reserve(peers_.size());
  for (const auto& [uid, peer] : peers_) out.push_back(uid);
  return out;
}

bool PeerTable::has_socketioxide() const {
  for (const auto& [uid, peer] : peers_) {
    if (!peer.is_siobridge()) return true;
  }
  return false;
}

std::uint32_t PeerTable::server_count() const {
  std::uint32_t total = 0;
  for (const auto& [uid, peer] : peers_) total += peer.server_count();
  return total;
}

}  // namespace siobridge::core
