// Support for tests against a real MongoDB: the server named by $MONGODB_URI
// (scripts/test starts one and sets it), and a fresh database per test that is
// dropped afterwards. A test fails with a clear message when MONGODB_URI is
// missing. Not thread-safe: one TestDatabase per test, clients per thread.
#pragma once

#include <mongoc/mongoc.h>

#include <string>

#include "daemon/bus/mongodb/mongo_handles.h"

namespace siobridge::bus::mongodb::testing {

// The URI from the environment; fails the current test when unset.
std::string mongodb_uri();

// A new client for mongodb_uri() (or `uri`); destroyed with the handle.
using ClientHandle = Client;
ClientHandle connect(const std::string& uri = mongodb_uri());

class TestDatabase {
 public:
  // A database named siobridge_test_<random> on the server of `uri`.
  explicit TestDatabase(const std::string& uri = mongodb_uri());
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }
  mongoc_client_t* client() const { return client_.get(); }
  // A collection handle of this database; the caller destroys it (e.g. by
  // holding it in a Collection).
  mongoc_collection_t* collection(const std::string& name) const;
  Collection open(const std::string& name) const { return Collection(collection(name)); }
  std::int64_t count(const std::string& collection) const;

 private:
  std::string name_;
  ClientHandle client_;
};

}  // namespace siobridge::bus::mongodb::testing
