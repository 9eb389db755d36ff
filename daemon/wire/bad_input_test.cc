// Malformed input: every decoder answers with an Error value, never a crash, an
// exception or an out-of-bounds read (this suite also runs under ASan + UBSan).
#include <catch2/catch.hpp>

#include <memory>
#include <random>

#include "daemon/wire/document.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/payload_codec.h"
#include "daemon/wire/testing/hex.h"

using namespace siobridge::wire;
using siobridge::ErrorCode;
using siobridge::wire::testing::from_hex;

namespace {

const std::string kHeartbeat = "96 b0 A… b0 B… 14 c0 c0 c0";
const std::string kBroadcast =
    "96 b0 A… b0 B… 00 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d c0 c0 c0 c0 95 02 90 90 "
    "b0 C… c0";
const std::string kResponses[] = {
    "92 b0 A… 92 01 03",
    "92 b0 A… 92 00 92 b0 C… 81 a2 4f 6b 93 00 97 5b 22 66 6f 6f 22 5d c0",
    "92 b0 A… 92 00 92 b0 C… 81 a3 45 72 72 a7 54 69 6d 65 6f 75 74",
    "92 b0 A… 92 02 92 a5 72 6f 6f 6d 31 a5 72 6f 6f 6d 32",
    "92 b0 A… 92 03 91 93 b0 C… b0 A… a1 2f",
};

template <typename R>
std::string error_of(const R& result) {
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::kDecode);
  CHECK_FALSE(result.error().message.empty());
  return result.error().message;
}

std::string request_error(const std::string& hex) {
  return error_of(decode_request(from_hex(hex)));
}
std::string response_error(const std::string& hex) {
  return error_of(decode_response(from_hex(hex)));
}

}  // namespace

TEST_CASE("truncated msgpack at every length is an error") {
  for (const auto& hex : {kHeartbeat, kBroadcast}) {
    const auto bytes = from_hex(hex);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix " << n);
      error_of(decode_request(std::string_view(bytes).substr(0, n)));
    }
  }
  for (const auto& hex : kResponses) {
    const auto bytes = from_hex(hex);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      error_of(decode_response(std::string_view(bytes).substr(0, n)));
    }
  }
  CHECK_THAT(request_error("96 b0 A… b0"), Catch::Contains("truncated"));
}

TEST_CASE("trailing bytes are an error") {
  CHECK_THAT(request_error(kHeartbeat + " c0"), Catch::Contains("trailing"));
}

