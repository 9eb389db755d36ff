// Broadcasts and the other operations that expect no answer, across nodes on
// the memory bus with a fake clock.
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::FakeClock;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

// Node A with servers a1 (the caller) and a2, node B with b1, node C with c1.
struct ThreeNodes {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  TestNode& c = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  FakeServer& c1 = cluster.server("c1");

  ThreeNodes() {
    a1.add_socket("a1s1", {"r1"});
    a2.add_socket("a2s1", {"r1", "vip"});
    a2.add_socket("a2s2");
    b1.add_socket("b1s1", {"r1"});
    b1.add_socket("b1s2", {"r2"});
    c1.add_socket("c1s1", {"vip"});
    a.attach(a1);
    a.attach(a2);
    b.attach(b1);
    c.attach(c1);
    cluster.settle();
  }

  wire::BroadcastOptions to_all_from(const std::string& sid) {
    return wire::BroadcastOptions{flags::kBroadcast, {}, {}, sid, std::nullopt};
  }
};

}  // namespace

TEST_CASE("a broadcast reaches every other server, here and on other nodes, not the caller") {
  ThreeNodes t;
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"hi\"]"), t.to_all_from("a1s1")).ok());
  t.cluster.settle();
  CHECK(t.a1.commands.empty());
  CHECK(t.a2.sids_reached() == std::set<std::string>{"a2s1", "a2s2"});
  CHECK(t.b1.sids_reached() == std::set<std::string>{"b1s1", "b1s2"});
  CHECK(t.c1.sids_reached() == std::set<std::string>{"c1s1"});
  REQUIRE(t.b1.delivered.size() == 2);
  CHECK(t.b1.delivered[0].packet.data->bytes == "[\"hi\"]");
}

TEST_CASE("a broadcast to rooms reaches only their members") {
  ThreeNodes t;
  wire::BroadcastOptions opts{flags::kBroadcast, {"r1"}, {}, std::string("a1s1"), std::nullopt};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"r1 only\"]"), opts).ok());
  t.cluster.settle();
  CHECK(t.a2.sids_reached() == std::set<std::string>{"a2s1"});
  CHECK(t.b1.sids_reached() == std::set<std::string>{"b1s1"});
  CHECK(t.c1.sids_reached().empty());
}

TEST_CASE("a broadcast except rooms skips their members") {
  ThreeNodes t;
  wire::BroadcastOptions opts{flags::kBroadcast, {}, {"vip"}, std::string("a1s1"), std::nullopt};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"not vip\"]"), opts).ok());
  t.cluster.settle();
  CHECK(t.a2.sids_reached() == std::set<std::string>{"a2s2"});
  CHECK(t.b1.sids_reached() == std::set<std::string>{"b1s1", "b1s2"});
  CHECK(t.c1.sids_reached().empty());

  wire::BroadcastOptions both{flags::kBroadcast, {"r1"}, {"vip"}, std::nullopt, std::nullopt};
  t.b1.delivered.clear();
  t.a2.delivered.clear();
  REQUIRE(t.c.node().broadcast(t.c1.id, event("[\"r1 not vip\"]"), both).ok());
  t.cluster.settle();
  CHECK(t.a1.sids_reached() == std::set<std::string>{"a1s1"});
  CHECK(t.a2.sids_reached().empty());
  CHECK(t.b1.sids_reached() == std::set<std::string>{"b1s1"});
}

TEST_CASE("local operations never leave the caller") {
  ThreeNodes t;
  const auto published = t.cluster.hub.published();
  wire::BroadcastOptions local{
      flags::kLocal | flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"local\"]"), local).ok());
  REQUIRE(t.a.node().add_sockets(t.a1.id, "/", local, {"x"}).ok());
  REQUIRE(t.a.node().disconnect_sockets(t.a1.id, "/", local, false).ok());
  bool rooms_done = false, sockets_done = false;
  REQUIRE(t.a.node()
              .all_rooms(t.a1.id, "/", local,
                         [&](RoomsResult r) {
                           rooms_done = true;
                           CHECK(r.rooms.empty());
                         })
              .ok());
  REQUIRE(t.a.node()
              .fetch_sockets(t.a1.id, "/", local,
                             [&](SocketsResult r) {
                               sockets_done = true;
                               CHECK(r.sockets.empty());
                             })
              .ok());
  t.cluster.settle();
  CHECK(rooms_done);
  CHECK(sockets_done);
  CHECK(t.cluster.hub.published() == published);
  CHECK(t.a2.commands.empty());
  CHECK(t.b1.commands.empty());
}

