// RestartHold: what arrives for a namespace while its servers come back after
// a restart is kept in order within a byte budget, heartbeats excepted, and
// handed back once they came (or counted as unclaimed once restart_grace
// passed).
#include <catch2/catch.hpp>

#include "daemon/core/restart_hold.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

wire::Document request_doc(wire::RequestType type, const std::string& ns = "/",
                           std::string text = "e") {
  const std::string peer = "peerNode00000001";  // a valid id: heartbeats are decoded
  wire::Request request{peer, wire::generate_id(), type, {}, {}, {}};
  if (type == wire::RequestType::kBroadcast) request.packet = event("[\"" + text + "\"]", ns);
  return {{wire::MessageKind::kRequest, ns, peer, std::nullopt, std::nullopt},
          wire::encode_request(request),
          std::nullopt};
}

struct Hold {
  explicit Hold(NodeConfig config = Parts::default_config()) : parts(std::move(config)) {}
  Parts parts;
  std::vector<std::string> grace_over;
  RestartHold hold{parts.context, [this](const std::string& ns) {
                     grace_over.push_back(ns);
                     (void)hold.release(ns, false);
                   }};
};

}  // namespace

TEST_CASE("documents of a held namespace are kept in order; heartbeats are not") {
  Hold h;
  h.hold.hold_namespace("/", 2);
  h.hold.hold_namespace("/none", 0);  // had no server: nothing to hold
  CHECK(h.hold.holds("/"));
  CHECK_FALSE(h.hold.holds("/none"));
  CHECK(h.hold.servers_before("/") == 2);

  CHECK(h.hold.keep(request_doc(wire::RequestType::kBroadcast, "/", "one"), "p1"));
  CHECK_FALSE(h.hold.keep(request_doc(wire::RequestType::kHeartbeat), "p2"));
  CHECK_FALSE(h.hold.keep(request_doc(wire::RequestType::kInitHeartbeat), "p3"));
  CHECK(h.hold.keep(request_doc(wire::RequestType::kBroadcast, "/", "two"), "p4"));
  CHECK_FALSE(h.hold.keep(request_doc(wire::RequestType::kBroadcast, "/other"), "p5"));
  CHECK(h.parts.stats.handover_held == 2);

  CHECK_FALSE(h.hold.enough("/", 1));
  CHECK(h.hold.enough("/", 2));
  const auto documents = h.hold.release("/", /*attached=*/true);
  REQUIRE(documents.size() == 2);
  CHECK(documents[0].second == "p1");
  CHECK(documents[1].second == "p4");
  CHECK(h.parts.stats.handover_delivered == 2);
  CHECK_FALSE(h.hold.holds("/"));
  CHECK(h.hold.servers_before("/") == 0);
}

TEST_CASE("past restart_hold_bytes the oldest held documents go") {
  auto config = Parts::default_config();
  const auto one = request_doc(wire::RequestType::kBroadcast);
  // Room for two documents of this size, not three.
  config.restart_hold_bytes = 2 * (one.data.size() + 1 + 64) + 10;
  Hold h(config);
  h.hold.hold_namespace("/", 1);
  for (const char* position : {"p1", "p2", "p3", "p4"}) REQUIRE(h.hold.keep(one, position));
  CHECK(h.parts.stats.handover_dropped == 2);
  const auto documents = h.hold.release("/", true);
  REQUIRE(documents.size() == 2);
  CHECK(documents[0].second == "p3");
  CHECK(documents[1].second == "p4");
}

TEST_CASE("a namespace no server came back to is released empty, its documents unclaimed") {
  Hold h;
  h.hold.hold_namespace("/", 1);
  REQUIRE(h.hold.keep(request_doc(wire::RequestType::kBroadcast), "p1"));
  CHECK(h.hold.release("/", /*attached=*/false).empty());
  CHECK(h.parts.stats.handover_unclaimed == 1);
  CHECK(h.parts.stats.handover_delivered == 0);
}

TEST_CASE("restart_grace ends the hold of every namespace still held") {
  Hold h;
  h.hold.hold_namespace("/a", 1);
  h.hold.hold_namespace("/b", 1);
  h.hold.start_grace();
  (void)h.hold.release("/a", true);  // its server came back
  h.parts.advance(h.parts.config.restart_grace - Millis{1});
  CHECK(h.grace_over.empty());
  h.parts.advance(Millis{1});
  CHECK(h.grace_over == std::vector<std::string>{"/b"});
  CHECK_FALSE(h.hold.holds("/b"));
  CHECK(h.parts.timers.size() == 0);
}

TEST_CASE("the grace timer goes once nothing is held") {
  Hold h;
  h.hold.start_grace();  // nothing held: no timer
  CHECK(h.parts.timers.size() == 0);
  h.hold.hold_namespace("/", 1);
  h.hold.start_grace();
  CHECK(h.parts.timers.size() == 1);
  (void)h.hold.release("/", true);
  CHECK(h.parts.timers.size() == 0);
}
