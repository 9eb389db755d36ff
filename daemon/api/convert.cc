#include "daemon/api/convert.h"

#include <fmt/format.h>

#include "daemon/core/validation.h"
#include "daemon/wire/ids.h"

namespace siobridge::api {

grpc::Status to_grpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto& e = status.error();
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kDecode:
      return {grpc::StatusCode::INVALID_ARGUMENT, e.message};
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kMismatch:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
    case ErrorCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, e.message};
    case ErrorCode::kTimeout:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, e.message};
    case ErrorCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.message};
    case ErrorCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, e.message};
    case ErrorCode::kCancelled:
      return {grpc::StatusCode::CANCELLED, e.message};
    case ErrorCode::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, e.message};
}

grpc::Status invalid(const std::string& message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, message};
}

Result<wire::BroadcastOptions> from_proto(const pb::BroadcastOptions& opts) {
  wire::BroadcastOptions out;
  out.rooms.assign(opts.rooms().begin(), opts.rooms().end());
  out.except.assign(opts.except().begin(), opts.except().end());
  if (opts.has_sid()) out.sid = opts.sid();
  if (opts.has_server_id()) out.server_id = opts.server_id();
  if (opts.exclude_sid()) out.flags |= wire::broadcast_flags::kBroadcast;
  if (opts.volatile_()) out.flags |= wire::broadcast_flags::kVolatile;
  if (opts.local()) out.flags |= wire::broadcast_flags::kLocal;
  if (auto s = core::check_options(out); !s) return s.error();
  return out;
}

Result<wire::Value> from_proto(const pb::Value& value, std::size_t max_bytes) {
  if (value.kind() != pb::Value::KIND_STR && value.kind() != pb::Value::KIND_BYTES) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("value.kind {} is unknown", value.kind()));
  }
  std::size_t total = value.data().size();
  for (const auto& attachment : value.attachments()) total += attachment.size();
  if (total > max_bytes) {
    return make_error(
        ErrorCode::kResourceExhausted,
        fmt::format("payload of {} bytes exceeds max_message_bytes ({})", total, max_bytes));
  }
  wire::Value out;
  out.kind = value.kind() == pb::Value::KIND_STR ? wire::ValueKind::kStr : wire::ValueKind::kBytes;
  out.bytes = value.data();
  if (value.attachments_size() > 0) {
    out.attachments =
        std::vector<wire::Bytes>(value.attachments().begin(), value.attachments().end());
  }
  return out;
}

Result<wire::Packet> from_proto(const pb::Packet& packet, std::size_t max_bytes) {
  if (auto s = core::check_namespace(packet.namespace_()); !s) {
    return make_error(ErrorCode::kInvalidArgument, "packet." + s.error().message);
  }
  if (packet.type() < 0 || packet.type() > wire::kMaxPacketType) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("packet.type {} is unknown", packet.type()));
  }
  wire::Packet out;
  out.ns = packet.namespace_();
  out.type = static_cast<wire::PacketType>(packet.type());
  if (packet.has_data()) {
    auto value = from_proto(packet.data(), max_bytes);
    if (!value.ok()) return value.error();
    out.data = std::move(*value);
  }
  if (packet.has_ack_id()) out.ack = packet.ack_id();
  if (packet.has_error()) out.error = packet.error();
  return out;
}

core::AckResult from_proto(const pb::Ack& ack) {
  if (ack.has_value()) {
    auto value = from_proto(ack.value(), SIZE_MAX);
    if (value.ok()) return std::move(*value);
    return wire::AckError{wire::AckError::Kind::kDecode, value.error().message};
  }
  switch (ack.error()) {
    case pb::ACK_ERROR_DECODE:
      return wire::AckError{wire::AckError::Kind::kDecode, ack.error_message()};
    case pb::ACK_ERROR_SOCKET_FULL:
      return wire::AckError{wire::AckError::Kind::kSocketChannelFull, {}};
    case pb::ACK_ERROR_SOCKET_CLOSED:
      return wire::AckError{wire::AckError::Kind::kSocketClosed, {}};
    default:
      return wire::AckError{wire::AckError::Kind::kTimeout, {}};
  }
}

