// Three engines on one MongoDB collection, both expiration strategies: every
// operation end to end, through the real change streams.
#include <catch2/catch.hpp>

#include <future>

#include "tests/integration/engine_fixture.h"

using namespace siobridge;
using namespace siobridge::core;
using siobridge::Millis;
using namespace siobridge::testing;
namespace flags = siobridge::wire::broadcast_flags;
using bus::mongodb::Expiration;

namespace {

struct Three {
  EngineSet set;
  runtime::Engine& a;
  runtime::Engine& b;
  runtime::Engine& c;
  EngineServer a1{a, "a1"}, a2{a, "a2"}, b1{b, "b1"}, c1{c, "c1"};

  explicit Three(Expiration expiration)
      : set(expiration), a(set.add()), b(set.add()), c(set.add()) {
    a1.with([](auto& s) {
      s.add_socket("a1s1", {"r1"});
      return 0;
    });
    a2.with([](auto& s) {
      s.add_socket("a2s1", {"r1", "vip"});
      return 0;
    });
    b1.with([](auto& s) {
      s.add_socket("b1s1", {"r1"});
      s.add_socket("b1s2", {"r2"});
      return 0;
    });
    c1.with([](auto& s) {
      s.add_socket("c1s1", {"vip"});
      return 0;
    });
    a1.attach();
    a2.attach();
    b1.attach();
    c1.attach();
    for (auto* engine : {&a, &b, &c}) {
      REQUIRE(eventually(*engine, [](Node& n) { return n.server_count("/") == 4; }));
    }
  }
};

std::set<std::string> reached(EngineServer& server) {
  return server.with([](auto& s) { return s.sids_reached(); });
}

}  // namespace

