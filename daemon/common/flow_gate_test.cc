#include "daemon/common/flow_gate.h"

#include <catch2/catch.hpp>

#include <thread>

using namespace siobridge;

TEST_CASE("the gate closes past the high-water mark and opens under the low one") {
  FlowGate gate(100, 50);
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
  FlowGate gate(100, 50);
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
  FlowGate gate(100, 50);
  int consumer = 0;
  gate.report(&consumer, 500);
  CHECK_FALSE(gate.wait_open(std::chrono::milliseconds(1)));
  std::thread opener([&] { gate.report(&consumer, 0); });
  CHECK(gate.wait_open(std::chrono::minutes(1)));
  opener.join();
}
