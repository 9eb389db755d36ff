// Connection state recovery across nodes of one bus (docs/recovery.md): a
// session saved on one node is restored on another with exactly what its
// client missed, whichever node sent what and however the sends interleave,
// and only once in the cluster. Fake clock, fake servers, the in-memory hub
// (which orders documents as MongoDB does).
#include <catch2/catch.hpp>

#include <algorithm>

#include "daemon/core/recovery_log.h"
#include "daemon/core/testing/test_cluster.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

constexpr Millis kRetention{120'000};

wire::Packet text_event(const std::string& text) {
  return event("[\"e\",\"" + text + "\"]");
}

std::string text_of(const wire::Packet& packet) {
  const std::string& json = packet.data->bytes;
  return json.substr(6, json.size() - 8);  // ["e","<text>"]
}

wire::BroadcastOptions to_rooms(std::vector<std::string> rooms) {
  wire::BroadcastOptions opts;
  opts.flags = flags::kBroadcast;
  opts.rooms = std::move(rooms);
  return opts;
}

// What a socket.io server does with recovery on: it counts its own
// recoverable packets, and its clients' offset is the last broadcast command
// it applied plus that count.
struct RecoveringServer {
  TestNode& node;
  FakeServer& server;
  std::uint64_t own = 0;

  void send(const std::string& text, std::vector<std::string> rooms = {}, bool only = false) {
    REQUIRE(node.node()
                .broadcast(server.id, text_event(text), to_rooms(std::move(rooms)),
                           RecoveryTag{++own, only})
                .ok());
  }

  // The point of a client that had every command applied so far.
  RecoveryPoint point() const {
    RecoveryPoint point;
    point.instance = node.node().instance();
    point.attachment = server.id;
    point.own_seq = own;
    const auto marks = server.commands_of(CommandKind::kRecoveryMark);
    const auto broadcasts = server.commands_of(CommandKind::kBroadcast);
    const Command& last = broadcasts.empty() ? marks.back() : broadcasts.back();
    point.seq = *last.log_seq;
    point.position = last.log_seen_through;
    return point;
  }
};

struct ThreeNodes {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  TestNode& c = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  FakeServer& c1 = cluster.server("c1");
  RecoveringServer sa1{a, a1}, sa2{a, a2}, sb1{b, b1}, sc1{c, c1};

  ThreeNodes() {
    for (auto [node, server] : {std::pair{&a, &a1}, {&a, &a2}, {&b, &b1}, {&c, &c1}}) {
      node->attach(*server);
      REQUIRE(node->node().join_namespace(server->id, "/", kRetention).ok());
    }
    cluster.settle();
    // A point names the bus position its node had read: one to start from.
    sb1.send("warmup");
    cluster.settle();
  }

  std::optional<Result<RestoredSession>> restore(TestNode& on, FakeServer& server,
                                                 const std::string& pid,
                                                 const RecoveryPoint& point) {
    std::optional<Result<RestoredSession>> answer;
    on.node().restore_session(server.id, "/", pid, point,
                              [&](Result<RestoredSession> r) { answer = std::move(r); });
    cluster.settle();
    // A claim without a session waits a moment for one on its way.
    if (!answer) cluster.advance(Millis{2'000});
    return answer;
  }
};

std::vector<std::string> texts(const RestoredSession& restored) {
  std::vector<std::string> out;
  for (const auto& m : restored.missed) {
    if (text_of(m.packet) != "warmup") out.push_back(text_of(m.packet));
  }
  std::sort(out.begin(), out.end());
  return out;
}

SessionRecord session(const std::string& pid, std::vector<std::string> rooms) {
  return SessionRecord{pid, "sid-" + pid, std::move(rooms), "{\"user\":1}"};
}

}  // namespace

TEST_CASE("a session saved on one node is restored on another with exactly what it missed") {
  ThreeNodes t;
  t.sb1.send("b-before");
  t.cluster.settle();
  t.sa1.send("a1-had");       // delivered by a1 itself at once
  t.sc1.send("c-in-flight");  // not yet at node a when the client leaves
  // The client of a1 (rooms "r" and its own "sid-p") had everything a1 applied.
  const RecoveryPoint point = t.sa1.point();
  t.cluster.settle();
  t.sb1.send("b-after");
  t.sa2.send("a2-after");
  t.sc1.send("c-other-room", {"elsewhere"});
  t.sc1.send("c-room", {"r"});
  t.sa1.send("a1-private", {"sid-p"}, /*only=*/true);
  REQUIRE(t.a.node().persist_session(t.a1.id, "/", session("p", {"sid-p", "r"})).ok());
  t.cluster.settle();
  t.sb1.send("b-before-restore");

  auto answer = t.restore(t.b, t.b1, "p", point);
  REQUIRE(answer);
  REQUIRE(answer->ok());
  CHECK((*answer)->session == session("p", {"sid-p", "r"}));
  CHECK(texts(**answer) == std::vector<std::string>{"a1-private", "a2-after", "b-after",
                                                    "b-before-restore", "c-in-flight", "c-room"});

  SECTION("only once, in the whole cluster") {
    auto again_elsewhere = t.restore(t.c, t.c1, "p", point);
    REQUIRE(again_elsewhere);
    CHECK_FALSE(again_elsewhere->ok());
    auto again_at_origin = t.restore(t.a, t.a2, "p", point);
    REQUIRE(again_at_origin);
    CHECK_FALSE(again_at_origin->ok());
  }
}

TEST_CASE("offsets are exact across nodes whatever the interleaving of their sends") {
  // Every split of a run of sends from three nodes into "had" and "missed":
  // the client of a1 leaves after `cut` sends were applied at node a.
  for (int cut = 0; cut <= 9; ++cut) {
    ThreeNodes t;
    std::vector<std::string> sent;
    RecoveryPoint point = t.sa1.point();
    std::vector<std::string> had;
    for (int i = 0; i < 9; ++i) {
      RecoveringServer& from = i % 3 == 0 ? t.sa1 : i % 3 == 1 ? t.sb1 : t.sc1;
      const std::string text = "m" + std::to_string(i);
      from.send(text);
      sent.push_back(text);
      if (i % 2 == 1) t.cluster.settle();  // some sends are still in flight at each cut
      if (i + 1 == cut) point = t.sa1.point();
    }
    t.cluster.settle();
    // What a1 had applied (its own sends, and the commands up to the point).
    for (const auto& command : t.a1.commands_of(CommandKind::kBroadcast)) {
      const std::string text = text_of(*command.packet);
      if (*command.log_seq <= point.seq && text != "warmup") had.push_back(text);
    }
    for (int i = 0; i < 9; i += 3) {
      if (static_cast<std::uint64_t>(i / 3 + 1) <= point.own_seq) had.push_back(sent[i]);
    }
    REQUIRE(t.a.node().persist_session(t.a1.id, "/", session("p", {"x"})).ok());
    t.cluster.settle();
    for (TestNode* on : {&t.b, &t.c}) {
      // Each node would give the same answer; the first restore uses the session.
      FakeServer& server = on == &t.b ? t.b1 : t.c1;
      auto answer = t.restore(*on, server, on == &t.b ? "p" : "none", point);
      REQUIRE(answer);
      if (on != &t.b) {
        CHECK_FALSE(answer->ok());
        continue;
      }
      REQUIRE(answer->ok());
      std::vector<std::string> everything = texts(**answer);
      everything.insert(everything.end(), had.begin(), had.end());
      std::sort(everything.begin(), everything.end());
      std::vector<std::string> expected = sent;
      std::sort(expected.begin(), expected.end());
      INFO("cut after " << cut << " sends");
      CHECK(everything == expected);  // each packet had or missed, none twice
    }
  }
}

TEST_CASE("an offset from before what a node keeps, or from an unknown instance, is refused") {
  ThreeNodes t;
  t.sa1.send("one");
  t.cluster.settle();
  RecoveryPoint point = t.sa1.point();
  REQUIRE(t.a.node().persist_session(t.a1.id, "/", session("p", {"x"})).ok());
  t.cluster.settle();
  // A node that started logging after the point cannot tell what it missed.
  TestNode& late = t.cluster.add_node();
  FakeServer& d1 = t.cluster.server("d1");
  late.attach(d1);
  REQUIRE(late.node().join_namespace(d1.id, "/", kRetention).ok());
  t.cluster.settle();
  auto answer = t.restore(late, d1, "p", point);
  REQUIRE(answer);
  CHECK_FALSE(answer->ok());
  // The session stays for a node that can.
  answer = t.restore(t.b, t.b1, "p", point);
  REQUIRE(answer);
  CHECK(answer->ok());
}

TEST_CASE("a claim read before its session waits for it, and the session is the claimant's") {
  ThreeNodes t;
  t.sa1.send("had");
  t.cluster.settle();
  const RecoveryPoint point = t.sa1.point();
  t.sc1.send("missed");
  // The client is back on b before a's session document is out.
  std::optional<Result<RestoredSession>> answer;
  t.b.node().restore_session(t.b1.id, "/", "p", point,
                             [&](Result<RestoredSession> r) { answer = std::move(r); });
  REQUIRE(t.a.node().persist_session(t.a1.id, "/", session("p", {"x"})).ok());
  t.cluster.settle();
  REQUIRE(answer);
  REQUIRE(answer->ok());
  CHECK(texts(**answer) == std::vector<std::string>{"missed"});
  // Every other node dropped the session when it came after the claim.
  auto again = t.restore(t.c, t.c1, "p", point);
  REQUIRE(again);
  CHECK_FALSE(again->ok());
  CHECK(t.a.node().recovery_log("/")->sessions() == 0);
  CHECK(t.c.node().recovery_log("/")->sessions() == 0);
}
