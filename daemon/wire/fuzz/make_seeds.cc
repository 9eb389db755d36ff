// Writes the seed corpora of the fuzz targets: valid payloads of every request
// and response type, every extension, and documents of both data formats.
//   make_seeds OUTPUT_DIR   creates OUTPUT_DIR/{request,response,document,extension,pack}/
#include <filesystem>
#include <fstream>
#include <iostream>

#include "daemon/wire/document.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/pack.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge::wire;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& dir, int index, std::string_view bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("seed-" + std::to_string(index)), std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUTPUT_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  const std::string a(16, 'A'), b(16, 'B'), c(16, 'C');
  BroadcastOptions opts{broadcast_flags::kBroadcast, {"room"}, {"x"}, c, a};
  Packet packet{"/", PacketType::kBinaryEvent,
                Value{ValueKind::kStr, "[\"e\",{\"_placeholder\":true,\"num\":0}]",
                      std::vector<Bytes>{"\x01\xff"}},
                5, std::nullopt};

  std::vector<Request> requests;
  requests.push_back({a, b, RequestType::kHeartbeat, {}, {}, {}});
  requests.push_back({a, b, RequestType::kInitHeartbeat, {}, {}, BroadcastOptions{}});
  requests.push_back({a, b, RequestType::kBroadcast, packet, {}, opts});
  requests.push_back({a, b, RequestType::kBroadcastWithAck, packet, {}, opts});
  requests.push_back({a, b, RequestType::kAddSockets, {}, std::vector<std::string>{"r1"}, opts});
  requests.push_back({a, b, RequestType::kFetchSockets, {}, {}, opts});
  int i = 0;
  std::vector<Bytes> payloads;
  for (const auto& r : requests) {
    payloads.push_back(encode_request(r));
    write(out / "request", i++, payloads.back());
  }

  const Value ok{ValueKind::kBytes, "\x91\xa2ok", std::nullopt};
  const std::vector<Response> responses = {
      {a, BroadcastAck{c, ok}},
      {a, BroadcastAck{c, AckError{AckError::Kind::kDecode, "x"}}},
      {a, BroadcastAck{c, AckError{AckError::Kind::kSocketClosed, {}}}},
      {a, BroadcastAckCount{3}},
      {a, RoomList{{"room1", "room2"}}},
      {a, SocketList{{SocketRef{c, a, "/"}}}},
  };
  i = 0;
  for (const auto& r : responses) {
    payloads.push_back(encode_response(r));
    write(out / "response", i++, payloads.back());
  }

  const std::vector<Extension> extensions = {
      NodeInfo{2},
      RequestInfo{1000, true, std::nullopt, false},
      RequestInfo{0, false, RecoveryEntryInfo{"inst0001", 9, 2, 4}, true},
      RecoverySession{"pid", "sid1", {"room"}, "{}"},
      RecoveryClaim{"pid", std::string(16, 'A')},
      FetchDetails{{SocketDetails{c, {"room"}, "{}", "\x01"}}},
      ServerSideEmit{b, "[\"e\"]", true, 500},
      ServerSideEmitReply{{"[1]", "[2]"}, 1, 3},
      Goodbye{},
      CompressedPack{"\x28\xb5\x2f\xfd"},
  };
  i = 0;
  for (const auto& ext : extensions) write(out / "extension", i++, encode_extension(ext));

  // CompressedPack frames (pack_fuzzer): packs of the payloads above.
  PackCompressor compressor;
  for (int copies = 1, n = 0; copies <= 64; copies *= 4, ++n) {
    std::vector<PackedMessage> messages;
    for (int c = 0; c < copies; ++c) {
      for (const auto& payload : payloads) {
        messages.push_back({MessageKind::kRequest, "/chat", std::nullopt, std::nullopt, payload,
                            c % 2 ? std::optional<Bytes>("\x81\xa1v\x01") : std::nullopt});
      }
    }
    auto built = build_pack(a, messages, compressor);
    if (!built.compressed) continue;
    auto decoded = decode_extension(*built.document.extension);
    write(out / "pack", n, std::get<CompressedPack>(*decoded).frame);
  }

  i = 0;
  for (const auto& payload : payloads) {
    Document doc{
        {MessageKind::kRequest, "/", a, std::nullopt, std::nullopt}, payload, std::nullopt};
    if (i % 2) doc.header = {MessageKind::kResponse, "/chat", a, b, b};
    if (i % 3 == 0) doc.extension = "\x81\xa1v\x01";
    OwnedBson bson;
    encode_document(doc, EncodeOptions{i % 2 ? DataFormat::kBinary : DataFormat::kInt32Array, 7},
                    bson.get());
    write(out / "document", i++,
          {reinterpret_cast<const char*>(bson_get_data(bson.get())), bson->len});
  }
  return 0;
}
