#include "daemon/core/membership.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/core/validation.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {

Membership::~Membership() {
  for (auto& [ns, state] : namespaces_) context_.timers.cancel(state.heartbeat_timer);
}

// ---- attached servers ----

AttachmentId Membership::attach(LocalServer& server, std::string name) {
  const AttachmentId id = next_attachment_id_++;
  attachments_.emplace(id, Attachment{&server, std::move(name), {}});
  return id;
}

std::set<std::string> Membership::namespaces_of(AttachmentId id) const {
  auto it = attachments_.find(id);
  return it == attachments_.end() ? std::set<std::string>{} : it->second.namespaces;
}

bool Membership::join(AttachmentId id, const std::string& ns) {
  auto it = attachments_.find(id);
  if (it == attachments_.end() || !it->second.namespaces.insert(ns).second) return false;
  auto& state = namespaces_[ns];
  state.attachments.insert(id);
  ++state_version_;
  if (state.attachments.size() == 1) {
    activate(ns);
  } else {
    // Peers count this daemon's servers from its heartbeats: tell them now.
    publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  }
  return true;
}

void Membership::leave(AttachmentId id, const std::string& ns, bool keep_active) {
  auto it = attachments_.find(id);
  if (it == attachments_.end() || !it->second.namespaces.erase(ns)) return;
  auto& state = namespaces_[ns];
  state.attachments.erase(id);
  ++state_version_;
  if (state.attachments.empty() && !keep_active) {
    deactivate(ns);
  } else {
    publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  }
}

Status Membership::check_caller(AttachmentId from, const std::string& ns) const {
  if (from == kNoAttachment) return check_namespace(ns);
  auto it = attachments_.find(from);
  if (it == attachments_.end()) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "unknown attachment: attach first (or reattach after a daemon restart)");
  }
  if (!it->second.namespaces.count(ns)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "namespace \"" + ns.substr(0, 64) + "\" was not joined by this attachment");
  }
  return {};
}

std::vector<AttachmentId> Membership::local_targets(const std::string& ns,
                                                    AttachmentId except) const {
  std::vector<AttachmentId> targets;
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return targets;
  for (AttachmentId id : it->second.attachments)
    if (id != except) targets.push_back(id);
  return targets;
}

std::size_t Membership::attached_count(const std::string& ns) const {
  auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? 0 : it->second.attachments.size();
}

void Membership::send(AttachmentId to, const Command& command) {
  auto it = attachments_.find(to);
  if (it == attachments_.end()) return;
  ++context_.stats.commands_out;
  it->second.server->deliver(command);
}

std::string Membership::name_of(AttachmentId id) const {
  auto it = attachments_.find(id);
  return it == attachments_.end() ? "#" + std::to_string(id) : it->second.name;
}

// ---- liveness (PROTOCOL.md section 6) ----

void Membership::activate(const std::string& ns) {
  if (leaving_) return;
  spdlog::debug("namespace {} active", ns);
  publish_heartbeat(ns, wire::RequestType::kInitHeartbeat, std::nullopt);
  auto& state = namespaces_[ns];
  const Millis now = context_.clock.now();
  state.discovering_until = now + context_.config.heartbeat_interval;
  // A namespace kept active without servers (RestartHold) still heartbeats.
  state.activation = ++activations_;
  context_.timers.cancel(state.heartbeat_timer);
  state.heartbeat_timer = context_.timers.schedule(now + context_.config.heartbeat_interval,
                                                   [this, ns] { heartbeat_tick(ns); });
  if (!context_.config.discovery_lookup) return;
  // Every live node heartbeats once per interval, so a socketioxide node of
  // the namespace wrote to it within the last two (a margin for clocks and
  // intervals that differ). What it writes from now on the change stream
  // brings: the peer table has it from then.
  outbox_.find_socketioxide(
      ns, 2 * context_.config.heartbeat_interval,
      [this, ns, activation = state.activation](Result<bool> seen) {
        auto it = namespaces_.find(ns);
        if (it == namespaces_.end() || it->second.activation != activation) return;
        if (!seen.ok()) {
          spdlog::debug("{}: no discovery at once ({}): packing waits one heartbeat interval", ns,
                        seen.error().message);
          return;
        }
        if (*seen) {
          ++context_.stats.discovery_seen;
          spdlog::info(
              "{}: a socketioxide node wrote to it lately: not packed until heartbeats tell", ns);
          return;
        }
        ++context_.stats.discovery_clear;
        it->second.discovering_until = std::min(it->second.discovering_until, context_.clock.now());
        ++state_version_;
      });
}

