// Who must be able to read what a node publishes (docs/PROTOCOL.md section
// 18): what socketioxide nodes read goes as documents of their own; only what
// siobridge nodes alone read may be packed.
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::FakeClock;
using siobridge::Millis;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

// A bus that keeps every document with the audience it was published for.
class RecordingBus final : public bus::Bus {
 public:
  Status publish(wire::Document document, bus::Audience audience) override {
    published.emplace_back(std::move(document), audience);
    return {};
  }
  bus::BusState state() const override { return bus::BusState::kReady; }
  bool shared() const override { return false; }
  // Discovery questions wait for the test to answer them.
  void find_socketioxide(const std::string& ns, Millis lookback,
                         std::function<void(Result<bool>)> done) override {
    discovery.push_back({ns, lookback, std::move(done)});
  }
  struct Question {
    std::string ns;
    Millis lookback;
    std::function<void(Result<bool>)> done;
  };
  std::vector<Question> discovery;

  // The audience of the last request of `type` published.
  std::optional<bus::Audience> last(wire::RequestType type) const {
    for (auto it = published.rbegin(); it != published.rend(); ++it) {
      if (it->first.header.kind != wire::MessageKind::kRequest) continue;
      auto request = wire::decode_request(it->first.data);
      if (request.ok() && request->type == type) return it->second;
    }
    return std::nullopt;
  }

  std::vector<std::pair<wire::Document, bus::Audience>> published;
};

// A Heartbeat of `uid`: a siobridge node's carries NodeInfo, a socketioxide
// node's carries nothing.
wire::Document heartbeat_of(const std::string& uid, bool siobridge) {
  wire::Request request{uid, wire::generate_id(), wire::RequestType::kHeartbeat, {}, {}, {}};
  wire::Document doc{{wire::MessageKind::kRequest, "/", uid, std::nullopt, std::nullopt},
                     wire::encode_request(request),
                     std::nullopt};
  if (siobridge) doc.extension = wire::encode_extension(wire::NodeInfo{1});
  return doc;
}

NodeConfig with_lookup(bool discovery_lookup) {
  NodeConfig config;
  config.discovery_lookup = discovery_lookup;
  return config;
}

struct OneNode {
  RecordingBus bus;
  FakeClock clock;
  TimerQueue timers;
  NodeConfig config;
  Node node{config, bus, clock, timers};
  FakeServer server{"s1"};

  explicit OneNode(bool discovery_lookup = true) : config(with_lookup(discovery_lookup)) {
    server.add_socket("s1a");
    server.node = &node;
    server.id = node.attach(server, server.name());
    REQUIRE(node.join_namespace(server.id, "/").ok());
  }
  void advance(Millis by) {
    clock.advance(by);
    timers.run_due(clock.now());
  }
  std::optional<bus::Audience> broadcast() {
    wire::BroadcastOptions everyone{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
    REQUIRE(node.broadcast(server.id, event("[\"x\"]"), everyone).ok());
    return bus.last(wire::RequestType::kBroadcast);
  }
};

}  // namespace

TEST_CASE("nothing is packed until every live node had time to be heard") {
  OneNode t;
  // A socketioxide node may be alive and not heard yet: it heartbeats once
  // per interval.
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  t.advance(t.config.heartbeat_interval - Millis{1});
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  t.advance(Millis{1});
  CHECK(t.broadcast() == bus::Audience::kSiobridgeOnly);
  // Heartbeats are how socketioxide nodes find this one: never packed.
  CHECK(t.bus.last(wire::RequestType::kHeartbeat) == bus::Audience::kEveryNode);
  CHECK(t.bus.last(wire::RequestType::kInitHeartbeat) == bus::Audience::kEveryNode);
}

