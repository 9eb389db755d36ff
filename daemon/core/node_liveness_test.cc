// Heartbeats, discovery, expiry and server counts (PROTOCOL.md section 6).
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::core::testing;

namespace {

wire::Document heartbeat_doc(const std::string& from, wire::RequestType type,
                             const std::string& ns = "/") {
  wire::Request request{from, wire::generate_id(), type, {}, {}, {}};
  return {{wire::MessageKind::kRequest, ns, from, std::nullopt, std::nullopt},
          wire::encode_request(request),
          std::nullopt};
}

std::vector<wire::Request> requests_of(const RawPeer& peer, wire::RequestType type,
                                       bool targeted_only = false) {
  std::vector<wire::Request> out;
  for (const auto& doc : peer.received) {
    if (doc.header.kind != wire::MessageKind::kRequest) continue;
    if (targeted_only && doc.header.target != peer.uid) continue;
    auto request = wire::decode_request(doc.data);
    if (request.ok() && request->type == type) out.push_back(*request);
  }
  return out;
}

std::size_t peer_count(Node& node, const std::string& ns = "/") {
  for (const auto& n : node.status().namespaces)
    if (n.ns == ns) return n.peers.size();
  return 0;
}

}  // namespace

TEST_CASE("nodes discover each other within one heartbeat round trip") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  cluster.settle();
  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  b.attach(b1);      // InitHeartbeat
  cluster.settle();  // A answers with a targeted Heartbeat: no time passes
  CHECK(peer_count(a.node()) == 1);
  CHECK(peer_count(b.node()) == 1);
  CHECK(a.node().server_count("/") == 2);
  CHECK(b.node().server_count("/") == 2);
}

TEST_CASE("an InitHeartbeat from an unknown node is answered with a targeted Heartbeat") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  cluster.settle();
  raw.publish(heartbeat_doc(raw.uid, wire::RequestType::kInitHeartbeat));
  cluster.settle();
  auto replies = requests_of(raw, wire::RequestType::kHeartbeat, /*targeted_only=*/true);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].node_id == a.uid());
  CHECK(peer_count(a.node()) == 1);
  // A socketioxide node counts as one server.
  CHECK(a.node().server_count("/") == 2);

  // Known now: a second InitHeartbeat gets no reply.
  raw.publish(heartbeat_doc(raw.uid, wire::RequestType::kInitHeartbeat));
  cluster.settle();
  CHECK(requests_of(raw, wire::RequestType::kHeartbeat, true).size() == 1);
  // A plain Heartbeat from a new node is not answered either.
  auto& other = cluster.add_raw_peer(wire::generate_id());
  other.publish(heartbeat_doc(other.uid, wire::RequestType::kHeartbeat));
  cluster.settle();
  CHECK(requests_of(other, wire::RequestType::kHeartbeat, true).empty());
  CHECK(peer_count(a.node()) == 2);
}

TEST_CASE("heartbeats go out every interval and advertise the attached servers") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  cluster.settle();
  CHECK(requests_of(raw, wire::RequestType::kInitHeartbeat).size() == 1);
  cluster.advance(Millis{3500});
  CHECK(requests_of(raw, wire::RequestType::kHeartbeat).size() == 3);

  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  auto& b2 = cluster.server("b2");
  b.attach(b1);
  b.attach(b2);
  cluster.settle();
  CHECK(a.node().server_count("/") == 3);
  for (const auto& n : a.node().status().namespaces) {
    REQUIRE(n.peers.size() == 1);
    CHECK(n.peers[0].siobridge);
    CHECK(n.peers[0].servers == 2);
  }
  // A third server on B is announced at once, not at the next interval.
  auto& b3 = cluster.server("b3");
  b.attach(b3);
  cluster.settle();
  CHECK(a.node().server_count("/") == 4);
}

TEST_CASE("a peer not heard from for hb_timeout is dropped") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  raw.publish(heartbeat_doc(raw.uid, wire::RequestType::kInitHeartbeat));
  cluster.settle();
  REQUIRE(peer_count(a.node()) == 1);
  // Alive while it keeps heartbeating.
  for (int i = 0; i < 8; ++i) {
    cluster.advance(Millis{1000});
    raw.publish(heartbeat_doc(raw.uid, wire::RequestType::kHeartbeat));
    cluster.settle();
  }
  CHECK(peer_count(a.node()) == 1);
  // Silent: gone after the timeout (checked at the next heartbeat tick).
  cluster.advance(Millis{4000});
  CHECK(peer_count(a.node()) == 1);
  cluster.advance(Millis{2000});
  CHECK(peer_count(a.node()) == 0);
  CHECK(a.node().server_count("/") == 1);
  CHECK(a.node().stats().peers_expired == 1);
}

TEST_CASE("heartbeats stop when a namespace becomes inactive") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  auto& a1 = cluster.server("a1");
  a.attach(a1, {"/", "/chat"});
  cluster.advance(Millis{2500});
  auto count_in = [&](const std::string& ns) {
    std::size_t n = 0;
    for (const auto& doc : raw.received)
      if (doc.header.ns == ns) ++n;
    return n;
  };
  CHECK(count_in("/chat") == 3);  // init + 2
  REQUIRE(a.node().leave_namespace(a1.id, "/chat").ok());
  cluster.advance(Millis{5000});
  CHECK(count_in("/chat") == 3);
  CHECK(count_in("/") == 8);
  a.node().detach(a1.id);
  cluster.advance(Millis{5000});
  CHECK(count_in("/") == 8);
  CHECK(cluster.timers.size() == 0);
}

TEST_CASE("documents for a namespace no local server uses are ignored") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1, {"/"});
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  raw.publish(heartbeat_doc(raw.uid, wire::RequestType::kInitHeartbeat, "/elsewhere"));
  cluster.settle();
  CHECK(requests_of(raw, wire::RequestType::kHeartbeat, true).empty());
  CHECK(a.node().stats().inactive_namespace == 1);
}

TEST_CASE("garbage payloads are counted and skipped") {
  TestCluster cluster;
  auto& a = cluster.add_node();
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  raw.publish({{wire::MessageKind::kRequest, "/", raw.uid, std::nullopt, std::nullopt},
               "\x96\x01\x02",
               std::nullopt});
  raw.publish({{wire::MessageKind::kResponse, "/", raw.uid, a.uid(), wire::generate_id()},
               "\xc1",
               std::nullopt});
  wire::Document bad_ext = heartbeat_doc(raw.uid, wire::RequestType::kInitHeartbeat);
  bad_ext.extension = "\xff\xff";  // ignored: it still counts as a socketioxide heartbeat
  raw.publish(bad_ext);
  cluster.settle();
  // The garbage response counts as garbage, not as a late answer.
  CHECK(a.node().stats().decode_errors == 2);
  CHECK(a.node().stats().late_responses == 0);
  CHECK(peer_count(a.node()) == 1);
  CHECK(a1.commands.empty());
}
