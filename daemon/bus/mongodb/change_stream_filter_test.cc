// Documents encoded by the wire codec, inserted into the real MongoDB and read
// back through change streams with the daemon's filter: a node never sees its
// own documents unless marked echo, targeted documents reach only their target, and everything
// decodes to what was sent.
#include "daemon/bus/mongodb/change_stream_filter.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "daemon/wire/document.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::wire;
using siobridge::bus::mongodb::testing::TestDatabase;

namespace {

const std::string kColl = "socket.io-adapter";

struct Watcher {
  std::string uid;
  siobridge::bus::mongodb::testing::ClientHandle client =
      siobridge::bus::mongodb::testing::connect();
  bus::mongodb::Collection coll;
  bus::mongodb::ChangeStream stream;

  Watcher(const TestDatabase& db, std::string own_uid) : uid(std::move(own_uid)) {
    coll = bus::mongodb::open_collection(client.get(), db.name(), kColl);
    auto pipeline = bus::mongodb::change_stream_pipeline(uid);
    OwnedBson opts(BCON_NEW("maxAwaitTimeMS", BCON_INT32(200)));
    stream.reset(mongoc_collection_watch(coll.get(), pipeline.get(), opts.get()));
    const bson_t* error_doc = nullptr;
    bson_error_t error;
    if (mongoc_change_stream_error_document(stream.get(), &error, &error_doc)) {
      FAIL("watch failed: " << error.message);
    }
  }

  // Decoded documents, in arrival order, up to and including the first one from
  // `marker_origin` (inserted last, so everything before it has arrived).
  std::vector<Document> read_until_marker(const std::string& marker_request) {
    std::vector<Document> seen;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      const bson_t* event;
      if (!mongoc_change_stream_next(stream.get(), &event)) {
        bson_error_t error;
        if (mongoc_change_stream_error_document(stream.get(), &error, nullptr)) {
          FAIL("change stream error: " << error.message);
        }
        continue;
      }
      bson_iter_t it;
      REQUIRE(bson_iter_init_find(&it, event, "fullDocument"));
      std::uint32_t len;
      const std::uint8_t* data;
      bson_iter_document(&it, &len, &data);
      auto doc = decode_document(data, len);
      INFO((doc.ok() ? "" : doc.error().message));
      REQUIRE(doc.ok());
      seen.push_back(*doc);
      if (doc->extension == marker_request) return seen;
    }
    FAIL(uid << " did not see the marker within 30 s; saw " << seen.size() << " documents");
    return seen;
  }
};

void insert_all(const TestDatabase& db, const std::vector<Document>& docs,
                const std::vector<DataFormat>& formats) {
  std::vector<OwnedBson> encoded;
  std::vector<const bson_t*> pointers;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    encoded.emplace_back();
    encode_document(docs[i], EncodeOptions{formats[i], 1700000000000}, encoded.back().get());
    pointers.push_back(encoded.back().get());
  }
  const auto coll = db.open(kColl);
  bson_error_t error;
  // One ordered insertMany, as the daemon's writer does.
  const bool ok = mongoc_collection_insert_many(coll.get(), pointers.data(), pointers.size(),
                                                nullptr, nullptr, &error);
  INFO(error.message);
  REQUIRE(ok);
}

Document request_doc(const std::string& origin, std::optional<std::string> target,
                     const Request& request) {
  return Document{{MessageKind::kRequest, "/", origin, std::move(target), std::nullopt},
                  encode_request(request),
                  std::nullopt};
}

}  // namespace

