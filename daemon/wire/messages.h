// The msgpack payloads of PROTOCOL.md sections 3-4 as plain C++ values.
// Values (socket.io event data) are opaque bytes that siobridge passes through
// untouched. Plain value types; not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace siobridge::wire {

// Raw bytes. std::string so that protobuf and gRPC can take them without a copy.
using Bytes = std::string;

enum class ValueKind : std::uint8_t {
  kStr = 0,    // socket.io JSON parser text, binary args as placeholders + attachments
  kBytes = 1,  // socket.io msgpack parser encoding
};

struct Value {
  ValueKind kind = ValueKind::kStr;
  Bytes bytes;
  std::optional<std::vector<Bytes>> attachments;
  bool operator==(const Value&) const = default;
};

enum class PacketType : std::uint8_t {
  kConnect = 0,
  kDisconnect = 1,
  kEvent = 2,
  kEventAck = 3,
  kConnectError = 4,
  kBinaryEvent = 5,
  kBinaryAck = 6,
};
inline constexpr std::uint8_t kMaxPacketType = 6;

struct Packet {
  std::string ns;
  PacketType type = PacketType::kEvent;
  std::optional<Value> data;
  std::optional<std::int64_t> ack;
  std::optional<std::string> error;
  bool operator==(const Packet&) const = default;
};

namespace broadcast_flags {
inline constexpr std::uint8_t kLocal = 0x01;      // never sent to other nodes
inline constexpr std::uint8_t kBroadcast = 0x02;  // exclude opts.sid
inline constexpr std::uint8_t kVolatile = 0x04;   // may be dropped when not writable
}  // namespace broadcast_flags

struct BroadcastOptions {
  std::uint8_t flags = 0;
  std::vector<std::string> rooms;
  std::vector<std::string> except;
  std::optional<std::string> sid;
  std::optional<std::string> server_id;
  bool operator==(const BroadcastOptions&) const = default;

  bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
};

enum class RequestType : std::uint8_t {
  kBroadcast = 0,
  kBroadcastWithAck = 1,
  kDisconnectSockets = 2,
  kAllRooms = 3,
  kAddSockets = 4,
  kDelSockets = 5,
  kFetchSockets = 6,
  kHeartbeat = 20,
  kInitHeartbeat = 21,
};

const char* to_string(RequestType type);
bool is_known_request_type(std::uint64_t code);

struct Request {
  std::string node_id;  // requester uid
  std::string id;       // fresh for every request; responses quote it
  RequestType type = RequestType::kHeartbeat;
  std::optional<Packet> packet;                   // Broadcast, BroadcastWithAck
  std::optional<std::vector<std::string>> rooms;  // AddSockets, DelSockets
  std::optional<BroadcastOptions> opts;           // every type but the heartbeats
  bool operator==(const Request&) const = default;
};

struct AckError {
  enum class Kind : std::uint8_t { kTimeout, kDecode, kSocketChannelFull, kSocketClosed };
  Kind kind = Kind::kTimeout;
  std::string message;  // kDecode only
  bool operator==(const AckError&) const = default;
};

struct BroadcastAck {
  std::string sid;
  std::variant<Value, AckError> result;
  bool operator==(const BroadcastAck&) const = default;
};

struct BroadcastAckCount {
  std::uint32_t count = 0;
  bool operator==(const BroadcastAckCount&) const = default;
};

struct RoomList {
  std::vector<std::string> rooms;
  bool operator==(const RoomList&) const = default;
};

struct SocketRef {
  std::string id;
  std::string server_id;
  std::string ns;
  bool operator==(const SocketRef&) const = default;
};

struct SocketList {
  std::vector<SocketRef> sockets;
  bool operator==(const SocketList&) const = default;
};

enum class ResponseType : std::uint8_t {
  kBroadcastAck = 0,
  kBroadcastAckCount = 1,
  kAllRooms = 2,
  kFetchSockets = 3,
};

struct Response {
  std::string node_id;  // responder uid
  std::variant<BroadcastAck, BroadcastAckCount, RoomList, SocketList> body;
  bool operator==(const Response&) const = default;

  ResponseType type() const { return static_cast<ResponseType>(body.index()); }
};

}  // namespace siobridge::wire
