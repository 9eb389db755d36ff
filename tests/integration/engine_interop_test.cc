// An engine talking to a socketioxide node through MongoDB. The test plays the
// socketioxide node: it inserts documents shaped the way the reference writes
// them (payloads from hex, not from siobridge's encoder) and reads the
// engine's answers through its own change stream with the PROTOCOL.md filter.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <functional>

#include "daemon/bus/mongodb/change_stream_filter.h"
#include "daemon/wire/document.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"
#include "daemon/wire/testing/hex.h"
#include "tests/integration/engine_fixture.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::testing;
using bus::mongodb::Expiration;
using siobridge::wire::testing::from_hex;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

// The socketioxide stand-in: uid "XXXXXXXXXXXXXXXX".
class RustNode {
 public:
  explicit RustNode(const EngineSet& set) : client_(connect(set.uri())) {
    coll_ = mongoc_client_get_collection(client_.get(), set.db().name().c_str(),
                                         EngineSet::kCollection);
    auto pipeline = bus::mongodb::change_stream_pipeline(uid);
    wire::OwnedBson opts(BCON_NEW("maxAwaitTimeMS", BCON_INT32(200)));
    stream_ = mongoc_collection_watch(coll_, pipeline.get(), opts.get());
  }
  ~RustNode() {
    mongoc_change_stream_destroy(stream_);
    mongoc_collection_destroy(coll_);
  }

  // Announces itself as the reference does at start (InitHeartbeat) and takes
  // the engine's answer, so that the engine knows a socketioxide peer.
  void introduce() {
    send_request("96 b0 " + std::string(kUidHex) + " b0 A… 15 c0 c0 c0");
    (void)next();  // the engine's Heartbeat
  }
  // The uid's bytes in a payload's hex.
  static constexpr const char* kUidHex = "58 58 58 58 58 58 58 58 58 58 58 58 58 58 58 58";

  // Inserts {t:"Req", origin, ns:"/", data:[int32...]} the way the reference does.
  void send_request(const std::string& payload_hex) {
    const auto payload = from_hex(payload_hex);
    wire::OwnedBson doc(BCON_NEW("t", "Req", "origin", BCON_UTF8(uid.c_str()), "ns", "/"));
    bson_t array;
    bson_append_array_begin(doc.get(), "data", 4, &array);
    for (std::size_t i = 0; i < payload.size(); ++i) {
      bson_append_int32(&array, std::to_string(i).c_str(), -1,
                        static_cast<std::uint8_t>(payload[i]));
    }
    bson_append_array_end(doc.get(), &array);
    bson_error_t error;
    REQUIRE(mongoc_collection_insert_one(coll_, doc.get(), nullptr, nullptr, &error));
  }

  // The next document targeted at this node. Every document seen on the way
  // (the engine's heartbeats too) is checked against PROTOCOL.md section 2 on
  // the raw BSON before decoding.
  wire::Document next() {
    return next_where([this](const wire::Document& doc) { return doc.header.target == uid; });
  }

