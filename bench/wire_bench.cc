// Codec throughput: a message encoded to its MongoDB document and decoded back,
// as a node does for every message it sends and receives (msgpack payload and
// BSON document together). Targets on one core: >= 1,000,000 heartbeat round
// trips/s and >= 100 MB/s of payload for 10 KiB broadcasts.
#include <benchmark/benchmark.h>

#include <random>

#include "daemon/wire/document.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge::wire;

namespace {

const std::string kNode = "AAAAAAAAAAAAAAAA";

// JSON-parser text of `size` bytes: ["message","xxxx..."].
std::string json_event(std::size_t size) {
  std::string text = "[\"message\",\"";
  text.append(size - text.size() - 2, 'x');
  text += "\"]";
  return text;
}

std::string random_bytes(std::size_t size) {
  std::mt19937 rng(1);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

Request broadcast(Value value) {
  Request r;
  r.node_id = kNode;
  r.id = generate_id();
  r.type = RequestType::kBroadcast;
  r.packet = Packet{"/", PacketType::kEvent, std::move(value), std::nullopt, std::nullopt};
  r.opts = BroadcastOptions{broadcast_flags::kBroadcast, {"room"}, {}, "CCCCCCCCCCCCCCCC", {}};
  return r;
}

// Sender: request -> msgpack -> BSON. Receiver: BSON -> msgpack -> request.
void round_trip(benchmark::State& state, const Request& request, DataFormat format) {
  Document doc;
  doc.header = DocumentHeader{MessageKind::kRequest, "/", kNode, std::nullopt, std::nullopt};
  const std::size_t payload =
      request.packet && request.packet->data ? request.packet->data->bytes.size() : 0;
  bson_t bson;
  bson_init(&bson);
  for (auto _ : state) {
    doc.data.clear();
    encode_request(request, doc.data);
    bson_reinit(&bson);
    encode_document(doc, EncodeOptions{format, 1700000000000}, &bson);

    auto received = decode_document(&bson);
    auto decoded = decode_request(received->data);
    benchmark::DoNotOptimize(decoded);
    if (!decoded.ok()) state.SkipWithError("decode failed");
  }
  bson_destroy(&bson);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload));
  state.counters["doc_bytes"] = static_cast<double>(bson.len);
}

void BM_HeartbeatRoundTrip(benchmark::State& state) {
  Request hb{kNode, generate_id(), RequestType::kHeartbeat, {}, {}, {}};
  round_trip(state, hb, DataFormat::kInt32Array);
}
BENCHMARK(BM_HeartbeatRoundTrip);

void BM_BroadcastJsonRoundTrip(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  round_trip(state, broadcast(Value{ValueKind::kStr, json_event(size), std::nullopt}),
             DataFormat::kInt32Array);
}
BENCHMARK(BM_BroadcastJsonRoundTrip)->Arg(100)->Arg(10240);

// msgpack-parser payloads use every byte value: half need the two-byte uint8 form.
void BM_BroadcastBinaryRoundTrip(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  round_trip(state, broadcast(Value{ValueKind::kBytes, random_bytes(size), std::nullopt}),
             DataFormat::kInt32Array);
}
BENCHMARK(BM_BroadcastBinaryRoundTrip)->Arg(100)->Arg(10240);

// The compact BinData mode (siobridge-only clusters).
void BM_BroadcastJsonRoundTripBinData(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  round_trip(state, broadcast(Value{ValueKind::kStr, json_event(size), std::nullopt}),
             DataFormat::kBinary);
}
BENCHMARK(BM_BroadcastJsonRoundTripBinData)->Arg(100)->Arg(10240);

// The obvious libbson way, one bson_append_int32 per byte, for comparison with
// the fast path encode_document takes.
void BM_NaiveInt32ArrayEncode(benchmark::State& state) {
  const auto bytes = json_event(static_cast<std::size_t>(state.range(0)));
  bson_t bson;
  bson_init(&bson);
  for (auto _ : state) {
    bson_reinit(&bson);
    bson_t child;
    bson_append_array_begin(&bson, "data", 4, &child);
    char key_buf[16];
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const char* key;
      std::size_t key_len =
          bson_uint32_to_string(static_cast<std::uint32_t>(i), &key, key_buf, sizeof key_buf);
      bson_append_int32(&child, key, static_cast<int>(key_len),
                        static_cast<std::uint8_t>(bytes[i]));
    }
    bson_append_array_end(&bson, &child);
    benchmark::DoNotOptimize(bson.len);
  }
  bson_destroy(&bson);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_NaiveInt32ArrayEncode)->Arg(10240);

void BM_FastInt32ArrayEncode(benchmark::State& state) {
  Document doc;
  doc.header = DocumentHeader{MessageKind::kRequest, "/", kNode, std::nullopt, std::nullopt};
  doc.data = json_event(static_cast<std::size_t>(state.range(0)));
  bson_t bson;
  bson_init(&bson);
  for (auto _ : state) {
    bson_reinit(&bson);
    encode_document(doc, {}, &bson);
    benchmark::DoNotOptimize(bson.len);
  }
  bson_destroy(&bson);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.data.size()));
}
BENCHMARK(BM_FastInt32ArrayEncode)->Arg(10240);

}  // namespace

BENCHMARK_MAIN();
