// Engines on MongoDB when things go wrong: a killed engine, garbage in the
// collection, a dropped collection, a MongoDB that stops and comes back, an
// engine restarted from its persisted resume token, a standalone server.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <thread>

#include "daemon/bus/mongodb/resume_state.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/owned_bson.h"
#include "tests/integration/engine_fixture.h"
#include "tests/integration/private_mongo.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::testing;
namespace flags = siobridge::wire::broadcast_flags;
using bus::mongodb::Expiration;

namespace {

const wire::BroadcastOptions kAll{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};

// Publishes numbered broadcasts from one server until stopped, remembering
// which ones the engine accepted.
class Traffic {
 public:
  Traffic(runtime::Engine& engine, EngineServer& from) : engine_(engine), from_(from) {
    thread_ = std::thread([this] { run(); });
  }
  ~Traffic() { stop(); }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }
  std::set<int> accepted() const {
    std::lock_guard lock(mutex_);
    return accepted_;
  }
  int refused() const { return refused_; }
  // Waits until `count` more broadcasts were accepted than when asked.
  bool wait_accepted(std::size_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    const std::size_t target = accepted_.size() + count;
    return changed_.wait_for(lock, timeout, [&] { return accepted_.size() >= target; });
  }

 private:
  void run() {
    for (int i = 0; running_; ++i) {
      auto status = engine_.call([&](Node& n) {
        return n.broadcast(from_.id(), testing_event("[" + std::to_string(i) + "]"), kAll);
      });
      {
        std::lock_guard lock(mutex_);
        if (status.ok()) {
          accepted_.insert(i);
        } else {
          ++refused_;
        }
      }
      changed_.notify_all();
      // A steady pace, not a burst, so that the outage falls in the middle.
      std::this_thread::sleep_for(std::chrono::milliseconds(4));
    }
  }
  runtime::Engine& engine_;
  EngineServer& from_;
  std::thread thread_;
  std::atomic<bool> running_{true};
  std::atomic<int> refused_{0};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::set<int> accepted_;
};

// How many times each message number reached `server`.
std::map<int, int> arrivals(EngineServer& server) {
  return server.with([](auto& s) {
    std::map<int, int> seen;
    for (const auto& d : s.delivered) {
      const auto& text = d.packet.data->bytes;
      seen[std::stoi(text.substr(1, text.size() - 2))]++;
    }
    return seen;
  });
}

void expect_exactly_once(EngineServer& receiver, const std::set<int>& accepted) {
  const bool all_arrived = receiver.wait_until(
      [&](auto& s) {
        std::set<int> got;
        for (const auto& d : s.delivered) {
          const auto& text = d.packet.data->bytes;
          got.insert(std::stoi(text.substr(1, text.size() - 2)));
        }
        return std::includes(got.begin(), got.end(), accepted.begin(), accepted.end());
      },
      std::chrono::seconds(60));
  auto seen = arrivals(receiver);
  std::size_t lost = 0, duplicated = 0;
  for (int i : accepted) {
    if (!seen.count(i)) ++lost;
  }
  for (const auto& [i, n] : seen) {
    if (n > 1) ++duplicated;
  }
  INFO(accepted.size() << " accepted, " << lost << " lost, " << duplicated << " duplicated");
  CHECK(all_arrived);
  CHECK(lost == 0);
  CHECK(duplicated == 0);
}

}  // namespace

TEST_CASE("a killed engine stops being counted after hb_timeout") {
  EngineSet set(Expiration::ttl(60));
  auto& a = set.add();
  auto& b = set.add();
  auto& c = set.add();
  EngineServer a1(a, "a1"), b1(b, "b1"), c1(c, "c1");
  a1.attach();
  b1.attach();
  c1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 3; }));
  REQUIRE(eventually(b, [](Node& n) { return n.server_count("/") == 3; }));
  set.kill(c);
  CHECK(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
  CHECK(eventually(b, [](Node& n) { return n.server_count("/") == 2; }));
  CHECK(a.call([](Node& n) { return n.stats().peers_expired; }) == 1);
}

