// The BSON document of PROTOCOL.md section 2: one inserted document per
// message. The header says who sent it and to whom; `data` carries the msgpack
// payload, as an array of int32 (one per byte, what socketioxide writes and
// reads) or, between siobridge nodes only, as BinData.
//
// Stateless and thread-safe. The encoder keeps one scratch buffer per thread.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/wire/messages.h"

namespace siobridge::wire {

enum class MessageKind : std::uint8_t { kRequest, kResponse };  // "Req" / "Res"

enum class DataFormat : std::uint8_t {
  kInt32Array,  // socketioxide-compatible (default)
  kBinary,      // compact; only for clusters made of siobridge nodes
};

// Extension-only documents are addressed to this target: it contains a
// character outside the id alphabet, so it never matches a socketioxide uid and
// the reference's change-stream filter never delivers it.
inline constexpr std::string_view kSiobridgeTarget = "~siobridge";

struct DocumentHeader {
  MessageKind kind = MessageKind::kRequest;
  std::string ns;
  std::string origin;
  std::optional<std::string> target;   // Req: absent = every node. Res: the requester
  std::optional<std::string> request;  // Res: id of the request answered
  bool operator==(const DocumentHeader&) const = default;
};

// A call of an attached server, named by the server's instance (chosen by its
// client, kept across reattachments) and the call's number in that server's
// order (docs/PROTOCOL.md section 20).
struct CallMark {
  std::string instance;
  std::uint64_t seq = 0;
  bool operator==(const CallMark&) const = default;
};

struct Document {
  DocumentHeader header;
  Bytes data;                      // the msgpack payload
  std::optional<Bytes> extension;  // field "siobridge" (BinData); ignored by socketioxide
  // Field "echo": the origin reads this document back through its own change
  // stream, to learn its position (connection state recovery, PROTOCOL.md
  // section 19). Never packed.
  bool echo = false;
  // Field "calls": for each server instance whose calls this document carries,
  // the highest call number among them. Written for the origin alone (it
  // looks them up after a restart); readers ignore it, like socketioxide.
  std::vector<CallMark> calls{};
  bool operator==(const Document&) const = default;
};

struct EncodeOptions {
  DataFormat format = DataFormat::kInt32Array;
  std::optional<std::int64_t> created_at_ms;  // written as `createdAt` (ttl strategy)
};

// Appends the document's fields to `out`, an initialized empty bson_t.
void encode_document(const Document& doc, const EncodeOptions& options, bson_t* out);

// The exact size in bytes of the document as stored: the fields encode_document
// writes plus an ObjectId `_id`. Computed without encoding, so that a document
// MongoDB cannot store is refused before it is queued.
std::size_t encoded_size(const Document& doc, const EncodeOptions& options);

// MongoDB's limit on a stored document (BSONObjMaxUserSize).
inline constexpr std::size_t kMaxDocumentBytes = 16 * 1024 * 1024;

// A document's place in the order in which the cluster delivers documents: the
// operation time of its insert (seconds, increment) and, for a document that
// carries several messages, the message's index in it. Formatted as 24 hex
// digits, so that positions compare as strings in delivery order.
std::string format_position(std::uint32_t seconds, std::uint32_t increment, std::uint32_t index);

// The "calls" field of a stored document; malformed entries are left out.
std::vector<CallMark> read_call_marks(const bson_t* bson);

// Reads a document as inserted by any node. Unknown fields are ignored, field
// order does not matter, `data` may be an int32 array or BinData.
Result<Document> decode_document(const bson_t* bson);
// The same from raw BSON bytes (e.g. a change event's fullDocument).
Result<Document> decode_document(const std::uint8_t* data, std::size_t length);

}  // namespace siobridge::wire
