// The writer's group-commit window (mongodb.write_window_us) and its bounds.
#include "daemon/bus/mongodb/write_window.h"

#include <catch2/catch.hpp>

using siobridge::bus::mongodb::WriteWindow;
using namespace std::chrono_literals;

namespace {

WriteWindow window(std::chrono::microseconds length) {
  return {length, 128 << 10, 1000};
}
const WriteWindow::Clock::time_point t0{};

}  // namespace

TEST_CASE("without a window a batch is taken at once") {
  CHECK_FALSE(window(0us).wait_until(t0, t0, 100, 1));
}

TEST_CASE("a fresh queue waits until its oldest document is a window old") {
  const auto w = window(1000us);
  CHECK(w.wait_until(t0, t0, 100, 1) == t0 + 1000us);
  // Later arrivals do not move the deadline: no document waits longer than the window.
  CHECK(w.wait_until(t0, t0 + 400us, 300, 3) == t0 + 1000us);
  CHECK_FALSE(w.wait_until(t0, t0 + 1000us, 300, 3));
  CHECK_FALSE(w.wait_until(t0, t0 + 5ms, 300, 3));  // queued during an insert: at once
}

TEST_CASE("a queue that fills a pack or a batch goes at once") {
  const auto w = window(1000us);
  CHECK_FALSE(w.wait_until(t0, t0, 128 << 10, 10));
  CHECK_FALSE(w.wait_until(t0, t0, 100, 1000));
  CHECK(w.wait_until(t0, t0, (128 << 10) - 1, 999));
}

TEST_CASE("a window is never longer than its bound") {
  CHECK(WriteWindow::kMax == 20ms);
  CHECK(window(10s).wait_until(t0, t0, 100, 1) == t0 + WriteWindow::kMax);
  CHECK_FALSE(window(-5us).wait_until(t0, t0, 100, 1));
}
