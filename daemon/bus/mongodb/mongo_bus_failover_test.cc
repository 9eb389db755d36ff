// The MongoDB bus against the real MongoDB of $MONGODB_URI, with failures made
// by the server's failCommand fail point (needs enableTestCommands, which
// scripts/mongo turns on; skipped with a warning on a server without it): what
// an election does to a write, reproduced on demand.
//
// Single-threaded test code; the bus's listener is called from its threads.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "daemon/bus/mongodb/mongo_bus.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "daemon/common/mutex.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::bus;
using namespace siobridge::bus::mongodb;
using siobridge::bus::mongodb::testing::TestDatabase;
using siobridge::wire::OwnedBson;

namespace {

const std::string kColl = "socket.io-adapter";

// Records the bus states in order; waits for one.
class StateLog final : public BusListener {
 public:
  void on_document(wire::Document, const std::string&) override {}
  void on_bus_state(BusState state, const std::string&) override SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    states_.push_back(state);
    changed_.signal_all();
  }
  // Waits until `state` is reported after the first `after` reports; returns
  // its index, or -1 at the deadline.
  int wait_for(BusState state, std::size_t after, std::chrono::seconds timeout)
      SIOBRIDGE_EXCLUDES(mutex_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(mutex_);
    std::size_t next = after;  // the first report not looked at yet
    while (true) {
      for (; next < states_.size(); ++next) {
        if (states_[next] == state) return static_cast<int>(next);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      changed_.wait_until(deadline);
    }
  }
  BusState last() SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return states_.empty() ? BusState::kStarting : states_.back();
  }

 private:
  Mutex mutex_;
  CondVar changed_{mutex_};
  std::vector<BusState> states_ SIOBRIDGE_GUARDED_BY(mutex_);
};

wire::Document broadcast_from(const std::string& uid) {
  wire::Request request{uid, wire::generate_id(), wire::RequestType::kBroadcast, {}, {}, {}};
  return wire::Document{{wire::MessageKind::kRequest, "/", uid, std::nullopt, std::nullopt},
                        wire::encode_request(request),
                        std::nullopt};
}

// Sets the failCommand fail point; false when the server has no test commands.
bool fail_inserts(mongoc_client_t* client, const std::string& app_name, int times,
                  std::string& why) {
  OwnedBson command(BCON_NEW(
      "configureFailPoint", BCON_UTF8("failCommand"), "mode", "{", "times", BCON_INT32(times), "}",
      "data", "{", "failCommands", "[", BCON_UTF8("insert"), "]", "appName",
      BCON_UTF8(app_name.c_str()), "writeConcernError", "{", "code", BCON_INT32(64), "errmsg",
      BCON_UTF8("the test's fail point: waiting for replication timed out"), "}", "}"));
  bson_error_t error;
  if (mongoc_client_command_simple(client, "admin", command.get(), nullptr, nullptr, &error))
    return true;
  why = error.message;
  return false;
}

void clear_fail_point(mongoc_client_t* client) {
  OwnedBson command(
      BCON_NEW("configureFailPoint", BCON_UTF8("failCommand"), "mode", BCON_UTF8("off")));
  bson_error_t error;
  mongoc_client_command_simple(client, "admin", command.get(), nullptr, nullptr, &error);
}

}  // namespace

TEST_CASE(
    "a write whose outcome an election made unknown, found stored: stored once, and the bus "
    "is ready again without another write") {
  TestDatabase db;
  // Only this bus's inserts fail: the fail point matches its appName.
  const std::string app_name = "siobridge-failover-" + wire::generate_id();
  std::string uri = siobridge::bus::mongodb::testing::mongodb_uri();
  if (uri.find('?') != std::string::npos) {
    uri += "&";
  } else {
    uri += uri.ends_with('/') ? "?" : "/?";
  }
  uri += "appName=" + app_name;

  MongoBusConfig config;
  config.uri = uri;
  config.database = db.name();
  config.collection = kColl;
  StateLog log;
  auto bus = MongoBus::create(
      config, wire::generate_id(), log, [](std::function<void()> f) { f(); }, nullptr);
  REQUIRE(bus.ok());
  (*bus)->start();
  REQUIRE(log.wait_for(BusState::kReady, 0, std::chrono::seconds(30)) >= 0);

  std::string why;
  if (!fail_inserts(db.client(), app_name, 1, why)) {
    WARN("skipped: the server refuses configureFailPoint ("
         << why << "); start it with enableTestCommands");
    (*bus)->stop(Millis{0});
    return;
  }
  // The write is applied, but its answer says the write concern was not
  // satisfied (as when the primary steps down or loses its majority before
  // acknowledging): the writer cannot know, looks it up, finds it stored.
  // WriteConcernFailed is no "not primary" error, so the driver's monitoring
  // stays calm: the state seen is the writer's own.
  REQUIRE((*bus)->publish(broadcast_from(wire::generate_id()), Audience::kEveryNode).ok());
  const int unavailable = log.wait_for(BusState::kUnavailable, 0, std::chrono::seconds(30));
  clear_fail_point(db.client());
  REQUIRE(unavailable >= 0);
  // Nothing else is published: the look-up alone must bring the state back.
  CHECK(log.wait_for(BusState::kReady, static_cast<std::size_t>(unavailable),
                     std::chrono::seconds(30)) > unavailable);
  CHECK(db.count(kColl) == 1);
  CHECK((*bus)->stats().insert_failures.load() == 1);
  CHECK((*bus)->stats().dropped.load() == 0);
  (*bus)->stop(Millis{1000});
}
