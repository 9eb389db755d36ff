#include "daemon/wire/extension.h"

#include <fmt/format.h>

#include "daemon/wire/ids.h"
#include "daemon/wire/msgpack_io.h"

namespace siobridge::wire {
namespace {

// Map keys. "k" is the kind: the index in the Extension variant.
constexpr std::string_view kKind = "k";

void pack_bin(Packer& packer, std::string_view bytes) {
  packer.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  packer.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

std::string_view read_bin(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BIN) {
    throw DecodeFailure(fmt::format("{}: expected bin, got {}", what, type_name(o)));
  }
  return {o.via.bin.ptr, o.via.bin.size};
}

bool read_bool(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BOOLEAN) {
    throw DecodeFailure(fmt::format("{}: expected bool, got {}", what, type_name(o)));
  }
  return o.via.boolean;
}

// Calls fn(key, value) for every entry of a map.
template <typename Fn>
void for_each_entry(const msgpack::object& o, const char* what, Fn&& fn) {
  if (o.type != msgpack::type::MAP) {
    throw DecodeFailure(fmt::format("{}: expected a map, got {}", what, type_name(o)));
  }
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    fn(read_str(o.via.map.ptr[i].key, what), o.via.map.ptr[i].val);
  }
}

SocketDetails read_socket(const msgpack::object& o) {
  SocketDetails socket;
  for_each_entry(o, "SocketDetails", [&](std::string_view key, const msgpack::object& v) {
    if (key == "id") socket.id = read_str(v, "SocketDetails.id");
    if (key == "rooms") socket.rooms = read_str_array(v, "SocketDetails.rooms");
    if (key == "handshake") socket.handshake = read_bin(v, "SocketDetails.handshake");
    if (key == "data") socket.data = read_bin(v, "SocketDetails.data");
  });
  if (!is_valid_socket_id(socket.id)) throw DecodeFailure("SocketDetails.id: not a socket id");
  return socket;
}

RecoveryEntryInfo read_recovery_entry(const msgpack::object& o) {
  RecoveryEntryInfo entry;
  for_each_entry(o, "RequestInfo.recovery", [&](std::string_view key, const msgpack::object& v) {
    if (key == "i") entry.instance = read_str(v, "RequestInfo.recovery.i");
    if (key == "s") entry.seq = read_uint(v, UINT64_MAX, "RequestInfo.recovery.s");
    if (key == "a") entry.attachment = read_uint(v, UINT64_MAX, "RequestInfo.recovery.a");
    if (key == "o") entry.own_seq = read_uint(v, UINT64_MAX, "RequestInfo.recovery.o");
  });
  if (entry.instance.empty() || entry.instance.size() > 16 || entry.seq == 0) {
    throw DecodeFailure("RequestInfo.recovery: needs an instance (1..16 bytes) and a seq");
  }
  return entry;
}

// [t, ns, target, request, data, extension]; later versions may append fields.
PackedMessage read_packed(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 6) {
    throw DecodeFailure("Pack.m[]: expected an array of at least 6");
  }
  const auto* f = o.via.array.ptr;
  PackedMessage m;
  const auto kind = read_uint(f[0], 1, "Pack.m[].t");
  m.kind = kind == 0 ? MessageKind::kRequest : MessageKind::kResponse;
  m.ns = read_str(f[1], "Pack.m[].ns");
  if (m.ns.empty() || m.ns[0] != '/') throw DecodeFailure("Pack.m[].ns: not a namespace");
  m.target = read_optional_str(f[2], "Pack.m[].target");
  m.request = read_optional_str(f[3], "Pack.m[].request");
  m.data = read_bin(f[4], "Pack.m[].data");
  if (!is_nil(f[5])) m.extension = Bytes(read_bin(f[5], "Pack.m[].extension"));
  if (m.kind == MessageKind::kResponse && (!m.target || !m.request)) {
    throw DecodeFailure("Pack.m[]: a response needs target and request");
  }
  return m;
}

std::vector<PackedMessage> read_packed_array(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY) throw DecodeFailure("Pack.m: expected an array");
  std::vector<PackedMessage> messages;
  messages.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    messages.push_back(read_packed(o.via.array.ptr[i]));
  }
  return messages;
}