Result<std::vector<wire::SocketDetails>> from_proto(const pb::SocketList& sockets) {
  std::vector<wire::SocketDetails> out;
  out.reserve(static_cast<std::size_t>(sockets.sockets_size()));
  for (const auto& s : sockets.sockets()) {
    if (!wire::is_valid_socket_id(s.id())) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("sockets: \"{}\" is not a socket id", core::excerpt(s.id())));
    }
    out.push_back({s.id(), {s.rooms().begin(), s.rooms().end()}, s.handshake(), s.data()});
  }
  return out;
}

Result<core::Command> from_proto(const pb::Command& command) {
  auto opts = from_proto(command.opts());
  if (!opts.ok()) return opts.error();
  core::Command out;
  out.id = command.id();
  out.ns = command.namespace_();
  out.position = command.position();
  out.opts = std::move(*opts);
  auto packet = [](const pb::Packet& p) { return from_proto(p, SIZE_MAX); };
  switch (command.kind_case()) {
    case pb::Command::kBroadcast: {
      auto p = packet(command.broadcast());
      if (!p.ok()) return p.error();
      out.kind = core::CommandKind::kBroadcast;
      out.packet = std::move(*p);
      break;
    }
    case pb::Command::kBroadcastWithAck: {
      auto p = packet(command.broadcast_with_ack().packet());
      if (!p.ok()) return p.error();
      out.kind = core::CommandKind::kBroadcastWithAck;
      out.packet = std::move(*p);
      out.timeout = Millis{command.broadcast_with_ack().ack_timeout_ms()};
      break;
    }
    case pb::Command::kAddSockets:
    case pb::Command::kDelSockets: {
      const auto& rooms =
          command.has_add_sockets() ? command.add_sockets().rooms() : command.del_sockets().rooms();
      out.kind = command.has_add_sockets() ? core::CommandKind::kAddSockets
                                           : core::CommandKind::kDelSockets;
      out.rooms.assign(rooms.begin(), rooms.end());
      break;
    }
    case pb::Command::kDisconnectSockets:
      out.kind = core::CommandKind::kDisconnectSockets;
      out.close = command.disconnect_sockets().close();
      break;
    case pb::Command::kFetchSockets:
      out.kind = core::CommandKind::kFetchSockets;
      break;
    case pb::Command::kAllRooms:
      out.kind = core::CommandKind::kAllRooms;
      break;
    case pb::Command::kServerSideEmit:
      out.kind = core::CommandKind::kServerSideEmit;
      out.payload = command.server_side_emit().payload();
      out.wants_ack = command.server_side_emit().wants_ack();
      out.timeout = Millis{command.server_side_emit().timeout_ms()};
      break;
    case pb::Command::kRecoveryMark:
      out.kind = core::CommandKind::kRecoveryMark;
      break;
    case pb::Command::KIND_NOT_SET:
      return make_error(ErrorCode::kInvalidArgument, "empty command");
  }
  return out;
}

void to_proto(const wire::BroadcastOptions& opts, pb::BroadcastOptions* out) {
  for (const auto& r : opts.rooms) out->add_rooms(r);
  for (const auto& r : opts.except) out->add_except(r);
  if (opts.sid) out->set_sid(*opts.sid);
  if (opts.server_id) out->set_server_id(*opts.server_id);
  out->set_exclude_sid(opts.has(wire::broadcast_flags::kBroadcast));
  out->set_volatile_(opts.has(wire::broadcast_flags::kVolatile));
  out->set_local(opts.has(wire::broadcast_flags::kLocal));
}

