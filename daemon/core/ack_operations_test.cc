// Broadcast with acks: the requester streams the counts and the acks they
// announce and ends when all came or at the deadline; the responder sends its
// servers' total count before any ack.
#include <catch2/catch.hpp>

#include "daemon/core/ack_operations.h"
#include "daemon/core/testing/parts.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

AckResult ok_ack() {
  return wire::Value{wire::ValueKind::kStr, "[\"ok\"]", std::nullopt};
}

struct Query {
  Parts parts;
  std::vector<std::uint32_t> counts;
  std::vector<std::string> acks;
  std::optional<std::pair<Missing, bool>> done;
  CommandId id = 0;

  // Awaits attached server 1 ("one") and node "n1"; clients have 1000 ms.
  Query() {
    id = parts.table.next_id();
    AckStream stream;
    stream.on_count = [this](std::uint32_t count) { counts.push_back(count); };
    stream.on_ack = [this](const std::string& sid, const AckResult&) { acks.push_back(sid); };
    stream.on_done = [this](const Missing& missing, bool timed_out) {
      done.emplace(missing, timed_out);
    };
    auto query =
        std::make_unique<AckQuery>(parts.operations, id, "/", std::move(stream), Millis{1000});
    query->expect_local(1, "one");
    query->expect_remote({"n1"}, "req");  // before start(): the table indexes the request id
    parts.table.start(std::move(query))->arm();
  }
  void remote(wire::Response response) {
    parts.table.with_request("req", [&](Operation& op) { op.on_response(response, {}); });
  }
};

}  // namespace

TEST_CASE("an ack query streams counts and acks and ends when every ack came") {
  Query q;
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack_count(1, 1); });
  q.remote(wire::Response{"n1", wire::BroadcastAckCount{2}});
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack(1, "s1", ok_ack()); });
  q.remote(wire::Response{"n1", wire::BroadcastAck{"s2", ok_ack()}});
  CHECK_FALSE(q.done);
  q.remote(wire::Response{"n1", wire::BroadcastAck{"s3", ok_ack()}});
  CHECK(q.counts == std::vector<std::uint32_t>{1, 2});
  CHECK(q.acks == std::vector<std::string>{"s1", "s2", "s3"});
  REQUIRE(q.done);
  CHECK(q.done->first.empty());
  CHECK_FALSE(q.done->second);
  CHECK(q.parts.table.size() == 0);
}

TEST_CASE("counting closes at request_timeout: who has not counted by then is missing") {
  Query q;
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack_count(1, 0); });
  q.parts.advance(q.parts.config.request_timeout);
  REQUIRE(q.done);
  CHECK(q.done->first.nodes == std::vector<std::string>{"n1"});
  CHECK_FALSE(q.done->second);
  // A count after that is late.
  q.remote(wire::Response{"n1", wire::BroadcastAckCount{1}});
  CHECK(q.counts == std::vector<std::uint32_t>{0});
}

TEST_CASE("the query ends at ack_timeout + kAckSlack with acks still announced") {
  Query q;
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack_count(1, 2); });
  q.remote(wire::Response{"n1", wire::BroadcastAckCount{0}});
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack(1, "s1", ok_ack()); });
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack(7, "s9", ok_ack()); });  // a stranger
  q.parts.advance(Millis{1000} + kAckSlack - Millis{1});
  CHECK_FALSE(q.done);
  q.parts.advance(Millis{1});
  REQUIRE(q.done);
  CHECK(q.done->first.empty());  // every source counted: the clients were late, not the servers
  CHECK(q.done->second);
  CHECK(q.parts.stats.late_responses == 1);
}

TEST_CASE("a peer that left before counting is not missing, one that stopped is") {
  Query q;
  q.parts.table.with(q.id, [](Operation& op) { op.on_ack_count(1, 0); });
  q.parts.table.for_each([](Operation& op) { op.on_peer_gone("n1", PeerExit{false, 1}); });
  REQUIRE(q.done);
  CHECK(q.done->first.nodes == std::vector<std::string>{"n1"});

  Query graceful;
  graceful.parts.table.with(graceful.id, [](Operation& op) { op.on_ack_count(1, 0); });
  graceful.parts.table.for_each([](Operation& op) { op.on_peer_gone("n1", PeerExit{true, 1}); });
  REQUIRE(graceful.done);
  CHECK(graceful.done->first.empty());
}

TEST_CASE("an ack responder sends the total count first, then the acks, buffered till then") {
  Parts parts;
  const CommandId id = parts.table.next_id();
  auto* responder = parts.table.start(std::make_unique<AckResponder>(
      parts.operations, id, "/", "requester", "req", Millis{1000}, /*siobridge_requester=*/true));
  responder->expect_local(1, "one");
  responder->expect_local(2, "two");
  responder->arm();
  parts.table.with(id, [](Operation& op) { op.on_ack_count(1, 1); });
  parts.table.with(id, [](Operation& op) { op.on_ack(1, "early-socket-id-000001", ok_ack()); });
  CHECK(parts.bus.published.empty());
  parts.table.with(id, [](Operation& op) { op.on_ack_count(2, 1); });
  parts.table.with(id, [](Operation& op) { op.on_ack(2, "later-socket-id-000002", ok_ack()); });
  const auto responses = parts.bus.responses();
  REQUIRE(responses.size() == 3);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].first.body).count == 2);
  CHECK(std::get<wire::BroadcastAck>(responses[1].first.body).sid == "early-socket-id-000001");
  CHECK(std::get<wire::BroadcastAck>(responses[2].first.body).sid == "later-socket-id-000002");
  CHECK(responses[0].second.document.header.request == "req");
  CHECK(parts.table.size() == 0);
}

TEST_CASE("an ack responder counts without a silent server after local_timeout") {
  Parts parts;
  const CommandId id = parts.table.next_id();
  auto* responder = parts.table.start(std::make_unique<AckResponder>(
      parts.operations, id, "/", "requester", "req", Millis{1000}, /*siobridge_requester=*/false));
  responder->expect_local(1, "one");
  responder->expect_local(2, "silent");
  responder->arm();
  parts.table.with(id, [](Operation& op) { op.on_ack_count(1, 1); });
  parts.advance(parts.config.local_timeout);
  parts.table.with(id, [](Operation& op) { op.on_ack(1, "a-socket-id-of-20-ch", ok_ack()); });
  const auto responses = parts.bus.responses();
  REQUIRE(responses.size() == 2);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].first.body).count == 1);
  // A socketioxide requester reads the 16-character alias.
  CHECK(std::get<wire::BroadcastAck>(responses[1].first.body).sid ==
        parts.aliases.report("a-socket-id-of-20-ch"));
  CHECK(parts.stats.local_timeouts == 1);
}
