// Broadcasts with acks: counts then acks, streamed to the caller, finished as
// soon as everything announced arrived; the responder's single count.
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

struct Collected {
  std::uint32_t count = 0;
  std::vector<std::pair<std::string, AckResult>> acks;
  std::optional<Missing> missing;
  bool timed_out = false;
  bool done() const { return missing.has_value(); }
  std::set<std::string> sids() const {
    std::set<std::string> out;
    for (const auto& [sid, r] : acks) out.insert(sid);
    return out;
  }
};

// A socketioxide-format BroadcastWithAck from `raw`, as the reference sends it.
wire::Request ack_request(const RawPeer& raw, const std::string& data,
                          wire::BroadcastOptions opts) {
  return {raw.uid,     wire::generate_id(), wire::RequestType::kBroadcastWithAck,
          event(data), std::nullopt,        std::move(opts)};
}

AckStream collect(Collected& c) {
  return AckStream{
      [&c](std::uint32_t n) { c.count += n; },
      [&c](const std::string& sid, const AckResult& r) { c.acks.emplace_back(sid, r); },
      [&c](const Missing& m, bool timed_out) {
        c.missing = m;
        c.timed_out = timed_out;
      }};
}

struct Cluster {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  TestNode& c = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  FakeServer& c1 = cluster.server("c1");
  Cluster() {
    a1.add_socket("a1s1");
    a2.add_socket("a2s1", {"r"});
    b1.add_socket("b1s1", {"r"});
    b1.add_socket("b1s2");
    c1.add_socket("c1s1", {"r"});
    a.attach(a1);
    a.attach(a2);
    b.attach(b1);
    c.attach(c1);
    cluster.settle();
  }
};

const wire::BroadcastOptions kEveryone{
    flags::kBroadcast, {}, {}, std::string("a1s1"), std::nullopt};

}  // namespace

TEST_CASE("broadcast with acks streams counts and acks and ends when all arrived") {
  Cluster t;
  Collected got;
  REQUIRE(t.a.node()
              .broadcast_with_ack(t.a1.id, event("[\"q\"]"), kEveryone, Millis{0}, collect(got))
              .ok());
  t.cluster.settle();  // no time passes: no timeout involved
  REQUIRE(got.done());
  CHECK(got.count == 4);
  CHECK(got.sids() == std::set<std::string>{"a2s1", "b1s1", "b1s2", "c1s1"});
  CHECK(std::get<wire::Value>(got.acks[0].second).bytes.find("ack:") != std::string::npos);
  CHECK(got.missing->empty());
  CHECK_FALSE(got.timed_out);
}

TEST_CASE("broadcast with acks to a room") {
  Cluster t;
  Collected got;
  wire::BroadcastOptions room{flags::kBroadcast, {"r"}, {}, std::string("a1s1"), std::nullopt};
  REQUIRE(
      t.a.node().broadcast_with_ack(t.a1.id, event("[\"q\"]"), room, Millis{0}, collect(got)).ok());
  t.cluster.settle();
  REQUIRE(got.done());
  CHECK(got.sids() == std::set<std::string>{"a2s1", "b1s1", "c1s1"});
}

TEST_CASE("a single socket's ack through a remote socket") {
  Cluster t;
  Collected got;
  wire::BroadcastOptions one{0, {}, {}, std::string("b1s2"), t.b.uid()};
  REQUIRE(
      t.a.node().broadcast_with_ack(t.a1.id, event("[\"dm\"]"), one, Millis{0}, collect(got)).ok());
  t.cluster.settle();
  REQUIRE(got.done());
  CHECK(got.count == 1);
  CHECK(got.sids() == std::set<std::string>{"b1s2"});
}

TEST_CASE("clients that do not ack end the broadcast at its deadline with what arrived") {
  Cluster t;
  t.b1.clients_ack = false;
  Collected got;
  REQUIRE(t.a.node()
              .broadcast_with_ack(t.a1.id, event("[\"q\"]"), kEveryone, Millis{300}, collect(got))
              .ok());
  t.cluster.settle();
  CHECK(got.count == 4);
  CHECK(got.sids() == std::set<std::string>{"a2s1", "c1s1"});
  CHECK_FALSE(got.done());
  // The caller's ack timeout (300 ms, socket.io's timeout()) bounds the wait,
  // not the request timeout: plus the slack an ack needs to travel.
  t.cluster.advance(Millis{300} + Node::kAckSlack - Millis{1});
  CHECK_FALSE(got.done());
  t.cluster.advance(Millis{1});
  REQUIRE(got.done());
  CHECK(got.timed_out);
  CHECK(got.missing->empty());  // everybody counted; clients were slow
}