void Membership::deactivate(const std::string& ns) {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return;
  spdlog::debug("namespace {} inactive: heartbeats stop", ns);
  context_.timers.cancel(it->second.heartbeat_timer);
  const auto peers = it->second.peers.all();
  namespaces_.erase(it);
  changed();
  // Nothing of this namespace waits for its peers any more.
  for (const auto& [uid, peer] : peers) peer_gone_(ns, uid, PeerExit{true, peer.server_count()});
}

void Membership::heartbeat_tick(const std::string& ns) {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return;
  const Millis timeout = context_.config.heartbeat_timeout;
  for (const auto& uid : it->second.peers.expire(context_.clock.now(), timeout)) {
    spdlog::info("peer {} in {} not heard from for {} ms: gone", uid, ns, timeout.count());
    ++context_.stats.peers_expired;
    changed();
    peer_gone_(ns, uid, PeerExit{false, 0});
  }
  publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  it = namespaces_.find(ns);  // peer_gone callbacks may have changed the map
  if (it == namespaces_.end()) return;
  it->second.heartbeat_timer =
      context_.timers.schedule(context_.clock.now() + context_.config.heartbeat_interval,
                               [this, ns] { heartbeat_tick(ns); });
}

void Membership::publish_heartbeat(const std::string& ns, wire::RequestType type,
                                   std::optional<std::string> target) {
  if (leaving_) return;
  outbox_.publish_heartbeat(ns, type, std::move(target),
                            static_cast<std::uint32_t>(attached_count(ns)));
}

void Membership::remember_peers(const std::string& ns, const std::vector<PeerSnapshot>& peers) {
  const Millis now = context_.clock.now();
  auto& state = namespaces_[ns];
  for (const auto& peer : peers) {
    (void)state.peers.on_heartbeat(peer.uid, now - peer.seen_ago, peer.servers);
  }
  ++peers_version_;
}

void Membership::on_heartbeat(const wire::Document& document, const wire::Request& request) {
  auto it = namespaces_.find(document.header.ns);
  if (it == namespaces_.end()) return;
  std::optional<std::uint32_t> servers;
  if (document.extension) {
    if (auto ext = wire::decode_extension(*document.extension); ext.ok()) {
      if (const auto* info = std::get_if<wire::NodeInfo>(&*ext)) servers = info->servers;
    }
  }
  PeerTable& peers = it->second.peers;
  const std::string& uid = document.header.origin;
  const auto* before = peers.find(uid);
  const bool servers_changed = before && before->servers != servers;
  const bool is_new = peers.on_heartbeat(uid, context_.clock.now(), servers);
  if (is_new || servers_changed) changed();
  if (is_new) {
    spdlog::info("peer {} joined {} ({})", uid, document.header.ns,
                 servers ? "siobridge, " + std::to_string(*servers) + " servers" : "socketioxide");
  }
  // A new peer learns of this node at once. So does a siobridge peer that
  // restarted with the uid it had (it still counts as known here, but it forgot
  // its peers); socketioxide nodes answer only unknown peers.
  if (request.type == wire::RequestType::kInitHeartbeat && (is_new || servers)) {
    publish_heartbeat(document.header.ns, wire::RequestType::kHeartbeat, uid);
  }
}

void Membership::touch(const std::string& ns, const std::string& uid) {
  if (auto it = namespaces_.find(ns); it != namespaces_.end()) {
    it->second.peers.touch(uid, context_.clock.now());
  }
}

