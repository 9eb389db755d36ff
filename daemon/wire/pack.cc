#include "daemon/wire/pack.h"

#include <fmt/format.h>
#include <zstd.h>

namespace siobridge::wire {
namespace {

// zstd's fastest regular level: a pack is compressed once and read by every
// daemon, but the writer's thread also encodes and inserts, and level 1
// already takes what repeats in socket.io payloads (keys, names, markup).
constexpr int kZstdLevel = 1;

Result<std::vector<PackedMessage>> decompress_messages(std::string_view frame) {
  const auto declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    return make_error(ErrorCode::kDecode, "CompressedPack.z: not a zstd frame");
  }
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared > kMaxPackContentBytes) {
    return make_error(ErrorCode::kDecode,
                      fmt::format("CompressedPack.z: content size must be declared and at most {}",
                                  kMaxPackContentBytes));
  }
  if (ZSTD_findFrameCompressedSize(frame.data(), frame.size()) != frame.size()) {
    return make_error(ErrorCode::kDecode, "CompressedPack.z: not exactly one zstd frame");
  }
  Bytes content(static_cast<std::size_t>(declared), '\0');
  const auto size = ZSTD_decompress(content.data(), content.size(), frame.data(), frame.size());
  if (ZSTD_isError(size) || size != content.size()) {
    return make_error(
        ErrorCode::kDecode,
        fmt::format("CompressedPack.z: {}",
                    ZSTD_isError(size) ? ZSTD_getErrorName(size) : "shorter than declared"));
  }
  return decode_packed_messages(content);
}

}  // namespace

struct PackCompressor::Context {
  struct Free {
    void operator()(ZSTD_CCtx* cctx) const { ZSTD_freeCCtx(cctx); }
  };
  std::unique_ptr<ZSTD_CCtx, Free> cctx{ZSTD_createCCtx()};
};

PackCompressor::PackCompressor() : PackCompressor(SkipRule{}) {}

PackCompressor::PackCompressor(SkipRule rule) : context_(std::make_unique<Context>()), rule_(rule) {
  if (!context_->cctx) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_checksumFlag, 0);
}

PackCompressor::~PackCompressor() = default;

std::optional<Bytes> PackCompressor::try_compress(std::string_view bytes) {
  Bytes frame(ZSTD_compressBound(bytes.size()), '\0');
  const auto size =
      ZSTD_compress2(context_->cctx.get(), frame.data(), frame.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(size) || size > bytes.size() - bytes.size() / 8) return std::nullopt;
  frame.resize(size);
  return frame;
}

std::optional<Bytes> PackCompressor::compress(std::string_view encoded_messages) {
  if (encoded_messages.size() < kMinBytes) return std::nullopt;
  return try_compress(encoded_messages);
}

void PackCompressor::skip_from_now(Memory& memory, Clock::time_point now) const {
  memory.compresses = false;
  memory.plain_left = rule_.packs;
  memory.plain_until = now + rule_.time;
}

std::optional<Bytes> PackCompressor::compress(const std::string& ns,
                                              std::string_view encoded_messages,
                                              Clock::time_point now) {
  if (!rule_.enabled) return compress(encoded_messages);
  if (encoded_messages.size() < kMinBytes) return std::nullopt;
  auto found = namespaces_.find(ns);
  if (found == namespaces_.end()) {
    // Bounded: an application with very many namespaces probes again.
    if (namespaces_.size() >= rule_.namespaces) namespaces_.clear();
    found = namespaces_.emplace(ns, Memory{}).first;
  }
  Memory& memory = found->second;
  if (memory.plain_left > 0) {
    if (now < memory.plain_until) {
      --memory.plain_left;
      ++counters_.skipped;
      return std::nullopt;
    }
    memory.plain_left = 0;
  }
  if (!memory.compresses && encoded_messages.size() >= 2 * rule_.sample_bytes) {
    // A sample from the middle: the start holds the array's headers.
    const auto at = (encoded_messages.size() - rule_.sample_bytes) / 2;
    ++counters_.samples;
    if (!try_compress(encoded_messages.substr(at, rule_.sample_bytes))) {
      ++counters_.samples_refused;
      ++counters_.skipped;
      skip_from_now(memory, now);
      return std::nullopt;
    }
  }
  auto frame = try_compress(encoded_messages);
  if (frame) {
    memory.compresses = true;
  } else {
    skip_from_now(memory, now);
  }
  return frame;
}

