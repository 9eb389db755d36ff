// The responder side: requests from other nodes, fanned out to the attached
// servers of the namespace, their answers gathered and sent back once
// (PROTOCOL.md section 5).
#include <spdlog/spdlog.h>

#include "daemon/core/node.h"
#include "daemon/core/node_operation.h"
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

const PeerTable& Node::peers_of(const std::string& ns) const {
  static const PeerTable kNone;
  auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? kNone : it->second.peers;
}

void Node::publish_response(const std::string& ns, const std::string& target,
                            const std::string& request_id, wire::Response response,
                            std::optional<wire::Extension> extension) {
  const auto type = response.type();
  wire::Document doc{{wire::MessageKind::kResponse, ns, uid_, target, request_id},
                     wire::encode_response(response),
                     std::nullopt};
  if (extension) doc.extension = wire::encode_extension(*extension);
  if (bus_.publish(std::move(doc), audience_for(ns, target)).ok()) {
    ++stats_.responses_out[static_cast<std::size_t>(type)];
  } else {
    ++stats_.publish_failures;
    spdlog::warn("could not answer request {} of {}: the bus refused the response", request_id,
                 target);
  }
}

void Node::respond(const wire::Document& document, wire::Request request,
                   const std::string& position, NamespaceState& state) {
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
  if (!info) aliases_.resolve(command.opts);
  command.position = position;
  const std::vector<AttachmentId> targets(state.attachments.begin(), state.attachments.end());
  auto send_all = [&] {
    for (AttachmentId id : targets) send(id, command);
  };

  switch (request.type) {
    case wire::RequestType::kBroadcast:
      command.kind = CommandKind::kBroadcast;
      command.packet = std::move(request.packet);
      if (command.packet) log_from_bus(*command.packet, command.opts, info, position, command);
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
          info && info->ack_timeout_ms > 0 ? Millis{info->ack_timeout_ms} : config_.ack_timeout;
      auto responder = std::make_unique<AckResponder>(*this, next_command_id(), ns, requester,
                                                      request.id, ack_timeout, info.has_value());
      command.kind = CommandKind::kBroadcastWithAck;
      command.id = responder->id();
      command.packet = std::move(request.packet);
      command.timeout = ack_timeout;
      auto* registered = static_cast<AckResponder*>(start(std::move(responder)));
      for (AttachmentId id : targets) registered->expect_local(id);
      send_all();
      registered->arm();
      reap(command.id);
      return;
    }
    case wire::RequestType::kAllRooms: {
      const std::string request_id = request.id;
      command.kind = CommandKind::kAllRooms;
      gather_locally(std::make_unique<RoomsGathering>(
                         *this, next_command_id(), ns,
                         [this, ns, requester, request_id](RoomsResult result) {
                           publish_response(
                               ns, requester, request_id,
                               wire::Response{uid_, wire::RoomList{std::move(result.rooms)}},
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
              *this, next_command_id(), ns,
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

void Node::gather_locally(std::unique_ptr<Gathering> gathering, Command command,
                          const std::vector<AttachmentId>& targets) {
  command.id = gathering->id();
  auto* registered = static_cast<Gathering*>(start(std::move(gathering)));
  for (AttachmentId id : targets) {
    registered->expect_local(id);
    send(id, command);
  }
  registered->arm(config_.local_timeout);
  reap(command.id);
}

void Node::answer_fetch(const std::string& ns, const std::string& requester,
                        const std::string& request_id, bool siobridge_requester,
                        SocketsResult result) {
  wire::SocketList list;
  wire::FetchDetails details;
  for (auto& socket : result.sockets) {
    // socketioxide reads only 16-character ids; a siobridge requester matches
    // the aliases to the real ids in the details.
    list.sockets.push_back(wire::SocketRef{aliases_.report(socket.id), uid_, ns});
    if (siobridge_requester) {
      details.sockets.push_back(wire::SocketDetails{std::move(socket.id), std::move(socket.rooms),
                                                    std::move(socket.handshake),
                                                    std::move(socket.data)});
    }
  }
  std::optional<wire::Extension> extension;
  if (siobridge_requester) extension = std::move(details);
  publish_response(ns, requester, request_id, wire::Response{uid_, std::move(list)},
                   std::move(extension));
}

void Node::on_extension_request(const wire::Document& document, const std::string& position,
                                NamespaceState& state) {
  if (!document.extension) {
    ++stats_.decode_errors;
    skipped_input_.skipped(clock_.now(), "an extension request from {}: no extension",
                           document.header.origin);
    return;
  }
  auto ext = wire::decode_extension(*document.extension);
  if (!ext.ok()) {
    ++stats_.decode_errors;
    skipped_input_.skipped(clock_.now(), "an extension request from {}: {}", document.header.origin,
                           ext.error().message);
    return;
  }
  ++stats_.extensions_in;
  if (on_recovery_extension(document, *ext, position)) return;
  auto* emit = std::get_if<wire::ServerSideEmit>(&*ext);
  if (!emit) return;
  state.peers.touch(document.header.origin, clock_.now());
  const std::string& ns = document.header.ns;
  const std::vector<AttachmentId> targets(state.attachments.begin(), state.attachments.end());
  Command command;
  command.kind = CommandKind::kServerSideEmit;
  command.ns = ns;
  command.payload = std::move(emit->payload);
  command.wants_ack = emit->wants_ack;
  command.timeout = Millis{emit->timeout_ms};
  command.position = position;
  if (!emit->wants_ack) {
    for (AttachmentId id : targets) send(id, command);
    return;
  }
  // Answers go back as they come, until the requester's own deadline: the
  // requester decides how long it waits, not this node.
  auto responder = std::make_unique<EmitResponder>(*this, next_command_id(), ns,
                                                   document.header.origin, emit->id);
  command.id = responder->id();
  auto* registered = static_cast<EmitResponder*>(start(std::move(responder)));
  for (AttachmentId id : targets) {
    registered->expect_local(id);
    send(id, command);
  }
  registered->arm(emit->timeout_ms > 0 ? Millis{emit->timeout_ms} : config_.request_timeout);
  reap(command.id);
}

}  // namespace siobridge::core