TEST_CASE("garbage documents in the collection are skipped and counted") {
  EngineSet set(Expiration::ttl(60));
  auto& a = set.add();
  auto& b = set.add();
  EngineServer a1(a, "a1"), b1(b, "b1");
  a1.with([](auto& s) {
    s.add_socket("a1s1");
    return 0;
  });
  a1.attach();
  b1.attach();
  REQUIRE(eventually(b, [](Node& n) { return n.server_count("/") == 2; }));

  const std::string stranger = wire::generate_id();
  mongoc_collection_t* coll = set.db().collection(EngineSet::kCollection);
  std::vector<wire::OwnedBson> garbage;
  garbage.emplace_back(
      BCON_NEW("t", "Req", "ns", "/", "origin", BCON_UTF8(stranger.c_str()), "data", "not bytes"));
  garbage.emplace_back(BCON_NEW("t", "Req", "ns", "/", "origin", BCON_UTF8(stranger.c_str()),
                                "data", "[", BCON_INT32(300), BCON_INT32(-1), "]"));
  garbage.emplace_back(BCON_NEW("unrelated", BCON_INT32(1)));
  // BSON fine, msgpack not.
  garbage.emplace_back(BCON_NEW("t", "Req", "ns", "/", "origin", BCON_UTF8(stranger.c_str()),
                                "data", "[", BCON_INT32(0x96), BCON_INT32(1), BCON_INT32(2), "]"));
  for (const auto& doc : garbage) {
    bson_error_t error;
    REQUIRE(mongoc_collection_insert_one(coll, doc.get(), nullptr, nullptr, &error));
  }
  mongoc_collection_destroy(coll);
  // Still working afterwards.
  REQUIRE(b.call([&](Node& n) {
             return n.broadcast(b1.id(), testing_event("[\"alive\"]"), kAll);
           }).ok());
  REQUIRE(a1.wait_until([](auto& s) { return s.delivered.size() == 1; }));
  CHECK(a.mongo_stats()->malformed == 3);
  CHECK(a.call([](Node& n) { return n.stats().decode_errors; }) == 1);
}

TEST_CASE("the collection dropped during traffic: engines recover and lose nothing accepted") {
  auto expiration = GENERATE(Expiration::ttl(60), Expiration::capped(4 << 20));
  INFO(expiration.describe());
  EngineSet set(expiration);
  auto& a = set.add();
  auto& b = set.add();
  EngineServer a1(a, "a1"), b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  a1.attach();
  b1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
  Traffic traffic(a, a1);
  REQUIRE(b1.wait_until([](auto& s) { return s.delivered.size() >= 50; }));
  {
    mongoc_collection_t* coll = set.db().collection(EngineSet::kCollection);
    bson_error_t error;
    REQUIRE(mongoc_collection_drop(coll, &error));
    mongoc_collection_destroy(coll);
  }
  const auto before = b1.with([](auto& s) { return s.delivered.size(); });
  REQUIRE(b1.wait_until([&](auto& s) { return s.delivered.size() >= before + 100; },
                        std::chrono::seconds(60)));
  traffic.stop();
  expect_exactly_once(b1, traffic.accepted());
  CHECK(a.mongo_stats()->collection_setups >= 2);
  CHECK(b.mongo_stats()->collection_setups >= 2);
}