TEST_CASE("engines on MongoDB: every operation end to end") {
  auto expiration = GENERATE(Expiration::ttl(60), Expiration::capped(4 << 20));
  INFO(expiration.describe());
  Three t(expiration);

  SECTION("broadcast to all, to rooms, except rooms") {
    wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::string("a1s1"), std::nullopt};
    REQUIRE(
        t.a.call([&](Node& n) { return n.broadcast(t.a1.id(), testing_event("[\"all\"]"), all); })
            .ok());
    REQUIRE(t.c1.wait_until([](auto& s) { return s.delivered.size() == 1; }));
    REQUIRE(t.b1.wait_until([](auto& s) { return s.delivered.size() == 2; }));
    CHECK(reached(t.a2) == std::set<std::string>{"a2s1"});

    wire::BroadcastOptions rooms{flags::kBroadcast, {"r1"}, {"vip"}, std::nullopt, std::nullopt};
    REQUIRE(
        t.c.call([&](Node& n) { return n.broadcast(t.c1.id(), testing_event("[\"r1\"]"), rooms); })
            .ok());
    REQUIRE(t.a1.wait_until([](auto& s) { return s.delivered.size() == 1; }));
    REQUIRE(t.b1.wait_until([](auto& s) { return s.delivered.size() == 3; }));
    CHECK(t.b1.with([](auto& s) { return s.delivered.back().sid; }) == "b1s1");
    // a2s1 is in r1 but also in vip: excluded. A marker broadcast proves nothing else is coming.
    wire::BroadcastOptions marker{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
    REQUIRE(t.c.call([&](Node& n) {
                 return n.broadcast(t.c1.id(), testing_event("[\"end\"]"), marker);
               })
                .ok());
    REQUIRE(t.a2.wait_until([](auto& s) {
      return !s.delivered.empty() && s.delivered.back().packet.data->bytes == "[\"end\"]";
    }));
    CHECK(t.a2.with([](auto& s) { return s.delivered.size(); }) == 2);
  }

  SECTION("socketsJoin, socketsLeave, allRooms") {
    wire::BroadcastOptions in_r1{0, {"r1"}, {}, std::nullopt, std::nullopt};
    REQUIRE(
        t.a.call([&](Node& n) { return n.add_sockets(t.a1.id(), "/", in_r1, {"joined"}); }).ok());
    // allRooms after add_sockets sees the new room: requests apply in publish order.
    std::promise<RoomsResult> rooms;
    auto rooms_future = rooms.get_future();
    REQUIRE(t.a.call([&](Node& n) {
                 return n.all_rooms(t.a1.id(), "/", {}, [&](RoomsResult r) { rooms.set_value(r); });
               })
                .ok());
    auto result = await(rooms_future);
    CHECK(result.missing.empty());
    CHECK(std::count(result.rooms.begin(), result.rooms.end(), "joined") == 1);
    CHECK(std::count(result.rooms.begin(), result.rooms.end(), "r2") == 1);
    CHECK(t.b1.with([](auto& s) { return s.rooms_of("b1s1").count("joined"); }) == 1);

    wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
    REQUIRE(t.b.call([&](Node& n) { return n.del_sockets(t.b1.id(), "/", all, {"joined"}); }).ok());
    std::promise<RoomsResult> again;
    auto again_future = again.get_future();
    REQUIRE(t.b.call([&](Node& n) {
                 return n.all_rooms(t.b1.id(), "/", {}, [&](RoomsResult r) { again.set_value(r); });
               })
                .ok());
    auto after = await(again_future);
    CHECK(std::count(after.rooms.begin(), after.rooms.end(), "joined") == 0);
  }

  SECTION("fetchSockets with details, and remote socket emit with ack") {
    std::promise<SocketsResult> fetched;
    auto future = fetched.get_future();
    wire::BroadcastOptions vip{0, {"vip"}, {}, std::nullopt, std::nullopt};
    REQUIRE(t.b.call([&](Node& n) {
                 return n.fetch_sockets(t.b1.id(), "/", vip,
                                        [&](SocketsResult r) { fetched.set_value(r); });
               })
                .ok());
    auto sockets = await(future);
    REQUIRE(sockets.sockets.size() == 2);
    for (const auto& s : sockets.sockets) {
      CHECK(s.has_details);
      CHECK(s.rooms.size() >= 2);
      if (s.id == "c1s1") CHECK(s.server_id == t.c.uid());
      if (s.id == "a2s1") CHECK(s.server_id == t.a.uid());
    }
    // Emit with ack to one of them, as a RemoteSocket does.
    const auto& target = sockets.sockets[0];
    wire::BroadcastOptions one{0, {}, {}, target.id, target.server_id};
    std::promise<std::vector<std::string>> acks;
    auto acks_future = acks.get_future();
    auto got = std::make_shared<std::vector<std::string>>();
    REQUIRE(
        t.b.call([&](Node& n) {
             return n.broadcast_with_ack(
                 t.b1.id(), testing_event("[\"dm\"]"), one, Millis{2000},
                 AckStream{nullptr,
                           [got](const std::string& sid, const AckResult&) { got->push_back(sid); },
                           [got, &acks](const Missing&, bool) { acks.set_value(*got); }});
           })
            .ok());
    CHECK(await(acks_future) == std::vector<std::string>{target.id});
  }

  SECTION("broadcast with acks across engines") {
    std::promise<std::pair<std::uint32_t, std::size_t>> done;
    auto future = done.get_future();
    auto count = std::make_shared<std::uint32_t>(0);
    auto acks = std::make_shared<std::size_t>(0);
    wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::string("a1s1"), std::nullopt};
    REQUIRE(t.a.call([&](Node& n) {
                 return n.broadcast_with_ack(
                     t.a1.id(), testing_event("[\"q\"]"), all, Millis{2000},
                     AckStream{[count](std::uint32_t c) { *count += c; },
                               [acks](const std::string&, const AckResult&) { ++*acks; },
                               [&, count, acks](const Missing& m, bool timed_out) {
                                 CHECK(m.empty());
                                 CHECK_FALSE(timed_out);
                                 done.set_value({*count, *acks});
                               }});
               })
                .ok());
    auto [counted, acked] = await(future);
    CHECK(counted == 4);
    CHECK(acked == 4);
  }

  SECTION("disconnectSockets after a broadcast: the broadcast arrives first") {
    wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::string("a1s1"), std::nullopt};
    REQUIRE(t.a.call([&](Node& n) {
      auto first = n.broadcast(t.a1.id(), testing_event("[\"bye\"]"), all);
      auto second = n.disconnect_sockets(t.a1.id(), "/", all, true);
      return first.ok() && second.ok();
    }));
    REQUIRE(t.b1.wait_until([](auto& s) { return s.disconnected.size() == 2; }));
    t.b1.with([](auto& s) {
      REQUIRE(s.commands.size() == 2);
      CHECK(s.commands[0].kind == CommandKind::kBroadcast);
      CHECK(s.commands[1].kind == CommandKind::kDisconnectSockets);
      CHECK(s.commands[1].close);
      CHECK(s.sids_reached() == s.disconnected);
      return 0;
    });
  }

  SECTION("serverSideEmit with acks, and serverCount") {
    std::promise<EmitResult> emitted;
    auto future = emitted.get_future();
    REQUIRE(t.c.call([&](Node& n) {
                 return n.server_side_emit(t.c1.id(), "/", "[\"hello\"]", true, Millis{3000},
                                           [&](EmitResult r) { emitted.set_value(r); });
               })
                .ok());
    auto result = await(future);
    CHECK(result.expected == 3);
    CHECK(result.responses.size() == 3);
    CHECK(t.a1.with([](auto& s) { return s.emits_received.size(); }) == 1);
    CHECK(t.c1.with([](auto& s) { return s.emits_received.size(); }) == 0);
  }
}