TEST_CASE("targeting this node's own uid reaches only the servers attached here") {
  ThreeNodes t;
  const auto published = t.cluster.hub.published();
  wire::BroadcastOptions here{0, {}, {}, std::string("a2s2"), t.a.uid()};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"just you\"]"), here).ok());
  t.cluster.settle();
  CHECK(t.cluster.hub.published() == published);
  CHECK(t.a2.sids_reached() == std::set<std::string>{"a2s2"});
  CHECK(t.b1.commands.empty());
}

TEST_CASE("a remote socket emit reaches that socket only, through a targeted document") {
  ThreeNodes t;
  wire::BroadcastOptions one{0, {}, {}, std::string("b1s2"), t.b.uid()};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"dm\"]"), one).ok());
  t.cluster.settle();
  CHECK(t.b1.sids_reached() == std::set<std::string>{"b1s2"});
  CHECK(t.c1.commands.empty());  // the document was targeted at B
  CHECK(t.a2.sids_reached().empty());
}

TEST_CASE("socketsJoin and socketsLeave change rooms everywhere") {
  ThreeNodes t;
  wire::BroadcastOptions in_r1{0, {"r1"}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.a.node().add_sockets(t.a1.id, "/", in_r1, {"joined", "also"}).ok());
  t.cluster.settle();
  CHECK(t.a2.rooms_of("a2s1").count("joined"));
  CHECK(t.b1.rooms_of("b1s1").count("also"));
  CHECK_FALSE(t.b1.rooms_of("b1s2").count("joined"));
  CHECK_FALSE(t.c1.rooms_of("c1s1").count("joined"));

  wire::BroadcastOptions everyone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.c.node().del_sockets(t.c1.id, "/", everyone, {"joined"}).ok());
  t.cluster.settle();
  CHECK_FALSE(t.a2.rooms_of("a2s1").count("joined"));
  CHECK_FALSE(t.b1.rooms_of("b1s1").count("joined"));
  CHECK(t.b1.rooms_of("b1s1").count("also"));

  wire::BroadcastOptions one_socket{0, {}, {}, std::string("b1s2"), t.b.uid()};
  REQUIRE(t.a.node().add_sockets(t.a1.id, "/", one_socket, {"solo"}).ok());
  t.cluster.settle();
  CHECK(t.b1.rooms_of("b1s2").count("solo"));
  CHECK_FALSE(t.b1.rooms_of("b1s1").count("solo"));
}

TEST_CASE("disconnectSockets reaches matching sockets and carries close") {
  ThreeNodes t;
  wire::BroadcastOptions vip{0, {"vip"}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.b.node().disconnect_sockets(t.b1.id, "/", vip, true).ok());
  t.cluster.settle();
  CHECK(t.a2.disconnected == std::set<std::string>{"a2s1"});
  CHECK(t.c1.disconnected == std::set<std::string>{"c1s1"});
  REQUIRE(t.c1.commands_of(CommandKind::kDisconnectSockets).size() == 1);
  CHECK(t.c1.commands_of(CommandKind::kDisconnectSockets)[0].close);
  CHECK(t.a1.disconnected.empty());
}

TEST_CASE("a broadcast published before a disconnect is applied before it") {
  ThreeNodes t;
  auto all = t.to_all_from("a1s1");
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"bye\"]"), all).ok());
  REQUIRE(t.a.node().disconnect_sockets(t.a1.id, "/", all, false).ok());
  t.cluster.settle();
  for (auto* server : {&t.a2, &t.b1, &t.c1}) {
    INFO(server->name());
    REQUIRE(server->commands.size() == 2);
    CHECK(server->commands[0].kind == CommandKind::kBroadcast);
    CHECK(server->commands[1].kind == CommandKind::kDisconnectSockets);
    CHECK(server->sids_reached() == server->disconnected);
    CHECK_FALSE(server->disconnected.empty());
  }
}

TEST_CASE("requests from one node are applied in publish order everywhere") {
  ThreeNodes t;
  wire::BroadcastOptions everyone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  for (int i = 0; i < 50; ++i) {
    REQUIRE(t.a.node().broadcast(t.a1.id, event("[" + std::to_string(i) + "]"), everyone).ok());
    REQUIRE(t.a.node().add_sockets(t.a1.id, "/", everyone, {"room" + std::to_string(i)}).ok());
  }
  t.cluster.settle();
  for (auto* server : {&t.a2, &t.b1}) {
    REQUIRE(server->commands.size() == 100);
    for (int i = 0; i < 50; ++i) {
      CHECK(server->commands[2 * i].packet->data->bytes == "[" + std::to_string(i) + "]");
      CHECK(server->commands[2 * i + 1].rooms ==
            std::vector<std::string>{"room" + std::to_string(i)});
    }
  }
}

