#include "daemon/bus/mongodb/testing/mongo_test_env.h"

#include <catch2/catch.hpp>

#include <cstdlib>

#include "daemon/wire/ids.h"

namespace siobridge::bus::mongodb::testing {
namespace {

struct MongocLifetime {
  MongocLifetime() { mongoc_init(); }
  ~MongocLifetime() { mongoc_cleanup(); }
};
const MongocLifetime mongoc_lifetime;

}  // namespace

std::string mongodb_uri() {
  const char* uri = std::getenv("MONGODB_URI");
  if (!uri || !*uri) {
    FAIL(
        "MONGODB_URI is not set: run scripts/test, or start a server with `scripts/mongo start` "
        "and export MONGODB_URI=<the printed URI>");
  }
  return uri;
}

ClientHandle connect(const std::string& uri) {
  bson_error_t error;
  const Uri parsed(mongoc_uri_new_with_error(uri.c_str(), &error));
  if (!parsed) FAIL("bad MongoDB URI " << uri << ": " << error.message);
  ClientHandle client(mongoc_client_new_from_uri_with_error(parsed.get(), &error));
  if (!client) FAIL("cannot create a MongoDB client: " << error.message);
  mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(client.get(), "siobridge-tests");
  return client;
}

TestDatabase::TestDatabase(const std::string& uri)
    : name_("siobridge_test_" + wire::generate_id().substr(0, 10)), client_(connect(uri)) {
  for (char& c : name_)
    if (c == '-') c = '_';
}

TestDatabase::~TestDatabase() {
  bson_error_t error;
  mongoc_database_drop(open_database(client_.get(), name_).get(), &error);
}

mongoc_collection_t* TestDatabase::collection(const std::string& name) const {
  return mongoc_client_get_collection(client_.get(), name_.c_str(), name.c_str());
}

std::int64_t TestDatabase::count(const std::string& collection_name) const {
  const Collection coll = open(collection_name);
  bson_t filter = BSON_INITIALIZER;
  bson_error_t error;
  std::int64_t n =
      mongoc_collection_count_documents(coll.get(), &filter, nullptr, nullptr, nullptr, &error);
  if (n < 0) FAIL("countDocuments: " << error.message);
  return n;
}

}  // namespace siobridge::bus::mongodb::testing
