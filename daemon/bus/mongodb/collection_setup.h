// Preparing the shared collection before any write (PROTOCOL.md section 12):
// checks the server supports change streams, creates the collection for the
// configured expiration strategy, and verifies an existing one matches it.
//
// Idempotent and safe when several daemons run it at once (NamespaceExists and
// identical index builds are success). Never drops or alters user data: a
// collection of the wrong shape is reported as kMismatch with what to do.
// Blocking (server round trips); call from an I/O thread. Thread-safe when each
// caller uses its own mongoc_client_t.
#pragma once

#include <mongoc/mongoc.h>

#include <string>

#include "daemon/bus/mongodb/expiration.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

// kFailedPrecondition for a standalone server (no change streams there),
// kUnavailable when the server cannot be reached.
Status check_change_streams_supported(mongoc_client_t* client);

Status ensure_collection(mongoc_client_t* client, const std::string& database,
                         const std::string& collection, const Expiration& expiration);

// The collection's UUID as 16 raw bytes (empty for servers that report none);
// kNotFound when the collection does not exist.
Result<std::string> collection_uuid(mongoc_client_t* client, const std::string& database,
                                    const std::string& collection);

}  // namespace siobridge::bus::mongodb