TEST_CASE("bad calls are refused with a precise error") {
  ThreeNodes t;
  auto& node = t.a.node();
  auto everyone = t.to_all_from("a1s1");
  auto unknown = node.broadcast(9999, event("[1]"), everyone);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::kFailedPrecondition);

  auto not_joined = node.broadcast(t.a1.id, event("[1]", "/admin"), everyone);
  REQUIRE_FALSE(not_joined.ok());
  CHECK(not_joined.error().code == ErrorCode::kFailedPrecondition);
  CHECK_THAT(not_joined.error().message, Catch::Contains("/admin"));

  wire::BroadcastOptions bad_sid{
      flags::kBroadcast, {}, {}, std::string("no spaces!"), std::nullopt};
  CHECK(node.broadcast(t.a1.id, event("[1]"), bad_sid).error().code == ErrorCode::kInvalidArgument);
  wire::BroadcastOptions bad_server{0, {}, {}, std::string("x"), std::string("short")};
  CHECK(node.broadcast(t.a1.id, event("[1]"), bad_server).error().code ==
        ErrorCode::kInvalidArgument);
  CHECK(node.add_sockets(t.a1.id, "/", everyone, {}).error().code == ErrorCode::kInvalidArgument);
  CHECK(node.add_sockets(t.a1.id, "/", everyone, {""}).error().code == ErrorCode::kInvalidArgument);
  CHECK(node.join_namespace(t.a1.id, "admin").error().code == ErrorCode::kInvalidArgument);
  t.cluster.settle();
  CHECK(t.b1.commands.empty());
}

TEST_CASE("namespaces are separate") {
  ThreeNodes t;
  auto& admin = t.cluster.server("b-admin");
  admin.add_socket("adm1", {}, "/admin");
  t.b.attach(admin, {"/admin"});
  REQUIRE(t.a.node().join_namespace(t.a1.id, "/admin").ok());
  t.cluster.settle();
  wire::BroadcastOptions everyone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.a.node().broadcast(t.a1.id, event("[\"admins\"]", "/admin"), everyone).ok());
  t.cluster.settle();
  CHECK(admin.sids_reached() == std::set<std::string>{"adm1"});
  CHECK(t.b1.commands.empty());  // b1 is in "/" only
  CHECK(t.c1.commands.empty());  // C has no "/admin": the document is ignored
  CHECK(t.c.node().stats().inactive_namespace > 0);
}

namespace {

// A bus that refuses every document with one error code.
class RefusingBus final : public bus::Bus {
 public:
  explicit RefusingBus(ErrorCode code) : code_(code) {}
  Status publish(wire::Document, bus::Audience) override {
    return make_error(code_, "refused by the test bus");
  }
  bus::BusState state() const override { return bus::BusState::kReady; }
  bool shared() const override { return false; }

 private:
  ErrorCode code_;
};

}  // namespace

TEST_CASE("a broadcast the bus refuses: its code says whether trying again can help") {
  const auto refused_code = GENERATE(ErrorCode::kResourceExhausted, ErrorCode::kUnavailable);
  RefusingBus bus(refused_code);
  FakeClock clock;
  TimerQueue timers;
  Node node(NodeConfig{}, bus, clock, timers);
  FakeServer caller("caller"), other("other");
  other.add_socket("o1");
  for (FakeServer* server : {&caller, &other}) {
    server->node = &node;
    server->id = node.attach(*server, server->name());
    REQUIRE(node.join_namespace(server->id, "/").ok());
  }
  wire::BroadcastOptions everyone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  auto status = node.broadcast(caller.id, event("[\"big\"]"), everyone);
  REQUIRE_FALSE(status.ok());
  // RESOURCE_EXHAUSTED: the message can never be stored; UNAVAILABLE: later, maybe.
  CHECK(status.error().code == refused_code);
  CHECK_THAT(status.error().message, Catch::Contains("delivered to 1 server(s) attached here") &&
                                         Catch::Contains("refused by the test bus"));
  CHECK(other.sids_reached() == std::set<std::string>{"o1"});
}