// [mongodb-restart] and [standalone-mongodb]: CTest tests of their own, reported
// as skipped on "case skipped:" (siobridge_test's SKIPPABLE).
TEST_CASE(
    "MongoDB stopped and restarted during traffic: nothing is refused, everything arrives once",
    "[mongodb-restart]") {
  if (!PrivateMongo::available()) {
    WARN("case skipped: needs the test MongoDB binary (scripts/setup) to run a server it can stop");
    return;
  }
  PrivateMongo mongo(private_port(0));
  mongo.wipe();
  mongo.start();
  EngineSet set(Expiration::ttl(600), mongo.uri());
  auto& a = set.add();
  auto& b = set.add();
  EngineServer a1(a, "a1"), b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  a1.attach();
  b1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
  Traffic traffic(a, a1);
  REQUIRE(b1.wait_until([](auto& s) { return s.delivered.size() >= 50; }));
  mongo.stop();
  CHECK(eventually(a, [](Node& n) { return n.status().bus_state == bus::BusState::kUnavailable; }));
  // Publishes while MongoDB is away queue (mongodb.queue_bytes) instead of failing.
  REQUIRE(traffic.wait_accepted(100, std::chrono::seconds(20)));
  CHECK(traffic.refused() == 0);
  mongo.start();
  CHECK(eventually(
      a, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; },
      std::chrono::seconds(60)));
  const auto before = b1.with([](auto& s) { return s.delivered.size(); });
  REQUIRE(b1.wait_until([&](auto& s) { return s.delivered.size() >= before + 50; },
                        std::chrono::seconds(60)));
  traffic.stop();
  CHECK(traffic.refused() == 0);
  expect_exactly_once(b1, traffic.accepted());
}

