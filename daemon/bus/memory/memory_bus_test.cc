// Unit tests of the in-memory bus: delivery order, the PROTOCOL.md filter (no
// document back to its sender, targets), and delivery outside publish().
#include "daemon/bus/memory/memory_bus.h"

#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace siobridge::bus::memory {
namespace {

// Records what reaches one endpoint; may publish from inside on_document.
class Recorder final : public BusListener {
 public:
  void on_document(wire::Document document, const std::string& position) override {
    positions.push_back(position);
    received.push_back(std::move(document));
    if (on_receive) on_receive();
  }
  void on_bus_state(BusState, const std::string&) override {}

  std::vector<std::string> data() const {
    std::vector<std::string> out;
    for (const auto& d : received) out.push_back(d.data);
    return out;
  }

  std::vector<wire::Document> received;
  std::vector<std::string> positions;
  std::function<void()> on_receive;
};

wire::Document doc(const std::string& origin, const std::string& data,
                   std::optional<std::string> target = std::nullopt) {
  return wire::Document{{wire::MessageKind::kRequest, "/", origin, std::move(target), std::nullopt},
                        data,
                        std::nullopt};
}

const std::string kA = "AAAAAAAAAAAAAAAA";
const std::string kB = "BBBBBBBBBBBBBBBB";
const std::string kC = "CCCCCCCCCCCCCCCC";

struct Three {
  MemoryHub hub;
  Recorder ra, rb, rc;
  MemoryBus& a = hub.add_endpoint();
  MemoryBus& b = hub.add_endpoint();
  MemoryBus& c = hub.add_endpoint();
  Three() {
    a.connect(kA, &ra);
    b.connect(kB, &rb);
    c.connect(kC, &rc);
  }
};

}  // namespace

TEST_CASE("memory bus: every other node receives, in publish order, never the sender") {
  Three t;
  REQUIRE(t.a.publish(doc(kA, "1"), Audience::kEveryNode).ok());
  REQUIRE(t.b.publish(doc(kB, "2"), Audience::kSiobridgeOnly).ok());
  REQUIRE(t.a.publish(doc(kA, "3"), Audience::kEveryNode).ok());
  CHECK(t.hub.queued() == 3);
  CHECK(t.ra.received.empty());  // nothing is delivered inside publish()

  CHECK(t.hub.deliver_all() == 6);
  CHECK(t.ra.data() == std::vector<std::string>{"2"});
  CHECK(t.rb.data() == std::vector<std::string>{"1", "3"});
  CHECK(t.rc.data() == std::vector<std::string>{"1", "2", "3"});
  // Positions in delivery order, as MongoDB's operation times.
  CHECK(t.rc.positions == std::vector<std::string>{wire::format_position(0, 1, 0),
                                                   wire::format_position(0, 2, 0),
                                                   wire::format_position(0, 3, 0)});
  CHECK(t.hub.queued() == 0);
  CHECK(t.hub.published() == 3);
}

TEST_CASE("memory bus: a document marked echo comes back to its sender too, in order") {
  Three t;
  REQUIRE(t.a.publish(doc(kA, "1"), Audience::kEveryNode).ok());
  auto echoed = doc(kA, "2");
  echoed.echo = true;
  REQUIRE(t.a.publish(std::move(echoed), Audience::kEveryNode).ok());
  REQUIRE(t.b.publish(doc(kB, "3"), Audience::kEveryNode).ok());
  t.hub.deliver_all();
  CHECK(t.ra.data() == std::vector<std::string>{"2", "3"});
  CHECK(t.ra.positions ==
        std::vector<std::string>{wire::format_position(0, 2, 0), wire::format_position(0, 3, 0)});
  CHECK(t.rb.data() == std::vector<std::string>{"1", "2"});
  CHECK(t.a.shared());
}

TEST_CASE("memory bus: a document carrying another node's uid as origin skips that node") {
  Three t;
  // Published through a's endpoint but claiming b as its origin (as a resent
  // document would): neither a nor b receives it.
  REQUIRE(t.a.publish(doc(kB, "x"), Audience::kEveryNode).ok());
  t.hub.deliver_all();
  CHECK(t.ra.received.empty());
  CHECK(t.rb.received.empty());
  CHECK(t.rc.data() == std::vector<std::string>{"x"});
}

TEST_CASE("memory bus: a targeted document reaches its target only") {
  Three t;
  REQUIRE(t.a.publish(doc(kA, "to c", kC), Audience::kEveryNode).ok());
  t.hub.deliver_all();
  CHECK(t.rb.received.empty());
  CHECK(t.rc.data() == std::vector<std::string>{"to c"});
}

TEST_CASE("memory bus: the siobridge target reaches siobridge nodes, not socketioxide ones") {
  MemoryHub hub;
  Recorder ra, rb, rx;
  auto& a = hub.add_endpoint();
  auto& b = hub.add_endpoint();
  auto& x = hub.add_endpoint();
  a.connect(kA, &ra);
  b.connect(kB, &rb);
  x.connect(kC, &rx, /*siobridge=*/false);
  CHECK(x.uid() == kC);
  CHECK_FALSE(x.siobridge());

  REQUIRE(a.publish(doc(kA, "ext", std::string(wire::kSiobridgeTarget)), Audience::kSiobridgeOnly)
              .ok());
  REQUIRE(a.publish(doc(kA, "all"), Audience::kEveryNode).ok());
  hub.deliver_all();
  CHECK(rb.data() == std::vector<std::string>{"ext", "all"});
  CHECK(rx.data() == std::vector<std::string>{"all"});
}

TEST_CASE("memory bus: what a listener publishes is delivered in the same deliver_all") {
  Three t;
  int replies = 0;
  t.rb.on_receive = [&] {
    if (replies++ == 0) (void)t.b.publish(doc(kB, "reply", kA), Audience::kEveryNode);
  };
  REQUIRE(t.a.publish(doc(kA, "question"), Audience::kEveryNode).ok());
  CHECK(t.hub.deliver_all() == 3);  // question to b and c, reply to a
  CHECK(t.ra.data() == std::vector<std::string>{"reply"});
  CHECK(t.rc.data() == std::vector<std::string>{"question"});
}

TEST_CASE("memory bus: a hub with one node queues nothing; unconnected endpoints receive nothing") {
  MemoryHub alone;
  Recorder r;
  auto& only = alone.add_endpoint();
  only.connect(kA, &r);
  REQUIRE(only.publish(doc(kA, "1"), Audience::kEveryNode).ok());
  CHECK(alone.published() == 1);
  CHECK(alone.queued() == 0);
  CHECK(alone.deliver_all() == 0);

  MemoryHub hub;
  Recorder ra;
  auto& a = hub.add_endpoint();
  auto& silent = hub.add_endpoint();  // never connected: no listener
  a.connect(kA, &ra);
  CHECK(silent.state() == BusState::kReady);
  REQUIRE(a.publish(doc(kA, "1"), Audience::kEveryNode).ok());
  CHECK(hub.deliver_all() == 0);
}

}  // namespace siobridge::bus::memory
