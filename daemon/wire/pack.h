// Packed documents (docs/PROTOCOL.md section 18): several consecutive messages
// of one node in one document, for what only siobridge nodes read. The writer
// of the MongoDB bus builds them; its watcher takes them apart again, so that
// the core sees ordinary documents either way.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "daemon/wire/document.h"
#include "daemon/wire/extension.h"

namespace siobridge::wire {

PackedMessage to_packed(Document document);
Document from_packed(PackedMessage message, const std::string& origin);

// The document that carries `messages` of `origin`: addressed to
// kSiobridgeTarget, in the namespace of the first message, empty `data`.
Document pack_document(const std::string& origin, std::vector<PackedMessage> messages);

// At least as many bytes as a message adds to a pack.
std::size_t packed_size(const Document& document);

// The messages of a packed document (its `siobridge` field holds a Pack), or
// nullopt for any other document. kDecode for a pack that does not decode.
Result<std::optional<std::vector<Document>>> unpack_document(const Document& document);

}  // namespace siobridge::wire
