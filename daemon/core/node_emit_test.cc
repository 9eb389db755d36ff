// serverSideEmit between siobridge nodes (an extension socketioxide never sees).
#include <catch2/catch.hpp>

#include "daemon/core/testing/test_cluster.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::core::testing;

namespace {

struct Cluster {
  TestCluster cluster;
  TestNode& a = cluster.add_node();
  TestNode& b = cluster.add_node();
  FakeServer& a1 = cluster.server("a1");
  FakeServer& a2 = cluster.server("a2");
  FakeServer& b1 = cluster.server("b1");
  FakeServer& b2 = cluster.server("b2");
  RawPeer& rust = cluster.add_raw_peer(wire::generate_id());
  Cluster() {
    a.attach(a1);
    a.attach(a2);
    b.attach(b1);
    b.attach(b2);
    rust.announce();
    cluster.settle();
    rust.received.clear();
  }

  // a1 emits "ping" with acks to every other server; the result, once it came.
  const std::optional<EmitResult>& ask_with_acks(Millis timeout) {
    REQUIRE(a.node()
                .server_side_emit(a1.id, "/", "[\"ping\"]", true, timeout,
                                  [this](EmitResult r) { result = std::move(r); })
                .ok());
    cluster.settle();
    return result;
  }
  std::optional<EmitResult> result;
};

}  // namespace

TEST_CASE("serverSideEmit reaches every other server and no socketioxide node") {
  Cluster t;
  bool done = false;
  REQUIRE(t.a.node()
              .server_side_emit(t.a1.id, "/", "[\"sync\",1]", false, Millis{0},
                                [&](EmitResult) { done = true; })
              .ok());
  t.cluster.settle();
  CHECK(done);
  CHECK(t.a1.emits_received.empty());
  for (auto* s : {&t.a2, &t.b1, &t.b2}) {
    REQUIRE(s->emits_received.size() == 1);
    CHECK(s->emits_received[0] == "[\"sync\",1]");
  }
  CHECK(t.rust.received.empty());
}

TEST_CASE("serverSideEmit with acks collects one response per server") {
  Cluster t;
  t.b1.emit_reply = "[\"b1\"]";
  const auto& result = t.ask_with_acks(Millis{1000});
  REQUIRE(result);
  CHECK(result->expected == 3);  // a2, b1, b2; the socketioxide node cannot answer
  CHECK(result->responses.size() == 3);
  CHECK(std::count(result->responses.begin(), result->responses.end(), "[\"b1\"]") == 1);
  CHECK(result->missing.empty());
}

TEST_CASE("serverSideEmit with acks times out with the responses that came") {
  Cluster t;
  t.b2.answers = false;
  t.a2.answers = false;
  const auto& result = t.ask_with_acks(Millis{150});
  CHECK_FALSE(result);
  t.cluster.advance(Millis{150});
  REQUIRE(result);
  CHECK(result->expected == 3);
  CHECK(result->responses.size() == 1);  // b1; B answered at 75 ms without b2
  CHECK(result->missing.local_servers == std::vector<std::string>{"a2"});
}

TEST_CASE("a server that leaves during serverSideEmit with acks is no longer expected") {
  Cluster t;
  t.b2.answers = false;
  const auto& result = t.ask_with_acks(Millis{1000});
  CHECK_FALSE(result);
  t.b.node().detach(t.b2.id);  // b2 closes inside its handler
  t.cluster.settle();
  REQUIRE(result);  // at once, not at the deadline
  CHECK(result->expected == 2);
  CHECK(result->responses.size() == 2);
  CHECK(result->missing.empty());
}

TEST_CASE("the caller's timeout, not the other node's local timeout, bounds serverSideEmit") {
  Cluster t;
  t.b1.answers = false;  // b1 answers late: after B's local_timeout, within the caller's
  const auto& result = t.ask_with_acks(Millis{3000});
  t.cluster.advance(TestCluster::default_config().local_timeout * 3);
  CHECK_FALSE(result);
  t.b1.answers = true;
  auto late = t.b1.commands_of(CommandKind::kServerSideEmit);
  REQUIRE(late.size() == 1);
  t.b.node().on_emit_reply(t.b1.id, late[0].id, "[\"late\"]");
  t.cluster.settle();
  REQUIRE(result);
  CHECK(result->responses.size() == 3);
  CHECK(result->missing.empty());
}