TEST_CASE("engines discover each other within one heartbeat round trip") {
  EngineSet set(Expiration::ttl(60));
  auto config = quick_node_config();
  config.heartbeat_interval = Millis{3'600'000};  // periodic heartbeats play no part
  config.heartbeat_timeout = Millis{7'200'000};
  auto& a = set.add(config);
  auto& b = set.add(config);
  EngineServer a1(a, "a1"), b1(b, "b1");
  a1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
  REQUIRE(eventually(b, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
  b1.attach();  // B's InitHeartbeat; A answers with a targeted Heartbeat
  CHECK(eventually(a, [](Node& n) { return peers_in(n) == 1; }));
  CHECK(eventually(b, [](Node& n) { return peers_in(n) == 1; }));
}

namespace {

bool packing(Node& n) {
  for (const auto& ns : n.status().namespaces) {
    if (ns.ns == "/") return ns.packing;
  }
  return false;
}

// Sends `count` numbered broadcasts from a1 in one go, so that they queue
// together in a's writer; true once b1 received all of them.
bool burst(runtime::Engine& a, EngineServer& a1, EngineServer& b1, int count) {
  wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  const bool sent = a.call([&](Node& n) {
    for (int i = 0; i < count; ++i) {
      if (!n.broadcast(a1.id(), testing_event("[" + std::to_string(i) + "]"), all).ok()) {
        return false;
      }
    }
    return true;
  });
  return sent && b1.wait_until([&](auto& s) { return s.delivered.size() == std::size_t(count); });
}

std::vector<std::string> payloads(EngineServer& server) {
  return server.with([](auto& s) {
    std::vector<std::string> out;
    for (const auto& d : s.delivered) out.push_back(d.packet.data->bytes);
    return out;
  });
}

}  // namespace

TEST_CASE("between siobridge engines a burst goes packed: every message once, in order") {
  // A document per message; plain packs; compressed packs.
  const int mode = GENERATE(0, 1, 2);
  const bool pack = mode > 0;
  const bool compress = mode == 2;
  INFO("pack_messages " << pack << ", compress_packs " << compress);
  EngineSet set(Expiration::ttl(60));
  auto bus = set.bus_config();
  bus.pack_messages = pack;
  bus.compress_packs = compress;
  auto& a = set.add(quick_node_config(), bus);
  // The reader's own setting does not matter: it reads what a writes.
  bus.compress_packs = !compress;
  auto& b = set.add(quick_node_config(), bus);
  EngineServer a1(a, "a1"), b1(b, "b1");
  b1.with([](auto& s) {
    s.add_socket("b1s1");
    return 0;
  });
  a1.attach();
  b1.attach();
  REQUIRE(eventually(a, [](Node& n) { return n.server_count("/") == 2; }));
  // One heartbeat interval after the namespace became active: no
  // socketioxide node can be alive and unheard.
  REQUIRE(eventually(a, packing));

  constexpr int kCount = 500;
  REQUIRE(burst(a, a1, b1, kCount));
  const auto got = payloads(b1);
  REQUIRE(got.size() == kCount);
  for (int i = 0; i < kCount; ++i) CHECK(got[i] == "[" + std::to_string(i) + "]");

  const auto& written = *a.mongo_stats();
  const auto& read = *b.mongo_stats();
  if (pack) {
    // Fewer documents than messages; each pack taken apart on the other side.
    CHECK(written.packed >= std::uint64_t(kCount));
    CHECK(written.packs > 0);
    CHECK(written.packs < written.packed);
    CHECK(read.packs_read == written.packs);
    if (compress) {
      CHECK(written.packs_compressed > 0);
      CHECK(written.pack_stored_bytes < written.pack_message_bytes);
    } else {
      CHECK(written.packs_compressed == 0);
      CHECK(written.pack_stored_bytes == written.pack_message_bytes);
    }
  } else {
    CHECK(written.packs == 0);
    CHECK(read.packs_read == 0);
  }
}
