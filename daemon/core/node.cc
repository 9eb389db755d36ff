#include "daemon/core/node.h"

#include <spdlog/spdlog.h>

#include <algorithm>

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
      uid_(config_.uid.empty() ? wire::generate_id() : config_.uid),
      instance_(config_.instance.empty() ? wire::generate_id().substr(0, 8) : config_.instance),
      bus_health_{bus.state(), {}},
      context_{config_, uid_, instance_, clock, timers, stats_, skipped_input_},
      aliases_(config_.socket_aliases),
      outbox_(context_, bus,
              [this](const std::string& ns, const std::optional<std::string>& target) {
                return membership_.audience_for(ns, target);
              }),
      membership_(context_, outbox_,
                  [this](const std::string& ns, const std::string& uid, const PeerExit& exit) {
                    operations_.for_each([&](Operation& op) {
                      if (op.ns() == ns) op.on_peer_gone(uid, exit);
                    });
                  }),
      operation_context_{context_, operations_, outbox_, aliases_},
      hold_(context_, [this](const std::string& ns) { release(ns); }),
      recovery_(context_, outbox_, aliases_),
      requester_(operation_context_, membership_, recovery_, bus_health_),
      responder_(operation_context_, membership_, recovery_) {}

Node::~Node() {
  // Before the parts they use go; their timers are cancelled.
  operations_.clear();
}

// ---- attached servers and namespaces ----

AttachmentId Node::attach(LocalServer& server, std::string name) {
  return membership_.attach(server, std::move(name));
}

void Node::detach(AttachmentId id) {
  if (!membership_.has_attachment(id)) return;
  for (const auto& ns : membership_.namespaces_of(id)) (void)leave_namespace(id, ns);
  membership_.forget(id);
  recovery_.forget_attachment(id);
  // Operations waiting for it stop waiting.
  operations_.for_each([id](Operation& op) { op.on_attachment_gone(id); });
}

Status Node::join_namespace(AttachmentId id, const std::string& ns, Millis recovery) {
  if (!membership_.has_attachment(id)) {
    return make_error(ErrorCode::kFailedPrecondition, "unknown attachment");
  }
  if (auto s = check_namespace(ns); !s) return s;
  // Also when joined already: a Hello names namespaces without their settings.
  if (recovery > Millis{0}) membership_.send(id, recovery_.enable(ns, recovery));
  if (!membership_.join(id, ns)) return {};
  if (hold_.enough(ns, membership_.attached_count(ns))) release(ns);
  return {};
}

Status Node::leave_namespace(AttachmentId id, const std::string& ns) {
  if (!membership_.has_attachment(id)) {
    return make_error(ErrorCode::kFailedPrecondition, "unknown attachment");
  }
  // A namespace still held waits for its servers even with none left.
  membership_.leave(id, ns, /*keep_active=*/hold_.holds(ns));
  return {};
}

std::uint32_t Node::server_count(const std::string& ns) const {
  return membership_.server_count(ns);
}

std::set<std::string> Node::all_peers() const {
  return membership_.all_peers();
}

// ---- operations asked by an attached server ----

Status Node::broadcast(AttachmentId from, const wire::Packet& packet,
                       const wire::BroadcastOptions& opts, const RecoveryTag& tag) {
  return requester_.broadcast(from, packet, opts, tag);
}

Status Node::broadcast_with_ack(AttachmentId from, const wire::Packet& packet,
                                const wire::BroadcastOptions& opts, Millis ack_timeout,
                                AckStream stream) {
  return requester_.broadcast_with_ack(from, packet, opts, ack_timeout, std::move(stream));
}

Status Node::add_sockets(AttachmentId from, const std::string& ns,
                         const wire::BroadcastOptions& opts,
                         const std::vector<std::string>& rooms) {
  return requester_.add_sockets(from, ns, opts, rooms);
}

Status Node::del_sockets(AttachmentId from, const std::string& ns,
                         const wire::BroadcastOptions& opts,
                         const std::vector<std::string>& rooms) {
  return requester_.del_sockets(from, ns, opts, rooms);
}

Status Node::disconnect_sockets(AttachmentId from, const std::string& ns,
                                const wire::BroadcastOptions& opts, bool close) {
  return requester_.disconnect_sockets(from, ns, opts, close);
}

Status Node::fetch_sockets(AttachmentId from, const std::string& ns,
                           const wire::BroadcastOptions& opts,
                           std::function<void(SocketsResult)> done) {
  return requester_.fetch_sockets(from, ns, opts, std::move(done));
}

Status Node::all_rooms(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                       std::function<void(RoomsResult)> done) {
  return requester_.all_rooms(from, ns, opts, std::move(done));
}

Status Node::server_side_emit(AttachmentId from, const std::string& ns, wire::Bytes payload,
                              bool wants_ack, Millis timeout,
                              std::function<void(EmitResult)> done) {
  return requester_.server_side_emit(from, ns, std::move(payload), wants_ack, timeout,
                                     std::move(done));
}

// ---- connection state recovery ----

Status Node::persist_session(AttachmentId from, const std::string& ns, SessionRecord session) {
  if (auto s = membership_.check_caller(from, ns); !s) return s;
  return recovery_.persist(ns, std::move(session));
}

void Node::restore_session(AttachmentId from, const std::string& ns, const std::string& pid,
                           const RecoveryPoint& point,
                           std::function<void(Result<RestoredSession>)> done) {
  if (auto s = membership_.check_caller(from, ns); !s) return done(s.error());
  recovery_.restore(from, ns, pid, point, std::move(done));
}

const RecoveryLog* Node::recovery_log(const std::string& ns) const {
  return recovery_.log(ns);
}

RecoveryTotals Node::recovery_totals() const {
  return recovery_.totals();
}