TEST_CASE("change streams deliver exactly what the PROTOCOL.md filter allows, decoded equal") {
  TestDatabase db;
  REQUIRE(bus::mongodb::ensure_collection(db.client(), db.name(), kColl,
                                          bus::mongodb::Expiration::ttl(60))
              .ok());
  const std::string x = generate_id(), y = generate_id(), z = generate_id();
  Watcher watch_x(db, x), watch_y(db, y);

  Request broadcast{x,
                    generate_id(),
                    RequestType::kBroadcast,
                    Packet{"/", PacketType::kEvent,
                           Value{ValueKind::kStr, "[\"news\",\"\xc3\xa9t\xc3\xa9\"]", std::nullopt},
                           std::nullopt, std::nullopt},
                    std::nullopt,
                    BroadcastOptions{broadcast_flags::kBroadcast, {"r"}, {}, x, {}}};
  Request heartbeat{y, generate_id(), RequestType::kHeartbeat, {}, {}, {}};
  Request init_reply{z, generate_id(), RequestType::kHeartbeat, {}, {}, {}};
  Request all_rooms{z, generate_id(), RequestType::kAllRooms, {}, {}, BroadcastOptions{}};
  Response ack_count{y, BroadcastAckCount{2}};

  std::vector<Document> docs = {
      request_doc(x, std::nullopt, broadcast),  // 0: from X to all
      request_doc(y, std::nullopt, heartbeat),  // 1: from Y to all (BinData)
      request_doc(z, x, init_reply),            // 2: Z -> X only
      request_doc(z, y, all_rooms),             // 3: Z -> Y only
      Document{{MessageKind::kResponse, "/", y, x, broadcast.id}, encode_response(ack_count), {}},
      Document{{MessageKind::kRequest, "/", z, std::string(kSiobridgeTarget), {}}, "\x01", "ext"},
      request_doc(x, std::nullopt, broadcast),  // 6: from X to all, read back by X too
      request_doc(z, std::nullopt, heartbeat),  // 7: marker, from Z to all
  };
  docs[6].echo = true;
  docs[7].extension = "marker";
  docs[1].header.ns = "/chat";
  insert_all(db, docs,
             {DataFormat::kInt32Array, DataFormat::kBinary, DataFormat::kInt32Array,
              DataFormat::kInt32Array, DataFormat::kInt32Array, DataFormat::kBinary,
              DataFormat::kInt32Array, DataFormat::kInt32Array});

  auto seen_by_x = watch_x.read_until_marker("marker");
  auto seen_by_y = watch_y.read_until_marker("marker");
  CHECK(seen_by_x == std::vector<Document>{docs[1], docs[2], docs[4], docs[5], docs[6], docs[7]});
  CHECK(seen_by_y == std::vector<Document>{docs[0], docs[3], docs[5], docs[6], docs[7]});

  // The payloads decode to what was sent.
  auto decoded_broadcast = decode_request(seen_by_y[0].data);
  REQUIRE(decoded_broadcast.ok());
  CHECK(*decoded_broadcast == broadcast);
  auto decoded_rooms = decode_request(seen_by_y[1].data);
  REQUIRE(decoded_rooms.ok());
  CHECK(*decoded_rooms == all_rooms);
  auto decoded_heartbeat = decode_request(seen_by_x[0].data);
  REQUIRE(decoded_heartbeat.ok());
  CHECK(*decoded_heartbeat == heartbeat);
  auto decoded_count = decode_response(seen_by_x[2].data);
  REQUIRE(decoded_count.ok());
  CHECK(*decoded_count == ack_count);
}

TEST_CASE("a hand-written socketioxide-style document decodes") {
  TestDatabase db;
  REQUIRE(bus::mongodb::ensure_collection(db.client(), db.name(), kColl,
                                          bus::mongodb::Expiration::capped(1 << 20))
              .ok());
  const std::string me = generate_id();
  Watcher watcher(db, me);
  // Vector 2 of PROTOCOL.md, written the way the reference's BSON serializer does:
  // t, origin, ns, data as int32 array, no createdAt (capped collection).
  const std::string origin(16, 'A');
  const auto payload =
      encode_request(Request{origin, std::string(16, 'B'), RequestType::kHeartbeat, {}, {}, {}});
  OwnedBson doc(BCON_NEW("t", "Req", "origin", BCON_UTF8(origin.c_str()), "ns", "/"));
  bson_t array;
  bson_append_array_begin(doc.get(), "data", 4, &array);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    bson_append_int32(&array, std::to_string(i).c_str(), -1, static_cast<std::uint8_t>(payload[i]));
  }
  bson_append_array_end(doc.get(), &array);
  bson_append_binary(doc.get(), "siobridge", -1, BSON_SUBTYPE_BINARY,
                     reinterpret_cast<const std::uint8_t*>("marker"), 6);
  const auto coll = db.open(kColl);
  bson_error_t error;
  REQUIRE(mongoc_collection_insert_one(coll.get(), doc.get(), nullptr, nullptr, &error));

  auto seen = watcher.read_until_marker("marker");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].data == payload);
  auto request = decode_request(seen[0].data);
  REQUIRE(request.ok());
  CHECK(request->type == RequestType::kHeartbeat);
}
