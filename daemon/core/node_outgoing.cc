// The requester side: operations an attached server asks of the cluster
// (PROTOCOL.md section 5). Remote first, then local: the request is published
// before the other attached servers get their command, and handlers are
// registered before publishing.
#include <spdlog/spdlog.h>

#include "daemon/core/node.h"
#include "daemon/core/node_operation.h"
#include "daemon/core/validation.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {
namespace {

// Local fan-out happened; other hosts were not reached. A message the bus can
// never store (larger than a document may be) keeps its RESOURCE_EXHAUSTED:
// UNAVAILABLE would tell the caller to try again.
Status remote_failed(const Status& publish, std::size_t local) {
  const auto code = publish.error().code == ErrorCode::kResourceExhausted
                        ? ErrorCode::kResourceExhausted
                        : ErrorCode::kUnavailable;
  return make_error(
      code, fmt::format("delivered to {} server(s) attached here, not to other hosts: {}", local,
                        publish.error().message));
}

}  // namespace

Status Node::check_cluster_reachable() const {
  if (bus_state_ != bus::BusState::kUnavailable && bus_state_ != bus::BusState::kFailed) return {};
  // Broadcasts queue while the bus is away; an answer from other hosts
  // cannot come, so a question fails at once rather than at its timeout.
  return make_error(
      ErrorCode::kUnavailable,
      fmt::format("MongoDB is {}: the other hosts cannot answer{}{}", bus::to_string(bus_state_),
                  bus_detail_.empty() ? "" : " (", bus_detail_.empty() ? "" : bus_detail_ + ")"));
}

bool Node::is_local_only(const wire::BroadcastOptions& opts) const {
  using namespace wire::broadcast_flags;
  if (opts.has(kLocal)) return true;
  if (opts.server_id && *opts.server_id == uid_) return true;
  return false;
}

std::optional<std::string> Node::target_of(const wire::BroadcastOptions& opts) const {
  return opts.server_id;
}

Status Node::publish_request(const std::string& ns, wire::Request request,
                             std::optional<std::string> target, const wire::RequestInfo& info) {
  const auto type = request.type;
  const auto audience = audience_for(ns, target);
  wire::Document doc{{wire::MessageKind::kRequest, ns, uid_, std::move(target), std::nullopt},
                     wire::encode_request(request),
                     wire::encode_extension(info)};
  // Its position comes back for the recovery log.
  doc.echo = info.recovery.has_value();
  auto status = bus_.publish(std::move(doc), audience);
  if (status.ok()) {
    ++stats_.requests_out[static_cast<std::size_t>(type)];
  } else {
    ++stats_.publish_failures;
  }
  return status;
}

Status Node::publish_to_siobridge(const std::string& ns, const wire::Extension& extension,
                                  bool echo, wire::Bytes data) {
  wire::Document doc{
      {wire::MessageKind::kRequest, ns, uid_, std::string(wire::kSiobridgeTarget), std::nullopt},
      std::move(data),
      wire::encode_extension(extension)};
  doc.echo = echo;
  auto status = bus_.publish(std::move(doc), bus::Audience::kSiobridgeOnly);
  if (status.ok()) {
    ++stats_.extensions_out;
  } else {
    ++stats_.publish_failures;
  }
  return status;
}

