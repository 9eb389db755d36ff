#include "daemon/core/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/core/node_operation.h"
#include "daemon/core/validation.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {

const char* to_string(CommandKind kind) {
  switch (kind) {
    case CommandKind::kBroadcast:
      return "broadcast";
    case CommandKind::kBroadcastWithAck:
      return "broadcast-with-ack";
    case CommandKind::kAddSockets:
      return "add-sockets";
    case CommandKind::kDelSockets:
      return "del-sockets";
    case CommandKind::kDisconnectSockets:
      return "disconnect-sockets";
    case CommandKind::kFetchSockets:
      return "fetch-sockets";
    case CommandKind::kAllRooms:
      return "all-rooms";
    case CommandKind::kRecoveryMark:
      return "recovery-mark";
    case CommandKind::kServerSideEmit:
      return "server-side-emit";
  }
  return "unknown";
}

Node::Node(NodeConfig config, bus::Bus& bus, const Clock& clock, TimerQueue& timers)
    : config_(std::move(config)),
      bus_(bus),
      clock_(clock),
      timers_(timers),
      aliases_(config_.socket_aliases) {
  uid_ = config_.uid.empty() ? wire::generate_id() : config_.uid;
  instance_ = config_.instance.empty() ? wire::generate_id().substr(0, 8) : config_.instance;
  bus_state_ = bus_.state();
}

Node::~Node() {
  operations_.clear();  // cancels their timers
  for (auto& [ns, state] : namespaces_) timers_.cancel(state.heartbeat_timer);
  timers_.cancel(handover_timer_);
}

// ---- attached servers and namespaces ----

AttachmentId Node::attach(LocalServer& server, std::string name) {
  const AttachmentId id = next_attachment_id_++;
  attachments_.emplace(id, Attachment{&server, std::move(name), {}});
  return id;
}

void Node::detach(AttachmentId id) {
  auto it = attachments_.find(id);
  if (it == attachments_.end()) return;
  const auto namespaces = it->second.namespaces;
  for (const auto& ns : namespaces) (void)leave_namespace(id, ns);
  attachments_.erase(it);
  for (auto& [ns, log] : recovery_) log.forget_attachment(id);
  // Operations waiting for it stop waiting. Collect ids first: callbacks may
  // start new operations.
  std::vector<CommandId> ids;
  ids.reserve(operations_.size());
  for (const auto& [op_id, op] : operations_) ids.push_back(op_id);
  for (CommandId op_id : ids)
    with_operation(op_id, [&](Operation& op) { op.on_attachment_gone(id); });
}

Status Node::join_namespace(AttachmentId id, const std::string& ns, Millis recovery) {
  auto it = attachments_.find(id);
  if (it == attachments_.end()) {
    return make_error(ErrorCode::kFailedPrecondition, "unknown attachment");
  }
  if (auto s = check_namespace(ns); !s) return s;
  // Also when joined already: a Hello names namespaces without their settings.
  if (recovery > Millis{0}) enable_recovery(id, ns, recovery);
  if (!it->second.namespaces.insert(ns).second) return {};
  auto& state = namespaces_[ns];
  state.attachments.insert(id);
  ++state_version_;
  if (state.attachments.size() == 1) {
    activate(ns);
  } else {
    // Peers count this daemon's servers from its heartbeats: tell them now.
    publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  }
  if (auto held = held_.find(ns);
      held != held_.end() && state.attachments.size() >= held->second.servers_before) {
    release(ns);
  }
  return {};
}

Status Node::leave_namespace(AttachmentId id, const std::string& ns) {
  auto it = attachments_.find(id);
  if (it == attachments_.end()) {
    return make_error(ErrorCode::kFailedPrecondition, "unknown attachment");
  }
  if (!it->second.namespaces.erase(ns)) return {};
  auto& state = namespaces_[ns];
  state.attachments.erase(id);
  ++state_version_;
  if (state.attachments.empty() && !held_.count(ns)) {
    deactivate(ns);
  } else {
    publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  }
  return {};
}

