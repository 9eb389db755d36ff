// RecoveryLog and the node's recovery wiring: what a session gets back, with a
// fake clock and fake servers.
#include <catch2/catch.hpp>

#include "daemon/core/recovery_log.h"
#include "daemon/core/testing/test_cluster.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

constexpr Millis kRetention{120'000};

wire::Packet logged_event(const std::string& text) {
  wire::Packet packet;
  packet.ns = "/";
  packet.type = wire::PacketType::kEvent;
  packet.data = wire::Value{wire::ValueKind::kStr, "[\"e\",\"" + text + "\"]", std::nullopt};
  return packet;
}

wire::BroadcastOptions to_rooms(std::vector<std::string> rooms,
                                std::vector<std::string> except = {}) {
  wire::BroadcastOptions opts;
  opts.flags = flags::kBroadcast;
  opts.rooms = std::move(rooms);
  opts.except = std::move(except);
  return opts;
}

std::vector<std::string> texts(const std::vector<MissedPacket>& missed) {
  std::vector<std::string> out;
  for (const auto& m : missed) out.push_back(m.packet.data->bytes);
  return out;
}

// A point of the log's own daemon instance.
RecoveryPoint local_point(std::uint64_t seq, AttachmentId attachment, std::uint64_t own_seq) {
  RecoveryPoint point;
  point.seq = seq;
  point.attachment = attachment;
  point.own_seq = own_seq;
  return point;
}

SessionRecord session(const std::string& pid, std::vector<std::string> rooms) {
  return SessionRecord{pid, "sid-" + pid, std::move(rooms), "{\"user\":1}"};
}

}  // namespace

TEST_CASE("a session gets back the packets after its offset that reach its rooms, once") {
  RecoveryLog log(kRetention, {});
  const Millis now{1000};
  log.append(logged_event("before"), to_rooms({}), kNoAttachment, 0, now);
  const auto seen = log.last_seq();
  log.append(logged_event("all"), to_rooms({}), kNoAttachment, 0, now);
  log.append(logged_event("room-a"), to_rooms({"a"}), kNoAttachment, 0, now);
  log.append(logged_event("room-b"), to_rooms({"b"}), kNoAttachment, 0, now);
  log.append(logged_event("all-but-a"), to_rooms({}, {"a"}), kNoAttachment, 0, now);
  log.save_session(session("p1", {"sid-p1", "a"}), now);

  auto restored = log.restore("p1", local_point(seen, kNoAttachment, 0), 7, now);
  REQUIRE(restored.ok());
  CHECK(restored->session == session("p1", {"sid-p1", "a"}));
  CHECK(texts(restored->missed) ==
        std::vector<std::string>{"[\"e\",\"all\"]", "[\"e\",\"room-a\"]"});

  auto again = log.restore("p1", local_point(seen, kNoAttachment, 0), 7, now);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::kNotFound);
}

TEST_CASE("a server's own packets count by its own numbers, not by the log's order") {
  // Server 1 delivered its packet #1 to its client before the daemon logged
  // it, after a packet of server 2 that the client got later: the client's
  // last offset is that of server 2's packet, counting #1 as had.
  RecoveryLog log(kRetention, {});
  const Millis now{1000};
  const auto from_2 = log.append(logged_event("from-2"), to_rooms({}), 2, 1, now);
  log.append(logged_event("own-1"), to_rooms({}), 1, 1, now);
  log.append(logged_event("own-2"), to_rooms({}), 1, 2, now);
  log.append(logged_event("from-2-b"), to_rooms({}), 2, 2, now);
  log.save_session(session("p", {"sid-p"}), now);

  auto restored = log.restore("p", local_point(from_2, 1, 1), 1, now);
  REQUIRE(restored.ok());
  CHECK(texts(restored->missed) ==
        std::vector<std::string>{"[\"e\",\"own-2\"]", "[\"e\",\"from-2-b\"]"});
  CHECK(restored->own_seq == 2);
}

TEST_CASE("a private packet reaches only its socket's session") {
  RecoveryLog log(kRetention, {});
  const Millis now{1000};
  wire::BroadcastOptions to_socket;
  to_socket.sid = "sid-p";  // no Broadcast flag: the one target
  log.append(logged_event("private"), to_socket, kNoAttachment, 0, now);
  wire::BroadcastOptions from_socket = to_rooms({});
  from_socket.sid = "sid-p";  // Broadcast flag: everyone but the sender
  log.append(logged_event("from-it"), from_socket, kNoAttachment, 0, now);
  log.save_session(session("p", {"sid-p"}), now);
  log.save_session(session("q", {"sid-q"}), now);

  auto p = log.restore("p", RecoveryPoint{}, 1, now);
  auto q = log.restore("q", RecoveryPoint{}, 1, now);
  REQUIRE(p.ok());
  REQUIRE(q.ok());
  CHECK(texts(p->missed) == std::vector<std::string>{"[\"e\",\"private\"]"});
  CHECK(texts(q->missed) == std::vector<std::string>{"[\"e\",\"from-it\"]"});
}

