// Numbered calls on a real MongoDB (docs/PROTOCOL.md section 20): the
// documents a numbered call publishes carry its mark, packed or not; the bus
// settles them in order; and any engine, a new one included, finds the highest
// call of a server instance that the collection holds.
#include <catch2/catch.hpp>

#include <future>

#include "daemon/wire/owned_bson.h"
#include "tests/integration/engine_fixture.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::testing;
namespace flags = siobridge::wire::broadcast_flags;
using bus::mongodb::Expiration;

namespace {

std::uint64_t last_call(runtime::Engine& engine, const std::string& instance) {
  std::promise<Result<std::uint64_t>> answer;
  auto future = answer.get_future();
  engine.post([&](Node&) {
    engine.find_last_call(
        instance, [&](Result<std::uint64_t> result) { answer.set_value(std::move(result)); });
  });
  auto result = await(future);
  INFO((result.ok() ? "" : result.error().message));
  REQUIRE(result.ok());
  return *result;
}

bool packing(Node& n) {
  for (const auto& ns : n.status().namespaces) {
    if (ns.ns == "/") return ns.packing;
  }
  return false;
}

}  // namespace

TEST_CASE("numbered calls: marked documents, settled in order, found again by any engine") {
  const bool pack = GENERATE(false, true);
  const auto expiration = GENERATE(Expiration::ttl(60), Expiration::capped(4 << 20));
  INFO("pack_messages " << pack << ", capped " << (expiration.kind == Expiration::Kind::kCapped));
  EngineSet set(expiration);
  auto bus = set.bus_config();
  bus.pack_messages = pack;
  auto& a = set.add(quick_node_config(), bus);
  auto& b = set.add(quick_node_config(), bus);
  EngineServer a1(a, "a1"), b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  a1.attach();
  b1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
  if (pack) REQUIRE(eventually(a, packing));

  // Calls 1..200 of one instance and 1..20 of another, interleaved, in one go:
  // they queue together (and pack together when packing).
  constexpr int kCalls = 200;
  wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  const std::uint64_t published = a.call([&](Node& n) {
    for (int i = 1; i <= kCalls; ++i) {
      runtime::Engine::CallScope scope(a, wire::CallMark{"instanceAAAAAAAA", std::uint64_t(i)});
      REQUIRE(n.broadcast(a1.id(), testing_event("[" + std::to_string(i) + "]"), all).ok());
      if (i % 10 == 0) {
        runtime::Engine::CallScope other(a,
                                         wire::CallMark{"instanceBBBBBBBB", std::uint64_t(i / 10)});
        REQUIRE(n.broadcast(a1.id(), testing_event("[0]"), all).ok());
      }
    }
    return a.published();
  });
  CHECK(published >= std::uint64_t(kCalls + kCalls / 10));
  // Everything published is settled once MongoDB stored it, in order.
  REQUIRE(eventually(a, [&](Node&) { return a.settled() >= published; }));
  REQUIRE(b1.wait_until(
      [&](auto& s) { return s.delivered.size() == std::size_t(kCalls + kCalls / 10); }));

  CHECK(last_call(a, "instanceAAAAAAAA") == kCalls);
  CHECK(last_call(a, "instanceBBBBBBBB") == kCalls / 10);
  CHECK(last_call(a, "instanceCCCCCCCC") == 0);
  // A daemon that never published any of them (as after a restart) finds them too.
  auto& c = set.add(quick_node_config(), bus);
  CHECK(last_call(c, "instanceAAAAAAAA") == kCalls);

  // Documents outside a call carry no mark (heartbeats, the answers to b).
  ClientHandle client = connect(set.uri());
  auto collection =
      mongoc_client_get_collection(client.get(), set.db().name().c_str(), EngineSet::kCollection);
  wire::OwnedBson filter(BCON_NEW("calls", "{", "$exists", BCON_BOOL(true), "}"));
  bson_error_t error;
  const auto marked = mongoc_collection_count_documents(collection, filter.get(), nullptr, nullptr,
                                                        nullptr, &error);
  mongoc_collection_destroy(collection);
  CHECK(marked > 0);
  if (pack) {
    CHECK(marked < kCalls);  // packs: one mark per instance per document
  } else {
    CHECK(marked == kCalls + kCalls / 10);
  }
}
