// Membership: attachments and namespaces, peers and their liveness, who may
// read a namespace's documents, and the snapshot a restart resumes from.
#include <catch2/catch.hpp>

#include "daemon/core/membership.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

// The heartbeats published, as (type, servers announced, target).
struct Beat {
  wire::RequestType type;
  std::uint32_t servers;
  std::optional<std::string> target;
};
std::vector<Beat> heartbeats(const RecordingBus& bus) {
  std::vector<Beat> out;
  for (const auto& [request, published] : bus.requests()) {
    if (request.type != wire::RequestType::kHeartbeat &&
        request.type != wire::RequestType::kInitHeartbeat) {
      continue;
    }
    auto info = wire::decode_extension(*published.document.extension);
    out.push_back(
        {request.type, std::get<wire::NodeInfo>(*info).servers, published.document.header.target});
  }
  return out;
}

}  // namespace

TEST_CASE("the first server activates a namespace, the next ones are announced at once") {
  Parts parts;
  RecordingServer s1, s2;
  const auto before = parts.membership.state_version();
  parts.attach(s1, "s1");
  CHECK(parts.membership.is_active("/"));
  parts.attach(s2, "s2");
  const auto beats = heartbeats(parts.bus);
  REQUIRE(beats.size() == 2);
  CHECK(beats[0].type == wire::RequestType::kInitHeartbeat);
  CHECK(beats[0].servers == 1);
  CHECK(beats[1].type == wire::RequestType::kHeartbeat);
  CHECK(beats[1].servers == 2);
  CHECK(parts.membership.state_version() == before + 2);
  CHECK(parts.membership.server_count("/") == 2);

  // Heartbeats follow every interval.
  parts.bus.clear();
  parts.advance(parts.config.heartbeat_interval);
  REQUIRE(heartbeats(parts.bus).size() == 1);
}

TEST_CASE("a caller must be attached and have joined the namespace") {
  Parts parts;
  RecordingServer s1;
  const auto id = parts.attach(s1, "s1", {"/a"});
  CHECK(parts.membership.check_caller(id, "/a").ok());
  auto not_joined = parts.membership.check_caller(id, "/b");
  REQUIRE_FALSE(not_joined.ok());
  CHECK(not_joined.error().code == ErrorCode::kFailedPrecondition);
  CHECK_FALSE(parts.membership.check_caller(id + 1, "/a").ok());
  // An external emitter reaches any valid namespace.
  CHECK(parts.membership.check_caller(kNoAttachment, "/b").ok());
  CHECK_FALSE(parts.membership.check_caller(kNoAttachment, "b").ok());
  CHECK_FALSE(parts.membership.join(id, "/a"));  // joined already
}

TEST_CASE("commands reach the attached servers of the namespace but the sender") {
  Parts parts;
  RecordingServer s1, s2, other;
  const auto id1 = parts.attach(s1, "s1");
  const auto id2 = parts.attach(s2, "s2");
  parts.attach(other, "other", {"/other"});
  CHECK(parts.membership.local_targets("/", id1) == std::vector<AttachmentId>{id2});
  parts.membership.send(id2, make_command(CommandKind::kBroadcast, "/", {}));
  CHECK(s2.commands.size() == 1);
  CHECK(parts.stats.commands_out == 1);
  CHECK(parts.membership.name_of(id2) == "s2");
  CHECK(parts.membership.name_of(99) == "#99");
}

TEST_CASE("a peer not heard from for heartbeat_timeout is gone, and missing") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1");
  parts.heartbeat_from("peer", 2);
  CHECK(parts.membership.server_count("/") == 3);
  const auto peers_before = parts.membership.peers_version();
  parts.advance(parts.config.heartbeat_timeout - Millis{1});
  CHECK(parts.gone.empty());
  parts.advance(parts.config.heartbeat_interval);
  REQUIRE(parts.gone.size() == 1);
  CHECK(parts.gone[0].uid == "peer");
  CHECK_FALSE(parts.gone[0].exit.graceful);
  CHECK(parts.stats.peers_expired == 1);
  CHECK(parts.membership.peers_version() > peers_before);
  CHECK(parts.membership.server_count("/") == 1);
}

TEST_CASE("a message from a peer keeps it alive") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1");
  parts.heartbeat_from("peer", 1);
  parts.advance(parts.config.heartbeat_timeout - Millis{100});
  parts.membership.touch("/", "peer");
  parts.advance(Millis{200});
  CHECK(parts.gone.empty());
  CHECK(parts.membership.peers_of("/").contains("peer"));
}

TEST_CASE("a goodbye removes the peer from every namespace, and it is not missing") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1", {"/a", "/b"});
  parts.heartbeat_from("peer", 3, "/a");
  parts.heartbeat_from("peer", 3, "/b");
  parts.membership.on_goodbye("peer");
  REQUIRE(parts.gone.size() == 2);
  for (const auto& gone : parts.gone) {
    CHECK(gone.exit.graceful);
    CHECK(gone.exit.servers == 3);
  }
  CHECK(parts.membership.all_peers().empty());
  CHECK(parts.stats.peers_left == 1);
}

