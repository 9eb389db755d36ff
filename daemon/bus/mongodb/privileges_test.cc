// Reading a user's privileges from connectionStatus and matching them the way
// MongoDB does: a resource of "" for the database is every database, "" for
// the collection every collection of the database and the database itself.
#include "daemon/bus/mongodb/privileges.h"

#include <catch2/catch.hpp>

#include "daemon/wire/owned_bson.h"

using namespace siobridge::bus::mongodb;

namespace {

struct Bson {
  explicit Bson(const char* json)
      : owned(bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json), -1, nullptr)),
        doc(owned.get()) {
    REQUIRE(doc);
  }
  siobridge::wire::OwnedBson owned;
  bson_t* doc;
};

const char* kMinimalRole = R"({"authInfo": {
  "authenticatedUsers": [{"user": "siobridge", "db": "admin"}],
  "authenticatedUserRoles": [{"role": "siobridge", "db": "admin"}],
  "authenticatedUserPrivileges": [
    {"resource": {"db": "siobridge", "collection": "socket.io-adapter"},
     "actions": ["changeStream", "find", "insert", "listIndexes"]},
    {"resource": {"db": "siobridge", "collection": ""}, "actions": ["listCollections"]}]},
  "ok": 1})";

Expiration ttl() {
  return Expiration{};
}

Expiration capped() {
  Expiration e;
  e.kind = Expiration::Kind::kCapped;
  return e;
}

}  // namespace

TEST_CASE("no authenticated user: nothing to check") {
  Bson reply(
      R"({"authInfo": {"authenticatedUsers": [], "authenticatedUserPrivileges": []}, "ok": 1})");
  CHECK_FALSE(GrantedPrivileges::from_connection_status(reply.doc));
}

TEST_CASE("the least role for an existing collection is enough to run with ttl") {
  Bson reply(kMinimalRole);
  auto granted = GrantedPrivileges::from_connection_status(reply.doc);
  REQUIRE(granted);
  CHECK(granted->users() == "siobridge@admin");
  CHECK(granted->missing("siobridge", "socket.io-adapter", needed_to_run(ttl())).empty());
  // Capped needs collStats, and the collection's privileges do not cover another one.
  CHECK(granted->missing("siobridge", "socket.io-adapter", needed_to_run(capped())) ==
        "collStats on siobridge.socket.io-adapter");
  CHECK(granted->missing("siobridge", "other", needed_to_run(ttl())) ==
        "find on siobridge.other, insert on siobridge.other, changeStream on siobridge.other, "
        "listIndexes on siobridge.other");
  CHECK_FALSE(granted->allows("siobridge", "socket.io-adapter", Need{"createCollection"}));
}

TEST_CASE("a privilege on the collection does not give the database's listCollections") {
  Bson reply(R"({"authInfo": {"authenticatedUsers": [{"user": "u", "db": "admin"}],
    "authenticatedUserPrivileges": [
      {"resource": {"db": "siobridge", "collection": "socket.io-adapter"},
       "actions": ["changeStream", "find", "insert", "listIndexes", "listCollections"]}]}})");
  auto granted = GrantedPrivileges::from_connection_status(reply.doc);
  REQUIRE(granted);
  CHECK(granted->missing("siobridge", "socket.io-adapter", needed_to_run(ttl())) ==
        "listCollections on database siobridge");
}

TEST_CASE("readWrite on the database, any database, and anyResource cover everything") {
  Bson read_write(R"({"authInfo": {"authenticatedUsers": [{"user": "u", "db": "siobridge"}],
    "authenticatedUserPrivileges": [{"resource": {"db": "siobridge", "collection": ""},
      "actions": ["changeStream", "collStats", "createCollection", "createIndex", "find",
                  "insert", "listCollections", "listIndexes"]}]}})");
  auto granted = GrantedPrivileges::from_connection_status(read_write.doc);
  REQUIRE(granted);
  CHECK(granted->missing("siobridge", "x", needed_to_run(capped())).empty());
  CHECK(granted->allows("siobridge", "x", Need{"createIndex"}));
  CHECK_FALSE(granted->allows("other", "x", Need{"find"}));

  Bson any_database(R"({"authInfo": {"authenticatedUsers": [{"user": "u", "db": "admin"}],
    "authenticatedUserPrivileges": [{"resource": {"db": "", "collection": ""},
      "actions": ["find", "insert", "changeStream", "listCollections", "listIndexes"]}]}})");
  CHECK(GrantedPrivileges::from_connection_status(any_database.doc)
            ->missing("db", "c", needed_to_run(ttl()))
            .empty());

  Bson any_resource(R"({"authInfo": {"authenticatedUsers": [{"user": "root", "db": "admin"}],
    "authenticatedUserPrivileges": [{"resource": {"anyResource": true}, "actions": ["find"]},
      {"resource": {"cluster": true}, "actions": ["insert"]}]}})");
  auto root = GrantedPrivileges::from_connection_status(any_resource.doc);
  CHECK(root->allows("db", "c", Need{"find"}));
  CHECK_FALSE(root->allows("db", "c", Need{"insert"}));  // only on the cluster resource
}