  // The next document of the engine's for which `wanted` holds.
  wire::Document next_where(const std::function<bool(const wire::Document&)>& wanted) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    const bson_t* event;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!mongoc_change_stream_next(stream_, &event)) continue;
      bson_iter_t it;
      REQUIRE(bson_iter_init_find(&it, event, "fullDocument"));
      std::uint32_t len;
      const std::uint8_t* data;
      bson_iter_document(&it, &len, &data);
      bson_t full;
      REQUIRE(bson_init_static(&full, data, len));
      check_layout(&full);
      auto doc = wire::decode_document(&full);
      REQUIRE(doc.ok());
      ++seen;
      if (wanted(*doc)) return *doc;
    }
    FAIL("nothing arrived for the socketioxide node within 20 s");
    return {};
  }

  const std::string uid = std::string(16, 'X');
  int seen = 0;

 private:
  static void check_layout(const bson_t* doc) {
    bson_iter_t it, element;
    REQUIRE(bson_iter_init_find(&it, doc, "_id"));
    CHECK(BSON_ITER_HOLDS_OID(&it));
    for (const char* field : {"t", "ns", "origin"}) {
      INFO(field);
      REQUIRE(bson_iter_init_find(&it, doc, field));
      CHECK(BSON_ITER_HOLDS_UTF8(&it));
    }
    REQUIRE(bson_iter_init_find(&it, doc, "createdAt"));  // ttl strategy
    CHECK(BSON_ITER_HOLDS_DATE_TIME(&it));
    REQUIRE(bson_iter_init_find(&it, doc, "data"));
    REQUIRE(BSON_ITER_HOLDS_ARRAY(&it));  // an int32 array, not BinData
    bson_iter_recurse(&it, &element);
    while (bson_iter_next(&element)) {
      REQUIRE(BSON_ITER_HOLDS_INT32(&element));
      REQUIRE(bson_iter_int32(&element) >= 0);
      REQUIRE(bson_iter_int32(&element) <= 255);
    }
  }

  ClientHandle client_;
  mongoc_collection_t* coll_ = nullptr;
  mongoc_change_stream_t* stream_ = nullptr;
};

}  // namespace

