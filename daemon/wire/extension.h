// Data that only siobridge nodes exchange (PROTOCOL.md section 9).
// It travels as msgpack in the BinData field `siobridge` of a document, which
// socketioxide ignores, or in documents addressed to kSiobridgeTarget, which
// socketioxide never receives. Encoded as a msgpack map with short keys so that
// later versions can add fields; readers ignore keys they do not know.
//
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/wire/document.h"
#include "daemon/wire/messages.h"

namespace siobridge::wire {

// On Heartbeat and InitHeartbeat: how many local servers this node has attached
// in the namespace (a socketioxide node counts as one server).
struct NodeInfo {
  std::uint32_t servers = 0;
  bool operator==(const NodeInfo&) const = default;
};

// Where a broadcast stands in its origin's connection state recovery log
// (docs/recovery.md): the origin daemon instance, its log entry, and which of
// its servers sent it as that server's how-manieth recoverable packet.
struct RecoveryEntryInfo {
  std::string instance;          // the origin daemon's instance token
  std::uint64_t seq = 0;         // its log entry there
  std::uint64_t attachment = 0;  // the sending server there (0: none)
  std::uint64_t own_seq = 0;     // that server's recoverable packets so far (0: not counted)
  bool operator==(const RecoveryEntryInfo&) const = default;
};

// On requests from a siobridge node: what the socketioxide format cannot say.
struct RequestInfo {
  std::uint32_t ack_timeout_ms = 0;  // BroadcastWithAck: per-client ack timeout (0 = responder's)
  bool close = false;                // DisconnectSockets: close the underlying connection
  // Broadcast: its place in the origin's recovery log, when the namespace has
  // recovery on there.
  std::optional<RecoveryEntryInfo> recovery;
  // Broadcast addressed to kSiobridgeTarget: a packet its origin's server
  // delivered itself; readers only log it for recovery.
  bool log_only = false;
  bool operator==(const RequestInfo&) const = default;
};

// A session of a disconnected client (socket.io's persistSession), addressed
// to kSiobridgeTarget so that any daemon of the namespace can restore it.
struct RecoverySession {
  std::string pid;
  std::string sid;
  std::vector<std::string> rooms;
  Bytes data;  // opaque, from the attached server
  bool operator==(const RecoverySession&) const = default;
};

// A daemon about to restore a session, addressed to kSiobridgeTarget. Every
// node reads claims in the same order: the first claim of a pid gets the
// session, and every node forgets the session then.
struct RecoveryClaim {
  std::string pid;
  std::string claim;  // the claimant's id for this claim
  bool operator==(const RecoveryClaim&) const = default;
};

// What a socket.io RemoteSocket carries besides its id.
struct SocketDetails {
  std::string id;
  std::vector<std::string> rooms;
  Bytes handshake;  // opaque, from the attached server
  Bytes data;       // opaque, from the attached server
  bool operator==(const SocketDetails&) const = default;
};

// On FetchSockets responses to siobridge requesters.
struct FetchDetails {
  std::vector<SocketDetails> sockets;
  bool operator==(const FetchDetails&) const = default;
};

// serverSideEmit: a request addressed to kSiobridgeTarget.
struct ServerSideEmit {
  std::string id;
  Bytes payload;  // opaque event and arguments, from the attached server
  bool wants_ack = false;
  std::uint32_t timeout_ms = 0;
  bool operator==(const ServerSideEmit&) const = default;
};

// Answers of one node to a ServerSideEmit with ack, sent as its attached
// servers answer: their payloads, how many servers detached before answering
// (`gone`: the requester no longer waits for them, as socket.io's cluster
// adapter does for a server that leaves) and how many servers the node asked
// (`servers`: what the requester waits for from this node in all).
struct ServerSideEmitReply {
  std::vector<Bytes> responses;
  std::uint32_t gone = 0;
  std::optional<std::uint32_t> servers;
  bool operator==(const ServerSideEmitReply&) const = default;
};

// A node leaving the cluster on purpose (a graceful stop), addressed to
// kSiobridgeTarget: its peers forget it in every namespace at once instead of
// waiting hb_timeout for its heartbeats to stop, and stop expecting its answers.
struct Goodbye {
  bool operator==(const Goodbye&) const = default;
};

// One message of a Pack: what a document of its own would carry.
struct PackedMessage {
  MessageKind kind = MessageKind::kRequest;
  std::string ns;
  std::optional<std::string> target;
  std::optional<std::string> request;
  Bytes data;                      // the msgpack payload
  std::optional<Bytes> extension;  // what its `siobridge` field would hold
  bool operator==(const PackedMessage&) const = default;
};

// Several consecutive messages of one node in one document, addressed to
// kSiobridgeTarget (docs/PROTOCOL.md section 18): for what only siobridge
// nodes read, one insert and one change event carry many messages, their data
// as bin rather than arrays of integers.
struct Pack {
  std::vector<PackedMessage> messages;
  bool operator==(const Pack&) const = default;
};

// A Pack whose messages are compressed (docs/PROTOCOL.md section 14.10): `frame`
// is one zstd frame holding what the Pack's `m` array would be, msgpack-encoded.
// pack.h makes and opens them.
struct CompressedPack {
  Bytes frame;
  bool operator==(const CompressedPack&) const = default;
};

using Extension =
    std::variant<NodeInfo, RequestInfo, FetchDetails, ServerSideEmit, ServerSideEmitReply, Goodbye,
                 Pack, RecoverySession, RecoveryClaim, CompressedPack>;

Bytes encode_extension(const Extension& extension);
Result<Extension> decode_extension(std::string_view bytes);

// The messages of a Pack alone: the msgpack array of its key `m`, what a
// CompressedPack's frame holds. kDecode for bytes that are not such an array.
Bytes encode_packed_messages(const std::vector<PackedMessage>& messages);
Result<std::vector<PackedMessage>> decode_packed_messages(std::string_view bytes);

// encode_extension(Pack{messages}) in one buffer of at least `reserve` bytes,
// without copying the messages: `messages_at` says where their array (what
// encode_packed_messages gives, what a CompressedPack compresses) starts in it.
Bytes encode_pack_extension(const std::vector<PackedMessage>& messages, std::size_t reserve,
                            std::size_t& messages_at);

}  // namespace siobridge::wire
