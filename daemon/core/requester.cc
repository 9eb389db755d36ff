#include "daemon/core/requester.h"

#include <spdlog/spdlog.h>

#include "daemon/core/ack_operations.h"
#include "daemon/core/emit_operations.h"
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

Status Requester::check_cluster_reachable() const {
  if (bus_.state != bus::BusState::kUnavailable && bus_.state != bus::BusState::kFailed) return {};
  // Broadcasts queue while the bus is away; an answer from other hosts
  // cannot come, so a question fails at once rather than at its timeout.
  return make_error(
      ErrorCode::kUnavailable,
      fmt::format("MongoDB is {}: the other hosts cannot answer{}{}", bus::to_string(bus_.state),
                  bus_.detail.empty() ? "" : " (", bus_.detail.empty() ? "" : bus_.detail + ")"));
}

bool Requester::is_local_only(const wire::BroadcastOptions& opts) const {
  using namespace wire::broadcast_flags;
  if (opts.has(kLocal)) return true;
  if (opts.server_id && *opts.server_id == uid()) return true;
  return false;
}

Status Requester::fire_and_forget(AttachmentId from, const std::string& ns, wire::RequestType type,
                                  const wire::BroadcastOptions& opts, Command command,
                                  std::optional<std::vector<std::string>> rooms,
                                  const wire::RequestInfo& info) {
  if (auto s = membership_.check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  return fan_out(from, ns, type, opts, std::move(command), std::move(rooms), info);
}

Status Requester::fan_out(AttachmentId from, const std::string& ns, wire::RequestType type,
                          const wire::BroadcastOptions& opts, Command command,
                          std::optional<std::vector<std::string>> rooms,
                          const wire::RequestInfo& info) {
  if (opts.has(wire::broadcast_flags::kLocal)) return {};  // the caller's own sockets only
  Status published;
  if (!is_local_only(opts)) {
    wire::Request request{uid(), wire::generate_id(), type, command.packet, std::move(rooms), opts};
    published = operations_.outbox.publish_request(ns, std::move(request), opts.server_id, info);
  }
  command.ns = ns;
  command.opts = opts;
  const auto targets = membership_.local_targets(ns, from);
  for (AttachmentId id : targets) membership_.send(id, command);
  return published.ok() ? Status{} : remote_failed(published, targets.size());
}

Status Requester::broadcast(AttachmentId from, const wire::Packet& packet,
                            const wire::BroadcastOptions& opts, const RecoveryTag& tag) {
  Command command;
  command.kind = CommandKind::kBroadcast;
  command.packet = packet;
  // Checked before it is logged: a refused packet is no one's.
  if (auto s = membership_.check_caller(from, packet.ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  wire::RequestInfo info;
  info.recovery = recovery_.log_own(packet, opts, from, tag.own_seq, command);
  // What no other node receives is logged by the other daemons all the same.
  if (info.recovery && (tag.only || is_local_only(opts))) {
    recovery_.publish_log_only(packet, opts, *info.recovery);
    info.recovery.reset();
  }
  if (tag.only) return {};
  return fan_out(from, packet.ns, wire::RequestType::kBroadcast, opts, std::move(command),
                 std::nullopt, info);
}

Status Requester::add_sockets(AttachmentId from, const std::string& ns,
                              const wire::BroadcastOptions& opts,
                              const std::vector<std::string>& rooms) {
  if (auto s = check_target_rooms(rooms, "rooms"); !s) return s;
  Command command;
  command.kind = CommandKind::kAddSockets;
  command.rooms = rooms;
  return fire_and_forget(from, ns, wire::RequestType::kAddSockets, opts, std::move(command), rooms,
                         wire::RequestInfo{});
}

Status Requester::del_sockets(AttachmentId from, const std::string& ns,
                              const wire::BroadcastOptions& opts,
                              const std::vector<std::string>& rooms) {
  if (auto s = check_target_rooms(rooms, "rooms"); !s) return s;
  Command command;
  command.kind = CommandKind::kDelSockets;
  command.rooms = rooms;
  return fire_and_forget(from, ns, wire::RequestType::kDelSockets, opts, std::move(command), rooms,
                         wire::RequestInfo{});
}

Status Requester::disconnect_sockets(AttachmentId from, const std::string& ns,
                                     const wire::BroadcastOptions& opts, bool close) {
  Command command;
  command.kind = CommandKind::kDisconnectSockets;
  command.close = close;
  return fire_and_forget(from, ns, wire::RequestType::kDisconnectSockets, opts, std::move(command),
                         std::nullopt, wire::RequestInfo{0, close, std::nullopt, false});
}

Status Requester::run_gathering(AttachmentId from, const std::string& ns,
                                std::unique_ptr<Gathering> gathering, Command command,
                                std::vector<std::string> remote, Millis deadline,
                                const std::function<Status(const std::string&)>& publish) {
  const CommandId id = gathering->id();
  std::string request_id;
  if (publish) {
    request_id = wire::generate_id();
    gathering->expect_remote(std::move(remote), request_id);
  }
  auto* registered = table().start(std::move(gathering));
  if (publish) {
    if (auto status = publish(request_id); !status.ok()) {
      table().discard(id);
      return status;
    }
  }
  command.id = id;
  command.ns = ns;
  for (AttachmentId target : membership_.local_targets(ns, from)) {
    registered->expect_local(target, membership_.name_of(target));
    membership_.send(target, command);
  }
  registered->arm(deadline);
  table().reap(id);
  return {};
}

Status Requester::ask(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                      wire::RequestType type, CommandKind kind,
                      const std::function<std::unique_ptr<Gathering>(CommandId)>& make,
                      const std::function<void()>& answer_empty) {
  if (auto s = membership_.check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  if (opts.has(wire::broadcast_flags::kLocal)) {
    answer_empty();
    return {};
  }
  if (!is_local_only(opts)) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  auto gathering = make(table().next_id());
  const auto target = opts.server_id;
  std::function<Status(const std::string&)> publish;
  if (!is_local_only(opts)) {
    publish = [&](const std::string& request_id) {
      return operations_.outbox.publish_request(ns, {uid(), request_id, type, {}, {}, opts}, target,
                                                wire::RequestInfo{});
    };
  }
  return run_gathering(from, ns, std::move(gathering), make_command(kind, ns, opts),
                       target ? std::vector<std::string>{*target} : membership_.peers_of(ns).uids(),
                       config().request_timeout, publish);
}

Status Requester::all_rooms(AttachmentId from, const std::string& ns,
                            const wire::BroadcastOptions& opts,
                            std::function<void(RoomsResult)> done) {
  return ask(
      from, ns, opts, wire::RequestType::kAllRooms, CommandKind::kAllRooms,
      [&](CommandId id) {
        return std::make_unique<RoomsGathering>(operations_, id, ns, std::move(done));
      },
      [&] { done(RoomsResult{}); });  // the caller's own rooms only
}

Status Requester::fetch_sockets(AttachmentId from, const std::string& ns,
                                const wire::BroadcastOptions& opts,
                                std::function<void(SocketsResult)> done) {
  return ask(
      from, ns, opts, wire::RequestType::kFetchSockets, CommandKind::kFetchSockets,
      [&](CommandId id) {
        return std::make_unique<SocketsGathering>(operations_, id, ns, std::move(done));
      },
      [&] { done(SocketsResult{}); });  // the caller's own sockets only
}

Status Requester::server_side_emit(AttachmentId from, const std::string& ns, wire::Bytes payload,
                                   bool wants_ack, Millis timeout,
                                   std::function<void(EmitResult)> done) {
  if (auto s = membership_.check_caller(from, ns); !s) return s;
  if (timeout <= Millis{0}) timeout = config().request_timeout;
  Command command;
  command.kind = CommandKind::kServerSideEmit;
  command.ns = ns;
  command.payload = payload;
  command.wants_ack = wants_ack;
  command.timeout = timeout;

  auto publish = [&](const std::string& request_id) {
    return operations_.outbox.publish_to_siobridge(
        ns, wire::ServerSideEmit{request_id, payload, wants_ack,
                                 static_cast<std::uint32_t>(timeout.count())});
  };

  const auto targets = membership_.local_targets(ns, from);
  if (wants_ack) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  if (!wants_ack) {
    auto published = publish(wire::generate_id());
    for (AttachmentId id : targets) membership_.send(id, command);
    if (!published.ok()) return remote_failed(published, targets.size());
    if (done) done(EmitResult{{}, 0, {}});
    return {};
  }
  auto query = std::make_unique<EmitQuery>(operations_, table().next_id(), ns, std::move(done));
  // Only siobridge nodes with attached servers can answer.
  bool remote = false;
  for (const auto& [uid, peer] : membership_.peers_of(ns).all()) {
    if (peer.is_siobridge() && peer.server_count() > 0) {
      query->expect_remote(uid, peer.server_count());
      remote = true;
    }
  }
  const CommandId id = query->id();
  const std::string request_id = wire::generate_id();
  query->set_request_id(request_id);
  auto* registered = table().start(std::move(query));
  if (remote) {
    if (auto status = publish(request_id); !status.ok()) {
      table().discard(id);
      return status;
    }
  }
  command.id = id;
  for (AttachmentId target : targets) {
    registered->expect_local(target, membership_.name_of(target));
    membership_.send(target, command);
  }
  registered->arm(timeout);
  table().reap(id);
  return {};
}

Status Requester::broadcast_with_ack(AttachmentId from, const wire::Packet& packet,
                                     const wire::BroadcastOptions& opts, Millis ack_timeout,
                                     AckStream stream) {
  const std::string& ns = packet.ns;
  if (auto s = membership_.check_caller(from, ns); !s) return s;
  if (auto s = check_options(opts); !s) return s;
  if (ack_timeout <= Millis{0}) ack_timeout = config().ack_timeout;
  if (opts.has(wire::broadcast_flags::kLocal)) {
    if (stream.on_done) stream.on_done(Missing{}, false);
    return {};
  }
  if (!is_local_only(opts)) {
    if (auto s = check_cluster_reachable(); !s) return s;
  }
  auto query = std::make_unique<AckQuery>(operations_, table().next_id(), ns, std::move(stream),
                                          ack_timeout);
  const CommandId id = query->id();
  std::optional<wire::Request> request;
  if (!is_local_only(opts)) {
    // Always every node: acks can come from anywhere (PROTOCOL.md section 5).
    request = wire::Request{uid(),  wire::generate_id(), wire::RequestType::kBroadcastWithAck,
                            packet, std::nullopt,        opts};
    query->expect_remote(membership_.peers_of(ns).uids(), request->id);
  }
  auto* registered = table().start(std::move(query));
  if (request) {
    wire::RequestInfo info;
    info.ack_timeout_ms = static_cast<std::uint32_t>(ack_timeout.count());
    if (auto s = operations_.outbox.publish_request(ns, std::move(*request), std::nullopt, info);
        !s) {
      table().discard(id);
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
  for (AttachmentId target : membership_.local_targets(ns, from)) {
    registered->expect_local(target, membership_.name_of(target));
    membership_.send(target, command);
  }
  registered->arm();
  table().reap(id);
  return {};
}

}  // namespace siobridge::core
