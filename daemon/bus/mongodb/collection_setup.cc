#include "daemon/bus/mongodb/collection_setup.h"

#include <fmt/format.h>

#include <optional>

#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

using wire::OwnedBson;

namespace {

constexpr std::uint32_t kNamespaceExists = 48;
constexpr std::uint32_t kIndexOptionsConflict = 85;
constexpr std::uint32_t kIndexKeySpecsConflict = 86;
constexpr const char* kTtlIndexName = "createdAt_1";

thread_local bson_error_t setup_error{};

// Server-side errors (a command that failed) vs. not reaching the server.
Error from_bson_error(const bson_error_t& error, const std::string& what) {
  setup_error = error;
  const bool server_answered =
      error.domain == MONGOC_ERROR_SERVER || error.domain == MONGOC_ERROR_WRITE_CONCERN;
  return make_error(server_answered ? ErrorCode::kFailedPrecondition : ErrorCode::kUnavailable,
                    fmt::format("{}: {}", what, error.message));
}

struct CollectionShape {
  std::string type;  // "collection", "view", "timeseries"
  bool capped = false;
  std::int64_t size = 0;
  std::string uuid;  // 16 raw bytes, or empty
};

Result<std::optional<CollectionShape>> find_collection(mongoc_database_t* db,
                                                       const std::string& name) {
  OwnedBson opts(BCON_NEW("filter", "{", "name", BCON_UTF8(name.c_str()), "}"));
  Cursor cursor(mongoc_database_find_collections_with_opts(db, opts.get()));
  const bson_t* info;
  std::optional<CollectionShape> shape;
  while (mongoc_cursor_next(cursor.get(), &info)) {
    CollectionShape found;
    bson_iter_t it;
    if (bson_iter_init_find(&it, info, "type") && BSON_ITER_HOLDS_UTF8(&it)) {
      found.type = bson_iter_utf8(&it, nullptr);
    }
    bson_iter_t uuid;
    if (bson_iter_init(&uuid, info) && bson_iter_find_descendant(&uuid, "info.uuid", &uuid) &&
        BSON_ITER_HOLDS_BINARY(&uuid)) {
      bson_subtype_t subtype;
      std::uint32_t length = 0;
      const std::uint8_t* bytes = nullptr;
      bson_iter_binary(&uuid, &subtype, &length, &bytes);
      if (subtype == BSON_SUBTYPE_UUID && length == 16) {
        found.uuid.assign(reinterpret_cast<const char*>(bytes), length);
      }
    }
    if (bson_iter_init_find(&it, info, "options") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      bson_iter_t options;
      bson_iter_recurse(&it, &options);
      while (bson_iter_next(&options)) {
        const std::string key = bson_iter_key(&options);
        if (key == "capped") found.capped = bson_iter_as_bool(&options);
        if (key == "size") found.size = bson_iter_as_int64(&options);
      }
    }
    shape = found;
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) return from_bson_error(error, "listCollections");
  return shape;
}

// Servers report the capped size as configured or, in older versions, rounded up
// to a multiple of 256.
bool same_capped_size(std::int64_t stored, std::int64_t configured) {
  return stored == configured || stored == (configured + 255) / 256 * 256;
}

std::string full_name(const std::string& database, const std::string& collection) {
  return database + "." + collection;
}

Status check_shape(const CollectionShape& shape, const std::string& name,
                   const Expiration& expiration) {
  if (!shape.type.empty() && shape.type != "collection") {
    return make_error(ErrorCode::kMismatch,
                      fmt::format("{} is a {}, not a collection: choose another collection name",
                                  name, shape.type));
  }
  if (expiration.kind == Expiration::Kind::kCapped) {
    if (!shape.capped) {
      return make_error(
          ErrorCode::kMismatch,
          fmt::format("{} exists and is not capped, but the expiration strategy is capped: drop "
                      "the collection (db.getCollection(\"{}\").drop()) or set the strategy to ttl",
                      name, name.substr(name.find('.') + 1)));
    }
    if (!same_capped_size(shape.size, expiration.capped_bytes)) {
      return make_error(
          ErrorCode::kMismatch,
          fmt::format("{} is capped at {} bytes, but the configuration asks for {} bytes: set the "
                      "configured size to {} or drop the collection to recreate it",
                      name, shape.size, expiration.capped_bytes, shape.size));
    }
    return {};
  }
  if (shape.capped) {
    return make_error(
        ErrorCode::kMismatch,
        fmt::format("{} is a capped collection ({} bytes), but the expiration strategy is ttl: set "
                    "the strategy to capped with that size, or drop the collection",
                    name, shape.size));
  }
  return {};
}

struct TtlIndex {
  std::string name;
  std::optional<std::int64_t> expire_after_seconds;
};

Result<std::optional<TtlIndex>> find_created_at_index(mongoc_collection_t* coll) {
  Cursor cursor(mongoc_collection_find_indexes_with_opts(coll, nullptr));
  const bson_t* index;
  std::optional<TtlIndex> found;
  while (mongoc_cursor_next(cursor.get(), &index)) {
    bson_iter_t it, key;
    if (!bson_iter_init_find(&it, index, "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
    bson_iter_recurse(&it, &key);
    int fields = 0;
    bool on_created_at = false;
    while (bson_iter_next(&key)) {
      ++fields;
      on_created_at =
          std::string(bson_iter_key(&key)) == "createdAt" && bson_iter_as_int64(&key) == 1;
    }
    if (fields != 1 || !on_created_at) continue;
    TtlIndex ttl;
    if (bson_iter_init_find(&it, index, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
      ttl.name = bson_iter_utf8(&it, nullptr);
    }
    if (bson_iter_init_find(&it, index, "expireAfterSeconds")) {
      ttl.expire_after_seconds = bson_iter_as_int64(&it);
    }
    found = ttl;
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) return from_bson_error(error, "listIndexes");
  return found;
}

Status check_ttl_index(const TtlIndex& index, const std::string& name, std::int64_t ttl) {
  if (!index.expire_after_seconds) {
    return make_error(ErrorCode::kMismatch,
                      fmt::format("{} has an index {} on createdAt without expireAfterSeconds, so "
                                  "documents never expire: drop that index or the collection",
                                  name, index.name));
  }
  if (*index.expire_after_seconds != ttl) {
    return make_error(
        ErrorCode::kMismatch,
        fmt::format("{} expires documents after {} s (index {}), but the configuration asks for {} "
                    "s: set ttl to {} or change the index with collMod",
                    name, *index.expire_after_seconds, index.name, ttl,
                    *index.expire_after_seconds));
  }
  return {};
}

Status missing_privilege(const GrantedPrivileges* granted, const std::string& database,
                         const std::string& collection, const char* action,
                         const std::string& what) {
  if (!granted || granted->allows(database, collection, Need{action})) return {};
  return make_error(
      ErrorCode::kFailedPrecondition,
      fmt::format("{} is missing and user {} may not create it ({} on {}): create "
                  "it as an administrator, or grant {} (docs/running.md, \"MongoDB "
                  "privileges\")",
                  what, granted->users(), action, full_name(database, collection), action));
}

// What creating the collection takes: createCollection, and for a capped
// one convertToCapped as well (MongoDB asks for it on create with capped).
Status may_create(const GrantedPrivileges* granted, const std::string& database,
                  const std::string& collection, const Expiration& expiration) {
  const std::string what = "the collection " + full_name(database, collection);
  if (auto s = missing_privilege(granted, database, collection, "createCollection", what);
      !s.ok()) {
    return s;
  }
  if (expiration.kind == Expiration::Kind::kCapped) {
    return missing_privilege(granted, database, collection, "convertToCapped", what + " (capped)");
  }
  return {};
}

Status ensure_ttl_index(mongoc_client_t* client, const std::string& database,
                        const std::string& collection, std::int64_t ttl,
                        const GrantedPrivileges* granted) {
  const std::string name = full_name(database, collection);
  const Collection coll = open_collection(client, database, collection);
  auto existing = find_created_at_index(coll.get());
  if (!existing) return existing.error();
  if (*existing) return check_ttl_index(**existing, name, ttl);
  if (auto s = missing_privilege(granted, database, collection, "createIndex",
                                 "the TTL index of " + name);
      !s.ok()) {
    return s;
  }
  OwnedBson command(BCON_NEW("createIndexes", BCON_UTF8(collection.c_str()), "indexes", "[", "{",
                             "key", "{", "createdAt", BCON_INT32(1), "}", "name",
                             BCON_UTF8(kTtlIndexName), "expireAfterSeconds", BCON_INT64(ttl), "}",
                             "]"));
  bson_error_t error;
  Reply reply;
  if (mongoc_collection_write_command_with_opts(coll.get(), command.get(), nullptr, reply.out(),
                                                &error)) {
    return {};
  }
  if (error.code == kIndexOptionsConflict || error.code == kIndexKeySpecsConflict) {
    // Another daemon created it at the same time with other options.
    auto raced = find_created_at_index(coll.get());
    return !raced   ? Status(raced.error())
           : *raced ? check_ttl_index(**raced, name, ttl)
                    : Status(from_bson_error(error, "createIndexes " + name));
  }
  return from_bson_error(error, "createIndexes " + name);
}

// The collection exists with the configured shape: found, or created.
Status ensure_shaped_collection(mongoc_client_t* client, const std::string& database,
                                const std::string& collection, const Expiration& expiration,
                                const GrantedPrivileges* granted) {
  const std::string name = full_name(database, collection);
  const Database db = open_database(client, database);
  auto existing = find_collection(db.get(), collection);
  if (!existing) return existing.error();
  if (*existing) return check_shape(**existing, name, expiration);
  if (auto refused = may_create(granted, database, collection, expiration); !refused.ok()) {
    return refused;
  }
  OwnedBson opts;
  if (expiration.kind == Expiration::Kind::kCapped) {
    BSON_APPEND_BOOL(opts.get(), "capped", true);
    BSON_APPEND_INT64(opts.get(), "size", expiration.capped_bytes);
  }
  bson_error_t error;
  const Collection created(
      mongoc_database_create_collection(db.get(), collection.c_str(), opts.get(), &error));
  if (created) return {};
  if (error.code != kNamespaceExists) return from_bson_error(error, "create " + name);
  // Created by another daemon meanwhile (or an old server's answer to an
  // existing collection): success if it has the right shape.
  auto raced = find_collection(db.get(), collection);
  return !raced   ? Status(raced.error())
         : *raced ? check_shape(**raced, name, expiration)
                  : Status(from_bson_error(error, "create " + name));
}

}  // namespace

Status check_change_streams_supported(mongoc_client_t* client) {
  OwnedBson command(BCON_NEW("hello", BCON_INT32(1)));
  Reply reply;
  bson_error_t error;
  if (!mongoc_client_command_simple(client, "admin", command.get(), nullptr, reply.out(), &error)) {
    return from_bson_error(error, "hello");
  }
  bson_iter_t it;
  const bool replica_set = bson_iter_init_find(&it, reply.get(), "setName");
  const bool mongos = bson_iter_init_find(&it, reply.get(), "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
                      std::string(bson_iter_utf8(&it, nullptr)) == "isdbgrid";
  if (!replica_set && !mongos) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "MongoDB is a standalone server: siobridge needs change streams, which only "
                      "replica sets and sharded clusters have. Start mongod with --replSet and run "
                      "rs.initiate() (a single-node replica set is enough)");
  }
  return {};
}

Status ensure_collection(mongoc_client_t* client, const std::string& database,
                         const std::string& collection, const Expiration& expiration,
                         const GrantedPrivileges* granted) {
  if (expiration.kind == Expiration::Kind::kTtl && expiration.ttl_seconds <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "ttl must be at least 1 second");
  }
  if (expiration.kind == Expiration::Kind::kCapped && expiration.capped_bytes < 4096) {
    return make_error(ErrorCode::kInvalidArgument, "a capped collection needs at least 4096 bytes");
  }
  if (auto s = ensure_shaped_collection(client, database, collection, expiration, granted);
      !s.ok()) {
    return s;
  }
  if (expiration.kind != Expiration::Kind::kTtl) return {};
  return ensure_ttl_index(client, database, collection, expiration.ttl_seconds, granted);
}

Result<std::string> inspect_collection(mongoc_client_t* client, const std::string& database,
                                       const std::string& collection, const Expiration& expiration,
                                       const GrantedPrivileges* granted) {
  const std::string name = full_name(database, collection);
  auto existing = find_collection(open_database(client, database).get(), collection);
  if (!existing) return existing.error();
  const bool ttl = expiration.kind == Expiration::Kind::kTtl;
  if (!*existing) {
    if (auto s = may_create(granted, database, collection, expiration); !s.ok()) {
      return s.error();
    }
    if (ttl) {
      if (auto s = missing_privilege(granted, database, collection, "createIndex",
                                     "the TTL index of " + name);
          !s.ok()) {
        return s.error();
      }
    }
    return fmt::format("{} does not exist yet: siobridged creates it ({})", name,
                       expiration.describe());
  }
  if (auto s = check_shape(**existing, name, expiration); !s.ok()) return s.error();
  if (!ttl) return fmt::format("{} exists ({})", name, expiration.describe());
  auto index = find_created_at_index(open_collection(client, database, collection).get());
  if (!index) return index.error();
  if (!*index) {
    if (auto s = missing_privilege(granted, database, collection, "createIndex",
                                   "the TTL index of " + name);
        !s.ok()) {
      return s.error();
    }
    return fmt::format("{} exists without its TTL index: siobridged creates it ({})", name,
                       expiration.describe());
  }
  if (auto s = check_ttl_index(**index, name, expiration.ttl_seconds); !s.ok()) return s.error();
  return fmt::format("{} exists ({})", name, expiration.describe());
}

Result<std::string> collection_uuid(mongoc_client_t* client, const std::string& database,
                                    const std::string& collection) {
  auto shape = find_collection(open_database(client, database).get(), collection);
  if (!shape) return shape.error();
  if (!*shape) {
    return make_error(ErrorCode::kNotFound, full_name(database, collection) + " does not exist");
  }
  return (*shape)->uuid;
}

const bson_error_t& last_setup_error() {
  return setup_error;
}

void clear_setup_error() {
  setup_error = bson_error_t{};
}

void record_setup_error(const bson_error_t& error) {
  setup_error = error;
}

std::string Expiration::describe() const {
  return kind == Kind::kTtl ? fmt::format("ttl {} s", ttl_seconds)
                            : fmt::format("capped {} bytes", capped_bytes);
}

}  // namespace siobridge::bus::mongodb
