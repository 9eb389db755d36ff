#include "daemon/wire/payload_codec.h"

#include <fmt/format.h>

#include "daemon/wire/ids.h"
#include "daemon/wire/msgpack_io.h"

namespace siobridge::wire {

const char* to_string(RequestType type) {
  switch (type) {
    case RequestType::kBroadcast:
      return "Broadcast";
    case RequestType::kBroadcastWithAck:
      return "BroadcastWithAck";
    case RequestType::kDisconnectSockets:
      return "DisconnectSockets";
    case RequestType::kAllRooms:
      return "AllRooms";
    case RequestType::kAddSockets:
      return "AddSockets";
    case RequestType::kDelSockets:
      return "DelSockets";
    case RequestType::kFetchSockets:
      return "FetchSockets";
    case RequestType::kHeartbeat:
      return "Heartbeat";
    case RequestType::kInitHeartbeat:
      return "InitHeartbeat";
  }
  return "Unknown";
}

bool is_known_request_type(std::uint64_t code) {
  return code <= 6 || code == 20 || code == 21;
}

namespace {

// ---- encoding ----

void pack_value(Packer& packer, BytesWriter& writer, const Value& value) {
  packer.pack_array(3);
  packer.pack_uint8(static_cast<std::uint8_t>(value.kind));
  pack_byte_array(packer, writer, value.bytes);
  if (value.attachments) {
    packer.pack_array(static_cast<std::uint32_t>(value.attachments->size()));
    for (const auto& attachment : *value.attachments) {
      packer.pack_bin(static_cast<std::uint32_t>(attachment.size()));
      packer.pack_bin_body(attachment.data(), static_cast<std::uint32_t>(attachment.size()));
    }
  } else {
    packer.pack_nil();
  }
}

void pack_packet(Packer& packer, BytesWriter& writer, const Packet& packet) {
  packer.pack_array(5);
  pack_str(packer, packet.ns);
  packer.pack_uint8(static_cast<std::uint8_t>(packet.type));
  if (packet.data) {
    pack_value(packer, writer, *packet.data);
  } else {
    packer.pack_nil();
  }
  if (packet.ack) {
    packer.pack_int64(*packet.ack);
  } else {
    packer.pack_nil();
  }
  pack_optional_str(packer, packet.error);
}

void pack_options(Packer& packer, const BroadcastOptions& opts) {
  packer.pack_array(5);
  packer.pack_uint8(opts.flags);
  pack_str_array(packer, opts.rooms);
  pack_str_array(packer, opts.except);
  pack_optional_str(packer, opts.sid);
  pack_optional_str(packer, opts.server_id);
}

void pack_ack_error(Packer& packer, const AckError& error) {
  switch (error.kind) {
    case AckError::Kind::kTimeout:
      pack_str(packer, "Timeout");
      return;
    case AckError::Kind::kDecode:
      packer.pack_map(1);
      pack_str(packer, "Decode");
      pack_str(packer, error.message);
      return;
    case AckError::Kind::kSocketChannelFull:
    case AckError::Kind::kSocketClosed:
      packer.pack_map(1);
      pack_str(packer, "Socket");
      pack_str(packer,
               error.kind == AckError::Kind::kSocketClosed ? "Closed" : "InternalChannelFull");
      return;
  }
}

// ---- decoding ----

Value read_value(const msgpack::object& o, const char* what) {
  const auto* f = expect_array(o, 3, what);
  Value value;
  value.kind = static_cast<ValueKind>(read_uint(f[0], 1, "Value.kind"));
  value.bytes = read_byte_array(f[1], "Value.bytes");
  if (!is_nil(f[2])) {
    if (f[2].type != msgpack::type::ARRAY) {
      throw DecodeFailure(
          fmt::format("Value.attachments: expected an array of bin, got {}", type_name(f[2])));
    }
    std::vector<Bytes> attachments;
    attachments.reserve(f[2].via.array.size);
    for (std::uint32_t i = 0; i < f[2].via.array.size; ++i) {
      const auto& item = f[2].via.array.ptr[i];
      if (item.type == msgpack::type::BIN) {
        attachments.emplace_back(item.via.bin.ptr, item.via.bin.size);
      } else if (item.type == msgpack::type::ARRAY) {
        attachments.push_back(read_byte_array(item, "Value.attachments[]"));
      } else {
        throw DecodeFailure(
            fmt::format("Value.attachments: element {} is {}, expected bin", i, type_name(item)));
      }
    }
    value.attachments = std::move(attachments);
  }
  return value;
}

Packet read_packet(const msgpack::object& o) {
  const auto* f = expect_array(o, 5, "Packet");
  Packet packet;
  packet.ns = read_str(f[0], "Packet.ns");
  packet.type = static_cast<PacketType>(read_uint(f[1], kMaxPacketType, "Packet.type"));
  if (!is_nil(f[2])) packet.data = read_value(f[2], "Packet.data");
  if (!is_nil(f[3])) packet.ack = read_int(f[3], "Packet.ack");
  packet.error = read_optional_str(f[4], "Packet.error");
  return packet;
}

BroadcastOptions read_options(const msgpack::object& o) {
  const auto* f = expect_array(o, 5, "BroadcastOptions");
  BroadcastOptions opts;
  opts.flags = static_cast<std::uint8_t>(read_uint(f[0], 0xff, "BroadcastOptions.flags"));
  opts.rooms = read_str_array(f[1], "BroadcastOptions.rooms");
  opts.except = read_str_array(f[2], "BroadcastOptions.except");
  opts.sid = read_optional_str(f[3], "BroadcastOptions.sid");
  opts.server_id = read_optional_str(f[4], "BroadcastOptions.server_id");
  return opts;
}

std::string read_id(const msgpack::object& o, const char* what) {
  auto id = read_str(o, what);
  if (!is_valid_socket_id(id)) {
    throw DecodeFailure(fmt::format("{}: not a socket id (1..{} characters of [A-Za-z0-9_-])", what,
                                    kMaxSocketIdLength));
  }
  return std::string(id);
}

AckError read_ack_error(const msgpack::object& o) {
  if (o.type == msgpack::type::STR) {
    if (read_str(o, "AckError") == "Timeout") return {AckError::Kind::kTimeout, {}};
    throw DecodeFailure(fmt::format("AckError: unknown variant \"{}\"", read_str(o, "AckError")));
  }
  if (o.type != msgpack::type::MAP || o.via.map.size != 1) {
    throw DecodeFailure(
        fmt::format("AckError: expected a str or a one-entry map, got {}", type_name(o)));
  }
  const auto& entry = o.via.map.ptr[0];
  auto variant = read_str(entry.key, "AckError variant");
  if (variant == "Decode")
    return {AckError::Kind::kDecode, std::string(read_str(entry.val, "AckError.Decode"))};
  if (variant == "Socket") {
    auto reason = read_str(entry.val, "AckError.Socket");
    if (reason == "Closed") return {AckError::Kind::kSocketClosed, {}};
    if (reason == "InternalChannelFull") return {AckError::Kind::kSocketChannelFull, {}};
    throw DecodeFailure(fmt::format("AckError.Socket: unknown reason \"{}\"", reason));
  }
  throw DecodeFailure(fmt::format("AckError: unknown variant \"{}\"", variant));
}

BroadcastAck read_broadcast_ack(const msgpack::object& o) {
  const auto* f = expect_array(o, 2, "BroadcastAck");
  BroadcastAck ack;
  ack.sid = read_id(f[0], "BroadcastAck.sid");
  if (f[1].type != msgpack::type::MAP || f[1].via.map.size != 1) {
    throw DecodeFailure(
        fmt::format("BroadcastAck.result: expected a one-entry map, got {}", type_name(f[1])));
  }
  const auto& entry = f[1].via.map.ptr[0];
  auto variant = read_str(entry.key, "BroadcastAck.result variant");
  if (variant == "Ok") {
    ack.result = read_value(entry.val, "BroadcastAck.result.Ok");
  } else if (variant == "Err") {
    ack.result = read_ack_error(entry.val);
  } else {
    throw DecodeFailure(fmt::format("BroadcastAck.result: unknown variant \"{}\"", variant));
  }
  return ack;
}

SocketList read_socket_list(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY) {
    throw DecodeFailure(fmt::format("FetchSockets: expected an array, got {}", type_name(o)));
  }
  SocketList list;
  list.sockets.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto* f = expect_array(o.via.array.ptr[i], 3, "FetchSockets socket");
    list.sockets.push_back({read_id(f[0], "FetchSockets socket id"),
                            std::string(read_str(f[1], "FetchSockets server_id")),
                            std::string(read_str(f[2], "FetchSockets ns"))});
  }
  return list;
}