namespace {

// A fresh directory, removed with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("siobridge-test-" + wire::generate_id());
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("an engine restarted with its state directory misses nothing published meanwhile") {
  TempDir state;  // outlives the engines, which save their token when they stop
  const auto& state_dir = state.path;
  EngineSet set(Expiration::ttl(600));
  auto bus_config = set.bus_config();
  bus_config.state_dir = state_dir.string();
  auto node_config = quick_node_config();
  node_config.uid = wire::generate_id();

  auto& a = set.add();
  EngineServer a1(a, "a1");
  a1.attach();
  std::set<int> sent;
  {
    auto& b = set.add(node_config, bus_config);
    EngineServer b1(b, "b1");
    b1.attach();
    REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
    // B's change stream is open, its start kept: A can count B (its writer
    // runs once the collection is set up) a moment before that, and a B
    // stopped then has no token and restarts from "now".
    REQUIRE(eventually(b, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
    b.stop(Millis{1000});
  }
  for (int i = 0; i < 30; ++i) {
    REQUIRE(a.call([&](Node& n) {
               return n.broadcast(a1.id(), testing_event("[" + std::to_string(i) + "]"), kAll);
             }).ok());
    sent.insert(i);
  }
  // Restarted with the same uid and state directory: it resumes where it stopped.
  auto& b = set.add(node_config, bus_config);
  EngineServer b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  b1.attach();
  expect_exactly_once(b1, sent);
  if (arrivals(b1).size() < sent.size()) {
    // What each side did, to tell a write that never happened from a read
    // that never came or a delivery the restart hold dropped.
    const auto held = b.call([](Node& n) { return n.stats(); });
    WARN("A inserted " << a.mongo_stats()->inserted << " documents (" << a.mongo_stats()->packs
                       << " packs); B received " << b.mongo_stats()->received << ", held "
                       << held.handover_held << ", delivered " << held.handover_delivered
                       << ", unclaimed " << held.handover_unclaimed << ", inactive namespace "
                       << held.inactive_namespace);
  }
  CHECK(b.mongo_stats()->resume_failures == 0);

  SECTION("an unusable token: the collection is re-read instead") {
    b.stop(Millis{1000});
    // Overwrite the token with one the server cannot resume from.
    bus::mongodb::ResumeStateFile file(state_dir.string(),
                                       set.db().name() + "." + EngineSet::kCollection);
    REQUIRE(std::filesystem::exists(file.path()));
    wire::OwnedBson token(BCON_NEW("_data", "this is not a resume token"));
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    REQUIRE(file.save(token.get(), now_ms).ok());
    std::set<int> later;
    for (int i = 100; i < 120; ++i) {
      REQUIRE(a.call([&](Node& n) {
                 return n.broadcast(a1.id(), testing_event("[" + std::to_string(i) + "]"), kAll);
               }).ok());
      later.insert(i);
    }
    auto& again = set.add(node_config, bus_config);
    EngineServer b2(again, "b2");
    b2.with([](auto& s) {
      s.add_socket("b2s1");
      return 0;
    });
    b2.attach();
    expect_exactly_once(b2, later);
    CHECK(again.mongo_stats()->resume_failures == 1);
    CHECK(again.mongo_stats()->gap_refills >= 20);
    CHECK(again.mongo_stats()->gaps == 0);  // everything was still there
  }
}

TEST_CASE("a gap that cannot be filled is logged and counted") {
  TempDir state;
  // A tiny capped collection: it overwrites its oldest documents quickly.
  EngineSet set(Expiration::capped(16384));
  auto bus_config = set.bus_config();
  bus_config.state_dir = state.path.string();
  auto node_config = quick_node_config();
  node_config.uid = wire::generate_id();
  auto& a = set.add();
  EngineServer a1(a, "a1");
  a1.attach();
  {
    auto& b = set.add(node_config, bus_config);
    EngineServer b1(b, "b1");
    b1.attach();
    REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
    // B's change stream is open, its start kept: A can count B (its writer
    // runs once the collection is set up) a moment before that, and a B
    // stopped then has no token and restarts from "now".
    REQUIRE(eventually(b, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
    b.stop(Millis{1000});
  }
  bus::mongodb::ResumeStateFile file(state.path.string(),
                                     set.db().name() + "." + EngineSet::kCollection);
  wire::OwnedBson token(BCON_NEW("_data", "this is not a resume token"));
  const auto last_seen = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  REQUIRE(file.save(token.get(), last_seen).ok());
  // Far more than 16 KiB while B is away, after a second so that ObjectId times move on.
  const auto pause_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1100);
  std::this_thread::sleep_until(pause_until);  // ObjectIds carry whole seconds
  const std::string big(400, 'x');
  // Messages written, whether packed or in documents of their own.
  auto messages_written = [&a] {
    const auto& s = *a.mongo_stats();
    return s.inserted.load() - s.packs.load() + s.packed.load();
  };
  const auto written_before = messages_written();
  for (int i = 0; i < 300; ++i) {
    REQUIRE(a.call([&](Node& n) {
               return n.broadcast(a1.id(), testing_event("[\"" + big + "\"]"), kAll);
             }).ok());
  }
  REQUIRE(eventually(a, [&](Node&) { return messages_written() >= written_before + 300; }));
  auto& b = set.add(node_config, bus_config);
  EngineServer b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  b1.attach();
  REQUIRE(eventually(b, [&](Node&) { return b.mongo_stats()->resume_failures == 1; }));
  CHECK(eventually(b, [&](Node&) { return b.mongo_stats()->gaps == 1; }));
}

TEST_CASE("a standalone MongoDB is refused with a clear error", "[standalone-mongodb]") {
  if (!PrivateMongo::available()) {
    WARN("case skipped: needs the test MongoDB binary (scripts/setup) to run a standalone server");
    return;
  }
  PrivateMongo standalone(private_port(1), /*standalone=*/true);
  standalone.wipe();
  standalone.start();
  EngineSet set(Expiration::ttl(60));  // the shared server; only the engine's URI differs
  auto config = set.bus_config();
  config.uri = standalone.uri();
  auto& engine = set.add(quick_node_config(), config);
  REQUIRE(
      eventually(engine, [](Node& n) { return n.status().bus_state == bus::BusState::kFailed; }));
  auto detail = engine.call([](Node& n) { return n.status().bus_detail; });
  CHECK_THAT(detail, Catch::Contains("standalone") && Catch::Contains("replica set"));
  EngineServer s(engine, "s");
  s.attach();
  auto refused =
      engine.call([&](Node& n) { return n.broadcast(s.id(), testing_event("[1]"), kAll); });
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnavailable);
}
