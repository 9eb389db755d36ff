// siobridged as a process on the real MongoDB of $MONGODB_URI, fed bad
// documents inserted into its collection by another program (this test, with
// the C driver): each is skipped and counted in /metrics, the daemon keeps
// serving, and the memory of a 15 MiB one is given back to the system.
#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "daemon/wire/document.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/pack.h"
#include "daemon/wire/payload_codec.h"
#include "daemon/wire/testing/zstd_frame.h"
#include "tests/process/process_helpers.h"
#include "tests/support/client_server.h"
#include "tests/support/daemon_process.h"

using namespace siobridge;
using namespace siobridge::testing;
using siobridge::bus::mongodb::testing::mongodb_uri;
using siobridge::bus::mongodb::testing::TestDatabase;
using siobridge::wire::testing::zstd_frame;

namespace {

constexpr const char* kCollection = "socket.io-adapter";
constexpr const char* kPayloadErrors = "siobridge_decode_errors_total{stage=\"payload\"}";

// A daemon with metrics, one server attached in "/", its change stream open.
struct Fixture {
  TestDatabase db;
  int metrics_port = free_port();
  std::unique_ptr<DaemonProcess> daemon;
  std::unique_ptr<ClientServer> server;

  Fixture() {
    // Created before the daemon starts: the test MongoDB cannot take
    // concurrent creation (docs/testing.md).
    REQUIRE(bus::mongodb::ensure_collection(db.client(), db.name(), kCollection,
                                            bus::mongodb::Expiration::ttl(60))
                .ok());
    daemon = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"--mongodb-uri", mongodb_uri(), "--mongodb-database", db.name(),
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)},
        // AddressSanitizer's quarantine would hold a 15 MiB buffer for long.
        std::map<std::string, std::string>{{"ASAN_OPTIONS", "quarantine_size_mb=8"}});
    REQUIRE(daemon->wait_ready());
    server = std::make_unique<ClientServer>(daemon->address(), "a");
    REQUIRE(server->client().wait_attached(std::chrono::seconds(20)));
    // Inserted documents reach the daemon only once its change stream is open.
    REQUIRE(poll_until([&] {
      auto s = server->client().status();
      return s.ok() && s.value.bus_state() == "ready" &&
             metric("siobridge_change_stream_opens_total") >= 1;
    }));
  }

  std::string metrics() const { return http_get(metrics_port, "/metrics"); }
  double metric(const std::string& name) const { return metric_value(metrics(), name); }

  void insert(const wire::Document& document,
              wire::DataFormat format = wire::DataFormat::kInt32Array) {
    bson_t bson;
    bson_init(&bson);
    wire::encode_document(document, {.format = format, .created_at_ms = std::nullopt}, &bson);
    mongoc_collection_t* collection = db.collection(kCollection);
    bson_error_t error;
    const bool ok = mongoc_collection_insert_one(collection, &bson, nullptr, nullptr, &error);
    mongoc_collection_destroy(collection);
    bson_destroy(&bson);
    INFO(error.message);
    REQUIRE(ok);
  }

  // A Res document addressed to the daemon, answering a request it never made.
  wire::Document response(wire::Bytes payload) const {
    wire::Document document;
    document.header.kind = wire::MessageKind::kResponse;
    document.header.ns = "/";
    document.header.origin = kPeer;
    document.header.target = server->client().node_uid();
    document.header.request = wire::generate_id();
    document.data = std::move(payload);
    return document;
  }

  const std::string kPeer = wire::generate_id();
};

// Whether the daemon's log holds a warning that starts with `text`: skipped
// input must show at the default level, not only in the metrics.
bool warned(const DaemonProcess& daemon, const std::string& text) {
  return daemon.log().find("warning " + text) != std::string::npos;
}

// msgpack of whatever `fill` packs.
template <typename Fn>
wire::Bytes pack(Fn&& fill) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  fill(packer);
  return wire::Bytes(buffer.data(), buffer.size());
}

}  // namespace

