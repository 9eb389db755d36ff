#include "daemon/core/timer_queue.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace siobridge::core;
using siobridge::Millis;

TEST_CASE("timers run in deadline order, ties in scheduling order") {
  TimerQueue q;
  std::vector<int> ran;
  q.schedule(Millis{30}, [&] { ran.push_back(3); });
  q.schedule(Millis{10}, [&] { ran.push_back(1); });
  q.schedule(Millis{10}, [&] { ran.push_back(2); });
  CHECK(q.next_deadline() == Millis{10});
  q.run_due(Millis{9});
  CHECK(ran.empty());
  q.run_due(Millis{30});
  CHECK(ran == std::vector<int>{1, 2, 3});
  CHECK_FALSE(q.next_deadline());
}

TEST_CASE("cancelled timers never run; timers scheduled by callbacks run if due") {
  TimerQueue q;
  std::vector<int> ran;
  auto id = q.schedule(Millis{5}, [&] { ran.push_back(1); });
  q.schedule(Millis{6}, [&] {
    ran.push_back(2);
    q.schedule(Millis{6}, [&] { ran.push_back(3); });
    q.schedule(Millis{100}, [&] { ran.push_back(4); });
  });
  q.cancel(id);
  q.cancel(id);
  q.cancel(12345);
  q.run_due(Millis{50});
  CHECK(ran == std::vector<int>{2, 3});
  CHECK(q.size() == 1);
}
