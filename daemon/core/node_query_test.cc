// allRooms, fetchSockets and serverCount: answers gathered from attached
// servers and other nodes, partial results naming who did not answer.
#include <catch2/catch.hpp>

#include <optional>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

struct Cluster {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  FakeServer& b2 = cluster.server("b2");

  Cluster() {
    a1.add_socket("a1s1", {"mine"});
    a2.add_socket("a2s1", {"r1"});
    b1.add_socket("b1s1", {"r1", "r2"});
    b2.add_socket("b2s1", {"r3"});
    a.attach(a1);
    a.attach(a2);
    b.attach(b1);
    b.attach(b2);
    cluster.settle();
  }

  // A socketioxide-like node that heartbeats but answers nothing.
  RawPeer& deaf_peer() {
    auto& raw = cluster.add_raw_peer(wire::generate_id());
    raw.announce();
    cluster.settle();
    return raw;
  }
};

const wire::BroadcastOptions kEveryone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};

std::vector<std::string> ids(const SocketsResult& r) {
  std::vector<std::string> out;
  for (const auto& s : r.sockets) out.push_back(s.id);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("allRooms unions the rooms of every other server, without waiting for a timeout") {
  Cluster t;
  std::optional<RoomsResult> result;
  REQUIRE(t.a.node().all_rooms(t.a1.id, "/", kEveryone, [&](RoomsResult r) { result = r; }).ok());
  t.cluster.settle();  // no time passes
  REQUIRE(result);
  CHECK(result->rooms == std::vector<std::string>{"a2s1", "b1s1", "b2s1", "r1", "r2", "r3"});
  CHECK(result->missing.empty());
  CHECK(t.a.node().status().operations_in_flight == 0);
}

TEST_CASE("allRooms times out with the partial result and who did not answer") {
  Cluster t;
  auto& deaf = t.deaf_peer();
  t.a2.answers = false;
  std::optional<RoomsResult> result;
  REQUIRE(t.a.node().all_rooms(t.a1.id, "/", kEveryone, [&](RoomsResult r) { result = r; }).ok());
  t.cluster.settle();
  CHECK_FALSE(result);
  t.cluster.advance(Millis{499});
  CHECK_FALSE(result);
  t.cluster.advance(Millis{1});
  REQUIRE(result);
  CHECK(result->rooms == std::vector<std::string>{"b1s1", "b2s1", "r1", "r2", "r3"});
  CHECK(result->missing.nodes == std::vector<std::string>{deaf.uid});
  CHECK(result->missing.local_servers == std::vector<std::string>{"a2"});
}

TEST_CASE(
    "a responder with a stuck server answers with what it has before the requester's deadline") {
  Cluster t;
  t.b2.answers = false;
  std::optional<RoomsResult> result;
  REQUIRE(t.a.node().all_rooms(t.a1.id, "/", kEveryone, [&](RoomsResult r) { result = r; }).ok());
  t.cluster.advance(Millis{200});  // B's local_timeout
  REQUIRE(result);
  CHECK(result->rooms == std::vector<std::string>{"a2s1", "b1s1", "r1", "r2"});
  CHECK(result->missing.empty());  // B answered; its stuck server is logged there
  CHECK(t.b.node().stats().local_timeouts == 1);
}

TEST_CASE("allRooms targeted at one node asks only that node") {
  Cluster t;
  t.deaf_peer();
  std::optional<RoomsResult> result;
  wire::BroadcastOptions at_b{0, {}, {}, std::nullopt, t.b.uid()};
  REQUIRE(t.a.node().all_rooms(t.a1.id, "/", at_b, [&](RoomsResult r) { result = r; }).ok());
  t.cluster.settle();
  REQUIRE(result);  // the deaf peer was not asked, so nobody is waited for
  CHECK(result->missing.empty());
}

TEST_CASE("fetchSockets returns every matching socket with rooms, handshake and data") {
  Cluster t;
  std::optional<SocketsResult> all, in_r1;
  REQUIRE(
      t.a.node().fetch_sockets(t.a1.id, "/", kEveryone, [&](SocketsResult r) { all = r; }).ok());
  wire::BroadcastOptions r1{0, {"r1"}, {}, std::nullopt, std::nullopt};
  REQUIRE(t.a.node().fetch_sockets(t.a1.id, "/", r1, [&](SocketsResult r) { in_r1 = r; }).ok());
  t.cluster.settle();
  REQUIRE(all);
  REQUIRE(in_r1);
  CHECK(ids(*all) == std::vector<std::string>{"a2s1", "b1s1", "b2s1"});
  CHECK(ids(*in_r1) == std::vector<std::string>{"a2s1", "b1s1"});
  for (const auto& s : all->sockets) {
    CHECK(s.has_details);
    CHECK(s.ns == "/");
    CHECK(s.data == "{\"sid\":\"" + s.id + "\"}");
    if (s.id == "b1s1") {
      CHECK(s.server_id == t.b.uid());
      CHECK(s.handshake == "{\"server\":\"b1\"}");
      CHECK(s.rooms == std::vector<std::string>{"b1s1", "r1", "r2"});
    }
    if (s.id == "a2s1") CHECK(s.server_id == t.a.uid());
  }
}

TEST_CASE("fetchSockets times out with the partial result and the missing peers") {
  Cluster t;
  auto& deaf = t.deaf_peer();
  std::optional<SocketsResult> result;
  REQUIRE(
      t.a.node().fetch_sockets(t.a1.id, "/", kEveryone, [&](SocketsResult r) { result = r; }).ok());
  t.cluster.settle();
  CHECK_FALSE(result);
  t.cluster.advance(Millis{500});
  REQUIRE(result);
  CHECK(ids(*result) == std::vector<std::string>{"a2s1", "b1s1", "b2s1"});
  CHECK(result->missing.nodes == std::vector<std::string>{deaf.uid});
}

TEST_CASE("a peer that expires while awaited is reported at once") {
  TestCluster cluster;
  auto config = TestCluster::default_config();
  config.request_timeout = Millis{60000};
  auto& a = cluster.add_node(config);
  auto& a1 = cluster.server("a1");
  a.attach(a1);
  auto& raw = cluster.add_raw_peer(wire::generate_id());
  raw.announce();
  cluster.settle();
  std::optional<RoomsResult> result;
  REQUIRE(a.node().all_rooms(a1.id, "/", kEveryone, [&](RoomsResult r) { result = r; }).ok());
  cluster.advance(Millis{6000});  // hb_timeout 5 s, well before the 60 s request timeout
  REQUIRE(result);
  CHECK(result->missing.nodes == std::vector<std::string>{raw.uid});
}

TEST_CASE("a server that detaches while awaited is no longer expected") {
  Cluster t;
  t.a2.answers = false;
  std::optional<RoomsResult> result;
  REQUIRE(t.a.node().all_rooms(t.a1.id, "/", kEveryone, [&](RoomsResult r) { result = r; }).ok());
  t.cluster.settle();
  CHECK_FALSE(result);
  t.a.node().detach(t.a2.id);  // it left with its sockets and rooms: nothing is missing
  REQUIRE(result);
  CHECK(result->missing.empty());
}

TEST_CASE("serverCount counts attached servers and the servers of live peers") {
  Cluster t;
  CHECK(t.a.node().server_count("/") == 4);
  t.deaf_peer();
  CHECK(t.a.node().server_count("/") == 5);
  CHECK(t.a.node().server_count("/nowhere") == 0);
}

TEST_CASE("answers of a socketioxide node are merged; they carry ids only") {
  Cluster t;
  auto& raw = t.deaf_peer();
  std::optional<SocketsResult> result;
  REQUIRE(
      t.a.node().fetch_sockets(t.a1.id, "/", kEveryone, [&](SocketsResult r) { result = r; }).ok());
  t.cluster.settle();
  // The request reached the raw peer: answer it like socketioxide does.
  const wire::Document* request_doc = nullptr;
  for (const auto& doc : raw.received) {
    auto req = wire::decode_request(doc.data);
    if (req.ok() && req->type == wire::RequestType::kFetchSockets) request_doc = &doc;
  }
  REQUIRE(request_doc);
  auto request = wire::decode_request(request_doc->data);
  wire::Response response{raw.uid,
                          wire::SocketList{{wire::SocketRef{"rustSocket123456", raw.uid, "/"}}}};
  raw.publish({{wire::MessageKind::kResponse, "/", raw.uid, t.a.uid(), request->id},
               wire::encode_response(response),
               std::nullopt});
  t.cluster.settle();
  REQUIRE(result);
  CHECK(result->missing.empty());
  auto it = std::find_if(result->sockets.begin(), result->sockets.end(),
                         [](const auto& s) { return s.id == "rustSocket123456"; });
  REQUIRE(it != result->sockets.end());
  CHECK_FALSE(it->has_details);
  CHECK(it->server_id == raw.uid);
}