void Membership::on_goodbye(const std::string& uid) {
  std::vector<std::pair<std::string, std::uint32_t>> left;
  for (auto& [ns, state] : namespaces_) {
    if (auto peer = state.peers.remove(uid)) left.emplace_back(ns, peer->server_count());
  }
  if (left.empty()) return;
  spdlog::info("peer {} left the cluster", uid);
  ++context_.stats.peers_left;
  changed();
  for (const auto& [ns, servers] : left) peer_gone_(ns, uid, PeerExit{true, servers});
}

void Membership::stop_heartbeats() {
  leaving_ = true;
  for (auto& [ns, state] : namespaces_) context_.timers.cancel(state.heartbeat_timer);
}

std::optional<std::string> Membership::any_namespace() const {
  if (namespaces_.empty()) return std::nullopt;
  return namespaces_.begin()->first;
}

// ---- views ----

const PeerTable& Membership::peers_of(const std::string& ns) const {
  static const PeerTable kNone;
  auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? kNone : it->second.peers;
}

std::uint32_t Membership::server_count(const std::string& ns) const {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return 0;
  return static_cast<std::uint32_t>(it->second.attachments.size()) +
         it->second.peers.server_count();
}

bus::Audience Membership::audience_for(const std::string& ns,
                                       const std::optional<std::string>& target) const {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return bus::Audience::kEveryNode;
  const PeerTable& peers = it->second.peers;
  if (target) {
    const Peer* peer = peers.find(*target);
    return peer && peer->is_siobridge() ? bus::Audience::kSiobridgeOnly : bus::Audience::kEveryNode;
  }
  if (context_.clock.now() < it->second.discovering_until || peers.has_socketioxide()) {
    return bus::Audience::kEveryNode;
  }
  return bus::Audience::kSiobridgeOnly;
}

std::set<std::string> Membership::all_peers() const {
  std::set<std::string> uids;
  for (const auto& [ns, state] : namespaces_)
    for (const auto& [uid, peer] : state.peers.all()) uids.insert(uid);
  return uids;
}

Handover Membership::snapshot(
    const std::function<std::uint32_t(const std::string&)>& held_servers) const {
  Handover handover;
  const Millis now = context_.clock.now();
  for (const auto& [ns, state] : namespaces_) {
    NamespaceSnapshot snapshot;
    // A namespace still held counts its servers from before the restart, so
    // that a second restart during the hold loses nothing either.
    snapshot.servers = std::max<std::uint32_t>(static_cast<std::uint32_t>(state.attachments.size()),
                                               held_servers(ns));
    if (snapshot.servers == 0) continue;
    for (const auto& [uid, peer] : state.peers.all()) {
      snapshot.peers.push_back(PeerSnapshot{uid, peer.servers, now - peer.last_seen});
    }
    handover.namespaces.emplace(ns, std::move(snapshot));
  }
  return handover;
}

void Membership::fill_status(NodeStatus& status) const {
  const Millis now = context_.clock.now();
  for (const auto& [ns, state] : namespaces_) {
    NamespaceStatus n;
    n.ns = ns;
    for (AttachmentId id : state.attachments) n.local_servers.push_back(name_of(id));
    for (const auto& [uid, peer] : state.peers.all()) {
      n.peers.push_back(
          PeerStatus{uid, now - peer.last_seen, peer.is_siobridge(), peer.server_count()});
    }
    n.server_count = server_count(ns);
    n.packing = audience_for(ns, std::nullopt) == bus::Audience::kSiobridgeOnly;
    status.namespaces.push_back(std::move(n));
  }
  for (const auto& [id, attachment] : attachments_) {
    status.attachments.push_back(AttachmentStatus{
        id, attachment.name, {attachment.namespaces.begin(), attachment.namespaces.end()}});
  }
  std::sort(status.attachments.begin(), status.attachments.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
}

}  // namespace siobridge::core