TEST_CASE("an InitHeartbeat of a new or restarted siobridge peer is answered, targeted") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1");
  parts.bus.clear();
  parts.heartbeat_from("peer", 1, "/", wire::RequestType::kInitHeartbeat);
  parts.heartbeat_from("peer", 1, "/", wire::RequestType::kInitHeartbeat);  // restarted
  parts.heartbeat_from("sioxide", std::nullopt, "/", wire::RequestType::kInitHeartbeat);
  parts.heartbeat_from("sioxide", std::nullopt, "/", wire::RequestType::kInitHeartbeat);
  parts.heartbeat_from("quiet", 1);  // a plain heartbeat gets no answer
  const auto beats = heartbeats(parts.bus);
  REQUIRE(beats.size() == 3);
  CHECK(beats[0].target == "peer");
  CHECK(beats[1].target == "peer");
  CHECK(beats[2].target == "sioxide");
}

TEST_CASE("documents are packed only when no socketioxide node can read the namespace") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1");
  // A socketioxide node may exist that has not heartbeated yet.
  CHECK(parts.membership.audience_for("/", std::nullopt) == bus::Audience::kEveryNode);
  parts.advance(parts.config.heartbeat_interval);
  CHECK(parts.membership.audience_for("/", std::nullopt) == bus::Audience::kSiobridgeOnly);
  parts.heartbeat_from("bridge", 1);
  parts.heartbeat_from("sioxide", std::nullopt);
  CHECK(parts.membership.audience_for("/", std::nullopt) == bus::Audience::kEveryNode);
  CHECK(parts.membership.audience_for("/", std::string("bridge")) == bus::Audience::kSiobridgeOnly);
  CHECK(parts.membership.audience_for("/", std::string("sioxide")) == bus::Audience::kEveryNode);
  CHECK(parts.membership.audience_for("/inactive", std::nullopt) == bus::Audience::kEveryNode);
}

TEST_CASE("the last server leaving deactivates the namespace unless it is kept") {
  Parts parts;
  RecordingServer s1, s2;
  const auto id1 = parts.attach(s1, "s1");
  const auto id2 = parts.attach(s2, "s2");
  parts.heartbeat_from("peer", 1);
  parts.membership.leave(id1, "/", /*keep_active=*/false);
  CHECK(parts.membership.is_active("/"));
  parts.membership.leave(id2, "/", /*keep_active=*/true);
  CHECK(parts.membership.is_active("/"));  // held: still heartbeating, with no server
  CHECK(heartbeats(parts.bus).back().servers == 0);
  CHECK(parts.gone.empty());

  const auto id3 = parts.attach(s1, "s1 again");
  parts.membership.leave(id3, "/", /*keep_active=*/false);
  CHECK_FALSE(parts.membership.is_active("/"));
  REQUIRE(parts.gone.size() == 1);
  CHECK(parts.gone[0].exit.graceful);  // nothing of the namespace waits for it
  parts.bus.clear();
  parts.advance(parts.config.heartbeat_interval * 2);
  CHECK(heartbeats(parts.bus).empty());
}

TEST_CASE("a namespace kept without servers heartbeats once per interval when one comes back") {
  Parts parts;
  RecordingServer s1;
  const auto id = parts.attach(s1, "s1");
  parts.membership.leave(id, "/", /*keep_active=*/true);
  parts.attach(s1, "s1 again");
  parts.bus.clear();
  parts.advance(parts.config.heartbeat_interval);
  CHECK(heartbeats(parts.bus).size() == 1);
}

TEST_CASE("a snapshot names the namespaces in use and the age of their peers") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1", {"/a"});
  parts.heartbeat_from("peer", 2, "/a");
  parts.membership.remember_peers("/held", {PeerSnapshot{"old", std::nullopt, Millis{300}}});
  parts.clock.advance(Millis{40});
  const auto handover =
      parts.membership.snapshot([](const std::string& ns) { return ns == "/held" ? 4u : 0u; });
  REQUIRE(handover.namespaces.size() == 2);
  const auto& a = handover.namespaces.at("/a");
  CHECK(a.servers == 1);
  CHECK(a.peers == std::vector<PeerSnapshot>{{"peer", 2u, Millis{40}}});
  const auto& held = handover.namespaces.at("/held");
  CHECK(held.servers == 4);
  CHECK(held.peers == std::vector<PeerSnapshot>{{"old", std::nullopt, Millis{340}}});
}

TEST_CASE("after stop_heartbeats nothing more is published") {
  Parts parts;
  RecordingServer s1;
  parts.attach(s1, "s1");
  parts.membership.stop_heartbeats();
  parts.bus.clear();
  parts.attach(s1, "s1", {"/other"});
  parts.advance(parts.config.heartbeat_interval * 3);
  CHECK(parts.bus.published.empty());
  CHECK(parts.membership.leaving());
}

TEST_CASE("status lists namespaces with servers and peers, and attachments by id") {
  Parts parts;
  RecordingServer s1, s2;
  parts.attach(s2, "second", {"/b"});
  parts.attach(s1, "first", {"/a", "/b"});
  parts.heartbeat_from("peer", 2, "/b");
  NodeStatus status;
  parts.membership.fill_status(status);
  REQUIRE(status.namespaces.size() == 2);
  CHECK(status.namespaces[1].ns == "/b");
  CHECK(status.namespaces[1].local_servers.size() == 2);
  CHECK(status.namespaces[1].server_count == 4);
  REQUIRE(status.namespaces[1].peers.size() == 1);
  CHECK(status.namespaces[1].peers[0].siobridge);
  REQUIRE(status.attachments.size() == 2);
  CHECK(status.attachments[0].name == "second");
  CHECK(status.attachments[1].namespaces == std::vector<std::string>{"/a", "/b"});
}
