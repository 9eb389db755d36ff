// Collection set-up against the real MongoDB of $MONGODB_URI.
#include "daemon/bus/mongodb/collection_setup.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "daemon/wire/owned_bson.h"

using namespace siobridge;
using namespace siobridge::bus::mongodb;
using siobridge::bus::mongodb::testing::TestDatabase;
using siobridge::wire::OwnedBson;

namespace {

const std::string kColl = "socket.io-adapter";

struct Shape {
  bool exists = false;
  bool capped = false;
  std::int64_t size = 0;
};

Shape shape_of(const TestDatabase& db, const std::string& name) {
  const Database d = open_database(db.client(), db.name());
  OwnedBson opts(BCON_NEW("filter", "{", "name", BCON_UTF8(name.c_str()), "}"));
  const Cursor cursor(mongoc_database_find_collections_with_opts(d.get(), opts.get()));
  const bson_t* info;
  Shape shape;
  while (mongoc_cursor_next(cursor.get(), &info)) {
    shape.exists = true;
    bson_iter_t it;
    if (bson_iter_init(&it, info) && bson_iter_find_descendant(&it, "options.capped", &it)) {
      shape.capped = bson_iter_as_bool(&it);
    }
    if (bson_iter_init(&it, info) && bson_iter_find_descendant(&it, "options.size", &it)) {
      shape.size = bson_iter_as_int64(&it);
    }
  }
  return shape;
}

std::optional<std::int64_t> ttl_of(const TestDatabase& db, const std::string& name) {
  const Collection coll = db.open(name);
  const Cursor cursor(mongoc_collection_find_indexes_with_opts(coll.get(), nullptr));
  const bson_t* index;
  std::optional<std::int64_t> ttl;
  while (mongoc_cursor_next(cursor.get(), &index)) {
    bson_iter_t it;
    if (bson_iter_init(&it, index) && bson_iter_find_descendant(&it, "key.createdAt", &it) &&
        bson_iter_init_find(&it, index, "expireAfterSeconds")) {
      ttl = bson_iter_as_int64(&it);
    }
  }
  return ttl;
}

void insert_user_document(const TestDatabase& db, const std::string& name) {
  const Collection coll = db.open(name);
  OwnedBson doc(BCON_NEW("user", BCON_UTF8("data")));
  bson_error_t error;
  REQUIRE(mongoc_collection_insert_one(coll.get(), doc.get(), nullptr, nullptr, &error));
}

void run_command(const TestDatabase& db, bson_t* raw) {
  OwnedBson command(raw);
  bson_error_t error;
  INFO("command failed");
  REQUIRE(mongoc_client_command_simple(db.client(), db.name().c_str(), command.get(), nullptr,
                                       nullptr, &error));
}

Status ensure(const TestDatabase& db, const Expiration& e, const std::string& name = kColl) {
  return ensure_collection(db.client(), db.name(), name, e);
}

std::string mismatch_message(const Status& status) {
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kMismatch);
  return status.error().message;
}

}  // namespace

TEST_CASE("the test server supports change streams") {
  TestDatabase db;
  auto status = check_change_streams_supported(db.client());
  INFO((status.ok() ? "" : status.error().message));
  REQUIRE(status.ok());
}

TEST_CASE("ttl strategy: collection and TTL index are created, and again is a no-op") {
  TestDatabase db;
  REQUIRE(ensure(db, Expiration::ttl(60)).ok());
  CHECK(shape_of(db, kColl).exists);
  CHECK_FALSE(shape_of(db, kColl).capped);
  CHECK(ttl_of(db, kColl) == 60);
  insert_user_document(db, kColl);
  REQUIRE(ensure(db, Expiration::ttl(60)).ok());
  CHECK(ttl_of(db, kColl) == 60);
  CHECK(db.count(kColl) == 1);
}

TEST_CASE("capped strategy: collection is created capped, and again is a no-op") {
  TestDatabase db;
  REQUIRE(ensure(db, Expiration::capped(1 << 20)).ok());
  auto shape = shape_of(db, kColl);
  CHECK(shape.capped);
  CHECK(shape.size == 1 << 20);
  insert_user_document(db, kColl);
  REQUIRE(ensure(db, Expiration::capped(1 << 20)).ok());
  CHECK(db.count(kColl) == 1);
  CHECK_FALSE(ttl_of(db, kColl));
}

TEST_CASE("capped sizes that are not a multiple of 256 still match on the next start") {
  TestDatabase db;
  REQUIRE(ensure(db, Expiration::capped(100000)).ok());
  auto size = shape_of(db, kColl).size;
  CHECK((size == 100000 || size == 100096));
  REQUIRE(ensure(db, Expiration::capped(100000)).ok());
}

namespace {

// Runs ensure_collection from `daemons` threads at once, each with its own client.
void set_up_concurrently(const TestDatabase& db, const Expiration& expiration, int daemons) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<std::size_t>(daemons));
  for (int i = 0; i < daemons; ++i) {
    threads.emplace_back([&, i] {
      auto client = siobridge::bus::mongodb::testing::connect();
      auto status = ensure_collection(client.get(), db.name(), kColl, expiration);
      if (!status.ok()) errors[static_cast<std::size_t>(i)] = status.error().describe();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < daemons; ++i) {
    INFO(expiration.describe() << ", daemon " << i);
    CHECK(errors[static_cast<std::size_t>(i)].empty());
  }
}

bool wine_test_server() {
  const char* kind = std::getenv("SIOBRIDGE_TEST_MONGO");
  return kind && std::string(kind) == "wine";
}

}  // namespace

