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
#include "daemon/bus/mongodb/privileges.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

// kFailedPrecondition for a standalone server (no change streams there),
// kUnavailable when the server cannot be reached.
Status check_change_streams_supported(mongoc_client_t* client);

// With `granted` (the user's privileges, when the server has access control),
// a collection or TTL index that is missing and that the user may not create
// is reported as kFailedPrecondition naming the privilege, before trying.
Status ensure_collection(mongoc_client_t* client, const std::string& database,
                         const std::string& collection, const Expiration& expiration,
                         const GrantedPrivileges* granted = nullptr);

// What ensure_collection() would find, without changing anything: "exists
// (ttl 60 s)", "missing: siobridged creates it", ...; the same errors.
Result<std::string> inspect_collection(mongoc_client_t* client, const std::string& database,
                                       const std::string& collection, const Expiration& expiration,
                                       const GrantedPrivileges* granted);

// The collection's UUID as 16 raw bytes (empty for servers that report none);
// kNotFound when the collection does not exist.
Result<std::string> collection_uuid(mongoc_client_t* client, const std::string& database,
                                    const std::string& collection);

// The driver's error behind the last call above that failed on this thread
// because a command failed or the server could not be reached (domain 0 after
// clear_setup_error() or when the failure was of another kind): what
// diagnose_error() reads the cause from.
const bson_error_t& last_setup_error();
void clear_setup_error();
void record_setup_error(const bson_error_t& error);

}  // namespace siobridge::bus::mongodb