TEST_CASE("an engine answers socketioxide-format requests, and its documents follow PROTOCOL.md") {
  EngineSet set(Expiration::ttl(60));
  auto& engine = set.add();
  EngineServer a1(engine, "a1");
  a1.with([](auto& s) {
    s.add_socket("CCCCCCCCCCCCCCCC", {"room1"});
    return 0;
  });
  a1.attach();
  REQUIRE(
      eventually(engine, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
  RustNode rust(set);
  const std::string X = "58 58 58 58 58 58 58 58 58 58 58 58 58 58 58 58";  // "XXXXXXXXXXXXXXXX"

  // InitHeartbeat: [X, id, 21, nil, nil, nil]; answered with a Heartbeat targeted at X.
  rust.send_request("96 b0 " + X + " b0 A… 15 c0 c0 c0");
  auto reply = rust.next();
  CHECK(reply.header.kind == wire::MessageKind::kRequest);
  CHECK(reply.header.target == rust.uid);
  CHECK(reply.header.origin == engine.uid());
  auto heartbeat = wire::decode_request(reply.data);
  REQUIRE(heartbeat.ok());
  CHECK(heartbeat->type == wire::RequestType::kHeartbeat);
  CHECK(heartbeat->node_id == engine.uid());
  REQUIRE(eventually(engine, [](Node& n) { return n.server_count("/") == 2; }));

  SECTION("AllRooms") {
    // [X, "BBBB…", 3, nil, nil, [0, [], [], nil, nil]]
    rust.send_request("96 b0 " + X + " b0 B… 03 c0 c0 95 00 90 90 c0 c0");
    auto doc = rust.next();
    CHECK(doc.header.kind == wire::MessageKind::kResponse);
    CHECK(doc.header.request == std::string(16, 'B'));
    auto response = wire::decode_response(doc.data);
    REQUIRE(response.ok());
    CHECK(response->node_id == engine.uid());
    CHECK(std::get<wire::RoomList>(response->body).rooms ==
          std::vector<std::string>{"CCCCCCCCCCCCCCCC", "room1"});
  }

  SECTION("FetchSockets") {
    // opts: rooms ["room1"]
    rust.send_request("96 b0 " + X + " b0 B… 06 c0 c0 95 00 91 a5 72 6f 6f 6d 31 90 c0 c0");
    auto doc = rust.next();
    auto response = wire::decode_response(doc.data);
    REQUIRE(response.ok());
    const auto& list = std::get<wire::SocketList>(response->body);
    REQUIRE(list.sockets.size() == 1);
    CHECK(list.sockets[0] == wire::SocketRef{"CCCCCCCCCCCCCCCC", engine.uid(), "/"});
    CHECK_FALSE(doc.extension);  // siobridge details only for siobridge requesters
  }

  SECTION("BroadcastWithAck") {
    // Broadcast of ["test",2] to everyone (flags 0x02), as vector 3 of PROTOCOL.md.
    rust.send_request("96 b0 " + X +
                      " b0 B… 01 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d c0 c0 "
                      "c0 c0 95 02 90 90 c0 c0");
    auto first = wire::decode_response(rust.next().data);
    REQUIRE(first.ok());
    CHECK(std::get<wire::BroadcastAckCount>(first->body).count == 1);
    auto second = wire::decode_response(rust.next().data);
    REQUIRE(second.ok());
    const auto& ack = std::get<wire::BroadcastAck>(second->body);
    CHECK(ack.sid == "CCCCCCCCCCCCCCCC");
    CHECK(std::get<wire::Value>(ack.result).bytes == "[\"ack:CCCCCCCCCCCCCCCC\"]");
    CHECK(a1.with([](auto& s) { return s.delivered.at(0).packet.data->bytes; }) == "[\"test\",2]");
  }
}

// Documents of a namespace with a socketioxide node in it are never packed
// (docs/PROTOCOL.md section 18): it gets every broadcast as a document it reads.
TEST_CASE("a socketioxide node in the namespace gets every broadcast as a document of its own") {
  EngineSet set(Expiration::ttl(60));
  auto bus = set.bus_config();
  bus.pack_messages = true;  // what it would do without the socketioxide node
  auto& engine = set.add(quick_node_config(), bus);
  EngineServer a1(engine, "a1");
  a1.attach();
  REQUIRE(
      eventually(engine, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
  RustNode rust(set);
  rust.introduce();
  auto request_of = [](const wire::Document& doc) -> std::optional<wire::Request> {
    if (doc.header.kind != wire::MessageKind::kRequest || doc.header.target) return std::nullopt;
    auto request = wire::decode_request(doc.data);
    return request.ok() ? std::optional<wire::Request>(*request) : std::nullopt;
  };
  // A periodic Heartbeat of the engine: a whole interval passed since the
  // namespace became active, so the engine would pack by now if it could.
  (void)rust.next_where([&](const wire::Document& doc) {
    auto request = request_of(doc);
    return request && request->type == wire::RequestType::kHeartbeat;
  });

  constexpr int kCount = 50;
  wire::BroadcastOptions all{flags::kBroadcast, {}, {}, std::nullopt, std::nullopt};
  REQUIRE(engine.call([&](Node& n) {
    for (int i = 0; i < kCount; ++i) {
      if (!n.broadcast(a1.id(), testing_event("[" + std::to_string(i) + "]"), all).ok()) {
        return false;
      }
    }
    return true;
  }));
  for (int i = 0; i < kCount; ++i) {
    auto doc = rust.next_where([&](const wire::Document& d) {
      auto request = request_of(d);
      return request && request->type == wire::RequestType::kBroadcast;
    });
    auto request = wire::decode_request(doc.data);
    REQUIRE(request.ok());
    REQUIRE(request->packet);
    CHECK(request->packet->data->bytes == "[" + std::to_string(i) + "]");
  }
  CHECK(engine.mongo_stats()->packs == 0);
}

namespace {

// Heartbeats long enough that only discovery at once can make a namespace
// pack within the test.
core::NodeConfig slow_heartbeats() {
  auto config = quick_node_config();
  config.heartbeat_interval = Millis{60000};
  config.heartbeat_timeout = Millis{120000};
  config.discovery_lookup = true;
  return config;
}

bool packing(Node& n) {
  for (const auto& ns : n.status().namespaces)
    if (ns.ns == "/") return ns.packing;
  return false;
}

}  // namespace

TEST_CASE("discovery at once: a namespace no socketioxide node wrote to lately packs at once") {
  EngineSet set(Expiration::ttl(300));
  auto bus = set.bus_config();
  bus.pack_messages = true;
  auto& engine = set.add(slow_heartbeats(), bus);
  EngineServer a1(engine, "a1");
  a1.attach();
  REQUIRE(eventually(engine, [](Node& n) { return n.stats().discovery_clear == 1; }));
  CHECK(engine.call([](Node& n) { return packing(n); }));
}

TEST_CASE("discovery at once: a socketioxide node seen in the collection keeps it unpacked") {
  EngineSet set(Expiration::ttl(300));
  auto bus = set.bus_config();
  bus.pack_messages = true;
  RustNode rust(set);
  // Its periodic Heartbeat, written before the engine's server attached.
  rust.send_request("96 b0 " + std::string(RustNode::kUidHex) + " b0 A… 14 c0 c0 c0");
  auto& engine = set.add(slow_heartbeats(), bus);
  EngineServer a1(engine, "a1");
  a1.attach();
  REQUIRE(eventually(engine, [](Node& n) { return n.stats().discovery_seen == 1; }));
  CHECK_FALSE(engine.call([](Node& n) { return packing(n); }));
}

namespace {

// The msgpack str of a 16-character id, in PROTOCOL.md's hex notation.
std::string str16_hex(const std::string& id) {
  std::string out = "b0";
  for (unsigned char c : id) out += fmt::format(" {:02x}", c);
  return out;
}

}  // namespace

// socket.io's 20-character socket ids reach a socketioxide node as valid
// 16-character aliases it can use (docs/PROTOCOL.md section 15): in
// FetchSockets, in acks, and back in to() and socketsJoin.
TEST_CASE("a socketioxide node sees 16-character aliases of socket.io ids and can use them") {
  EngineSet set(Expiration::ttl(60));
  auto& engine = set.add();
  EngineServer a1(engine, "a1");
  const std::string sid = "Xn3-qR_0aB9cDeFgHiJk";  // vector A1
  const std::string alias = "MPNtUKatuh9NHXdI";
  a1.with([&](auto& s) {
    s.add_socket(sid, {"room1"});
    return 0;
  });
  a1.attach();
  REQUIRE(
      eventually(engine, [](Node& n) { return n.status().bus_state == bus::BusState::kReady; }));
  RustNode rust(set);
  rust.introduce();
  const std::string X = RustNode::kUidHex;

  // FetchSockets in room1: the socket under its alias.
  rust.send_request("96 b0 " + X + " b0 B… 06 c0 c0 95 00 91 a5 72 6f 6f 6d 31 90 c0 c0");
  auto fetched = wire::decode_response(rust.next().data);
  REQUIRE(fetched.ok());
  const auto& list = std::get<wire::SocketList>(fetched->body);
  REQUIRE(list.sockets.size() == 1);
  CHECK(list.sockets[0].id == alias);

  // to(alias): a Broadcast of ["test",2] to the room named by the alias
  // reaches the real socket.
  rust.send_request("96 b0 " + X +
                    " b0 C… 00 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d c0 c0 " +
                    "c0 c0 95 00 91 " + str16_hex(alias) + " 90 c0 c0");
  REQUIRE(a1.wait_until([](auto& s) { return s.delivered.size() == 1; }));
  CHECK(a1.with([](auto& s) { return s.delivered[0].sid; }) == sid);

  // socketsJoin on the alias: [X, id, 4, nil, ["joined"], opts rooms [alias]].
  rust.send_request("96 b0 " + X + " b0 D… 04 c0 91 a6 6a 6f 69 6e 65 64 95 00 91 " +
                    str16_hex(alias) + " 90 c0 c0");
  REQUIRE(a1.wait_until([&](auto& s) { return s.rooms_of(sid).count("joined") == 1; }));

  // emitWithAck to everyone: the ack comes back under the alias.
  rust.send_request("96 b0 " + X +
                    " b0 E… 01 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d c0 c0 " +
                    "c0 c0 95 02 90 90 c0 c0");
  auto count = wire::decode_response(rust.next().data);
  REQUIRE(count.ok());
  CHECK(std::get<wire::BroadcastAckCount>(count->body).count == 1);
  auto ack = wire::decode_response(rust.next().data);
  REQUIRE(ack.ok());
  CHECK(std::get<wire::BroadcastAck>(ack->body).sid == alias);
}
