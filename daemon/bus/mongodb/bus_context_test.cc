// The hand-over from the change stream to the core thread, with a fake core:
// posted work waits in a queue until the test runs it. What the core has not
// taken yet is bounded, and the watcher's wait ends when the core catches up
// or the bus stops.
#include "daemon/bus/mongodb/bus_context.h"

#include <catch2/catch.hpp>

#include <deque>
#include <future>
#include <thread>

using namespace siobridge;
using namespace siobridge::bus;
using namespace siobridge::bus::mongodb;

namespace {

struct CountingListener final : BusListener {
  std::size_t documents = 0;
  std::vector<std::pair<BusState, std::string>> states;
  void on_document(wire::Document, const std::string&) override { ++documents; }
  void on_bus_state(BusState state, const std::string& detail) override {
    states.emplace_back(state, detail);
  }
};

// The core thread's queue, run by the test.
struct FakeCore {
  Mutex mutex;
  std::deque<std::function<void()>> posted SIOBRIDGE_GUARDED_BY(mutex);

  Post post() {
    return [this](std::function<void()> fn) {
      MutexLock lock(mutex);
      posted.push_back(std::move(fn));
    };
  }
  // Runs what was posted, up to `limit` closures; returns how many ran.
  std::size_t run(std::size_t limit = SIZE_MAX) {
    std::size_t ran = 0;
    while (ran < limit) {
      std::function<void()> fn;
      {
        MutexLock lock(mutex);
        if (posted.empty()) break;
        fn = std::move(posted.front());
        posted.pop_front();
      }
      fn();
      ++ran;
    }
    return ran;
  }
};

wire::Document document_of(std::size_t payload_bytes) {
  wire::Document document;
  document.header.ns = "/";
  document.header.origin = "AAAAAAAAAAAAAAAA";
  document.data.assign(payload_bytes, 'x');
  return document;
}

}  // namespace

TEST_CASE("the watcher waits while the core has more than the high mark to take") {
  CountingListener listener;
  FakeCore core;
  BusContext context(MongoBusConfig{}, "BBBBBBBBBBBBBBBB", listener, core.post(), nullptr, nullptr);

  // Under the high mark: no wait.
  const std::size_t kDocument = 100u << 10;
  std::size_t delivered = 0;
  while (context.core_backlog() + kDocument <= BusContext::kCoreBacklogHigh) {
    context.deliver(Delivery{document_of(kDocument), ""});
    ++delivered;
  }
  CHECK(context.wait_for_core());
  CHECK(context.stats.core_waits == 0);

  // Past it: the wait lasts until the core took enough to be under the low mark.
  context.deliver(Delivery{document_of(kDocument), ""});
  context.deliver(Delivery{document_of(kDocument), ""});
  delivered += 2;
  REQUIRE(context.core_backlog() > BusContext::kCoreBacklogHigh);
  auto waited = std::async(std::launch::async, [&] { return context.wait_for_core(); });
  while (context.stats.core_waits == 0 &&
         waited.wait_for(std::chrono::seconds(0)) == std::future_status::timeout) {
    std::this_thread::yield();
  }
  REQUIRE(context.stats.core_waits == 1);  // it is waiting
  // The core takes all but the low mark's worth: the watcher still waits.
  const std::size_t keep = BusContext::kCoreBacklogLow / kDocument + 1;
  core.run(delivered - keep);
  CHECK(waited.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  CHECK(context.core_backlog() > BusContext::kCoreBacklogLow);
  core.run();
  CHECK(waited.get());
  CHECK(context.core_backlog() == 0);
  CHECK(listener.documents == delivered);
  CHECK(context.stats.core_waits == 1);
  CHECK(context.stats.core_backlog_peak >= BusContext::kCoreBacklogHigh);
  CHECK(context.stats.core_backlog_peak < BusContext::kCoreBacklogHigh + 2 * kDocument + 1024);
}

TEST_CASE("a stop ends the watcher's wait for the core") {
  CountingListener listener;
  FakeCore core;
  BusContext context(MongoBusConfig{}, "BBBBBBBBBBBBBBBB", listener, core.post(), nullptr, nullptr);
  while (context.core_backlog() <= BusContext::kCoreBacklogHigh) {
    context.deliver(Delivery{document_of(1u << 20), ""});
  }
  auto waited = std::async(std::launch::async, [&] { return context.wait_for_core(); });
  context.request_stop();
  CHECK_FALSE(waited.get());
  core.run();  // what was delivered is still taken
  CHECK(context.core_backlog() == 0);
}

TEST_CASE("a cause is the detail while the bus is not ready, once per cause, gone when ready") {
  CountingListener listener;
  FakeCore core;
  BusContext context(MongoBusConfig{}, "BBBBBBBBBBBBBBBB", listener, core.post(), nullptr, nullptr);
  const auto cause = [&] { return static_cast<Cause>(context.stats.cause.load()); };
  context.report(BusContext::Part::kWatcher, BusState::kUnavailable,
                 "hello: Authentication failed.");
  context.diagnose({Cause::kAuthentication, "authentication failed for user \"u\""});
  core.run();
  REQUIRE_FALSE(listener.states.empty());
  CHECK(listener.states.back() ==
        std::pair{BusState::kUnavailable, std::string("authentication failed for user \"u\"")});
  CHECK(cause() == Cause::kAuthentication);

  // The same cause worded otherwise, and later reports: the detail stays.
  const auto posted = listener.states.size();
  context.diagnose({Cause::kAuthentication, "authentication failed: said by another part"});
  context.report(BusContext::Part::kMonitor, BusState::kUnavailable, "no writable MongoDB server");
  core.run();
  CHECK(listener.states.size() == posted);

  // Another cause replaces it.
  context.diagnose({Cause::kNotAuthorized, "not authorized: ..."});
  core.run();
  CHECK(listener.states.back().second == "not authorized: ...");
  CHECK(cause() == Cause::kNotAuthorized);

  // Ready again: the cause is over; found while ready, it waits for the next outage.
  context.report(BusContext::Part::kMonitor, BusState::kReady, "");
  context.report(BusContext::Part::kWatcher, BusState::kReady, "");
  core.run();
  CHECK(listener.states.back() == std::pair{BusState::kReady, std::string()});
  CHECK(cause() == Cause::kNone);
  context.diagnose({Cause::kUnreachable, "cannot reach MongoDB at h:1: refused"}, "h:1");
  core.run();
  CHECK(listener.states.back().first == BusState::kReady);
  CHECK(cause() == Cause::kNone);
  context.report(BusContext::Part::kMonitor, BusState::kUnavailable, "no writable MongoDB server");
  core.run();
  CHECK(listener.states.back().second == "cannot reach MongoDB at h:1: refused");
  // The host answers: its unreachable cause is gone.
  context.host_answered("h:1");
  CHECK(cause() == Cause::kNone);
}
