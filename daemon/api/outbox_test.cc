// Unit tests of Outbox: one write at a time in push order, the byte count that
// back-pressure reads (FlowGate, the queue limits), and closing.
#include "daemon/api/outbox.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace siobridge::api {
namespace {

// Stands in for the reactor: records each StartWrite.
struct Writer {
  std::vector<std::string> started;
  Outbox<std::string> outbox{[this](const std::string* m) { started.push_back(*m); }};
};

// The same, with messages that concatenate when merged.
struct MergingWriter {
  std::vector<std::string> started;
  Outbox<std::string> outbox{
      [this](const std::string* m) { started.push_back(*m); },
      [](std::string& last, std::size_t, std::size_t, std::string& next, std::size_t) {
        last += next;
        return true;
      }};
};

}  // namespace

TEST_CASE("outbox: one write at a time, in push order") {
  Writer w;
  REQUIRE(w.outbox.push("a", 10));
  CHECK(w.started == std::vector<std::string>{"a"});  // the first push starts a write
  REQUIRE(w.outbox.push("b", 20));
  REQUIRE(w.outbox.push("c", 30));
  CHECK(w.started.size() == 1);  // the others wait for it
  CHECK(w.outbox.size() == 3);

  CHECK_FALSE(w.outbox.on_write_done(true));
  CHECK(w.started == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(w.outbox.on_write_done(true));
  CHECK(w.started == std::vector<std::string>{"a", "b", "c"});
  CHECK(w.outbox.on_write_done(true));  // empty now
  CHECK(w.outbox.size() == 0);

  REQUIRE(w.outbox.push("d"));  // idle again: the next push starts at once
  CHECK(w.started.back() == "d");
}

TEST_CASE("outbox: bytes count what waits and what is being written") {
  Writer w;
  CHECK(w.outbox.bytes() == 0);
  w.outbox.push("a", 100);
  w.outbox.push("b", 50);
  w.outbox.push("c");  // counted as a message, not in bytes
  CHECK(w.outbox.bytes() == 150);
  w.outbox.on_write_done(true);
  CHECK(w.outbox.bytes() == 50);
  w.outbox.on_write_done(true);
  CHECK(w.outbox.bytes() == 0);
  CHECK(w.outbox.size() == 1);
}

TEST_CASE("outbox: a failed write closes it; later pushes are refused") {
  Writer w;
  w.outbox.push("a", 10);
  w.outbox.push("b", 20);
  CHECK_FALSE(w.outbox.on_write_done(false));  // "b" still queued, but never written
  CHECK(w.started == std::vector<std::string>{"a"});
  CHECK_FALSE(w.outbox.push("c", 5));
  CHECK(w.outbox.size() == 1);
  CHECK(w.outbox.bytes() == 20);
}

TEST_CASE("outbox: close drops what waits, keeps the write in flight, refuses pushes") {
  Writer w;
  w.outbox.push("a", 10);
  w.outbox.push("b", 20);
  w.outbox.push("c", 30);
  w.outbox.close();
  CHECK(w.outbox.size() == 1);
  CHECK(w.outbox.bytes() == 10);
  CHECK_FALSE(w.outbox.push("d", 40));
  CHECK(w.outbox.on_write_done(true));  // the write in flight completes
  CHECK(w.started == std::vector<std::string>{"a"});
  CHECK(w.outbox.bytes() == 0);

  Writer idle;
  idle.outbox.close();  // nothing in flight: nothing kept
  CHECK(idle.outbox.size() == 0);
  CHECK_FALSE(idle.outbox.push("x"));
  CHECK(idle.started.empty());
}

TEST_CASE("outbox: merged pushes never change the message being written") {
  MergingWriter w;
  w.outbox.push("a", 1, true);
  w.outbox.push("b", 1, true);
  w.outbox.push("c", 1, true);
  CHECK(w.started == std::vector<std::string>{"a"});
  CHECK(w.outbox.messages() == 2);
  w.outbox.on_write_done(true);
  CHECK(w.started == std::vector<std::string>{"a", "bc"});
  CHECK(w.outbox.size() == 2);
}

TEST_CASE("outbox: pushes that do not start a write wait for kick, merged") {
  MergingWriter w;
  w.outbox.push("a", 1, true, false);
  w.outbox.push("b", 1, true, false);
  w.outbox.push("c", 1, true, false);
  CHECK(w.started.empty());  // nothing written before the kick
  CHECK(w.outbox.size() == 3);
  CHECK(w.outbox.messages() == 1);
  w.outbox.kick();
  CHECK(w.started == std::vector<std::string>{"abc"});
  w.outbox.kick();  // a write is under way: nothing more starts
  CHECK(w.started.size() == 1);
  CHECK(w.outbox.on_write_done(true));
  w.outbox.kick();  // nothing waits
  CHECK(w.started.size() == 1);

  // A push that starts a write takes what waited with it, in order.
  w.outbox.push("d", 1, true, false);
  w.outbox.push("e", 1, false);
  CHECK(w.started == std::vector<std::string>{"abc", "d"});
  w.outbox.on_write_done(true);
  CHECK(w.started.back() == "e");

  // A closed outbox starts nothing.
  MergingWriter closed;
  closed.outbox.push("x", 1, true, false);
  closed.outbox.close();
  closed.outbox.kick();
  CHECK(closed.started.empty());
  CHECK(closed.outbox.size() == 0);
}

TEST_CASE("outbox: the stall clock runs only while a write is in flight") {
  MergingWriter w;
  // Queued for the end of a turn: nothing written yet, so nothing can be stalled.
  REQUIRE(w.outbox.push("a", 10, /*mergeable=*/true, /*start_write=*/false));
  REQUIRE(w.outbox.push("b", 10, /*mergeable=*/true, /*start_write=*/false));
  CHECK_FALSE(w.outbox.writing_since().has_value());
  const auto before = std::chrono::steady_clock::now();
  w.outbox.kick();
  const auto first = w.outbox.writing_since();
  REQUIRE(first.has_value());
  CHECK(*first >= before);
  REQUIRE(w.outbox.push("c", 10));
  // The next write starts when the first completes: its own clock.
  w.outbox.on_write_done(true);
  const auto second = w.outbox.writing_since();
  REQUIRE(second.has_value());
  CHECK(*second >= *first);
  // Drained: no write in flight, the clock stops.
  CHECK(w.outbox.on_write_done(true));
  CHECK_FALSE(w.outbox.writing_since().has_value());
}

}  // namespace siobridge::api
