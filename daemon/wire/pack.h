// Packed documents (docs/PROTOCOL.md section 18): several consecutive messages
// of one node in one document, for what only siobridge nodes read. The writer
// of the MongoDB bus builds them; its watcher takes them apart again, so that
// the core sees ordinary documents either way.
//
// The functions are pure and thread-safe; PackCompressor is not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/wire/document.h"
#include "daemon/wire/extension.h"

namespace siobridge::wire {

PackedMessage to_packed(Document document);
Document from_packed(PackedMessage message, const std::string& origin);

// Compresses the messages of packs with zstd (docs/PROTOCOL.md section 14.10).
// Owns its zstd context: one per writer. Not thread-safe.
//
// Compressing what does not compress (random or already compressed payloads)
// costs the writer a zstd pass per pack for nothing, so the compressor learns
// per namespace: the first pack of a namespace larger than two samples is
// probed with a sample of its middle first; a sample or a whole pack that saves
// less than an eighth makes the namespace's packs go plain, untried, for the
// next SkipRule::packs packs or SkipRule::time, whichever ends first, after
// which a sample is tried again (so a namespace whose data becomes
// compressible goes compressed again). A namespace whose packs compress is
// compressed without samples.
class PackCompressor {
 public:
  using Clock = std::chrono::steady_clock;
  // Packs of fewer bytes of messages stay plain: zstd gains little on them.
  static constexpr std::size_t kMinBytes = 1024;

  struct SkipRule {
    bool enabled = true;  // mongodb.compress_skip
    std::size_t sample_bytes = 4096;
    std::uint32_t packs = 64;              // packs of a namespace left plain before the next probe,
    std::chrono::milliseconds time{2000};  // or this long, whichever ends first
    std::size_t namespaces = 1024;         // remembered at most (then forgotten at once)
  };
  struct Counters {
    std::uint64_t skipped = 0;          // packs left plain without trying them
    std::uint64_t samples = 0;          // samples compressed
    std::uint64_t samples_refused = 0;  // of which did not pay
  };

  PackCompressor();
  explicit PackCompressor(SkipRule rule);
  ~PackCompressor();
  PackCompressor(const PackCompressor&) = delete;
  PackCompressor& operator=(const PackCompressor&) = delete;

  // The frame for `encoded_messages` (encode_packed_messages), or nullopt when
  // it is too short to compress or compressing saves less than an eighth.
  std::optional<Bytes> compress(std::string_view encoded_messages);
  // The same for a pack of namespace `ns`, following the skip rule.
  std::optional<Bytes> compress(const std::string& ns, std::string_view encoded_messages,
                                Clock::time_point now);
  const Counters& counters() const { return counters_; }

 private:
  struct Context;
  struct Memory {
    bool compresses = false;       // the last pack compressed: no samples
    std::uint32_t plain_left = 0;  // packs still left plain untried
    Clock::time_point plain_until{};
  };
  // The frame, when compressing `bytes` saves at least an eighth.
  std::optional<Bytes> try_compress(std::string_view bytes);
  void skip_from_now(Memory& memory, Clock::time_point now) const;

  std::unique_ptr<Context> context_;
  SkipRule rule_;
  std::unordered_map<std::string, Memory> namespaces_;
  Counters counters_;
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
                     PackCompressor& compressor,
                     PackCompressor::Clock::time_point now = PackCompressor::Clock::now());

// At least as many bytes as a message adds to a pack.
std::size_t packed_size(const Document& document);

// The messages of a packed document (its `siobridge` field holds a Pack or a
// CompressedPack), or nullopt for any other document. kDecode for a pack that
// does not decode, and for a frame that is not one complete zstd frame of at
// most kMaxPackContentBytes with its content size declared.
Result<std::optional<std::vector<Document>>> unpack_document(const Document& document);

}  // namespace siobridge::wire
