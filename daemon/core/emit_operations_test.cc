// Server-side emit with acks: the requester counts the answers each node
// announces, the responder relays those of its servers as they come.
#include <catch2/catch.hpp>

#include "daemon/core/emit_operations.h"
#include "daemon/core/testing/parts.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

struct Query {
  Parts parts;
  std::optional<EmitResult> result;
  CommandId id = 0;

  // Awaits attached server 1 ("one") and node "n1" with two servers.
  Query() {
    id = parts.table.next_id();
    auto query = std::make_unique<EmitQuery>(parts.operations, id, "/",
                                             [this](EmitResult r) { result = std::move(r); });
    query->expect_local(1, "one");
    query->expect_remote("n1", 2);
    query->set_request_id("req");  // before start(): the table indexes it
    parts.table.start(std::move(query))->arm(Millis{500});
  }
  void local(AttachmentId from, wire::Bytes payload) {
    parts.table.with(id, [&](Operation& op) { op.on_emit_reply(from, payload); });
  }
  void remote(const std::string& uid, wire::ServerSideEmitReply reply) {
    parts.table.with_request("req", [&](Operation& op) { op.on_emit_response(uid, reply); });
  }
};

std::vector<wire::ServerSideEmitReply> replies(const RecordingBus& bus) {
  std::vector<wire::ServerSideEmitReply> out;
  for (const auto& ext : bus.extensions()) {
    if (const auto* reply = std::get_if<wire::ServerSideEmitReply>(&ext)) out.push_back(*reply);
  }
  return out;
}

}  // namespace

TEST_CASE("an emit query ends once every server of every node answered") {
  Query q;
  q.local(1, "[\"local\"]");
  q.remote("n1", {{"[\"r1\"]"}, 0, 2u});
  CHECK_FALSE(q.result);
  q.remote("n1", {{"[\"r2\"]"}, 0, 2u});
  REQUIRE(q.result);
  CHECK(q.result->expected == 3);
  CHECK(q.result->responses.size() == 3);
  CHECK(q.result->missing.empty());
}

TEST_CASE("a node's own count of its servers replaces its heartbeat's") {
  Query q;
  q.local(1, "[1]");
  q.remote("n1", {{"[2]"}, 0, 1u});  // one server now, not two
  REQUIRE(q.result);
  CHECK(q.result->expected == 2);
  CHECK(q.result->missing.empty());
}

TEST_CASE("servers gone are not expected; silent ones are missing at the deadline") {
  Query q;
  q.remote("n1", {{}, 1, 2u});  // one of its servers detached
  q.parts.table.for_each([](Operation& op) { op.on_attachment_gone(1); });
  CHECK_FALSE(q.result);
  q.parts.advance(Millis{500});
  REQUIRE(q.result);
  CHECK(q.result->expected == 1);
  CHECK(q.result->responses.empty());
  CHECK(q.result->missing.nodes == std::vector<std::string>{"n1"});
  CHECK(q.result->missing.local_servers.empty());
}

TEST_CASE("a peer that left is not awaited, one whose heartbeats stopped still is") {
  Query q;
  q.local(1, "[1]");
  q.parts.table.for_each([](Operation& op) { op.on_peer_gone("n1", PeerExit{false, 2}); });
  CHECK_FALSE(q.result);
  q.parts.table.for_each([](Operation& op) { op.on_peer_gone("n1", PeerExit{true, 2}); });
  REQUIRE(q.result);
  CHECK(q.result->expected == 1);
  CHECK(q.result->missing.empty());
}

TEST_CASE("an answer from an unknown node or a repeat of a server is late") {
  Query q;
  q.remote("stranger", {{"[0]"}, 0, 1u});
  q.local(1, "[1]");
  q.local(1, "[1]");
  CHECK(q.parts.stats.late_responses == 2);
}

TEST_CASE("an emit responder relays each answer with the number of servers") {
  Parts parts;
  const CommandId id = parts.table.next_id();
  auto* responder = parts.table.start(
      std::make_unique<EmitResponder>(parts.operations, id, "/", "requester", "req"));
  responder->expect_local(1);
  responder->expect_local(2);
  responder->arm(Millis{500});
  wire::Bytes payload = "[\"hi\"]";
  parts.table.with(id, [&](Operation& op) { op.on_emit_reply(1, payload); });
  parts.table.with(id, [&](Operation& op) { op.on_attachment_gone(2); });
  const auto sent = replies(parts.bus);
  REQUIRE(sent.size() == 2);
  CHECK(sent[0] == wire::ServerSideEmitReply{{"[\"hi\"]"}, 0, 2u});
  CHECK(sent[1] == wire::ServerSideEmitReply{{}, 1, 2u});
  CHECK(parts.bus.published[0].document.header.target == "requester");
  CHECK(parts.bus.published[0].document.header.request == "req");
  CHECK(parts.table.size() == 0);
}

TEST_CASE("an emit responder without servers answers at once that it has none") {
  Parts parts;
  auto* responder = parts.table.start(std::make_unique<EmitResponder>(
      parts.operations, parts.table.next_id(), "/", "requester", "req"));
  responder->arm(Millis{500});
  const auto sent = replies(parts.bus);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0] == wire::ServerSideEmitReply{{}, 0, 0u});
}