TEST_CASE("a node that never counts is reported missing") {
  Cluster t;
  auto& raw = t.cluster.add_raw_peer(wire::generate_id());
  raw.announce();
  t.cluster.settle();
  Collected got;
  REQUIRE(t.a.node()
              .broadcast_with_ack(t.a1.id, event("[\"q\"]"), kEveryone, Millis{0}, collect(got))
              .ok());
  t.cluster.settle();
  CHECK_FALSE(got.done());
  t.cluster.advance(Millis{500});  // counting closes: everything counted has arrived
  REQUIRE(got.done());
  CHECK(got.missing->nodes == std::vector<std::string>{raw.uid});
  CHECK(got.sids().size() == 4);
}

TEST_CASE("the responder sends one count, the sum, before any ack") {
  TestCluster cluster;
  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  auto& b2 = cluster.server("b2");
  b1.add_socket("b1s1");
  b2.add_socket("b2s1");
  b2.add_socket("b2s2");
  b.attach(b1);
  b.attach(b2);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  cluster.settle();
  const auto request =
      ack_request(raw, "[\"hello\"]",
                  wire::BroadcastOptions{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt});
  raw.publish_request(request);
  cluster.settle();
  std::vector<wire::Response> responses;
  for (const auto& doc : raw.received) {
    if (doc.header.kind != wire::MessageKind::kResponse) continue;
    CHECK(doc.header.request == request.id);
    CHECK(doc.header.target == raw.uid);
    auto r = wire::decode_response(doc.data);
    REQUIRE(r.ok());
    responses.push_back(*r);
  }
  REQUIRE(responses.size() == 4);
  REQUIRE(responses[0].type() == wire::ResponseType::kBroadcastAckCount);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].body).count == 3);
  for (std::size_t i = 1; i < 4; ++i)
    CHECK(responses[i].type() == wire::ResponseType::kBroadcastAck);
  CHECK(b.node().status().operations_in_flight == 0);
}

TEST_CASE("the responder counts 0 when no server is stuck and nobody matched") {
  TestCluster cluster;
  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  b.attach(b1);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  const auto request = ack_request(
      raw, "[\"x\"]", wire::BroadcastOptions{0, {"empty-room"}, {}, std::nullopt, std::nullopt});
  raw.publish_request(request);
  cluster.settle();
  REQUIRE(raw.received.size() >= 1);
  auto last = wire::decode_response(raw.received.back().data);
  REQUIRE(last.ok());
  CHECK(std::get<wire::BroadcastAckCount>(last->body).count == 0);
}

TEST_CASE("the responder leaves out a server that sends no count") {
  TestCluster cluster;
  auto& b = cluster.add_node();
  auto& b1 = cluster.server("b1");
  auto& b2 = cluster.server("b2");
  b1.add_socket("b1s1");
  b2.add_socket("b2s1");
  b2.answers = false;
  b.attach(b1);
  b.attach(b2);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  const auto request =
      ack_request(raw, "[\"x\"]",
                  wire::BroadcastOptions{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt});
  raw.publish_request(request);
  cluster.settle();
  // b1 counted and acked, but its ack waits for the count, which waits for b2.
  std::size_t responses_before = 0;
  for (const auto& d : raw.received)
    responses_before += d.header.kind == wire::MessageKind::kResponse;
  CHECK(responses_before == 0);
  cluster.advance(Millis{200});
  std::vector<wire::Response> responses;
  for (const auto& d : raw.received)
    if (d.header.kind == wire::MessageKind::kResponse)
      responses.push_back(*wire::decode_response(d.data));
  REQUIRE(responses.size() == 2);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].body).count == 1);
  // A socketioxide requester gets the socket under its 16-character alias.
  CHECK(std::get<wire::BroadcastAck>(responses[1].body).sid == wire::socket_alias("b1s1"));
}