TEST_CASE("every malformed response addressed to the daemon is skipped and counted") {
  Fixture f;
  const std::string peer = f.kPeer, sid = wire::generate_id();
  REQUIRE(f.metric(kPayloadErrors) == 0);
  REQUIRE(f.metric("siobridge_late_responses_total") == 0);

  std::vector<wire::Bytes> bad;
  bad.push_back(pack([&](auto& p) {  // an unknown response type
    p.pack_array(2).pack(peer).pack_array(2).pack(7).pack_nil();
  }));
  bad.push_back(pack([&](auto& p) {  // a body that is not an array
    p.pack_array(2).pack(peer).pack(std::string("body"));
  }));
  bad.push_back(pack([&](auto& p) {  // a FetchSockets body that is not an array
    p.pack_array(2).pack(peer).pack_array(2).pack(3).pack(42);
  }));
  bad.push_back(pack([&](auto& p) {  // an Err that is no AckError
    p.pack_array(2).pack(peer).pack_array(2).pack(0).pack_array(2).pack(sid).pack_map(1);
    p.pack(std::string("Err")).pack(42);
  }));
  bad.push_back(pack([&](auto& p) {  // an Err of an unknown variant
    p.pack_array(2).pack(peer).pack_array(2).pack(0).pack_array(2).pack(sid).pack_map(1);
    p.pack(std::string("Err")).pack(std::string("Exploded"));
  }));
  bad.push_back(pack([&](auto& p) {  // a FetchSockets entry of two fields, not three
    p.pack_array(2).pack(peer).pack_array(2).pack(3).pack_array(1).pack_array(2);
    p.pack(sid).pack(peer);
  }));
  bad.push_back(wire::Bytes("\xc1\xc1", 2));  // not msgpack at all
  for (auto& payload : bad) f.insert(f.response(std::move(payload)));
  auto extension = f.response({});  // a siobridge extension answer that does not decode
  extension.extension = wire::Bytes("\x07garbage");
  f.insert(extension);
  const double expected = static_cast<double>(bad.size() + 1);

  // Then a well-formed answer to a request the daemon never made: documents
  // arrive in insertion order, so once it is counted every bad one was read.
  f.insert(f.response(pack([&](auto& p) {
    p.pack_array(2).pack(peer).pack_array(2).pack(1).pack(5);  // BroadcastAckCount 5
  })));
  REQUIRE(poll_until([&] { return f.metric("siobridge_late_responses_total") >= 1; }));
  const std::string metrics = f.metrics();
  INFO(metrics);
  CHECK(metric_value(metrics, kPayloadErrors) == expected);
  CHECK(metric_value(metrics, "siobridge_late_responses_total") == 1);
  CHECK(metric_value(metrics, "siobridge_decode_errors_total{stage=\"document\"}") == 0);
  // Warnings are written at once (flush_on warn).
  INFO(f.daemon->log());
  CHECK(warned(*f.daemon, "skipping a response from " + peer + ": "));
  // Still serving.
  auto count = f.server->client().server_count("/");
  REQUIRE(count.ok());
  CHECK(count.value.count() == 1);
}

TEST_CASE("a 15 MiB garbage document is skipped, counted, and its memory given back") {
  Fixture f;
  const double releases_before = f.metric("siobridge_memory_releases_total");
  REQUIRE(releases_before >= 0);  // the metric exists
  CHECK(f.metric("siobridge_resident_memory_bytes") > 0);

  // A request to every node in "/" whose payload is one 15 MiB msgpack bin:
  // valid msgpack, decoded in full, and no request.
  wire::Document garbage;
  garbage.header.kind = wire::MessageKind::kRequest;
  garbage.header.ns = "/";
  garbage.header.origin = f.kPeer;
  garbage.data = pack([](auto& p) {
    const std::uint32_t size = 15u << 20;
    p.pack_bin(size);
    p.pack_bin_body(std::string(size, 'x').data(), size);
  });
  f.insert(garbage, wire::DataFormat::kBinary);

  REQUIRE(poll_until([&] { return f.metric(kPayloadErrors) >= 1; }, std::chrono::seconds(60)));
  const std::string metrics = f.metrics();
  INFO(metrics);
  CHECK(metric_value(metrics, kPayloadErrors) == 1);
  // Given back once the document was read and once it was decoded.
  CHECK(metric_value(metrics, "siobridge_memory_releases_total") >= releases_before + 1);
  CHECK(metric_value(metrics, "siobridge_resident_memory_bytes") > 0);
  REQUIRE(f.daemon->running());
  auto status = f.server->client().status();
  REQUIRE(status.ok());
  CHECK(status.value.bus_state() == "ready");
  CHECK(f.daemon->terminate() == 0);
}