Status Node::check_caller(AttachmentId from, const std::string& ns) const {
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

// ---- liveness (PROTOCOL.md section 6) ----

void Node::activate(const std::string& ns) {
  if (leaving_) return;
  spdlog::debug("namespace {} active", ns);
  publish_heartbeat(ns, wire::RequestType::kInitHeartbeat, std::nullopt);
  auto& state = namespaces_[ns];
  state.discovering_until = clock_.now() + config_.heartbeat_interval;
  state.activation = ++activations_;
  state.heartbeat_timer = timers_.schedule(clock_.now() + config_.heartbeat_interval,
                                           [this, ns] { heartbeat_tick(ns); });
  if (!config_.discovery_lookup) return;
  // Every live node heartbeats once per interval, so a socketioxide node of
  // the namespace wrote to it within the last two (a margin for clocks and
  // intervals that differ). What it writes from now on the change stream
  // brings: the peer table has it from then.
  bus_.find_socketioxide(
      ns, 2 * config_.heartbeat_interval,
      [this, ns, activation = state.activation](Result<bool> seen) {
        auto it = namespaces_.find(ns);
        if (it == namespaces_.end() || it->second.activation != activation) return;
        if (!seen.ok()) {
          spdlog::debug("{}: no discovery at once ({}): packing waits one heartbeat interval", ns,
                        seen.error().message);
          return;
        }
        if (*seen) {
          ++stats_.discovery_seen;
          spdlog::info(
              "{}: a socketioxide node wrote to it lately: not packed until heartbeats "
              "tell",
              ns);
          return;
        }
        ++stats_.discovery_clear;
        it->second.discovering_until = std::min(it->second.discovering_until, clock_.now());
        ++state_version_;
      });
}

void Node::deactivate(const std::string& ns) {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return;
  spdlog::debug("namespace {} inactive: heartbeats stop", ns);
  timers_.cancel(it->second.heartbeat_timer);
  const auto peers = it->second.peers.all();
  namespaces_.erase(it);
  ++peers_version_;
  ++state_version_;
  // Nothing of this namespace waits for its peers any more.
  for (const auto& [uid, peer] : peers) peer_gone(ns, uid, PeerExit{true, peer.server_count()});
}

void Node::heartbeat_tick(const std::string& ns) {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return;
  for (const auto& uid : it->second.peers.expire(clock_.now(), config_.heartbeat_timeout)) {
    spdlog::info("peer {} in {} not heard from for {} ms: gone", uid, ns,
                 config_.heartbeat_timeout.count());
    ++stats_.peers_expired;
    ++peers_version_;
    ++state_version_;
    peer_gone(ns, uid, PeerExit{false, 0});
  }
  publish_heartbeat(ns, wire::RequestType::kHeartbeat, std::nullopt);
  it = namespaces_.find(ns);  // peer_gone callbacks may have changed the map
  if (it == namespaces_.end()) return;
  it->second.heartbeat_timer = timers_.schedule(clock_.now() + config_.heartbeat_interval,
                                                [this, ns] { heartbeat_tick(ns); });
}

void Node::publish_heartbeat(const std::string& ns, wire::RequestType type,
                             std::optional<std::string> target) {
  if (leaving_) return;
  auto it = namespaces_.find(ns);
  const auto servers = it == namespaces_.end() ? 0 : it->second.attachments.size();
  wire::Request request{uid_, wire::generate_id(), type, {}, {}, {}};
  wire::Document doc{{wire::MessageKind::kRequest, ns, uid_, std::move(target), std::nullopt},
                     wire::encode_request(request),
                     wire::encode_extension(wire::NodeInfo{static_cast<std::uint32_t>(servers)})};
  // A heartbeat that cannot be published is skipped; the next one follows.
  // Heartbeats are what socketioxide nodes find this node by: always readable.
  if (bus_.publish(std::move(doc), bus::Audience::kEveryNode).ok()) {
    ++stats_.requests_out[static_cast<std::size_t>(type)];
  } else {
    ++stats_.publish_failures;
  }
}

void Node::on_heartbeat(const wire::Document& document, const wire::Request& request,
                        NamespaceState& state) {
  std::optional<std::uint32_t> servers;
  if (document.extension) {
    if (auto ext = wire::decode_extension(*document.extension); ext.ok()) {
      if (const auto* info = std::get_if<wire::NodeInfo>(&*ext)) servers = info->servers;
    }
  }
  const std::string& uid = document.header.origin;
  const auto* before = state.peers.find(uid);
  const bool servers_changed = before && before->servers != servers;
  const bool is_new = state.peers.on_heartbeat(uid, clock_.now(), servers);
  if (is_new || servers_changed) {
    ++peers_version_;
    ++state_version_;
  }
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

void Node::peer_gone(const std::string& ns, const std::string& uid, const PeerExit& exit) {
  std::vector<CommandId> ids;
  ids.reserve(operations_.size());
  for (const auto& [op_id, op] : operations_) ids.push_back(op_id);
  for (CommandId op_id : ids) {
    with_operation(op_id, [&](Operation& op) {
      if (op.ns() == ns) op.on_peer_gone(uid, exit);
    });
  }
}

void Node::on_goodbye(const std::string& uid) {
  std::vector<std::pair<std::string, std::uint32_t>> left;
  for (auto& [ns, state] : namespaces_) {
    if (auto peer = state.peers.remove(uid)) left.emplace_back(ns, peer->server_count());
  }
  if (left.empty()) return;
  spdlog::info("peer {} left the cluster", uid);
  ++stats_.peers_left;
  ++peers_version_;
  ++state_version_;
  for (const auto& [ns, servers] : left) peer_gone(ns, uid, PeerExit{true, servers});
}

void Node::leave_cluster() {
  if (leaving_) return;
  if (!namespaces_.empty()) {
    // One document for every namespace: a peer forgets this node everywhere.
    (void)publish_to_siobridge(namespaces_.begin()->first, wire::Goodbye{});
  }
  leaving_ = true;
  for (auto& [ns, state] : namespaces_) timers_.cancel(state.heartbeat_timer);
}

// ---- restarts ----

void Node::resume(const Handover& before) {
  const Millis now = clock_.now();
  for (const auto& [ns, snapshot] : before.namespaces) {
    if (snapshot.servers == 0) continue;
    held_[ns].servers_before = snapshot.servers;
    auto& state = namespaces_[ns];
    for (const auto& peer : snapshot.peers) {
      (void)state.peers.on_heartbeat(peer.uid, now - peer.seen_ago, peer.servers);
    }
    spdlog::info("holding what the cluster sends to {} until its {} server(s) attach again", ns,
                 snapshot.servers);
  }
  if (held_.empty()) return;
  ++peers_version_;
  handover_timer_ = timers_.schedule(now + config_.restart_grace, [this] {
    handover_timer_ = 0;
    while (!held_.empty()) release(held_.begin()->first);
  });
}

Handover Node::snapshot() const {
  Handover handover;
  const Millis now = clock_.now();
  for (const auto& [ns, state] : namespaces_) {
    auto held = held_.find(ns);
    NamespaceSnapshot snapshot;
    // A namespace still held counts its servers from before the restart, so
    // that a second restart during the hold loses nothing either.
    snapshot.servers =
        std::max<std::uint32_t>(static_cast<std::uint32_t>(state.attachments.size()),
                                held == held_.end() ? 0 : held->second.servers_before);
    if (snapshot.servers == 0) continue;
    for (const auto& [uid, peer] : state.peers.all()) {
      snapshot.peers.push_back(PeerSnapshot{uid, peer.servers, now - peer.last_seen});
    }
    handover.namespaces.emplace(ns, std::move(snapshot));
  }
  return handover;
}

bool Node::hold(const wire::Document& document, const std::string& position, Held& held) {
  const bool extension_target =
      document.header.target && *document.header.target == wire::kSiobridgeTarget;
  if (!extension_target) {
    // Heartbeats are not held: the peer table is current when servers attach.
    if (auto request = wire::decode_request(document.data);
        request.ok() && (request->type == wire::RequestType::kHeartbeat ||
                         request->type == wire::RequestType::kInitHeartbeat)) {
      return false;
    }
  }
  const std::size_t bytes = document.data.size() + document.header.ns.size() +
                            (document.extension ? document.extension->size() : 0) + 64;
  while (!held.documents.empty() && held.bytes + bytes > config_.restart_hold_bytes) {
    const auto& oldest = held.documents.front();
    held.bytes -= oldest.first.data.size() + oldest.first.header.ns.size() +
                  (oldest.first.extension ? oldest.first.extension->size() : 0) + 64;
    held.documents.pop_front();
    if (++stats_.handover_dropped == 1) {
      spdlog::warn(
          "more than {} bytes arrived for {} before its servers attached again: the "
          "oldest are dropped (node.restart_hold_bytes)",
          config_.restart_hold_bytes, document.header.ns);
    }
  }
  held.documents.emplace_back(document, position);
  held.bytes += bytes;
  ++stats_.handover_held;
  return true;
}

void Node::release(std::string ns) {
  auto it = held_.find(ns);
  if (it == held_.end()) return;
  auto documents = std::move(it->second.documents);
  held_.erase(it);
  if (held_.empty() && handover_timer_) {
    timers_.cancel(handover_timer_);
    handover_timer_ = 0;
  }
  auto state = namespaces_.find(ns);
  const bool attached = state != namespaces_.end() && !state->second.attachments.empty();
  if (attached) {
    spdlog::info("{}: delivering {} document(s) held since the restart", ns, documents.size());
    stats_.handover_delivered += documents.size();
    for (const auto& [document, position] : documents) on_document(document, position);
  } else {
    if (!documents.empty()) {
      spdlog::warn(
          "{}: no server attached again within {} ms of the restart: {} document(s) "
          "held for it are dropped",
          ns, config_.restart_grace.count(), documents.size());
    }
    stats_.handover_unclaimed += documents.size();
    deactivate(ns);
  }
}

std::set<std::string> Node::all_peers() const {
  std::set<std::string> uids;
  for (const auto& [ns, state] : namespaces_)
    for (const auto& [uid, peer] : state.peers.all()) uids.insert(uid);
  return uids;
}

bus::Audience Node::audience_for(const std::string& ns,
                                 const std::optional<std::string>& target) const {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return bus::Audience::kEveryNode;
  const PeerTable& peers = it->second.peers;
  if (target) {
    const Peer* peer = peers.find(*target);
    return peer && peer->is_siobridge() ? bus::Audience::kSiobridgeOnly : bus::Audience::kEveryNode;
  }
  if (clock_.now() < it->second.discovering_until || peers.has_socketioxide()) {
    return bus::Audience::kEveryNode;
  }
  return bus::Audience::kSiobridgeOnly;
}

std::uint32_t Node::server_count(const std::string& ns) const {
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return 0;
  return static_cast<std::uint32_t>(it->second.attachments.size()) +
         it->second.peers.server_count();
}

// ---- documents from the bus ----

void Node::on_document(const wire::Document& document, const std::string& position) {
  if (document.header.origin == uid_) {
    on_echo(document, position);
    return;
  }
  if (document.header.kind == wire::MessageKind::kResponse) {
    read_through(position);
    on_response_document(document);
    return;
  }
  const bool extension_target =
      document.header.target && *document.header.target == wire::kSiobridgeTarget;
  if (extension_target && document.extension) {
    // A goodbye concerns every namespace, whichever one it names.
    if (auto ext = wire::decode_extension(*document.extension);
        ext.ok() && std::holds_alternative<wire::Goodbye>(*ext)) {
      ++stats_.extensions_in;
      read_through(position);
      on_goodbye(document.header.origin);
      return;
    }
  }
  auto it = namespaces_.find(document.header.ns);
  if (it == namespaces_.end()) {
    read_through(position);
    // Sessions outlive their server: recovery keeps logging without one.
    if (recovery_.count(document.header.ns) != 0) {
      on_unattended_document(document, position);
    } else {
      ++stats_.inactive_namespace;
    }
    return;
  }
  if (auto held = held_.find(document.header.ns);
      held != held_.end() && hold(document, position, held->second)) {
    return;
  }
  read_through(position);
  if (extension_target) {
    on_extension_request(document, position, it->second);
    return;
  }
  on_request_document(document, position, it->second);
}

void Node::on_request_document(const wire::Document& document, const std::string& position,
                               NamespaceState& state) {
  auto request = wire::decode_request(document.data);
  if (!request.ok()) {
    ++stats_.decode_errors;
    skipped_input_.skipped(clock_.now(), "a request from {}: {}", document.header.origin,
                           request.error().message);
    return;
  }
  ++stats_.requests_in[static_cast<std::size_t>(request->type)];
  if (request->type == wire::RequestType::kHeartbeat ||
      request->type == wire::RequestType::kInitHeartbeat) {
    on_heartbeat(document, *request, state);
    return;
  }
  state.peers.touch(document.header.origin, clock_.now());
  respond(document, std::move(*request), position, state);
}

void Node::on_response_document(const wire::Document& document) {
  // Decoded before it is matched: a malformed answer is counted as such, not
  // as a late one.
  if (document.data.empty() && document.extension) {
    auto ext = wire::decode_extension(*document.extension);
    auto* reply = ext.ok() ? std::get_if<wire::ServerSideEmitReply>(&*ext) : nullptr;
    if (!reply) {
      ++stats_.decode_errors;
      skipped_input_.skipped(clock_.now(), "an extension response from {}: {}",
                             document.header.origin,
                             ext.ok() ? "not a reply" : ext.error().message);
      return;
    }
    ++stats_.extensions_in;
    auto by_id = by_request_id_.find(*document.header.request);
    if (by_id == by_request_id_.end()) {
      ++stats_.late_responses;
      return;
    }
    with_operation(by_id->second,
                   [&](Operation& op) { op.on_emit_response(document.header.origin, *reply); });
    return;
  }
  auto response = wire::decode_response(document.data);
  if (!response.ok()) {
    ++stats_.decode_errors;
    skipped_input_.skipped(clock_.now(), "a response from {}: {}", document.header.origin,
                           response.error().message);
    return;
  }
  ++stats_.responses_in[static_cast<std::size_t>(response->type())];
  if (auto ns = namespaces_.find(document.header.ns); ns != namespaces_.end()) {
    ns->second.peers.touch(document.header.origin, clock_.now());
  }
  auto by_id = by_request_id_.find(*document.header.request);
  if (by_id == by_request_id_.end()) {
    ++stats_.late_responses;
    return;
  }
  with_operation(by_id->second, [&](Operation& op) { op.on_response(*response, document); });
}

void Node::on_bus_state(bus::BusState state, const std::string& detail) {
  if (state != bus_state_) {
    spdlog::info("bus {}{}{}", bus::to_string(state), detail.empty() ? "" : ": ", detail);
  }
  bus_state_ = state;
  bus_detail_ = detail;
}

// ---- answers of attached servers ----

void Node::on_ack_count(AttachmentId from, CommandId command, std::uint32_t count) {
  with_operation(command, [&](Operation& op) { op.on_ack_count(from, count); });
}

void Node::on_ack(AttachmentId from, CommandId command, const std::string& sid, AckResult result) {
  with_operation(command, [&](Operation& op) { op.on_ack(from, sid, result); });
}

void Node::on_rooms(AttachmentId from, CommandId command, std::vector<std::string> rooms) {
  with_operation(command, [&](Operation& op) { op.on_rooms(from, rooms); });
}

void Node::on_sockets(AttachmentId from, CommandId command,
                      std::vector<wire::SocketDetails> sockets) {
  with_operation(command, [&](Operation& op) { op.on_sockets(from, sockets); });
}

void Node::on_emit_reply(AttachmentId from, CommandId command, wire::Bytes payload) {
  with_operation(command, [&](Operation& op) { op.on_emit_reply(from, payload); });
}

// ---- plumbing ----

std::vector<AttachmentId> Node::local_targets(const std::string& ns, AttachmentId except) const {
  std::vector<AttachmentId> targets;
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return targets;
  for (AttachmentId id : it->second.attachments)
    if (id != except) targets.push_back(id);
  return targets;
}

void Node::send(AttachmentId to, const Command& command) {
  auto it = attachments_.find(to);
  if (it == attachments_.end()) return;
  ++stats_.commands_out;
  it->second.server->deliver(command);
}

std::string Node::name_of(AttachmentId id) const {
  auto it = attachments_.find(id);
  return it == attachments_.end() ? "#" + std::to_string(id) : it->second.name;
}

Node::Operation* Node::start(std::unique_ptr<Operation> operation) {
  const CommandId id = operation->id();
  if (!operation->request_id().empty()) by_request_id_[operation->request_id()] = id;
  auto* raw = operation.get();
  operations_.emplace(id, std::move(operation));
  return raw;
}

Node::Operation* Node::find_operation(CommandId id) {
  auto it = operations_.find(id);
  return it == operations_.end() ? nullptr : it->second.get();
}

void Node::reap(CommandId id) {
  auto it = operations_.find(id);
  if (it == operations_.end() || !it->second->finished()) return;
  const auto& request_id = it->second->request_id();
  if (auto r = by_request_id_.find(request_id); r != by_request_id_.end() && r->second == id) {
    by_request_id_.erase(r);
  }
  operations_.erase(it);
}

NodeStatus Node::status() const {
  NodeStatus status;
  status.uid = uid_;
  status.bus_state = bus_state_;
  status.bus_detail = bus_detail_;
  const Millis now = clock_.now();
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
  status.operations_in_flight = operations_.size();
  return status;
}

}  // namespace siobridge::core