TEST_CASE("wrong array lengths are an error naming the struct") {
  CHECK_THAT(request_error("95 b0 A… b0 B… 14 c0 c0"), Catch::Contains("Request"));
  CHECK_THAT(request_error("97 b0 A… b0 B… 14 c0 c0 c0 c0"), Catch::Contains("Request"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 14 c0 c0 94 00 90 90 c0"),
             Catch::Contains("BroadcastOptions"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 94 a1 2f 02 c0 c0 c0 95 02 90 90 c0 c0"),
             Catch::Contains("Packet"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 95 a1 2f 02 92 00 90 c0 c0 c0 95 02 90 90 c0 c0"),
             Catch::Contains("Packet.data"));
  CHECK_THAT(response_error("93 b0 A… 92 01 03 c0"), Catch::Contains("Response"));
  CHECK_THAT(response_error("92 b0 A… 93 01 03 03"), Catch::Contains("Response body"));
  CHECK_THAT(response_error("92 b0 A… 92 03 91 92 b0 C… b0 A…"), Catch::Contains("socket"));
}

TEST_CASE("wrong types are an error naming the field") {
  CHECK_THAT(request_error("96 01 b0 B… 14 c0 c0 c0"), Catch::Contains("node_id"));
  CHECK_THAT(request_error("96 b0 A… b0 B… a1 14 c0 c0 c0"), Catch::Contains("Request.type"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 04 c0 80 95 00 90 90 c0 c0"),
             Catch::Contains("Request.rooms"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 04 c0 91 01 95 00 90 90 c0 c0"),
             Catch::Contains("element 0"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 03 c0 c0 95 ff 90 90 c0 c0"), Catch::Contains("flags"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 03 c0 c0 95 00 90 90 01 c0"), Catch::Contains("sid"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 95 a1 2f 02 93 00 9a 5b 22 74 65 73 74 22 2c 32 5d "
                           "c0 c3 c0 c0 95 02 90 90 c0 c0"),
             Catch::Contains("Packet.ack"));
  CHECK_THAT(response_error("92 b0 A… 92 01 a1 33"), Catch::Contains("BroadcastAckCount"));
  CHECK_THAT(response_error("92 b0 A… 92 01 ff"), Catch::Contains("BroadcastAckCount"));
  CHECK_THAT(response_error("92 b0 A… 92 02 91 01"), Catch::Contains("AllRooms"));
  CHECK_THAT(response_error("92 b0 A… 92 00 92 b0 C… 81 a2 4e 6f c0"), Catch::Contains("variant"));
  CHECK_THAT(response_error("92 b0 A… 92 00 92 b0 C… 81 a3 45 72 72 a4 4e 6f 70 65"),
             Catch::Contains("AckError"));
  CHECK_THAT(response_error("92 b0 A… 92 00 92 b0 C… 81 a3 45 72 72 81 a6 53 6f 63 6b 65 74 a1 78"),
             Catch::Contains("AckError.Socket"));
  CHECK_THAT(response_error("92 b0 A… 92 00 92 a2 2b 2b 81 a3 45 72 72 a7 54 69 6d 65 6f 75 74"),
             Catch::Contains("sid"));
}

TEST_CASE("invalid ids are an error") {
  CHECK_THAT(request_error("96 a3 41 41 41 b0 B… 14 c0 c0 c0"), Catch::Contains("node_id"));
  CHECK_THAT(request_error("96 b0 A… a0 14 c0 c0 c0"), Catch::Contains("Request.id"));
  CHECK_THAT(response_error("92 a0 92 01 03"), Catch::Contains("node_id"));
}

TEST_CASE("unknown type codes are an error") {
  for (const char* code : {"07", "13", "16", "7f", "cc ff"}) {
    CHECK_THAT(request_error(std::string("96 b0 A… b0 B… ") + code + " c0 c0 c0"),
               Catch::Contains("type"));
  }
  CHECK_THAT(response_error("92 b0 A… 92 04 03"), Catch::Contains("unknown response type 4"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 95 a1 2f 07 c0 c0 c0 c0 95 02 90 90 c0 c0"),
             Catch::Contains("Packet.type"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 95 a1 2f 02 93 02 90 c0 c0 c0 c0 95 02 90 90 c0 c0"),
             Catch::Contains("Value.kind"));
}

TEST_CASE("missing required fields are an error") {
  CHECK_THAT(request_error("96 b0 A… b0 B… 00 c0 c0 95 00 90 90 c0 c0"),
             Catch::Contains("without packet"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 05 c0 c0 95 00 90 90 c0 c0"),
             Catch::Contains("without rooms"));
  CHECK_THAT(request_error("96 b0 A… b0 B… 03 c0 c0 c0"), Catch::Contains("without opts"));
}

TEST_CASE("byte elements outside 0..255 are an error") {
  const std::string prefix = "96 b0 A… b0 B… 00 95 a1 2f 02 93 00 92 ";
  const std::string suffix = " c0 c0 c0 c0 95 02 90 90 c0 c0";
  CHECK_THAT(request_error(prefix + "01 cd 01 00" + suffix), Catch::Contains("element 1"));
  CHECK_THAT(request_error(prefix + "01 ff" + suffix), Catch::Contains("0..255"));
  CHECK_THAT(request_error(prefix + "01 a1 41" + suffix), Catch::Contains("0..255"));
  CHECK_THAT(request_error(prefix + "01 ca 00 00 00 00" + suffix), Catch::Contains("0..255"));
}

TEST_CASE("huge length prefixes fail without allocating them") {
  // array32, map32, str32 and bin32 claiming 4 GiB in a few bytes of input.
  for (const char* hex :
       {"dd ff ff ff ff", "df ff ff ff ff", "db ff ff ff ff", "c6 ff ff ff ff", "dc ff ff",
        "96 b0 A… b0 B… 00 95 a1 2f 02 93 00 dd 7f ff ff ff c0",
        "96 b0 A… b0 B… 00 95 a1 2f 02 93 00 90 dd ff ff ff ff", "96 db 7f ff ff ff 41"}) {
    INFO(hex);
    error_of(decode_request(from_hex(hex)));
    error_of(decode_response(from_hex(hex)));
    error_of(decode_value(from_hex(hex)));
  }
}

TEST_CASE("hostile nesting is an error") {
  std::string deep(100000, '\x91');
  deep.push_back('\xc0');
  error_of(decode_request(deep));
  error_of(decode_response(deep));
}

TEST_CASE("random mutations of valid payloads never crash") {
  std::mt19937 rng(12345);
  std::vector<std::string> seeds = {from_hex(kHeartbeat), from_hex(kBroadcast)};
  for (const auto& hex : kResponses) seeds.push_back(from_hex(hex));
  int decoded_ok = 0;
  for (int round = 0; round < 50000; ++round) {
    std::string input = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % input.size();
      switch (rng() % 3) {
        case 0:
          input[at] = static_cast<char>(rng());
          break;
        case 1:
          input.erase(at, 1 + rng() % 3);
          break;
        case 2:
          input.insert(at, 1, static_cast<char>(rng()));
          break;
      }
      if (input.empty()) input.push_back('\xc0');
    }
    decoded_ok += decode_request(input).ok() + decode_response(input).ok();
  }
  CHECK(decoded_ok < 50000);  // most mutations are caught
}

// ---- BSON documents ----

namespace {

using BsonPtr = OwnedBson;
const std::string A(16, 'A');

std::string document_error(bson_t* raw) {
  BsonPtr bson(raw);
  return error_of(decode_document(bson.get()));
}

}  // namespace

TEST_CASE("documents with missing header fields are an error naming the field") {
  const char* a = A.c_str();
  CHECK_THAT(document_error(BCON_NEW("ns", "/", "origin", a, "data", "[", BCON_INT32(1), "]")),
             Catch::Contains("'t'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "origin", a, "data", "[", BCON_INT32(1), "]")),
             Catch::Contains("'ns'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "data", "[", BCON_INT32(1), "]")),
             Catch::Contains("'origin'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "origin", a)),
             Catch::Contains("'data'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Res", "ns", "/", "origin", a, "target", a, "data", "[",
                                     BCON_INT32(1), "]")),
             Catch::Contains("'request'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Res", "ns", "/", "origin", a, "request", a, "data", "[",
                                     BCON_INT32(1), "]")),
             Catch::Contains("'target'"));
}

TEST_CASE("documents with wrong header types or values are an error") {
  const char* a = A.c_str();
  CHECK_THAT(document_error(BCON_NEW("t", BCON_INT32(1), "ns", "/", "origin", a, "data", "[", "]")),
             Catch::Contains("'t'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Get", "ns", "/", "origin", a, "data", "[", "]")),
             Catch::Contains("\"Req\""));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "chat", "origin", a, "data", "[", "]")),
             Catch::Contains("namespace"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "origin", "short", "data", "[", "]")),
             Catch::Contains("'origin'"));
  CHECK_THAT(
      document_error(BCON_NEW("t", "Req", "ns", "/", "origin", a, "target", "x", "data", "[", "]")),
      Catch::Contains("'target'"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "abc")),
             Catch::Contains("'data'"));
}

TEST_CASE("data elements that are not bytes are an error") {
  const char* a = A.c_str();
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "[", BCON_INT32(1),
                                     BCON_INT32(256), "]")),
             Catch::Contains("element 1 is 256"));
  CHECK_THAT(document_error(
                 BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "[", BCON_INT32(-1), "]")),
             Catch::Contains("outside 0..255"));
  CHECK_THAT(document_error(BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "[",
                                     BCON_INT64(1LL << 40), "]")),
             Catch::Contains("outside 0..255"));
  CHECK_THAT(document_error(
                 BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "[", BCON_UTF8("x"), "]")),
             Catch::Contains("BSON type 0x02"));
  CHECK_THAT(document_error(
                 BCON_NEW("t", "Req", "ns", "/", "origin", a, "data", "[", BCON_DOUBLE(1.0), "]")),
             Catch::Contains("expected int32"));
}

TEST_CASE("corrupt BSON bytes are an error") {
  Document doc;
  doc.header = DocumentHeader{MessageKind::kRequest, "/", A, std::nullopt, std::nullopt};
  doc.data = "\x90\x91\x92";
  BsonPtr bson;
  encode_document(doc, {}, bson.get());
  std::string bytes(reinterpret_cast<const char*>(bson_get_data(bson.get())), bson->len);
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    error_of(decode_document(p, n));  // every truncation
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string mutated = bytes;
    mutated[rng() % mutated.size()] = static_cast<char>(rng());
    (void)decode_document(reinterpret_cast<const std::uint8_t*>(mutated.data()), mutated.size());
  }
  // The data array's own length prefix pointing past its end.
  std::string forged = bytes;
  auto data_at = forged.find("data");
  REQUIRE(data_at != std::string::npos);
  forged[data_at + 5] = '\x7f';
  error_of(decode_document(reinterpret_cast<const std::uint8_t*>(forged.data()), forged.size()));
}
