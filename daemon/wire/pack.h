// Packed documents (docs/PROTOCOL.md section 18): several consecutive messages
// of one node in one document, for what only siobridge nodes read. The writer
// of the MongoDB bus builds them; its watcher takes them apart again, so that
// the core sees ordinary documents either way.
//
// The functions are pure and thread-safe; PackCompressor is not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/wire/document.h"
#include "daemon/wire/extension.h"

namespace siobridge::wire {

PackedMessage to_packed(Document document);
Document from_packed(PackedMessage message, const std::string& origin);

// Compresses the messages of packs with zstd (docs/PROTOCOL.md section 14.10).
// Owns its zstd context: one per writer. Not thread-safe.
class PackCompressor {
 public:
  // Packs of fewer bytes of messages stay plain: zstd gains little on them.
  static constexpr std::size_t kMinBytes = 1024;

  PackCompressor();
  ~PackCompressor();
  PackCompressor(const PackCompressor&) = delete;
  PackCompressor& operator=(const PackCompressor&) = delete;

  // The frame for `encoded_messages` (encode_packed_messages), or nullopt when
  // it is too short to compress or compressing saves less than an eighth.
  std::optional<Bytes> compress(std::string_view encoded_messages);

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// Largest content a CompressedPack may declare: a pack holds at most
// max_pack_bytes of messages, or one message of at most MongoDB's document
// limit. A frame that declares more is refused before anything is allocated.
inline constexpr std::size_t kMaxPackContentBytes = 32u << 20;

// The document that carries `messages` of `origin` as a Pack: addressed to
// kSiobridgeTarget, in the namespace of the first message, empty `data`.
Document pack_document(const std::string& origin, std::vector<PackedMessage> messages);

// The same as a CompressedPack when `compressor` finds it pays, as a Pack
// otherwise; with what it cost, for the writer's counters.
struct BuiltPack {
  Document document;
  std::size_t message_bytes = 0;  // the messages, encoded: what a reader gets out
  bool compressed = false;
};
BuiltPack build_pack(const std::string& origin, std::vector<PackedMessage> messages,
                     PackCompressor& compressor);

// At least as many bytes as a message adds to a pack.
std::size_t packed_size(const Document& document);

// The messages of a packed document (its `siobridge` field holds a Pack or a
// CompressedPack), or nullopt for any other document. kDecode for a pack that
// does not decode, and for a frame that is not one complete zstd frame of at
// most kMaxPackContentBytes with its content size declared.
Result<std::optional<std::vector<Document>>> unpack_document(const Document& document);

}  // namespace siobridge::wire