TEST_CASE("nothing is restored past the retention, past the log or from the future") {
  RecoveryLimits limits;
  limits.max_bytes = 2000;
  RecoveryLog log(kRetention, limits);
  Millis now{1000};
  log.append(logged_event("first"), to_rooms({}), kNoAttachment, 0, now);
  log.save_session(session("late", {"sid-late"}), now);

  SECTION("an expired session") {
    now += kRetention + Millis{1};
    auto restored = log.restore("late", local_point(1, kNoAttachment, 0), 1, now);
    REQUIRE_FALSE(restored.ok());
    CHECK(log.sessions() == 0);
  }
  SECTION("an offset whose next packets were dropped for space") {
    for (int i = 0; i < 100; ++i)
      log.append(logged_event(std::string(100, 'x')), to_rooms({}), 0, 0, now);
    CHECK(log.bytes() <= limits.max_bytes);
    CHECK(log.stats().trimmed_early > 0);
    auto restored = log.restore("late", local_point(1, kNoAttachment, 0), 1, now);
    REQUIRE_FALSE(restored.ok());
    CHECK(restored.error().message.find("older than the packets kept") != std::string::npos);
    CHECK(log.sessions() == 1);  // kept, as socket.io's own adapter keeps it
  }
  SECTION("an offset the log never reached") {
    auto restored = log.restore("late", local_point(99, kNoAttachment, 0), 1, now);
    REQUIRE_FALSE(restored.ok());
  }
  SECTION("an unknown pid") {
    REQUIRE_FALSE(log.restore("nobody", local_point(1, kNoAttachment, 0), 1, now).ok());
  }
}

TEST_CASE("only events without ack that are not volatile are logged") {
  auto packet = logged_event("x");
  CHECK(is_recoverable(packet, to_rooms({})));
  auto volatile_opts = to_rooms({});
  volatile_opts.flags |= flags::kVolatile;
  CHECK_FALSE(is_recoverable(packet, volatile_opts));
  packet.ack = 3;
  CHECK_FALSE(is_recoverable(packet, to_rooms({})));
}

TEST_CASE("a node logs what its servers are given and marks their commands") {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  a.attach(a1);
  a.attach(a2);
  b.attach(b1);
  REQUIRE(a.node().join_namespace(a1.id, "/", kRetention).ok());
  REQUIRE(a.node().join_namespace(a2.id, "/", kRetention).ok());
  cluster.settle();
  // Each server learns where its offsets start.
  REQUIRE(a2.commands_of(CommandKind::kRecoveryMark).size() == 1);
  CHECK(a2.commands_of(CommandKind::kRecoveryMark)[0].log_seq == std::optional<std::uint64_t>(0));

  REQUIRE(
      a.node().broadcast(a1.id, logged_event("local"), to_rooms({}), RecoveryTag{1, false}).ok());
  REQUIRE(b.node().broadcast(b1.id, logged_event("remote"), to_rooms({})).ok());
  cluster.settle();  // "remote" is logged when it reaches node a
  REQUIRE(a.node()
              .broadcast(a1.id, logged_event("only-mine"), to_rooms({"a1s"}), RecoveryTag{2, true})
              .ok());
  cluster.settle();
  const auto broadcasts = a2.commands_of(CommandKind::kBroadcast);
  REQUIRE(broadcasts.size() == 2);  // the recovery_only packet went nowhere
  CHECK(broadcasts[0].log_seq == std::optional<std::uint64_t>(1));
  CHECK(broadcasts[1].log_seq == std::optional<std::uint64_t>(2));
  CHECK(b1.commands_of(CommandKind::kBroadcast).size() == 1);
  CHECK_FALSE(b1.commands_of(CommandKind::kBroadcast)[0].log_seq);  // b has recovery off

  // A client of a1 had its #1 only, and room a1s: it misses "remote" and "only-mine".
  REQUIRE(a.node().persist_session(a1.id, "/", session("p", {"a1s"})).ok());
  std::optional<Result<RestoredSession>> answer;
  a.node().restore_session(a2.id, "/", "p", local_point(0, a1.id, 1),
                           [&](Result<RestoredSession> r) { answer = std::move(r); });
  cluster.settle();
  REQUIRE(answer);
  auto& restored = *answer;
  REQUIRE(restored.ok());
  CHECK(texts(restored->missed) ==
        std::vector<std::string>{"[\"e\",\"remote\"]", "[\"e\",\"only-mine\"]"});
  CHECK_FALSE(b.node().persist_session(b1.id, "/", session("q", {"x"})).ok());
}
