// Unit tests of the Engine on the in-memory bus (no MongoDB): the node runs on
// the core thread once started and on the caller's thread otherwise, posted
// work runs in order, conditions and timers resolve there, and two attached
// servers of one host reach each other.
#include "daemon/runtime/engine.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>

#include "daemon/common/mutex.h"
#include "daemon/common/turn_flush.h"

namespace siobridge::runtime {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;

// An attached server that hands each Command it gets to a promise.
class Server final : public core::LocalServer {
 public:
  void deliver(const core::Command& command) override {
    MutexLock lock(mutex_);
    if (!delivered_) {
      delivered_ = true;
      first_.set_value(command);
    }
  }
  std::future<core::Command> first() { return first_.get_future(); }

 private:
  Mutex mutex_;
  bool delivered_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::promise<core::Command> first_;
};

std::unique_ptr<Engine> memory_engine(std::string uid = {}) {
  EngineOptions options;
  options.node.uid = std::move(uid);
  auto engine = Engine::create(std::move(options));
  REQUIRE(engine.ok());
  return std::move(*engine);
}

template <typename T>
T await(std::future<T>& future) {
  REQUIRE(future.wait_for(kDeadline) == std::future_status::ready);
  return future.get();
}

}  // namespace

TEST_CASE("engine: a node uid must be a valid id; none given, one is generated") {
  EngineOptions bad;
  bad.node.uid = "short";
  auto refused = Engine::create(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalidArgument);
  CHECK(refused.error().message == "node uid must be 16 characters of [A-Za-z0-9_-]");

  auto engine = memory_engine();
  CHECK(engine->uid().size() == 16);
  CHECK(engine->uid() != memory_engine()->uid());
  CHECK(memory_engine("AAAAAAAAAAAAAAAA")->uid() == "AAAAAAAAAAAAAAAA");
  CHECK_FALSE(engine->uses_mongodb());
  CHECK(engine->mongo_stats() == nullptr);
  CHECK(engine->collection().empty());
  CHECK(engine->bus_state() == bus::BusState::kReady);
}

TEST_CASE("engine: call runs on the core thread while running, on the caller's otherwise") {
  auto engine = memory_engine();
  const auto caller = std::this_thread::get_id();
  auto where = [](core::Node&) { return std::this_thread::get_id(); };
  CHECK(engine->call(where) == caller);  // not started
  engine->start();
  CHECK(engine->running());
  const auto core_thread = engine->call(where);
  CHECK(core_thread != caller);
  CHECK(engine->call([&](core::Node& node) { return node.uid(); }) == engine->uid());
  engine->stop(Millis{0});
  CHECK_FALSE(engine->running());
  CHECK(engine->call(where) == caller);  // stopped
}

TEST_CASE("engine: posted work runs in order before a later call") {
  auto engine = memory_engine();
  engine->start();
  std::vector<int> order;  // touched on the core thread only
  for (int i = 0; i < 100; ++i) engine->post([&order, i](core::Node&) { order.push_back(i); });
  const auto seen = engine->call([&](core::Node&) { return order; });
  REQUIRE(seen.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i);
  engine->stop(Millis{0});
}

TEST_CASE("engine: the bus observer hears the state at once; timers fire on the core thread") {
  auto engine = memory_engine();
  engine->start();
  std::promise<bus::BusState> state;
  engine->set_bus_observer([&state](bus::BusState s, const std::string&) { state.set_value(s); });
  auto observed = state.get_future();
  CHECK(await(observed) == bus::BusState::kReady);

  const auto core_thread = engine->call([](core::Node&) { return std::this_thread::get_id(); });
  std::promise<std::thread::id> fired;
  engine->after(Millis{1}, [&fired] { fired.set_value(std::this_thread::get_id()); });
  auto fired_on = fired.get_future();
  CHECK(await(fired_on) == core_thread);
  engine->stop(Millis{0});
}

TEST_CASE("engine: a broadcast from one attached server reaches the other, in memory") {
  Server first, second;  // outlive the engine, which refers to them
  auto engine = memory_engine();
  engine->start();
  auto received = second.first();
  auto joined = engine->when([](core::Node& node) { return node.server_count("/") == 2; });
  const auto attached = engine->call([&](core::Node& node) {
    const auto a = node.attach(first, "first");
    const auto b = node.attach(second, "second");
    return std::pair{a, node.join_namespace(a, "/").ok() && node.join_namespace(b, "/").ok()};
  });
  REQUIRE(attached.second);
  const auto from = attached.first;
  REQUIRE(joined.wait_for(kDeadline) == std::future_status::ready);

  wire::Packet packet{"/", wire::PacketType::kEvent,
                      wire::Value{wire::ValueKind::kStr, "[\"hi\"]", std::nullopt}, std::nullopt,
                      std::nullopt};
  const auto status =
      engine->call([&](core::Node& node) { return node.broadcast(from, packet, {}); });
  REQUIRE(status.ok());
  const auto command = await(received);
  CHECK(command.kind == core::CommandKind::kBroadcast);
  CHECK(command.packet == packet);
  engine->stop(Millis{0});
}

TEST_CASE("engine: a long backlog is worked through in turns; urgent work and flushes go between") {
  auto engine = memory_engine();
  engine->start();
  constexpr int kTasks = 1000;
  std::atomic<int> done{0};
  std::promise<void> release;
  auto released = release.get_future().share();
  // The first task holds the core thread until everything below is posted, so
  // that all of it waits behind work that outlasts a turn's budget.
  engine->post([released](core::Node&) { released.wait(); });
  std::atomic<int> flushed_after = -1;
  engine->post([&](core::Node&) { TurnFlush::defer([&] { flushed_after = done.load(); }); });
  for (int i = 0; i < kTasks; ++i) {
    engine->post([&](core::Node&) {
      std::this_thread::sleep_for(1ms);  // work that takes time
      ++done;
    });
  }
  std::promise<int> urgent_saw;
  auto urgent = urgent_saw.get_future();
  engine->post_urgent([&](core::Node&) { urgent_saw.set_value(done.load()); });
  release.set_value();

  // Answered in the next turn, long before the backlog is worked through.
  CHECK(await(urgent) < kTasks);
  // The flush registered by an early task ran when its turn ended, before the rest.
  engine->call([](core::Node&) { return 0; });
  CHECK(done == kTasks);
  CHECK(flushed_after >= 0);
  CHECK(flushed_after < kTasks);
  engine->stop(Millis{0});
}

}  // namespace siobridge::runtime
