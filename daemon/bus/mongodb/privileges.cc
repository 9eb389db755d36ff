#include "daemon/bus/mongodb/privileges.h"

#include <fmt/format.h>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {
namespace {

std::string utf8_field(const bson_t* doc, const char* key) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
    return bson_iter_utf8(&it, nullptr);
  }
  return "";
}

bool iter_document(const bson_iter_t& it, bson_t* out) {
  if (!BSON_ITER_HOLDS_DOCUMENT(&it)) return false;
  std::uint32_t length = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_document(&it, &length, &data);
  return bson_init_static(out, data, length);
}

}  // namespace

std::vector<Need> needed_to_run(const Expiration& expiration) {
  std::vector<Need> needs{{"listCollections", true}, {"find"}, {"insert"}, {"changeStream"}};
  if (expiration.kind == Expiration::Kind::kTtl) needs.push_back({"listIndexes"});
  if (expiration.kind == Expiration::Kind::kCapped) needs.push_back({"collStats"});
  return needs;
}

std::optional<GrantedPrivileges> GrantedPrivileges::from_connection_status(const bson_t* reply) {
  bson_iter_t it, auth;
  if (!bson_iter_init_find(&it, reply, "authInfo") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
    return std::nullopt;
  }
  bson_iter_recurse(&it, &auth);
  GrantedPrivileges granted;
  bool any_user = false;
  while (bson_iter_next(&auth)) {
    const std::string key = bson_iter_key(&auth);
    if (!BSON_ITER_HOLDS_ARRAY(&auth)) continue;
    bson_iter_t entries;
    bson_iter_recurse(&auth, &entries);
    while (bson_iter_next(&entries)) {
      bson_t entry;
      if (!iter_document(entries, &entry)) continue;
      if (key == "authenticatedUsers") {
        if (any_user) granted.users_ += ", ";
        granted.users_ += utf8_field(&entry, "user") + "@" + utf8_field(&entry, "db");
        any_user = true;
      } else if (key == "authenticatedUserPrivileges") {
        Grant grant;
        bson_iter_t field;
        if (bson_iter_init_find(&field, &entry, "resource")) {
          bson_t resource;
          if (iter_document(field, &resource)) {
            bson_iter_t r;
            grant.any_resource =
                bson_iter_init_find(&r, &resource, "anyResource") && bson_iter_as_bool(&r);
            grant.cluster = bson_iter_init_find(&r, &resource, "cluster") && bson_iter_as_bool(&r);
            grant.db = utf8_field(&resource, "db");
            grant.collection = utf8_field(&resource, "collection");
          }
        }
        if (bson_iter_init_find(&field, &entry, "actions") && BSON_ITER_HOLDS_ARRAY(&field)) {
          bson_iter_t actions;
          bson_iter_recurse(&field, &actions);
          while (bson_iter_next(&actions)) {
            if (BSON_ITER_HOLDS_UTF8(&actions))
              grant.actions.insert(bson_iter_utf8(&actions, nullptr));
          }
        }
        granted.grants_.push_back(std::move(grant));
      }
    }
  }
  if (!any_user) return std::nullopt;
  return granted;
}

bool GrantedPrivileges::allows(const std::string& database, const std::string& collection,
                               const Need& need) const {
  for (const auto& grant : grants_) {
    if (!grant.actions.count(need.action)) continue;
    if (grant.any_resource) return true;
    if (grant.cluster) continue;
    // MongoDB's resource patterns: "" for the database means every database;
    // "" for the collection means every (non-system) collection of the
    // database, and is also the database itself.
    const bool database_matches = grant.db.empty() || grant.db == database;
    if (!database_matches) continue;
    if (grant.collection.empty()) return true;
    if (!need.on_database && grant.collection == collection) return true;
  }
  return false;
}

std::string GrantedPrivileges::missing(const std::string& database, const std::string& collection,
                                       const std::vector<Need>& needs) const {
  std::string out;
  for (const auto& need : needs) {
    if (allows(database, collection, need)) continue;
    if (!out.empty()) out += ", ";
    out += need.on_database ? fmt::format("{} on database {}", need.action, database)
                            : fmt::format("{} on {}.{}", need.action, database, collection);
  }
  return out;
}

Result<std::optional<GrantedPrivileges>> read_privileges(mongoc_client_t* client) {
  wire::OwnedBson command(
      BCON_NEW("connectionStatus", BCON_INT32(1), "showPrivileges", BCON_BOOL(true)));
  Reply reply;
  bson_error_t error;
  if (!mongoc_client_command_simple(client, "admin", command.get(), nullptr, reply.out(), &error)) {
    record_setup_error(error);
    const bool server_answered =
        error.domain == MONGOC_ERROR_SERVER || error.domain == MONGOC_ERROR_QUERY;
    return make_error(server_answered ? ErrorCode::kFailedPrecondition : ErrorCode::kUnavailable,
                      fmt::format("connectionStatus: {}", error.message));
  }
  return GrantedPrivileges::from_connection_status(reply.get());
}

}  // namespace siobridge::bus::mongodb