// ---- answers of attached servers ----

void Node::on_ack_count(AttachmentId from, CommandId command, std::uint32_t count) {
  operations_.with(command, [&](Operation& op) { op.on_ack_count(from, count); });
}

void Node::on_ack(AttachmentId from, CommandId command, const std::string& sid, AckResult result) {
  operations_.with(command, [&](Operation& op) { op.on_ack(from, sid, result); });
}

void Node::on_rooms(AttachmentId from, CommandId command, std::vector<std::string> rooms) {
  operations_.with(command, [&](Operation& op) { op.on_rooms(from, rooms); });
}

void Node::on_sockets(AttachmentId from, CommandId command,
                      std::vector<wire::SocketDetails> sockets) {
  operations_.with(command, [&](Operation& op) { op.on_sockets(from, sockets); });
}

void Node::on_emit_reply(AttachmentId from, CommandId command, wire::Bytes payload) {
  operations_.with(command, [&](Operation& op) { op.on_emit_reply(from, payload); });
}

// ---- documents from the bus ----

void Node::on_document(const wire::Document& document, const std::string& position) {
  if (document.header.origin == uid_) {
    recovery_.read_through(position);
    recovery_.on_echo(document, position);
    return;
  }
  if (document.header.kind == wire::MessageKind::kResponse) {
    recovery_.read_through(position);
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
      recovery_.read_through(position);
      membership_.on_goodbye(document.header.origin);
      return;
    }
  }
  if (!membership_.is_active(document.header.ns)) {
    recovery_.read_through(position);
    // Sessions outlive their server: recovery keeps logging without one.
    if (recovery_.enabled(document.header.ns)) {
      recovery_.on_unattended_document(document, position);
    } else {
      ++stats_.inactive_namespace;
    }
    return;
  }
  if (hold_.keep(document, position)) return;
  recovery_.read_through(position);
  if (extension_target) {
    responder_.on_extension_request(document, position);
    return;
  }
  on_request_document(document, position);
}

void Node::on_request_document(const wire::Document& document, const std::string& position) {
  auto request = wire::decode_request(document.data);
  if (!request.ok()) {
    ++stats_.decode_errors;
    skipped_input_.skipped(context_.clock.now(), "a request from {}: {}", document.header.origin,
                           request.error().message);
    return;
  }
  ++stats_.requests_in[static_cast<std::size_t>(request->type)];
  if (request->type == wire::RequestType::kHeartbeat ||
      request->type == wire::RequestType::kInitHeartbeat) {
    membership_.on_heartbeat(document, *request);
    return;
  }
  membership_.touch(document.header.ns, document.header.origin);
  responder_.respond(document, std::move(*request), position);
}

void Node::on_response_document(const wire::Document& document) {
  // Decoded before it is matched: a malformed answer is counted as such, not
  // as a late one.
  if (document.data.empty() && document.extension) {
    auto ext = wire::decode_extension(*document.extension);
    auto* reply = ext.ok() ? std::get_if<wire::ServerSideEmitReply>(&*ext) : nullptr;
    if (!reply) {
      ++stats_.decode_errors;
      skipped_input_.skipped(context_.clock.now(), "an extension response from {}: {}",
                             document.header.origin,
                             ext.ok() ? "not a reply" : ext.error().message);
      return;
    }
    ++stats_.extensions_in;
    if (!operations_.with_request(*document.header.request, [&](Operation& op) {
          op.on_emit_response(document.header.origin, *reply);
        })) {
      ++stats_.late_responses;
    }
    return;
  }
  auto response = wire::decode_response(document.data);
  if (!response.ok()) {
    ++stats_.decode_errors;
    skipped_input_.skipped(context_.clock.now(), "a response from {}: {}", document.header.origin,
                           response.error().message);
    return;
  }
  ++stats_.responses_in[static_cast<std::size_t>(response->type())];
  membership_.touch(document.header.ns, document.header.origin);
  if (!operations_.with_request(*document.header.request,
                                [&](Operation& op) { op.on_response(*response, document); })) {
    ++stats_.late_responses;
  }
}

void Node::on_bus_state(bus::BusState state, const std::string& detail) {
  if (state != bus_health_.state) {
    spdlog::info("bus {}{}{}", bus::to_string(state), detail.empty() ? "" : ": ", detail);
  }
  bus_health_.state = state;
  bus_health_.detail = detail;
}

// ---- restarts and graceful stops ----

void Node::resume(const Handover& before) {
  for (const auto& [ns, snapshot] : before.namespaces) {
    if (snapshot.servers == 0) continue;
    hold_.hold_namespace(ns, snapshot.servers);
    membership_.remember_peers(ns, snapshot.peers);
  }
  hold_.start_grace();
}

Handover Node::snapshot() const {
  return membership_.snapshot([this](const std::string& ns) { return hold_.servers_before(ns); });
}

void Node::release(const std::string& ns) {
  if (!hold_.holds(ns)) return;
  const bool attached = membership_.attached_count(ns) > 0;
  const auto documents = hold_.release(ns, attached);
  if (!attached) {
    membership_.deactivate(ns);
    return;
  }
  for (const auto& [document, position] : documents) on_document(document, position);
}

void Node::leave_cluster() {
  if (membership_.leaving()) return;
  // One document for every namespace: a peer forgets this node everywhere.
  if (auto ns = membership_.any_namespace())
    (void)outbox_.publish_to_siobridge(*ns, wire::Goodbye{});
  membership_.stop_heartbeats();
}

NodeStatus Node::status() const {
  NodeStatus status;
  status.uid = uid_;
  status.bus_state = bus_health_.state;
  status.bus_detail = bus_health_.detail;
  membership_.fill_status(status);
  status.operations_in_flight = operations_.size();
  return status;
}

}  // namespace siobridge::core