TEST_CASE("compressed packs that do not open are skipped and counted; the next one is read") {
  Fixture f;
  f.server->with([](auto& s) {
    s.add_socket("sock1");
    return 0;
  });
  // A broadcast to every socket of "/" of a 4 KiB event: a pack that compresses.
  const std::string event = "[\"big\",\"" + std::string(4096, 'z') + "\"]";
  const wire::Request broadcast{
      f.kPeer,
      wire::generate_id(),
      wire::RequestType::kBroadcast,
      wire::Packet{
          "/", wire::PacketType::kEvent, wire::Value{wire::ValueKind::kStr, event, {}}, {}, {}},
      std::nullopt,
      wire::BroadcastOptions{
          wire::broadcast_flags::kBroadcast, {}, {}, std::nullopt, std::nullopt}};
  const std::vector<wire::PackedMessage> messages = {
      {wire::MessageKind::kRequest, "/", std::nullopt, std::nullopt,
       wire::encode_request(broadcast), std::nullopt}};
  const wire::Bytes content = wire::encode_packed_messages(messages);
  const std::vector<wire::PackedMessage> huge = {
      {wire::MessageKind::kRequest, "/", std::nullopt, std::nullopt,
       wire::Bytes(wire::kMaxPackContentBytes, '\0'), std::nullopt}};

  const std::vector<wire::Bytes> bad = {
      "not a zstd frame",
      zstd_frame(content, false),       // no content size
      zstd_frame(content, true) + "x",  // a byte after the frame
      zstd_frame("\x93\x01", true),     // opens to something that is not messages
      // Declares 32 MiB and more in a frame of a few KiB: refused unopened.
      zstd_frame(wire::encode_packed_messages(huge), true),
  };
  auto carrying = [&](wire::Bytes frame) {
    return wire::Document{{wire::MessageKind::kRequest, "/", f.kPeer,
                           std::string(wire::kSiobridgeTarget), std::nullopt},
                          {},
                          wire::encode_extension(wire::CompressedPack{std::move(frame)})};
  };
  for (const auto& frame : bad) f.insert(carrying(frame), wire::DataFormat::kBinary);
  wire::PackCompressor compressor;
  const auto good = wire::build_pack(f.kPeer, messages, compressor);
  REQUIRE(good.compressed);
  f.insert(good.document, wire::DataFormat::kBinary);

  // Documents arrive in insertion order: once the good one is delivered, every
  // bad one was read.
  REQUIRE(f.server->wait_until([](const auto& s) { return !s.delivered.empty(); }));
  const std::string metrics = f.metrics();
  INFO(metrics);
  CHECK(metric_value(metrics, "siobridge_decode_errors_total{stage=\"document\"}") ==
        static_cast<double>(bad.size()));
  CHECK(metric_value(metrics, "siobridge_mongodb_packs_read_total") == 1);
  f.server->with([&](const auto& s) {
    REQUIRE(s.delivered.size() == 1);
    CHECK(s.delivered[0].sid == "sock1");
    CHECK(s.delivered[0].packet.data->bytes == event);
    return 0;
  });
  INFO(f.daemon->log());
  CHECK(warned(*f.daemon, "skipping a malformed packed document: "));
  REQUIRE(f.daemon->running());
}
