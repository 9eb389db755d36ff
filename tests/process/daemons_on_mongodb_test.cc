// Two siobridged processes on the real MongoDB of $MONGODB_URI, one attached
// server each, exchanging every operation through the C++ client.
#include <catch2/catch.hpp>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "tests/process/process_helpers.h"
#include "tests/support/client_server.h"
#include "tests/support/daemon_process.h"

using namespace siobridge;
using namespace siobridge::testing;
using siobridge::bus::mongodb::testing::mongodb_uri;
using siobridge::bus::mongodb::testing::TestDatabase;
namespace pb = siobridge::v1;

TEST_CASE("two daemons on MongoDB exchange every operation") {
  TestDatabase db;
  // Created before the daemons start: the test MongoDB cannot take
  // concurrent creation (docs/testing.md).
  REQUIRE(bus::mongodb::ensure_collection(db.client(), db.name(), "socket.io-adapter",
                                          bus::mongodb::Expiration::ttl(60))
              .ok());
  const std::vector<std::string> args = {"--mongodb-uri",
                                         mongodb_uri(),
                                         "--mongodb-database",
                                         db.name(),
                                         "--node-heartbeat-interval",
                                         "1s",
                                         "--node-heartbeat-timeout",
                                         "5s",
                                         "--node-request-timeout",
                                         "3s",
                                         "--node-local-timeout",
                                         "1s"};
  DaemonProcess one(args), two(args);
  REQUIRE(one.wait_ready());
  REQUIRE(two.wait_ready());
  ClientServer a(one.address(), "a"), b(two.address(), "b");
  a.with([](auto& s) {
    s.add_socket("a1", {"red"});
    s.add_socket("a2", {"blue"});
    return 0;
  });
  b.with([](auto& s) {
    s.add_socket("b1", {"red"});
    return 0;
  });
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(b.client().wait_attached(std::chrono::seconds(20)));
  REQUIRE(poll_until([&] {
    auto n = b.client().server_count("/");
    return n.ok() && n.value.count() == 2;
  }));

  SECTION("broadcast to a room, except a room") {
    pb::BroadcastOptions red;
    red.add_rooms("red");
    REQUIRE(b.client().broadcast(json_event("[\"red\"]"), red).ok());
    REQUIRE(a.wait_until([](auto& s) { return s.delivered.size() == 1; }));
    CHECK(a.with([](auto& s) { return s.delivered[0].sid; }) == "a1");
    pb::BroadcastOptions not_red = to_everyone();
    not_red.add_except("red");
    REQUIRE(b.client().broadcast(json_event("[\"others\"]"), not_red).ok());
    REQUIRE(a.wait_until([](auto& s) { return s.delivered.size() == 2; }));
    CHECK(a.with([](auto& s) { return s.delivered[1].sid; }) == "a2");
  }
  SECTION("socketsJoin, allRooms, socketsLeave") {
    pb::BroadcastOptions blue;
    blue.add_rooms("blue");
    REQUIRE(b.client().add_sockets("/", blue, {"green"}).ok());
    auto rooms = b.client().all_rooms("/", {});
    REQUIRE(rooms.ok());
    CHECK(std::count(rooms.value.rooms().begin(), rooms.value.rooms().end(), "green") == 1);
    CHECK(rooms.value.missing().nodes_size() == 0);
    REQUIRE(b.client().del_sockets("/", to_everyone(), {"green"}).ok());
    auto after = b.client().all_rooms("/", {});
    REQUIRE(after.ok());
    CHECK(std::count(after.value.rooms().begin(), after.value.rooms().end(), "green") == 0);
  }
  SECTION("fetchSockets with details, then a RemoteSocket emit with ack") {
    pb::BroadcastOptions red;
    red.add_rooms("red");
    auto sockets = b.client().fetch_sockets("/", red);
    REQUIRE(sockets.ok());
    REQUIRE(sockets.value.sockets_size() == 1);
    const auto& s = sockets.value.sockets(0);
    CHECK(s.id() == "a1");
    CHECK(s.server_id() == a.client().node_uid());
    CHECK(s.has_details());
    CHECK(s.handshake() == "{\"server\":\"a\"}");
    pb::BroadcastOptions one_socket;
    one_socket.set_sid(s.id());
    one_socket.set_server_id(s.server_id());
    std::vector<std::string> acked;
    auto done = b.client().broadcast_with_ack(json_event("[\"dm\"]"), one_socket,
                                              std::chrono::seconds(2), [&](const pb::AckEvent& e) {
                                                if (e.has_ack()) acked.push_back(e.ack().sid());
                                              });
    REQUIRE(done.ok());
    CHECK(acked == std::vector<std::string>{"a1"});
    CHECK_FALSE(done.value.timed_out());
  }
  SECTION("broadcast with acks from every socket") {
    std::uint32_t count = 0;
    std::size_t acks = 0;
    auto done = b.client().broadcast_with_ack(json_event("[\"q\"]"), to_everyone(),
                                              std::chrono::seconds(2), [&](const pb::AckEvent& e) {
                                                if (e.has_count()) count += e.count();
                                                if (e.has_ack()) ++acks;
                                              });
    REQUIRE(done.ok());
    CHECK(count == 2);
    CHECK(acks == 2);
  }
  SECTION("disconnectSockets with close") {
    pb::BroadcastOptions blue;
    blue.add_rooms("blue");
    REQUIRE(b.client().disconnect_sockets("/", blue, true).ok());
    REQUIRE(a.wait_until([](auto& s) { return s.disconnected.count("a2") == 1; }));
    CHECK(a.with(
        [](auto& s) { return s.commands_of(core::CommandKind::kDisconnectSockets).at(0).close; }));
  }
  SECTION("serverSideEmit with acks") {
    auto reply = b.client().server_side_emit("/", "[\"sync\"]", true, std::chrono::seconds(3));
    REQUIRE(reply.ok());
    CHECK(reply.value.expected() == 1);
    REQUIRE(reply.value.responses_size() == 1);
    CHECK(reply.value.responses(0) == "[\"pong\"]");
    CHECK(a.with([](auto& s) { return s.emits_received.size(); }) == 1);
  }
  SECTION("status shows the peer") {
    auto status = b.client().status();
    REQUIRE(status.ok());
    CHECK(status.value.backend() == "mongodb");
    CHECK(status.value.bus_state() == "ready");
    REQUIRE(status.value.namespaces_size() == 1);
    REQUIRE(status.value.namespaces(0).peers_size() == 1);
    CHECK(status.value.namespaces(0).peers(0).uid() == a.client().node_uid());
    CHECK(status.value.namespaces(0).peers(0).siobridge());
  }
}