// A Pack's map up to the value of its key `m`, the messages.
void write_pack_head(Packer& packer) {
  packer.pack_map(2);
  pack_str(packer, kKind);
  packer.pack_uint8(6);
  pack_str(packer, "m");
}

void write_packed_array(Packer& packer, const std::vector<PackedMessage>& messages) {
  packer.pack_array(static_cast<std::uint32_t>(messages.size()));
  for (const auto& m : messages) {
    packer.pack_array(6);
    packer.pack_uint8(m.kind == MessageKind::kRequest ? 0 : 1);
    pack_str(packer, m.ns);
    pack_optional_str(packer, m.target);
    pack_optional_str(packer, m.request);
    pack_bin(packer, m.data);
    if (m.extension) {
      pack_bin(packer, *m.extension);
    } else {
      packer.pack_nil();
    }
  }
}

Extension read_extension(const msgpack::object& root) {
  std::optional<std::uint64_t> kind;
  for_each_entry(root, "extension", [&](std::string_view key, const msgpack::object& v) {
    if (key == kKind) kind = read_uint(v, 255, "extension kind");
  });
  if (!kind) throw DecodeFailure("extension without kind");
  switch (*kind) {
    case 0: {
      NodeInfo info;
      for_each_entry(root, "NodeInfo", [&](std::string_view key, const msgpack::object& v) {
        if (key == "servers")
          info.servers = static_cast<std::uint32_t>(read_uint(v, UINT32_MAX, "NodeInfo.servers"));
      });
      return info;
    }
    case 1: {
      RequestInfo info;
      for_each_entry(root, "RequestInfo", [&](std::string_view key, const msgpack::object& v) {
        if (key == "ack_timeout_ms") {
          info.ack_timeout_ms =
              static_cast<std::uint32_t>(read_uint(v, UINT32_MAX, "RequestInfo.ack_timeout_ms"));
        }
        if (key == "close") info.close = read_bool(v, "RequestInfo.close");
        if (key == "log_only") info.log_only = read_bool(v, "RequestInfo.log_only");
        if (key == "recovery") info.recovery = read_recovery_entry(v);
      });
      return info;
    }
    case 2: {
      FetchDetails details;
      for_each_entry(root, "FetchDetails", [&](std::string_view key, const msgpack::object& v) {
        if (key != "sockets") return;
        if (v.type != msgpack::type::ARRAY)
          throw DecodeFailure("FetchDetails.sockets: expected an array");
        for (std::uint32_t i = 0; i < v.via.array.size; ++i) {
          details.sockets.push_back(read_socket(v.via.array.ptr[i]));
        }
      });
      return details;
    }
    case 3: {
      ServerSideEmit emit;
      for_each_entry(root, "ServerSideEmit", [&](std::string_view key, const msgpack::object& v) {
        if (key == "id") emit.id = read_str(v, "ServerSideEmit.id");
        if (key == "payload") emit.payload = read_bin(v, "ServerSideEmit.payload");
        if (key == "wants_ack") emit.wants_ack = read_bool(v, "ServerSideEmit.wants_ack");
        if (key == "timeout_ms") {
          emit.timeout_ms =
              static_cast<std::uint32_t>(read_uint(v, UINT32_MAX, "ServerSideEmit.timeout_ms"));
        }
      });
      if (!is_valid_id(emit.id)) throw DecodeFailure("ServerSideEmit.id: not a 16-character id");
      return emit;
    }
    case 4: {
      ServerSideEmitReply reply;
      for_each_entry(
          root, "ServerSideEmitReply", [&](std::string_view key, const msgpack::object& v) {
            if (key == "gone") {
              reply.gone =
                  static_cast<std::uint32_t>(read_uint(v, UINT32_MAX, "ServerSideEmitReply.gone"));
            }
            if (key == "servers") {
              reply.servers = static_cast<std::uint32_t>(
                  read_uint(v, UINT32_MAX, "ServerSideEmitReply.servers"));
            }
            if (key != "responses") return;
            if (v.type != msgpack::type::ARRAY)
              throw DecodeFailure("ServerSideEmitReply.responses: expected an array");
            for (std::uint32_t i = 0; i < v.via.array.size; ++i) {
              reply.responses.emplace_back(
                  read_bin(v.via.array.ptr[i], "ServerSideEmitReply.responses[]"));
            }
          });
      return reply;
    }
    case 5:
      return Goodbye{};
    case 6: {
      Pack pack;
      for_each_entry(root, "Pack", [&](std::string_view key, const msgpack::object& v) {
        if (key == "m") pack.messages = read_packed_array(v);
      });
      return pack;
    }
    case 7: {
      RecoverySession session;
      for_each_entry(root, "RecoverySession", [&](std::string_view key, const msgpack::object& v) {
        if (key == "pid") session.pid = read_str(v, "RecoverySession.pid");
        if (key == "sid") session.sid = read_str(v, "RecoverySession.sid");
        if (key == "rooms") session.rooms = read_str_array(v, "RecoverySession.rooms");
        if (key == "data") session.data = read_bin(v, "RecoverySession.data");
      });
      if (session.pid.empty() || session.pid.size() > 256)
        throw DecodeFailure("RecoverySession.pid: must be 1..256 bytes");
      if (!is_valid_socket_id(session.sid))
        throw DecodeFailure("RecoverySession.sid: not a socket id");
      return session;
    }
    case 8: {
      RecoveryClaim claim;
      for_each_entry(root, "RecoveryClaim", [&](std::string_view key, const msgpack::object& v) {
        if (key == "pid") claim.pid = read_str(v, "RecoveryClaim.pid");
        if (key == "claim") claim.claim = read_str(v, "RecoveryClaim.claim");
      });
      if (claim.pid.empty() || claim.pid.size() > 256)
        throw DecodeFailure("RecoveryClaim.pid: must be 1..256 bytes");
      if (!is_valid_id(claim.claim))
        throw DecodeFailure("RecoveryClaim.claim: not a 16-character id");
      return claim;
    }
    case 9: {
      CompressedPack pack;
      for_each_entry(root, "CompressedPack", [&](std::string_view key, const msgpack::object& v) {
        if (key == "z") pack.frame = read_bin(v, "CompressedPack.z");
      });
      if (pack.frame.empty()) throw DecodeFailure("CompressedPack.z: missing or empty");
      return pack;
    }
    default:
      throw DecodeFailure(fmt::format("unknown extension kind {}", *kind));
  }
}

}  // namespace

