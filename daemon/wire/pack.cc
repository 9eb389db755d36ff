#include "daemon/wire/pack.h"

namespace siobridge::wire {

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

Document pack_document(const std::string& origin, std::vector<PackedMessage> messages) {
  std::string ns = messages.empty() ? "/" : messages.front().ns;
  return Document{
      {MessageKind::kRequest, std::move(ns), origin, std::string(kSiobridgeTarget), std::nullopt},
      {},
      encode_extension(Pack{std::move(messages)})};
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
  auto* pack = std::get_if<Pack>(&*decoded);
  if (!pack) return std::optional<std::vector<Document>>();
  std::vector<Document> out;
  out.reserve(pack->messages.size());
  for (auto& m : pack->messages) out.push_back(from_packed(std::move(m), document.header.origin));
  return std::optional<std::vector<Document>>(std::move(out));
}

}  // namespace siobridge::wire
