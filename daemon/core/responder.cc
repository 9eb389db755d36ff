#include "daemon/core/responder.h"

#include <spdlog/spdlog.h>

#include "daemon/core/ack_operations.h"
#include "daemon/core/emit_operations.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {
namespace {

std::optional<wire::RequestInfo> request_info(const wire::Document& document) {
  if (!document.extension) return std::nullopt;
  auto ext = wire::decode_extension(*document.extension);
  if (!ext.ok()) return std::nullopt;
  if (const auto* info = std::get_if<wire::RequestInfo>(&*ext)) return *info;
  return std::nullopt;
}

}  // namespace

void Responder::respond(const wire::Document& document, wire::Request request,
                        const std::string& position) {
  const std::string& ns = document.header.ns;
  const std::string& requester = document.header.origin;
  const auto info = request_info(document);
  Command command;
  command.ns = ns;
  command.opts = request.opts.value_or(wire::BroadcastOptions{});
  // The requester already applied the operation to its own sockets, and a
  // Local flag never crosses nodes.
  command.opts.flags &= static_cast<std::uint8_t>(~wire::broadcast_flags::kLocal);
  // A socketioxide node names this node's sockets by the aliases it was given.
  if (!info) operations_.aliases.resolve(command.opts);
  command.position = position;
  const std::vector<AttachmentId> targets = membership_.local_targets(ns, kNoAttachment);
  auto send_all = [&] {
    for (AttachmentId id : targets) membership_.send(id, command);
  };

  switch (request.type) {
    case wire::RequestType::kBroadcast:
      command.kind = CommandKind::kBroadcast;
      command.packet = std::move(request.packet);
      if (command.packet)
        recovery_.log_from_bus(*command.packet, command.opts, info, position, command);
      send_all();
      return;
    case wire::RequestType::kAddSockets:
    case wire::RequestType::kDelSockets:
      command.kind = request.type == wire::RequestType::kAddSockets ? CommandKind::kAddSockets
                                                                    : CommandKind::kDelSockets;
      command.rooms = std::move(*request.rooms);
      send_all();
      return;
    case wire::RequestType::kDisconnectSockets:
      command.kind = CommandKind::kDisconnectSockets;
      command.close = info && info->close;
      send_all();
      return;
    case wire::RequestType::kBroadcastWithAck: {
      const Millis ack_timeout =
          info && info->ack_timeout_ms > 0 ? Millis{info->ack_timeout_ms} : config().ack_timeout;
      auto responder = std::make_unique<AckResponder>(operations_, table().next_id(), ns, requester,
                                                      request.id, ack_timeout, info.has_value());
      command.kind = CommandKind::kBroadcastWithAck;
      command.id = responder->id();
      command.packet = std::move(request.packet);
      command.timeout = ack_timeout;
      auto* registered = table().start(std::move(responder));
      for (AttachmentId id : targets) registered->expect_local(id, membership_.name_of(id));
      send_all();
      registered->arm();
      table().reap(command.id);
      return;
    }
    case wire::RequestType::kAllRooms: {
      const std::string request_id = request.id;
      command.kind = CommandKind::kAllRooms;
      gather_locally(std::make_unique<RoomsGathering>(
                         operations_, table().next_id(), ns,
                         [this, ns, requester, request_id](RoomsResult result) {
                           operations_.outbox.publish_response(
                               ns, requester, request_id,
                               wire::Response{uid(), wire::RoomList{std::move(result.rooms)}},
                               std::nullopt);
                         }),
                     std::move(command), targets);
      return;
    }
    case wire::RequestType::kFetchSockets: {
      const std::string request_id = request.id;
      const bool siobridge_requester = info.has_value();
      command.kind = CommandKind::kFetchSockets;
      gather_locally(
          std::make_unique<SocketsGathering>(
              operations_, table().next_id(), ns,
              [this, ns, requester, request_id, siobridge_requester](SocketsResult result) {
                answer_fetch(ns, requester, request_id, siobridge_requester, std::move(result));
              }),
          std::move(command), targets);
      return;
    }
    case wire::RequestType::kHeartbeat:
    case wire::RequestType::kInitHeartbeat:
      return;  // handled by on_heartbeat
  }
}

void Responder::gather_locally(std::unique_ptr<Gathering> gathering, Command command,
                               const std::vector<AttachmentId>& targets) {
  command.id = gathering->id();
  auto* registered = table().start(std::move(gathering));
  for (AttachmentId id : targets) {
    registered->expect_local(id, membership_.name_of(id));
    membership_.send(id, command);
  }
  registered->arm(config().local_timeout);
  table().reap(command.id);
}

void Responder::answer_fetch(const std::string& ns, const std::string& requester,
                             const std::string& request_id, bool siobridge_requester,
                             SocketsResult result) {
  wire::SocketList list;
  wire::FetchDetails details;
  for (auto& socket : result.sockets) {
    // socketioxide reads only 16-character ids; a siobridge requester matches
    // the aliases to the real ids in the details.
    list.sockets.push_back(wire::SocketRef{operations_.aliases.report(socket.id), uid(), ns});
    if (siobridge_requester) {
      details.sockets.push_back(wire::SocketDetails{std::move(socket.id), std::move(socket.rooms),
                                                    std::move(socket.handshake),
                                                    std::move(socket.data)});
    }
  }
  std::optional<wire::Extension> extension;
  if (siobridge_requester) extension = std::move(details);
  operations_.outbox.publish_response(ns, requester, request_id,
                                      wire::Response{uid(), std::move(list)}, std::move(extension));
}

void Responder::on_extension_request(const wire::Document& document, const std::string& position) {
  if (!document.extension) {
    ++operations_.node.stats.decode_errors;
    operations_.node.skipped_input.skipped(operations_.node.clock.now(),
                                           "an extension request from {}: no extension",
                                           document.header.origin);
    return;
  }
  auto ext = wire::decode_extension(*document.extension);
  if (!ext.ok()) {
    ++operations_.node.stats.decode_errors;
    operations_.node.skipped_input.skipped(operations_.node.clock.now(),
                                           "an extension request from {}: {}",
                                           document.header.origin, ext.error().message);
    return;
  }
  ++operations_.node.stats.extensions_in;
  if (recovery_.on_extension(document, *ext, position)) return;
  auto* emit = std::get_if<wire::ServerSideEmit>(&*ext);
  if (!emit) return;
  const std::string& ns = document.header.ns;
  membership_.touch(ns, document.header.origin);
  const std::vector<AttachmentId> targets = membership_.local_targets(ns, kNoAttachment);
  Command command;
  command.kind = CommandKind::kServerSideEmit;
  command.ns = ns;
  command.payload = std::move(emit->payload);
  command.wants_ack = emit->wants_ack;
  command.timeout = Millis{emit->timeout_ms};
  command.position = position;
  if (!emit->wants_ack) {
    for (AttachmentId id : targets) membership_.send(id, command);
    return;
  }
  // Answers go back as they come, until the requester's own deadline: the
  // requester decides how long it waits, not this node.
  auto responder = std::make_unique<EmitResponder>(operations_, table().next_id(), ns,
                                                   document.header.origin, emit->id);
  command.id = responder->id();
  auto* registered = table().start(std::move(responder));
  for (AttachmentId id : targets) {
    registered->expect_local(id);
    membership_.send(id, command);
  }
  registered->arm(emit->timeout_ms > 0 ? Millis{emit->timeout_ms} : config().request_timeout);
  table().reap(command.id);
}

}  // namespace siobridge::core
