// Gatherings (all_rooms, fetch_sockets): one answer from each awaited server
// and node, merged; who did not answer by the deadline is missing, who left is
// not awaited any more.
#include <catch2/catch.hpp>

#include "daemon/core/gathering.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

struct Rooms {
  Parts parts;
  std::optional<RoomsResult> result;
  RoomsGathering* gathering = nullptr;
  CommandId id = 0;

  // Awaits attached servers 1 ("one") and 2 ("two") and nodes "n1", "n2".
  Rooms() {
    id = parts.table.next_id();
    auto rooms = std::make_unique<RoomsGathering>(parts.operations, id, "/",
                                                  [this](RoomsResult r) { result = std::move(r); });
    rooms->expect_local(1, "one");
    rooms->expect_local(2, "two");
    rooms->expect_remote({"n1", "n2"}, "req");  // before start(): the table indexes it
    gathering = parts.table.start(std::move(rooms));
    gathering->arm(Millis{500});
  }
  void local(AttachmentId from, std::vector<std::string> rooms) {
    parts.table.with(id, [&](Operation& op) { op.on_rooms(from, rooms); });
  }
  void remote(const std::string& uid, std::vector<std::string> rooms) {
    wire::Document document;
    parts.table.with_request("req", [&](Operation& op) {
      op.on_response(wire::Response{uid, wire::RoomList{std::move(rooms)}}, document);
    });
  }
};

}  // namespace

TEST_CASE("rooms of every server and node are merged, each once, sorted") {
  Rooms r;
  r.local(1, {"b", "a"});
  r.remote("n1", {"c", "a"});
  r.local(2, {});
  CHECK_FALSE(r.result);
  r.remote("n2", {"d"});
  REQUIRE(r.result);
  CHECK(r.result->rooms == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(r.result->missing.empty());
  CHECK(r.parts.table.size() == 0);
}

TEST_CASE("who did not answer by the deadline is missing; a repeat answer is late") {
  Rooms r;
  r.local(1, {"a"});
  r.local(1, {"again"});  // the second answer of a server does not count
  r.remote("n1", {"b"});
  r.parts.advance(Millis{500});
  REQUIRE(r.result);
  CHECK(r.result->rooms == std::vector<std::string>{"a", "b"});
  CHECK(r.result->missing.local_servers == std::vector<std::string>{"two"});
  CHECK(r.result->missing.nodes == std::vector<std::string>{"n2"});
  CHECK(r.parts.stats.local_timeouts == 1);
}

TEST_CASE("a server or peer that left is not awaited; a peer whose heartbeats stopped is missing") {
  Rooms r;
  r.parts.table.for_each([](Operation& op) {
    op.on_attachment_gone(1);
    op.on_peer_gone("n1", PeerExit{true, 1});
  });
  r.local(2, {"x"});
  CHECK_FALSE(r.result);
  r.parts.table.for_each([](Operation& op) { op.on_peer_gone("n2", PeerExit{false, 0}); });
  REQUIRE(r.result);
  CHECK(r.result->missing.local_servers.empty());
  CHECK(r.result->missing.nodes == std::vector<std::string>{"n2"});
}

TEST_CASE("a gathering that awaits nobody completes when armed") {
  Parts parts;
  bool done = false;
  auto* gathering = parts.table.start(std::make_unique<RoomsGathering>(
      parts.operations, parts.table.next_id(), "/", [&](RoomsResult) { done = true; }));
  gathering->arm(Millis{500});
  CHECK(done);
}

TEST_CASE("sockets of a siobridge node carry their details, found by alias") {
  Parts parts;
  std::optional<SocketsResult> result;
  const CommandId id = parts.table.next_id();
  auto sockets = std::make_unique<SocketsGathering>(
      parts.operations, id, "/", [&](SocketsResult r) { result = std::move(r); });
  sockets->expect_local(1, "one");
  sockets->expect_remote({"bridge", "sioxide"}, "req");
  parts.table.start(std::move(sockets))->arm(Millis{500});

  std::vector<wire::SocketDetails> mine{{"local-socket-id-000001", {"r1"}, "hs", "data"}};
  parts.table.with(id, [&](Operation& op) { op.on_sockets(1, mine); });
  const std::string real = "remote-socket-id-00001";
  const std::string alias = wire::socket_alias(real);
  wire::Document with_details;
  with_details.extension =
      wire::encode_extension(wire::FetchDetails{{{real, {"room"}, "handshake", "d"}}});
  parts.table.with_request("req", [&](Operation& op) {
    op.on_response(wire::Response{"bridge", wire::SocketList{{{alias, "bridge", "/"}}}},
                   with_details);
  });
  parts.table.with_request("req", [&](Operation& op) {
    op.on_response(wire::Response{"sioxide", wire::SocketList{{{"short", "sioxide", "/"}}}},
                   wire::Document{});
  });
  REQUIRE(result);
  REQUIRE(result->sockets.size() == 3);
  CHECK(result->sockets[0].id == "local-socket-id-000001");
  CHECK(result->sockets[0].server_id == parts.uid);
  CHECK(result->sockets[0].has_details);
  CHECK(result->sockets[1].id == real);
  CHECK(result->sockets[1].rooms == std::vector<std::string>{"room"});
  CHECK(result->sockets[1].has_details);
  CHECK(result->sockets[2].id == "short");
  CHECK_FALSE(result->sockets[2].has_details);
}