Status Node::fire_and_forget(AttachmentId from, const std::string& ns, wire::RequestType type,
                             const wire::BroadcastOptions& opts, Command command,
                             std::optional<std::vector<std::string>> rooms,
                             const wire::RequestInfo& info) {
  if (auto s = check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  return fan_out(from, ns, type, opts, std::move(command), std::move(rooms), info);
}

Status Node::fan_out(AttachmentId from, const std::string& ns, wire::RequestType type,
                     const wire::BroadcastOptions& opts, Command command,
                     std::optional<std::vector<std::string>> rooms, const wire::RequestInfo& info) {
  if (opts.has(wire::broadcast_flags::kLocal)) return {};  // the caller's own sockets only
  Status published;
  if (!is_local_only(opts)) {
    wire::Request request{uid_, wire::generate_id(), type, command.packet, std::move(rooms), opts};
    published = publish_request(ns, std::move(request), target_of(opts), info);
  }
  command.ns = ns;
  command.opts = opts;
  const auto targets = local_targets(ns, from);
  for (AttachmentId id : targets) send(id, command);
  return published.ok() ? Status{} : remote_failed(published, targets.size());
}

Status Node::broadcast(AttachmentId from, const wire::Packet& packet,
                       const wire::BroadcastOptions& opts, const RecoveryTag& tag) {
  Command command;
  command.kind = CommandKind::kBroadcast;
  command.packet = packet;
  // Checked before it is logged: a refused packet is no one's.
  if (auto s = check_caller(from, packet.ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  wire::RequestInfo info;
  info.recovery = log_for_recovery(packet, opts, from, tag.own_seq, command);
  // What no other node receives is logged by the other daemons all the same.
  if (info.recovery && (tag.only || is_local_only(opts))) {
    publish_log_only(packet, opts, *info.recovery);
    info.recovery.reset();
  }
  if (tag.only) return {};
  return fan_out(from, packet.ns, wire::RequestType::kBroadcast, opts, std::move(command),
                 std::nullopt, info);
}

Status Node::add_sockets(AttachmentId from, const std::string& ns,
                         const wire::BroadcastOptions& opts,
                         const std::vector<std::string>& rooms) {
  if (auto s = check_target_rooms(rooms, "rooms"); !s) return s;
  Command command;
  command.kind = CommandKind::kAddSockets;
  command.rooms = rooms;
  return fire_and_forget(from, ns, wire::RequestType::kAddSockets, opts, std::move(command), rooms,
                         wire::RequestInfo{});
}

Status Node::del_sockets(AttachmentId from, const std::string& ns,
                         const wire::BroadcastOptions& opts,
                         const std::vector<std::string>& rooms) {
  if (auto s = check_target_rooms(rooms, "rooms"); !s) return s;
  Command command;
  command.kind = CommandKind::kDelSockets;
  command.rooms = rooms;
  return fire_and_forget(from, ns, wire::RequestType::kDelSockets, opts, std::move(command), rooms,
                         wire::RequestInfo{});
}

Status Node::disconnect_sockets(AttachmentId from, const std::string& ns,
                                const wire::BroadcastOptions& opts, bool close) {
  Command command;
  command.kind = CommandKind::kDisconnectSockets;
  command.close = close;
  return fire_and_forget(from, ns, wire::RequestType::kDisconnectSockets, opts, std::move(command),
                         std::nullopt, wire::RequestInfo{0, close, std::nullopt, false});
}

Status Node::run_gathering(AttachmentId from, const std::string& ns,
                           std::unique_ptr<Gathering> gathering, Command command,
                           std::vector<std::string> remote, Millis deadline,
                           const std::function<Status(const std::string&)>& publish) {
  const CommandId id = gathering->id();
  std::string request_id;
  if (publish) {
    request_id = wire::generate_id();
    gathering->expect_remote(std::move(remote), request_id);
  }
  auto* registered = static_cast<Gathering*>(start(std::move(gathering)));
  if (publish) {
    if (auto status = publish(request_id); !status.ok()) {
      discard(id);
      return status;
    }
  }
  command.id = id;
  command.ns = ns;
  for (AttachmentId target : local_targets(ns, from)) {
    registered->expect_local(target);
    send(target, command);
  }
  registered->arm(deadline);
  reap(id);
  return {};
}

void Node::discard(CommandId id) {
  auto it = operations_.find(id);
  if (it == operations_.end()) return;
  by_request_id_.erase(it->second->request_id());
  operations_.erase(it);
}

Status Node::ask(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                 wire::RequestType type, CommandKind kind,
                 const std::function<std::unique_ptr<Gathering>(CommandId)>& make,
                 const std::function<void()>& answer_empty) {
  if (auto s = check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  if (opts.has(wire::broadcast_flags::kLocal)) {
    answer_empty();
    return {};
  }
  if (!is_local_only(opts)) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  auto gathering = make(next_command_id());
  const auto target = target_of(opts);
  std::function<Status(const std::string&)> publish;
  if (!is_local_only(opts)) {
    publish = [&](const std::string& request_id) {
      return publish_request(ns, {uid_, request_id, type, {}, {}, opts}, target,
                             wire::RequestInfo{});
    };
  }
  return run_gathering(from, ns, std::move(gathering), make_command(kind, ns, opts),
                       target ? std::vector<std::string>{*target} : peers_of(ns).uids(),
                       config_.request_timeout, publish);
}

Status Node::all_rooms(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                       std::function<void(RoomsResult)> done) {
  return ask(
      from, ns, opts, wire::RequestType::kAllRooms, CommandKind::kAllRooms,
      [&](CommandId id) {
        return std::make_unique<RoomsGathering>(*this, id, ns, std::move(done));
      },
      [&] { done(RoomsResult{}); });  // the caller's own rooms only
}

Status Node::fetch_sockets(AttachmentId from, const std::string& ns,
                           const wire::BroadcastOptions& opts,
                           std::function<void(SocketsResult)> done) {
  return ask(
      from, ns, opts, wire::RequestType::kFetchSockets, CommandKind::kFetchSockets,
      [&](CommandId id) {
        return std::make_unique<SocketsGathering>(*this, id, ns, std::move(done));
      },
      [&] { done(SocketsResult{}); });  // the caller's own sockets only
}

Status Node::server_side_emit(AttachmentId from, const std::string& ns, wire::Bytes payload,
                              bool wants_ack, Millis timeout,
                              std::function<void(EmitResult)> done) {
  if (auto s = check_caller(from, ns); !s) return s;
  if (timeout <= Millis{0}) timeout = config_.request_timeout;
  Command command;
  command.kind = CommandKind::kServerSideEmit;
  command.ns = ns;
  command.payload = payload;
  command.wants_ack = wants_ack;
  command.timeout = timeout;

  auto publish = [&](const std::string& request_id) {
    return publish_to_siobridge(ns,
                                wire::ServerSideEmit{request_id, payload, wants_ack,
                                                     static_cast<std::uint32_t>(timeout.count())});
  };

  const auto targets = local_targets(ns, from);
  if (wants_ack) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  if (!wants_ack) {
    auto published = publish(wire::generate_id());
    for (AttachmentId id : targets) send(id, command);
    if (!published.ok()) return remote_failed(published, targets.size());
    if (done) done(EmitResult{{}, 0, {}});
    return {};
  }
  auto query = std::make_unique<EmitQuery>(*this, next_command_id(), ns, std::move(done));
  // Only siobridge nodes with attached servers can answer.
  bool remote = false;
  for (const auto& [uid, peer] : peers_of(ns).all()) {
    if (peer.is_siobridge() && peer.server_count() > 0) {
      query->expect_remote(uid, peer.server_count());
      remote = true;
    }
  }
  const CommandId id = query->id();
  const std::string request_id = wire::generate_id();
  query->set_request_id(request_id);
  auto* registered = static_cast<EmitQuery*>(start(std::move(query)));
  if (remote) {
    if (auto status = publish(request_id); !status.ok()) {
      discard(id);
      return status;
    }
  }
  command.id = id;
  for (AttachmentId target : targets) {
    registered->expect_local(target);
    send(target, command);
  }
  registered->arm(timeout);
  reap(id);
  return {};
}

Status Node::broadcast_with_ack(AttachmentId from, const wire::Packet& packet,
                                const wire::BroadcastOptions& opts, Millis ack_timeout,
                                AckStream stream) {
  const std::string& ns = packet.ns;
  if (auto s = check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  if (ack_timeout <= Millis{0}) ack_timeout = config_.ack_timeout;
  if (opts.has(wire::broadcast_flags::kLocal)) {
    if (stream.on_done) stream.on_done(Missing{}, false);
    return {};
  }
  if (!is_local_only(opts)) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  auto query =
      std::make_unique<AckQuery>(*this, next_command_id(), ns, std::move(stream), ack_timeout);
  const CommandId id = query->id();
  std::optional<wire::Request> request;
  if (!is_local_only(opts)) {
    // Always every node: acks can come from anywhere (PROTOCOL.md section 5).
    request = wire::Request{uid_,   wire::generate_id(), wire::RequestType::kBroadcastWithAck,
                            packet, std::nullopt,        opts};
    query->expect_remote(peers_of(ns).uids(), request->id);
  }
  auto* registered = static_cast<AckQuery*>(start(std::move(query)));
  if (request) {
    wire::RequestInfo info;
    info.ack_timeout_ms = static_cast<std::uint32_t>(ack_timeout.count());
    if (auto s = publish_request(ns, std::move(*request), std::nullopt, info); !s) {
      discard(id);
      return s;
    }
  }
  Command command;
  command.kind = CommandKind::kBroadcastWithAck;
  command.id = id;
  command.ns = ns;
  command.opts = opts;
  command.packet = packet;
  command.timeout = ack_timeout;
  for (AttachmentId target : local_targets(ns, from)) {
    registered->expect_local(target);
    send(target, command);
  }
  registered->arm();
  reap(id);
  return {};
}

}  // namespace siobridge::core