template <typename T, typename Fn>
Result<T> decode_with(std::string_view payload, const char* what, Fn&& fn) {
  try {
    UnpackedObject unpacked(payload);
    return fn(unpacked.get());
  } catch (const DecodeFailure& e) {
    return make_error(ErrorCode::kDecode, fmt::format("{}: {}", what, e.what()));
  } catch (const msgpack::type_error& e) {
    return make_error(ErrorCode::kDecode, fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace

void encode_value(const Value& value, Bytes& out) {
  BytesWriter writer(out);
  Packer packer(writer);
  pack_value(packer, writer, value);
}

Result<Value> decode_value(std::string_view payload) {
  return decode_with<Value>(payload, "Value",
                            [](const msgpack::object& o) { return read_value(o, "Value"); });
}

void encode_request(const Request& request, Bytes& out) {
  BytesWriter writer(out);
  Packer packer(writer);
  packer.pack_array(6);
  pack_str(packer, request.node_id);
  pack_str(packer, request.id);
  packer.pack_uint8(static_cast<std::uint8_t>(request.type));
  if (request.packet) {
    pack_packet(packer, writer, *request.packet);
  } else {
    packer.pack_nil();
  }
  if (request.rooms) {
    pack_str_array(packer, *request.rooms);
  } else {
    packer.pack_nil();
  }
  if (request.opts) {
    pack_options(packer, *request.opts);
  } else {
    packer.pack_nil();
  }
}

Bytes encode_request(const Request& request) {
  Bytes out;
  encode_request(request, out);
  return out;
}

Result<Request> decode_request(std::string_view payload) {
  return decode_with<Request>(payload, "Request", [](const msgpack::object& o) {
    const auto* f = expect_array(o, 6, "Request");
    Request request;
    request.node_id = read_str(f[0], "Request.node_id");
    if (!is_valid_id(request.node_id)) {
      throw DecodeFailure(fmt::format("Request.node_id: \"{}\" is not a 16-character id",
                                      request.node_id.substr(0, 32)));
    }
    request.id = read_str(f[1], "Request.id");
    if (!is_valid_id(request.id)) {
      throw DecodeFailure("Request.id: not a 16-character id");
    }
    std::uint64_t code = read_uint(f[2], 0xff, "Request.type");
    if (!is_known_request_type(code)) {
      throw DecodeFailure(fmt::format("Request.type: unknown request type {}", code));
    }
    request.type = static_cast<RequestType>(code);
    if (!is_nil(f[3])) request.packet = read_packet(f[3]);
    if (!is_nil(f[4])) request.rooms = read_str_array(f[4], "Request.rooms");
    if (!is_nil(f[5])) request.opts = read_options(f[5]);

    const char* missing = nullptr;
    switch (request.type) {
      case RequestType::kBroadcast:
      case RequestType::kBroadcastWithAck:
        if (!request.packet) missing = "packet";
        break;
      case RequestType::kAddSockets:
      case RequestType::kDelSockets:
        if (!request.rooms) missing = "rooms";
        break;
      default:
        break;
    }
    if (!missing && !request.opts && code <= 6) missing = "opts";
    if (missing) {
      throw DecodeFailure(fmt::format("{} request without {}", to_string(request.type), missing));
    }
    return request;
  });
}

void encode_response(const Response& response, Bytes& out) {
  BytesWriter writer(out);
  Packer packer(writer);
  packer.pack_array(2);
  pack_str(packer, response.node_id);
  packer.pack_array(2);
  packer.pack_uint8(static_cast<std::uint8_t>(response.type()));
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, BroadcastAck>) {
          packer.pack_array(2);
          pack_str(packer, body.sid);
          packer.pack_map(1);
          if (const auto* value = std::get_if<Value>(&body.result)) {
            pack_str(packer, "Ok");
            pack_value(packer, writer, *value);
          } else {
            pack_str(packer, "Err");
            pack_ack_error(packer, std::get<AckError>(body.result));
          }
        } else if constexpr (std::is_same_v<T, BroadcastAckCount>) {
          packer.pack_uint32(body.count);
        } else if constexpr (std::is_same_v<T, RoomList>) {
          pack_str_array(packer, body.rooms);
        } else {
          packer.pack_array(static_cast<std::uint32_t>(body.sockets.size()));
          for (const auto& socket : body.sockets) {
            packer.pack_array(3);
            pack_str(packer, socket.id);
            pack_str(packer, socket.server_id);
            pack_str(packer, socket.ns);
          }
        }
      },
      response.body);
}

Bytes encode_response(const Response& response) {
  Bytes out;
  encode_response(response, out);
  return out;
}

Result<Response> decode_response(std::string_view payload) {
  return decode_with<Response>(payload, "Response", [](const msgpack::object& o) {
    const auto* f = expect_array(o, 2, "Response");
    Response response;
    response.node_id = read_str(f[0], "Response.node_id");
    if (!is_valid_id(response.node_id)) {
      throw DecodeFailure("Response.node_id: not a 16-character id");
    }
    const auto* body = expect_array(f[1], 2, "Response body");
    std::uint64_t code = read_uint(body[0], 0xff, "Response.type");
    switch (code) {
      case 0:
        response.body = read_broadcast_ack(body[1]);
        break;
      case 1:
        response.body = BroadcastAckCount{
            static_cast<std::uint32_t>(read_uint(body[1], UINT32_MAX, "BroadcastAckCount"))};
        break;
      case 2:
        response.body = RoomList{read_str_array(body[1], "AllRooms")};
        break;
      case 3:
        response.body = read_socket_list(body[1]);
        break;
      default:
        throw DecodeFailure(fmt::format("unknown response type {}", code));
    }
    return response;
  });
}

}  // namespace siobridge::wire