Bytes encode_extension(const Extension& extension) {
  Bytes out;
  BytesWriter writer(out);
  Packer packer(writer);
  std::visit(
      [&](const auto& ext) {
        using T = std::decay_t<decltype(ext)>;
        if constexpr (std::is_same_v<T, NodeInfo>) {
          packer.pack_map(2);
          pack_str(packer, kKind);
          packer.pack_uint8(0);
          pack_str(packer, "servers");
          packer.pack_uint32(ext.servers);
        } else if constexpr (std::is_same_v<T, RequestInfo>) {
          packer.pack_map(3 + (ext.recovery ? 1 : 0) + (ext.log_only ? 1 : 0));
          pack_str(packer, kKind);
          packer.pack_uint8(1);
          pack_str(packer, "ack_timeout_ms");
          packer.pack_uint32(ext.ack_timeout_ms);
          pack_str(packer, "close");
          packer.pack(ext.close);
          if (ext.log_only) {
            pack_str(packer, "log_only");
            packer.pack(true);
          }
          if (ext.recovery) {
            pack_str(packer, "recovery");
            packer.pack_map(4);
            pack_str(packer, "i");
            pack_str(packer, ext.recovery->instance);
            pack_str(packer, "s");
            packer.pack_uint64(ext.recovery->seq);
            pack_str(packer, "a");
            packer.pack_uint64(ext.recovery->attachment);
            pack_str(packer, "o");
            packer.pack_uint64(ext.recovery->own_seq);
          }
        } else if constexpr (std::is_same_v<T, FetchDetails>) {
          packer.pack_map(2);
          pack_str(packer, kKind);
          packer.pack_uint8(2);
          pack_str(packer, "sockets");
          packer.pack_array(static_cast<std::uint32_t>(ext.sockets.size()));
          for (const auto& socket : ext.sockets) {
            packer.pack_map(4);
            pack_str(packer, "id");
            pack_str(packer, socket.id);
            pack_str(packer, "rooms");
            pack_str_array(packer, socket.rooms);
            pack_str(packer, "handshake");
            pack_bin(packer, socket.handshake);
            pack_str(packer, "data");
            pack_bin(packer, socket.data);
          }
        } else if constexpr (std::is_same_v<T, ServerSideEmit>) {
          packer.pack_map(5);
          pack_str(packer, kKind);
          packer.pack_uint8(3);
          pack_str(packer, "id");
          pack_str(packer, ext.id);
          pack_str(packer, "payload");
          pack_bin(packer, ext.payload);
          pack_str(packer, "wants_ack");
          packer.pack(ext.wants_ack);
          pack_str(packer, "timeout_ms");
          packer.pack_uint32(ext.timeout_ms);
        } else if constexpr (std::is_same_v<T, ServerSideEmitReply>) {
          packer.pack_map(ext.servers ? 4 : 3);
          pack_str(packer, kKind);
          packer.pack_uint8(4);
          pack_str(packer, "responses");
          packer.pack_array(static_cast<std::uint32_t>(ext.responses.size()));
          for (const auto& response : ext.responses) pack_bin(packer, response);
          pack_str(packer, "gone");
          packer.pack_uint32(ext.gone);
          if (ext.servers) {
            pack_str(packer, "servers");
            packer.pack_uint32(*ext.servers);
          }
        } else if constexpr (std::is_same_v<T, Goodbye>) {
          packer.pack_map(1);
          pack_str(packer, kKind);
          packer.pack_uint8(5);
        } else if constexpr (std::is_same_v<T, RecoverySession>) {
          packer.pack_map(5);
          pack_str(packer, kKind);
          packer.pack_uint8(7);
          pack_str(packer, "pid");
          pack_str(packer, ext.pid);
          pack_str(packer, "sid");
          pack_str(packer, ext.sid);
          pack_str(packer, "rooms");
          pack_str_array(packer, ext.rooms);
          pack_str(packer, "data");
          pack_bin(packer, ext.data);
        } else if constexpr (std::is_same_v<T, RecoveryClaim>) {
          packer.pack_map(3);
          pack_str(packer, kKind);
          packer.pack_uint8(8);
          pack_str(packer, "pid");
          pack_str(packer, ext.pid);
          pack_str(packer, "claim");
          pack_str(packer, ext.claim);
        } else if constexpr (std::is_same_v<T, CompressedPack>) {
          packer.pack_map(2);
          pack_str(packer, kKind);
          packer.pack_uint8(9);
          pack_str(packer, "z");
          pack_bin(packer, ext.frame);
        } else {
          static_assert(std::is_same_v<T, Pack>);
          write_pack_head(packer);
          write_packed_array(packer, ext.messages);
        }
      },
      extension);
  return out;
}

Result<Extension> decode_extension(std::string_view bytes) {
  try {
    UnpackedObject unpacked(bytes);
    return read_extension(unpacked.get());
  } catch (const DecodeFailure& e) {
    return make_error(ErrorCode::kDecode, fmt::format("siobridge extension: {}", e.what()));
  }
}

Bytes encode_packed_messages(const std::vector<PackedMessage>& messages) {
  Bytes out;
  BytesWriter writer(out);
  Packer packer(writer);
  write_packed_array(packer, messages);
  return out;
}

Bytes encode_pack_extension(const std::vector<PackedMessage>& messages, std::size_t reserve,
                            std::size_t& messages_at) {
  Bytes out;
  out.reserve(reserve);
  BytesWriter writer(out);
  Packer packer(writer);
  write_pack_head(packer);
  messages_at = out.size();
  write_packed_array(packer, messages);
  return out;
}

Result<std::vector<PackedMessage>> decode_packed_messages(std::string_view bytes) {
  try {
    UnpackedObject unpacked(bytes);
    return read_packed_array(unpacked.get());
  } catch (const DecodeFailure& e) {
    return make_error(ErrorCode::kDecode, fmt::format("packed messages: {}", e.what()));
  }
}

}  // namespace siobridge::wire
