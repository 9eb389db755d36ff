// socketioxide nodes and socket.io's 20-character socket ids: what a Rust node
// sees is a valid 16-character alias it can use in to(), fetch_sockets, acks and
// socketsJoin; siobridge nodes still see the real ids (docs/PROTOCOL.md section 15).
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

const std::string kNodeSid = "Xn3-qR_0aB9cDeFgHiJk";  // socket.io's 20 characters

struct Cluster {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& b1 = cluster.server("b1");
  RawPeer& rust = cluster.add_raw_peer(wire::generate_id());

  Cluster() {
    a1.add_socket(kNodeSid, {"lobby"});
    a.attach(a1);
    b.attach(b1);
    request(wire::RequestType::kInitHeartbeat, std::nullopt, std::nullopt);
    rust.received.clear();
  }

  // A request from the socketioxide node, as its adapter writes it.
  std::string request(wire::RequestType type, std::optional<wire::BroadcastOptions> opts,
                      std::optional<wire::Packet> packet,
                      std::optional<std::vector<std::string>> rooms = std::nullopt) {
    wire::Request req{rust.uid,          wire::generate_id(), type,
                      std::move(packet), std::move(rooms),    std::move(opts)};
    rust.publish_request(req);
    cluster.settle();
    return req.id;
  }

  std::vector<wire::Response> responses_to(const std::string& request_id) const {
    std::vector<wire::Response> out;
    for (const auto& doc : rust.received) {
      if (doc.header.kind != wire::MessageKind::kResponse || doc.header.request != request_id)
        continue;
      if (auto r = wire::decode_response(doc.data); r.ok()) out.push_back(*r);
    }
    return out;
  }
};

wire::BroadcastOptions to_socket(const std::string& sid) {
  wire::BroadcastOptions opts;
  opts.sid = sid;
  return opts;
}

}  // namespace

TEST_CASE("a socketioxide node sees every socket id as a valid 16-character id") {
  Cluster t;
  wire::BroadcastOptions everyone;
  everyone.flags = flags::kBroadcast;
  const auto id = t.request(wire::RequestType::kFetchSockets, everyone, std::nullopt);
  const auto answers = t.responses_to(id);
  std::vector<std::string> seen;
  for (const auto& r : answers) {
    for (const auto& s : std::get<wire::SocketList>(r.body).sockets) seen.push_back(s.id);
  }
  REQUIRE(seen.size() == 1);
  CHECK(wire::is_valid_id(seen[0]));
  CHECK(seen[0] == wire::socket_alias(kNodeSid));
}

TEST_CASE("an alias in to() reaches the real socket") {
  Cluster t;
  wire::BroadcastOptions everyone;
  everyone.flags = flags::kBroadcast;
  const auto fetched = t.responses_to(t.request(wire::RequestType::kFetchSockets, everyone, {}));
  const std::string alias = std::get<wire::SocketList>(fetched.at(0).body).sockets.at(0).id;

  t.request(wire::RequestType::kBroadcast, to_socket(alias), event("[\"dm\"]"));
  REQUIRE(t.a1.delivered.size() == 1);
  CHECK(t.a1.delivered[0].sid == kNodeSid);

  wire::BroadcastOptions room_of_socket;
  room_of_socket.rooms = {alias};
  t.request(wire::RequestType::kAddSockets, room_of_socket, std::nullopt,
            std::vector<std::string>{"vip"});
  CHECK(t.a1.rooms_of(kNodeSid).count("vip") == 1);
}

TEST_CASE("acks of socket.io clients reach a socketioxide node under the alias") {
  Cluster t;
  wire::BroadcastOptions everyone;
  everyone.flags = flags::kBroadcast;
  const auto id = t.request(wire::RequestType::kBroadcastWithAck, everyone, event("[\"q\"]"));
  std::vector<std::string> acked;
  for (const auto& r : t.responses_to(id)) {
    if (const auto* ack = std::get_if<wire::BroadcastAck>(&r.body)) acked.push_back(ack->sid);
  }
  CHECK(acked == std::vector<std::string>{wire::socket_alias(kNodeSid)});
}

TEST_CASE("siobridge nodes still see the real ids") {
  Cluster t;
  std::optional<SocketsResult> result;
  wire::BroadcastOptions everyone;
  everyone.flags = flags::kBroadcast;
  REQUIRE(
      t.b.node().fetch_sockets(t.b1.id, "/", everyone, [&](SocketsResult r) { result = r; }).ok());
  t.cluster.advance(TestCluster::default_config().request_timeout);  // the Rust node never answers
  REQUIRE(result);
  std::vector<std::string> ids;
  for (const auto& s : result->sockets) ids.push_back(s.id);
  CHECK(ids == std::vector<std::string>{kNodeSid});
  CHECK(result->sockets[0].has_details);
}