PackedMessage to_packed(Document document) {
  return PackedMessage{document.header.kind,
                       std::move(document.header.ns),
                       std::move(document.header.target),
                       std::move(document.header.request),
                       std::move(document.data),
                       std::move(document.extension)};
}

Document from_packed(PackedMessage message, const std::string& origin) {
  return Document{{message.kind, std::move(message.ns), origin, std::move(message.target),
                   std::move(message.request)},
                  std::move(message.data),
                  std::move(message.extension)};
}

namespace {

Document pack_envelope(const std::string& origin, std::string ns, Bytes extension) {
  return Document{
      {MessageKind::kRequest, std::move(ns), origin, std::string(kSiobridgeTarget), std::nullopt},
      {},
      std::move(extension)};
}

}  // namespace

Document pack_document(const std::string& origin, std::vector<PackedMessage> messages) {
  std::string ns = messages.empty() ? "/" : messages.front().ns;
  return pack_envelope(origin, std::move(ns), encode_extension(Pack{std::move(messages)}));
}

BuiltPack build_pack(const std::string& origin, std::vector<PackedMessage> messages,
                     PackCompressor& compressor, PackCompressor::Clock::time_point now) {
  std::size_t reserve = 16;
  for (const auto& m : messages) {
    reserve += 32 + m.ns.size() + m.data.size() + (m.target ? m.target->size() : 0) +
               (m.request ? m.request->size() : 0) + (m.extension ? m.extension->size() : 0);
  }
  // The Pack is encoded once, in the buffer the document keeps when it goes
  // plain: a large payload is copied once on its way into the pack.
  std::size_t messages_at = 0;
  Bytes extension = encode_pack_extension(messages, reserve, messages_at);
  const std::size_t message_bytes = extension.size() - messages_at;
  std::string ns = messages.empty() ? "/" : std::move(messages.front().ns);
  messages.clear();  // the payloads are in `extension` now
  auto frame = compressor.compress(ns, std::string_view(extension).substr(messages_at), now);
  if (!frame)
    return {pack_envelope(origin, std::move(ns), std::move(extension)), message_bytes, false};
  return {pack_envelope(origin, std::move(ns), encode_extension(CompressedPack{std::move(*frame)})),
          message_bytes, true};
}

std::size_t packed_size(const Document& document) {
  const auto& h = document.header;
  // At most: the array header, the kind, the longest str/bin headers of the
  // five other fields, and the pack's array entry.
  return 32 + h.ns.size() + (h.target ? h.target->size() : 0) +
         (h.request ? h.request->size() : 0) + document.data.size() +
         (document.extension ? document.extension->size() : 0);
}

Result<std::optional<std::vector<Document>>> unpack_document(const Document& document) {
  if (!document.extension || !document.header.target ||
      *document.header.target != kSiobridgeTarget || !document.data.empty()) {
    return std::optional<std::vector<Document>>();
  }
  auto decoded = decode_extension(*document.extension);
  if (!decoded.ok()) return decoded.error();
  std::vector<PackedMessage> messages;
  if (auto* pack = std::get_if<Pack>(&*decoded)) {
    messages = std::move(pack->messages);
  } else if (auto* compressed = std::get_if<CompressedPack>(&*decoded)) {
    auto opened = decompress_messages(compressed->frame);
    if (!opened.ok()) return opened.error();
    messages = std::move(*opened);
  } else {
    return std::optional<std::vector<Document>>();
  }
  std::vector<Document> out;
  out.reserve(messages.size());
  for (auto& m : messages) out.push_back(from_packed(std::move(m), document.header.origin));
  return std::optional<std::vector<Document>>(std::move(out));
}

}  // namespace siobridge::wire