TEST_CASE("a socketioxide node in the namespace gets documents of its own") {
  OneNode t;
  t.advance(t.config.heartbeat_interval);
  t.node.on_document(heartbeat_of("SSSSSSSSSSSSSSSS", /*siobridge=*/true));
  CHECK(t.broadcast() == bus::Audience::kSiobridgeOnly);
  t.node.on_document(heartbeat_of("RRRRRRRRRRRRRRRR", /*siobridge=*/false));
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  // Once it expired, packing resumes.
  t.advance(t.config.heartbeat_timeout + t.config.heartbeat_interval);
  t.node.on_document(heartbeat_of("SSSSSSSSSSSSSSSS", /*siobridge=*/true));
  CHECK(t.broadcast() == bus::Audience::kSiobridgeOnly);
}

TEST_CASE("an answer goes packed only to a siobridge requester") {
  OneNode t;
  t.advance(t.config.heartbeat_interval);
  for (const auto& [uid, siobridge] : {std::pair<std::string, bool>{"SSSSSSSSSSSSSSSS", true},
                                       std::pair<std::string, bool>{"RRRRRRRRRRRRRRRR", false}}) {
    t.node.on_document(heartbeat_of(uid, siobridge));
    // AllRooms from `uid`, answered by the server of this node.
    wire::Request request{uid,
                          wire::generate_id(),
                          wire::RequestType::kAllRooms,
                          {},
                          {},
                          wire::BroadcastOptions{0, {}, {}, std::nullopt, std::nullopt}};
    wire::Document doc{{wire::MessageKind::kRequest, "/", uid, std::nullopt, std::nullopt},
                       wire::encode_request(request),
                       std::nullopt};
    if (siobridge) doc.extension = wire::encode_extension(wire::RequestInfo{});
    t.node.on_document(doc);
    t.server.flush();
    REQUIRE_FALSE(t.bus.published.empty());
    const auto& [answer, audience] = t.bus.published.back();
    REQUIRE(answer.header.kind == wire::MessageKind::kResponse);
    CHECK(answer.header.target == uid);
    CHECK(audience == (siobridge ? bus::Audience::kSiobridgeOnly : bus::Audience::kEveryNode));
  }
}

TEST_CASE("discovery at once: no socketioxide node in the namespace, packing starts") {
  OneNode t;
  REQUIRE(t.bus.discovery.size() == 1);
  CHECK(t.bus.discovery[0].ns == "/");
  CHECK(t.bus.discovery[0].lookback == 2 * t.config.heartbeat_interval);
  CHECK(t.broadcast() == bus::Audience::kEveryNode);  // not before the answer
  t.bus.discovery[0].done(false);
  CHECK(t.broadcast() == bus::Audience::kSiobridgeOnly);
  CHECK(t.node.status().namespaces.at(0).packing);
  // A socketioxide node that starts later still stops packing with its heartbeat.
  t.node.on_document(heartbeat_of("RRRRRRRRRRRRRRRR", /*siobridge=*/false));
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
}

TEST_CASE("discovery at once: a socketioxide node seen keeps the namespace unpacked") {
  OneNode t;
  REQUIRE(t.bus.discovery.size() == 1);
  t.bus.discovery[0].done(true);
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  // Its heartbeat arrives within the interval: never packed while it lives.
  t.node.on_document(heartbeat_of("RRRRRRRRRRRRRRRR", /*siobridge=*/false));
  t.advance(t.config.heartbeat_interval);
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
}

TEST_CASE("discovery at once: no answer, or an answer for an earlier activation, waits") {
  OneNode t;
  REQUIRE(t.bus.discovery.size() == 1);
  t.bus.discovery[0].done(siobridge::make_error(siobridge::ErrorCode::kUnavailable, "down"));
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  // Left and joined again: the first question's answer is for another activation.
  REQUIRE(t.node.leave_namespace(t.server.id, "/").ok());
  REQUIRE(t.node.join_namespace(t.server.id, "/").ok());
  REQUIRE(t.bus.discovery.size() == 2);
  t.bus.discovery[0].done(false);
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
  t.bus.discovery[1].done(false);
  CHECK(t.broadcast() == bus::Audience::kSiobridgeOnly);
}

TEST_CASE("without discovery at once nothing is asked") {
  OneNode t(/*discovery_lookup=*/false);
  CHECK(t.bus.discovery.empty());
  CHECK(t.broadcast() == bus::Audience::kEveryNode);
}
