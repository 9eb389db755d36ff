#include "daemon/common/turn_flush.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace siobridge {
namespace {

TEST_CASE("without an open turn nothing is deferred") {
  bool ran = false;
  CHECK_FALSE(TurnFlush::defer([&] { ran = true; }));
  CHECK_FALSE(ran);
}

TEST_CASE("a turn runs its flushes when it ends, in the order registered") {
  std::vector<int> order;
  {
    TurnFlush::Scope turn;
    CHECK(TurnFlush::defer([&] { order.push_back(1); }));
    CHECK(TurnFlush::defer([&] { order.push_back(2); }));
    CHECK(order.empty());
  }
  CHECK(order == std::vector<int>{1, 2});
  CHECK_FALSE(TurnFlush::defer([] {}));  // the turn is closed
}

TEST_CASE("a nested scope belongs to the turn already open") {
  std::vector<int> order;
  {
    TurnFlush::Scope turn;
    {
      TurnFlush::Scope inner;
      CHECK(TurnFlush::defer([&] { order.push_back(1); }));
    }
    CHECK(order.empty());
  }
  CHECK(order == std::vector<int>{1});
}

TEST_CASE("a flush that defers again runs at once") {
  int runs = 0;
  {
    TurnFlush::Scope turn;
    TurnFlush::defer([&] {
      runs += 1;
      if (!TurnFlush::defer([&] { runs += 10; })) runs += 100;
    });
  }
  CHECK(runs == 101);
}

TEST_CASE("each thread has its own turn") {
  TurnFlush::Scope turn;
  bool other_deferred = true;
  std::thread other([&] { other_deferred = TurnFlush::defer([] {}); });
  other.join();
  CHECK_FALSE(other_deferred);
  CHECK(TurnFlush::defer([] {}));
}

}  // namespace
}  // namespace siobridge
