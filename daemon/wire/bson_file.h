// A BSON document kept in a file of its own (the state directory's node
// state and resume tokens): read and validated whole, written by replacing the
// file (write a sibling, then rename), so a crash leaves the old or the new
// document, never half of one.
//
// Free functions; thread-safe for distinct paths.
#pragma once

#include <string>

#include "daemon/common/result.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::wire {

// kNotFound when the file does not exist or cannot be opened, kDecode when it
// does not hold one valid BSON document.
Result<OwnedBson> read_bson_file(const std::string& path);

// kInternal, with the path, when it cannot be written or renamed into place.
Status write_bson_file(const std::string& path, const bson_t* document);

}  // namespace siobridge::wire