TEST_CASE("several daemons starting at once on an existing collection all succeed") {
  SECTION("ttl, index still missing (concurrent createIndexes)") {
    TestDatabase db;
    run_command(db, BCON_NEW("create", BCON_UTF8(kColl.c_str())));
    set_up_concurrently(db, Expiration::ttl(30), 6);
    CHECK(ttl_of(db, kColl) == 30);
  }
  SECTION("capped") {
    TestDatabase db;
    REQUIRE(ensure(db, Expiration::capped(65536)).ok());
    set_up_concurrently(db, Expiration::capped(65536), 6);
  }
}

// [concurrent-create]: a CTest test of its own, reported as skipped on "case
// skipped:" (siobridge_test's SKIPPABLE).
TEST_CASE("several daemons creating the collection at once all succeed", "[concurrent-create]") {
  if (wine_test_server()) {
    // The Windows build of mongod under Wine hangs or crashes when two clients
    // create one namespace at the same moment (docs/testing.md); a real server
    // given through MONGODB_URI runs this case.
    WARN("case skipped: on the Wine-hosted test server, concurrent create crashes it");
    return;
  }
  for (auto expiration : {Expiration::ttl(30), Expiration::capped(65536)}) {
    TestDatabase db;
    run_command(db, BCON_NEW("create", "placeholder"));  // the database itself exists
    set_up_concurrently(db, expiration, 6);
  }
}

TEST_CASE("an existing collection without the TTL index gets it; its documents are kept") {
  TestDatabase db;
  insert_user_document(db, "plain");  // implicit creation, no concurrency here
  REQUIRE(ensure(db, Expiration::ttl(120), "plain").ok());
  CHECK(ttl_of(db, "plain") == 120);
  CHECK(db.count("plain") == 1);
}

TEST_CASE("mismatches are reported with what to do, and nothing is dropped") {
  TestDatabase db;
  SECTION("ttl configured, capped collection present") {
    REQUIRE(ensure(db, Expiration::capped(65536)).ok());
    insert_user_document(db, kColl);
    auto message = mismatch_message(ensure(db, Expiration::ttl(60)));
    CHECK_THAT(message, Catch::Contains("capped") && Catch::Contains("ttl") &&
                            Catch::Contains(db.name() + "." + kColl));
    CHECK(db.count(kColl) == 1);
    CHECK(shape_of(db, kColl).capped);
  }
  SECTION("capped configured, ttl collection present") {
    REQUIRE(ensure(db, Expiration::ttl(60)).ok());
    insert_user_document(db, kColl);
    auto message = mismatch_message(ensure(db, Expiration::capped(65536)));
    CHECK_THAT(message, Catch::Contains("not capped") && Catch::Contains("drop"));
    CHECK(db.count(kColl) == 1);
  }
  SECTION("capped with another size") {
    REQUIRE(ensure(db, Expiration::capped(65536)).ok());
    auto message = mismatch_message(ensure(db, Expiration::capped(1 << 20)));
    CHECK_THAT(message, Catch::Contains("65536") && Catch::Contains("1048576"));
    CHECK(shape_of(db, kColl).size == 65536);
  }
  SECTION("ttl with another expiry") {
    REQUIRE(ensure(db, Expiration::ttl(60)).ok());
    auto message = mismatch_message(ensure(db, Expiration::ttl(300)));
    CHECK_THAT(message, Catch::Contains("60 s") && Catch::Contains("300"));
    CHECK(ttl_of(db, kColl) == 60);
  }
  SECTION("a createdAt index that never expires") {
    run_command(db, BCON_NEW("create", BCON_UTF8(kColl.c_str())));
    run_command(db, BCON_NEW("createIndexes", BCON_UTF8(kColl.c_str()), "indexes", "[", "{", "key",
                             "{", "createdAt", BCON_INT32(1), "}", "name", "by_date", "}", "]"));
    auto message = mismatch_message(ensure(db, Expiration::ttl(60)));
    CHECK_THAT(message, Catch::Contains("by_date") && Catch::Contains("expireAfterSeconds"));
  }
  SECTION("a view of that name") {
    run_command(db, BCON_NEW("create", "other"));
    run_command(
        db, BCON_NEW("create", BCON_UTF8(kColl.c_str()), "viewOn", "other", "pipeline", "[", "]"));
    auto message = mismatch_message(ensure(db, Expiration::ttl(60)));
    CHECK_THAT(message, Catch::Contains("view"));
  }
}

TEST_CASE("invalid strategies are refused before touching the server") {
  TestDatabase db;
  auto zero_ttl = ensure(db, Expiration::ttl(0));
  REQUIRE_FALSE(zero_ttl.ok());
  CHECK(zero_ttl.error().code == ErrorCode::kInvalidArgument);
  auto tiny = ensure(db, Expiration::capped(100));
  REQUIRE_FALSE(tiny.ok());
  CHECK(tiny.error().code == ErrorCode::kInvalidArgument);
  CHECK_FALSE(shape_of(db, kColl).exists);
}

TEST_CASE("an unreachable server is reported as unavailable, not a hang") {
  auto client = siobridge::bus::mongodb::testing::connect(
      "mongodb://127.0.0.1:1/?replicaSet=rs0&serverSelectionTimeoutMS=300&connectTimeoutMS=300");
  auto status = ensure_collection(client.get(), "x", "y", Expiration::ttl(60));
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kUnavailable);
  auto hello = check_change_streams_supported(client.get());
  REQUIRE_FALSE(hello.ok());
  CHECK(hello.error().code == ErrorCode::kUnavailable);
}
