// The privileges siobridged needs on MongoDB, and the check of those a user
// holds (connectionStatus with showPrivileges) before the daemon relies on
// them: a missing one is named in one line ("listCollections on database
// siobridge") instead of surfacing later as a refused command.
//
// What is needed (docs/running.md, "MongoDB privileges"):
//   always:            listCollections on the database; find, insert and
//                      changeStream on the collection
//   ttl expiration:    listIndexes on the collection
//   capped expiration: collStats on the collection (whether a resume that
//                      failed lost documents)
//   to create the collection: createCollection (and convertToCapped for a
//                      capped one: MongoDB asks for it); its TTL index:
//                      createIndex
//
// GrantedPrivileges is a value type (not synchronized); read_privileges
// blocks on a server round trip.
#pragma once

#include <mongoc/mongoc.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/bus/mongodb/expiration.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

// An action on the database (collection empty) or on one collection.
struct Need {
  std::string action;
  bool on_database = false;
};

// What the daemon needs whether or not it creates anything.
std::vector<Need> needed_to_run(const Expiration& expiration);

class GrantedPrivileges {
 public:
  // From a connectionStatus reply with showPrivileges; none when no user is
  // authenticated (a server without access control, or a URI without a user).
  static std::optional<GrantedPrivileges> from_connection_status(const bson_t* reply);

  bool allows(const std::string& database, const std::string& collection, const Need& need) const;
  // The needs not granted on database.collection, described for a person:
  // "listCollections on database siobridge, changeStream on
  // siobridge.socket.io-adapter"; empty when all are granted.
  std::string missing(const std::string& database, const std::string& collection,
                      const std::vector<Need>& needs) const;
  // "siobridge@admin" (the users, comma-separated).
  const std::string& users() const { return users_; }

 private:
  struct Grant {
    bool any_resource = false;
    bool cluster = false;
    std::string db, collection;
    std::set<std::string> actions;
  };
  std::vector<Grant> grants_;
  std::string users_;
};

// connectionStatus of `client`'s user. kUnavailable when the server cannot
// be reached (the error's own text otherwise).
Result<std::optional<GrantedPrivileges>> read_privileges(mongoc_client_t* client);

}  // namespace siobridge::bus::mongodb