void to_proto(const wire::Value& value, pb::Value* out) {
  out->set_kind(value.kind == wire::ValueKind::kStr ? pb::Value::KIND_STR : pb::Value::KIND_BYTES);
  out->set_data(value.bytes);
  if (value.attachments) {
    for (const auto& a : *value.attachments) out->add_attachments(a);
  }
}

void to_proto(const wire::Packet& packet, pb::Packet* out) {
  out->set_namespace_(packet.ns);
  out->set_type(static_cast<pb::Packet::Type>(packet.type));
  if (packet.data) to_proto(*packet.data, out->mutable_data());
  if (packet.ack) out->set_ack_id(*packet.ack);
  if (packet.error) out->set_error(*packet.error);
}

void to_proto(const std::string& sid, const core::AckResult& result, pb::Ack* out) {
  out->set_sid(sid);
  if (const auto* value = std::get_if<wire::Value>(&result)) {
    to_proto(*value, out->mutable_value());
    return;
  }
  const auto& error = std::get<wire::AckError>(result);
  switch (error.kind) {
    case wire::AckError::Kind::kTimeout:
      out->set_error(pb::ACK_ERROR_TIMEOUT);
      break;
    case wire::AckError::Kind::kDecode:
      out->set_error(pb::ACK_ERROR_DECODE);
      out->set_error_message(error.message);
      break;
    case wire::AckError::Kind::kSocketChannelFull:
      out->set_error(pb::ACK_ERROR_SOCKET_FULL);
      break;
    case wire::AckError::Kind::kSocketClosed:
      out->set_error(pb::ACK_ERROR_SOCKET_CLOSED);
      break;
  }
}

void to_proto(const core::Missing& missing, pb::Missing* out) {
  for (const auto& n : missing.nodes) out->add_nodes(n);
  for (const auto& s : missing.local_servers) out->add_local_servers(s);
}

void to_proto(const core::RemoteSocket& socket, pb::SocketInfo* out) {
  out->set_id(socket.id);
  out->set_server_id(socket.server_id);
  out->set_namespace_(socket.ns);
  for (const auto& r : socket.rooms) out->add_rooms(r);
  out->set_handshake(socket.handshake);
  out->set_data(socket.data);
  out->set_has_details(socket.has_details);
}

void to_proto(const core::Command& command, pb::Command* out) {
  out->set_id(command.id);
  out->set_namespace_(command.ns);
  to_proto(command.opts, out->mutable_opts());
  if (!command.position.empty()) out->set_position(command.position);
  switch (command.kind) {
    case core::CommandKind::kBroadcast:
      to_proto(*command.packet, out->mutable_broadcast());
      break;
    case core::CommandKind::kBroadcastWithAck: {
      auto* c = out->mutable_broadcast_with_ack();
      to_proto(*command.packet, c->mutable_packet());
      c->set_ack_timeout_ms(static_cast<std::uint32_t>(command.timeout.count()));
      break;
    }
    case core::CommandKind::kAddSockets:
      for (const auto& r : command.rooms) out->mutable_add_sockets()->add_rooms(r);
      break;
    case core::CommandKind::kDelSockets:
      for (const auto& r : command.rooms) out->mutable_del_sockets()->add_rooms(r);
      break;
    case core::CommandKind::kDisconnectSockets:
      out->mutable_disconnect_sockets()->set_close(command.close);
      break;
    case core::CommandKind::kFetchSockets:
      out->mutable_fetch_sockets();
      break;
    case core::CommandKind::kAllRooms:
      out->mutable_all_rooms();
      break;
    case core::CommandKind::kRecoveryMark:
      out->mutable_recovery_mark();
      break;
    case core::CommandKind::kServerSideEmit: {
      auto* c = out->mutable_server_side_emit();
      c->set_payload(command.payload);
      c->set_wants_ack(command.wants_ack);
      c->set_timeout_ms(static_cast<std::uint32_t>(command.timeout.count()));
      break;
    }
  }
}

}  // namespace siobridge::api
