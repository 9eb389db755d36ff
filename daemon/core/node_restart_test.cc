// Restarts and graceful stops: the hand-over a restarted node resumes from,
// and the goodbye of a node that stops on purpose (docs/PROTOCOL.md section 17).
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::core::testing;

namespace {

NodeConfig config_with(Millis grace, std::size_t hold_bytes = 32u << 20) {
  auto config = TestCluster::default_config();
  config.restart_grace = grace;
  config.restart_hold_bytes = hold_bytes;
  return config;
}

Handover one_namespace(std::uint32_t servers, std::vector<PeerSnapshot> peers = {}) {
  Handover handover;
  handover.namespaces["/"] = NamespaceSnapshot{servers, std::move(peers)};
  return handover;
}

wire::BroadcastOptions everyone() {
  wire::BroadcastOptions opts;
  opts.flags = wire::broadcast_flags::kBroadcast;
  return opts;
}

std::vector<std::string> texts(const FakeServer& server) {
  std::vector<std::string> out;
  for (const auto& d : server.delivered) out.push_back(d.packet.data->bytes);
  return out;
}

struct Restarted {
  TestCluster cluster;
  TestNode& b = cluster.add_node();
  FakeServer& b1 = cluster.server("b1");
  TestNode& a;  // the restarted node
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");

  explicit Restarted(std::uint32_t servers_before, NodeConfig config = config_with(Millis{5000}))
      : a(cluster.add_node(config)) {
    a1.add_socket("s1");
    a2.add_socket("s2");
    b.attach(b1);
    cluster.settle();
    a.node().resume(one_namespace(servers_before, {PeerSnapshot{b.uid(), 1, Millis{0}}}));
  }

  void broadcast_from_b(const std::string& json) {
    REQUIRE(b.node().broadcast(b1.id, event(json), everyone()).ok());
    cluster.settle();
  }
};

}  // namespace

TEST_CASE("what arrives before the servers are back is held, then delivered in order") {
  Restarted t(2);
  t.broadcast_from_b("[\"m\",1]");
  t.broadcast_from_b("[\"m\",2]");
  CHECK(t.a.node().stats().handover_held == 2);

  t.a.attach(t.a1);
  t.cluster.settle();
  CHECK(t.a1.delivered.empty());  // one of two servers is back: still held

  t.a.attach(t.a2);
  t.cluster.settle();
  const std::vector<std::string> expected{"[\"m\",1]", "[\"m\",2]"};
  CHECK(texts(t.a1) == expected);
  CHECK(texts(t.a2) == expected);

  t.broadcast_from_b("[\"m\",3]");  // live again
  CHECK(texts(t.a1).back() == "[\"m\",3]");
  CHECK(t.a.node().stats().handover_delivered == 2);
}

TEST_CASE("the hold ends after restart_grace for the servers that came back") {
  Restarted t(2, config_with(Millis{1000}));
  t.broadcast_from_b("[\"m\",1]");
  t.a.attach(t.a1);
  t.cluster.settle();
  CHECK(t.a1.delivered.empty());
  t.cluster.advance(Millis{1000});
  CHECK(texts(t.a1) == std::vector<std::string>{"[\"m\",1]"});
}

TEST_CASE("what was held for a namespace no server comes back to is dropped and counted") {
  Restarted t(1, config_with(Millis{1000}));
  t.broadcast_from_b("[\"m\",1]");
  t.cluster.advance(Millis{1000});
  CHECK(t.a.node().stats().handover_unclaimed == 1);
  CHECK(t.a.node().status().namespaces.empty());
}

TEST_CASE("the hold is bounded in bytes: the oldest documents go first") {
  Restarted t(1, config_with(Millis{5000}, 400));
  for (int i = 0; i < 10; ++i) t.broadcast_from_b("[\"m\"," + std::to_string(i) + "]");
  CHECK(t.a.node().stats().handover_dropped > 0);
  t.a.attach(t.a1);
  t.cluster.settle();
  const auto got = texts(t.a1);
  REQUIRE_FALSE(got.empty());
  CHECK(got.back() == "[\"m\",9]");
  CHECK(got.size() + t.a.node().stats().handover_dropped == 10);
}

TEST_CASE("peers from before the restart are awaited by queries at once") {
  Restarted t(1);
  t.a.attach(t.a1);
  t.cluster.settle();
  std::optional<SocketsResult> result;
  REQUIRE(
      t.a.node()
          .fetch_sockets(t.a1.id, "/", everyone(), [&](SocketsResult r) { result = std::move(r); })
          .ok());
  t.cluster.settle();
  REQUIRE(result);
  CHECK(result->missing.empty());
  CHECK(t.a.node().server_count("/") == 2);
}

