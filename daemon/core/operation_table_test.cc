// OperationTable and the Operation base: operations are found by command id
// and request id, deleted only once finished, and their timers die with them.
#include <catch2/catch.hpp>

#include "daemon/core/operation_table.h"
#include "daemon/core/testing/parts.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

// Finishes on its first rooms answer, or at its deadline.
class Probe final : public Operation {
 public:
  Probe(const OperationContext& context, CommandId id, std::string request_id, int& fired)
      : Operation(context, id, "/"), fired_(fired) {
    request_id_ = std::move(request_id);
  }
  void arm(Millis deadline) {
    after(deadline, [this] {
      ++fired_;
      finish();
    });
  }
  void on_rooms(AttachmentId, std::vector<std::string>&) override { finish(); }
  void on_ack_count(AttachmentId, std::uint32_t) override { ++counts; }
  int counts = 0;

 private:
  int& fired_;
};

}  // namespace

TEST_CASE("an operation stays registered until the event that finished it has run") {
  Parts parts;
  int fired = 0;
  const CommandId id = parts.table.next_id();
  auto* probe = parts.table.start(std::make_unique<Probe>(parts.operations, id, "req-1", fired));
  CHECK(parts.table.size() == 1);
  CHECK(parts.table.with(id, [](Operation& op) { op.on_ack_count(1, 2); }));
  CHECK(probe->counts == 1);  // not finished: still there
  CHECK(parts.table.with_request("req-1", [](Operation& op) {
    std::vector<std::string> rooms;
    op.on_rooms(1, rooms);
  }));
  CHECK(parts.table.size() == 0);
  CHECK_FALSE(parts.table.with(id, [](Operation&) { FAIL("reaped operations get no events"); }));
  CHECK_FALSE(parts.table.with_request("req-1", [](Operation&) { FAIL("nor by request id"); }));
}

TEST_CASE("a timer of an operation runs it, then the table reaps it") {
  Parts parts;
  int fired = 0;
  const CommandId id = parts.table.next_id();
  parts.table.start(std::make_unique<Probe>(parts.operations, id, "", fired))->arm(Millis{100});
  parts.advance(Millis{99});
  CHECK(fired == 0);
  parts.advance(Millis{1});
  CHECK(fired == 1);
  CHECK(parts.table.size() == 0);
}

TEST_CASE("a discarded or cleared operation's timers never fire") {
  Parts parts;
  int fired = 0;
  const CommandId first = parts.table.next_id();
  parts.table.start(std::make_unique<Probe>(parts.operations, first, "req-a", fired))
      ->arm(Millis{100});
  const CommandId second = parts.table.next_id();
  parts.table.start(std::make_unique<Probe>(parts.operations, second, "req-b", fired))
      ->arm(Millis{100});
  CHECK(first != second);
  parts.table.discard(first);
  CHECK_FALSE(parts.table.with_request("req-a", [](Operation&) {}));
  CHECK(parts.table.size() == 1);
  parts.table.clear();
  CHECK(parts.timers.size() == 0);
  parts.advance(Millis{200});
  CHECK(fired == 0);
}

TEST_CASE("for_each visits every operation and reaps the ones it finished") {
  Parts parts;
  int fired = 0;
  for (int i = 0; i < 3; ++i) {
    parts.table.start(std::make_unique<Probe>(parts.operations, parts.table.next_id(), "", fired));
  }
  int visited = 0;
  parts.table.for_each([&](Operation& op) {
    ++visited;
    if (visited != 2) {
      std::vector<std::string> rooms;
      op.on_rooms(1, rooms);
    }
  });
  CHECK(visited == 3);
  CHECK(parts.table.size() == 1);
}
