#include "daemon/common/flow_gate.h"

#include <catch2/catch.hpp>

#include <thread>

using namespace siobridge;
using namespace std::chrono_literals;

namespace {

FlowGate::Marks marks(std::size_t high, std::size_t low, std::size_t total_high = 1000,
                      std::size_t total_low = 500) {
  FlowGate::Marks m;
  m.high_water = high;
  m.low_water = low;
  m.total_high_water = total_high;
  m.total_low_water = total_low;
  m.stall_grace = 100ms;
  return m;
}

}  // namespace

TEST_CASE("the gate closes past the high-water mark and opens under the low one") {
  FlowGate gate(marks(100, 50));
  int a = 0, b = 0;
  CHECK(gate.is_open());
  gate.report(&a, 101);
  CHECK_FALSE(gate.is_open());
  gate.report(&b, 200);
  gate.report(&a, 60);  // between the marks: still over
  CHECK_FALSE(gate.is_open());
  gate.report(&a, 10);
  CHECK_FALSE(gate.is_open());  // b is still over
  gate.forget(&b);
  CHECK(gate.is_open());
  CHECK(gate.closings() == 1);
}

TEST_CASE("producers waiting for the gate resume when it opens, once") {
  FlowGate gate(marks(100, 50));
  int consumer = 0;
  int resumed = 0;
  CHECK(gate.when_open([&] { ++resumed; }));  // open: runs at once
  CHECK(resumed == 1);
  gate.report(&consumer, 500);
  CHECK_FALSE(gate.when_open([&] { ++resumed; }));
  CHECK(resumed == 1);
  gate.report(&consumer, 10);
  CHECK(resumed == 2);
  gate.report(&consumer, 500);
  gate.report(&consumer, 10);
  CHECK(resumed == 2);
}

TEST_CASE("a blocked producer wakes when the gate opens") {
  FlowGate gate(marks(100, 50));
  int consumer = 0;
  gate.report(&consumer, 500);
  CHECK_FALSE(gate.wait_open(std::chrono::milliseconds(1)));
  std::thread opener([&] { gate.report(&consumer, 0); });
  CHECK(gate.wait_open(std::chrono::minutes(1)));
  opener.join();
}

TEST_CASE("a consumer whose write waits past the stall grace does not hold the others up") {
  FlowGate gate(marks(100, 50));
  int stalled = 0, reading = 0;
  const auto t0 = FlowGate::Clock::now();
  gate.report(&stalled, 400, t0);
  gate.report(&reading, 10, t0);
  CHECK_FALSE(gate.is_open(t0 + 50ms));  // within the grace: it may be reading
  CHECK(gate.is_open(t0 + 150ms));       // past it: the others go on

  int resumed = 0;
  CHECK_FALSE(gate.when_open([&] { ++resumed; }));
  gate.poll(t0 + 50ms);
  CHECK(resumed == 0);
  gate.poll(t0 + 150ms);
  CHECK(resumed == 1);

  // Reading again (a write completed, the next one just began): it holds the gate.
  const auto t1 = FlowGate::Clock::now();
  gate.report(&stalled, 300, t1);
  CHECK_FALSE(gate.is_open(t1));
  // A slow reader that never stalls holds it until it is under the low mark.
  gate.report(&stalled, 60, t1);
  CHECK_FALSE(gate.is_open(t1));
  gate.report(&stalled, 40, t1);
  CHECK(gate.is_open(t1));
}

TEST_CASE("all consumers together past the total mark close the gate, stalled or not") {
  FlowGate gate(marks(100, 50, /*total_high=*/1000, /*total_low=*/500));
  int a = 0, b = 0;
  const auto long_ago = FlowGate::Clock::now() - 1h;
  gate.report(&a, 900, long_ago);
  CHECK(gate.is_open());  // a is stalled; 900 is under the total mark
  gate.report(&b, 90, long_ago);
  CHECK(gate.is_open());
  gate.report(&b, 200, long_ago);
  CHECK_FALSE(gate.is_open());  // 1,100 in all
  CHECK(gate.total_bytes() == 1100);
  gate.report(&b, 0);
  CHECK_FALSE(gate.is_open());  // 900: between the total marks
  gate.forget(&a);
  CHECK(gate.is_open());
  CHECK(gate.total_bytes() == 0);
}