TEST_CASE("a snapshot keeps the servers and peers of every namespace in use") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& b = cluster.add_node();
  auto& a1 = cluster.server("a1");
  auto& a2 = cluster.server("a2");
  auto& b1 = cluster.server("b1");
  a.attach(a1, {"/", "/chat"});
  a.attach(a2, {"/"});
  b.attach(b1, {"/"});
  cluster.settle();
  const auto before = a.node().state_version();
  cluster.advance(Millis{300});
  const auto snapshot = a.node().snapshot();
  REQUIRE(snapshot.namespaces.size() == 2);
  CHECK(snapshot.namespaces.at("/").servers == 2);
  REQUIRE(snapshot.namespaces.at("/").peers.size() == 1);
  CHECK(snapshot.namespaces.at("/").peers[0].uid == b.uid());
  CHECK(snapshot.namespaces.at("/").peers[0].servers == std::optional<std::uint32_t>(1));
  CHECK(snapshot.namespaces.at("/chat").servers == 1);
  CHECK(snapshot.namespaces.at("/chat").peers.empty());
  CHECK(a.node().state_version() == before);  // time alone changes nothing to keep
  a.node().detach(a2.id);
  CHECK(a.node().state_version() != before);
}

TEST_CASE("a second restart during the hold keeps the servers it is waiting for") {
  Restarted t(2);
  t.a.attach(t.a1);
  t.cluster.settle();
  CHECK(t.a.node().snapshot().namespaces.at("/").servers == 2);
}

TEST_CASE("a restarted siobridge node with the same uid learns its peers at once") {
  TestCluster cluster;
  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  b.attach(b1);
  auto config = TestCluster::default_config();
  config.uid = wire::generate_id();
  auto& a = cluster.add_node(config);
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  cluster.settle();
  // The same uid again (the first incarnation is still known to B).
  auto& again = cluster.add_node(config);
  auto& a2 = cluster.server("a2");
  again.attach(a2);
  cluster.settle();
  CHECK(again.node().server_count("/") == 2);
}

TEST_CASE("a node that says goodbye is forgotten at once and no longer expected") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& b = cluster.add_node();
  auto& a1 = cluster.server("a1");
  auto& b1 = cluster.server("b1");
  a.attach(a1, {"/", "/chat"});
  b.attach(b1, {"/", "/chat"});
  b1.answers = false;  // B would answer only after its local timeout
  auto& rust = cluster.add_raw_peer(wire::generate_id());  // never answers
  rust.announce();
  cluster.settle();
  std::optional<RoomsResult> rooms;
  REQUIRE(a.node()
              .all_rooms(a1.id, "/", wire::BroadcastOptions{},
                         [&](RoomsResult r) { rooms = std::move(r); })
              .ok());
  cluster.settle();
  CHECK_FALSE(rooms);

  b.node().leave_cluster();
  cluster.settle();
  CHECK(a.node().stats().peers_left == 1);
  CHECK(a.node().server_count("/chat") == 1);
  CHECK_FALSE(rooms);  // still waiting for the socketioxide node, not for B

  cluster.advance(TestCluster::default_config().request_timeout);
  REQUIRE(rooms);
  CHECK(rooms->missing.nodes == std::vector<std::string>{rust.uid});
}

TEST_CASE("a node that left publishes no more heartbeats") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& b = cluster.add_node();
  auto& a1 = cluster.server("a1");
  auto& b1 = cluster.server("b1");
  a.attach(a1);
  b.attach(b1);
  cluster.settle();
  b.node().leave_cluster();
  cluster.advance(TestCluster::default_config().heartbeat_interval * 3);
  CHECK(a.node().server_count("/") == 1);
}

TEST_CASE("commands carry the position of the document that caused them") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  auto& rust = cluster.add_raw_peer(wire::generate_id());
  cluster.settle();
  wire::Request request{rust.uid,         wire::generate_id(), wire::RequestType::kBroadcast,
                        event("[\"x\"]"), std::nullopt,        everyone()};
  a.node().on_document({{wire::MessageKind::kRequest, "/", rust.uid, std::nullopt, std::nullopt},
                        wire::encode_request(request),
                        std::nullopt},
                       wire::format_position(7, 1, 0));
  REQUIRE(a1.commands.size() == 1);
  CHECK(a1.commands[0].position == wire::format_position(7, 1, 0));
}
