#include "daemon/wire/extension.h"

#include <catch2/catch.hpp>

#include "daemon/wire/testing/hex.h"

using namespace siobridge::wire;
using siobridge::wire::testing::from_hex;

TEST_CASE("every extension round-trips") {
  const std::vector<Extension> all = {
      NodeInfo{3},
      RequestInfo{2500, true, std::nullopt, false},
      RequestInfo{0, false, RecoveryEntryInfo{"inst0001", 42, 3, 7}, true},
      RecoverySession{"pid-1", "Xn3-qR_0aB9cDeFgHiJk", {"a", "b"}, "{\"n\":1}"},
      RecoveryClaim{"pid-1", std::string(16, 'D')},
      FetchDetails{
          {SocketDetails{"Xn3-qR_0aB9cDeFgHiJk", {"a", "b"}, "{\"headers\":{}}", "\x01\x02"},
           SocketDetails{std::string(16, 'C'), {}, "", ""}}},
      ServerSideEmit{std::string(16, 'B'), "[\"ping\",1]", true, 3000},
      ServerSideEmitReply{{"[\"pong\"]", std::string("\0\xff", 2)}, 1, 3},
      ServerSideEmitReply{{}, 0, std::nullopt},
      Goodbye{},
  };
  for (const auto& ext : all) {
    auto decoded = decode_extension(encode_extension(ext));
    REQUIRE(decoded.ok());
    CHECK(*decoded == ext);
  }
}

TEST_CASE("unknown keys are ignored so later versions can add fields") {
  // {"k":0, "servers":2, "future":[1,2]}
  auto decoded = decode_extension(
      from_hex("83 a1 6b 00 a7 73 65 72 76 65 72 73 02 a6 66 75 74 75 72 65 92 01 02"));
  REQUIRE(decoded.ok());
  CHECK(std::get<NodeInfo>(*decoded).servers == 2);
}

TEST_CASE("a reply from a version without `gone` reads as none gone") {
  // {"k":4, "responses":[]}
  auto decoded = decode_extension(from_hex("82 a1 6b 04 a9 72 65 73 70 6f 6e 73 65 73 90"));
  REQUIRE(decoded.ok());
  CHECK(std::get<ServerSideEmitReply>(*decoded).gone == 0);
}

TEST_CASE("malformed extensions are errors") {
  CHECK_FALSE(decode_extension("").ok());
  CHECK_FALSE(decode_extension(from_hex("90")).ok());           // not a map
  CHECK_FALSE(decode_extension(from_hex("81 a1 6b 19")).ok());  // unknown kind
  CHECK_FALSE(decode_extension(from_hex("81 a1 78 00")).ok());  // no kind
  CHECK_FALSE(decode_extension(from_hex("82 a1 6b 00 a7 73 65 72 76 65 72 73 a1 33")).ok());
  CHECK_FALSE(decode_extension(from_hex("82 a1 6b 03 a2 69 64 a1 78")).ok());  // bad id
  // Recovery messages without what identifies them.
  CHECK_FALSE(decode_extension(encode_extension(RecoverySession{"", "abc", {}, ""})).ok());
  CHECK_FALSE(decode_extension(encode_extension(RecoverySession{"p", "not a sid!", {}, ""})).ok());
  CHECK_FALSE(decode_extension(encode_extension(RecoveryClaim{"p", "short"})).ok());
  CHECK_FALSE(decode_extension(
                  encode_extension(RequestInfo{0, false, RecoveryEntryInfo{"", 1, 0, 0}, false}))
                  .ok());
  auto truncated = encode_extension(FetchDetails{{SocketDetails{"abc", {"r"}, "h", "d"}}});
  for (std::size_t n = 0; n < truncated.size(); ++n) {
    CHECK_FALSE(decode_extension(std::string_view(truncated).substr(0, n)).ok());
  }
}

TEST_CASE("PROTOCOL.md section 14 vectors X1-X10, byte for byte both ways") {
  const std::string B(16, 'B'), C(16, 'C');
  struct Case {
    const char* name;
    std::string hex;
    Extension value;
  };
  const Case cases[] = {
      {"X1 NodeInfo", "82 a1 6b 00 a7 73 65 72 76 65 72 73 03", NodeInfo{3}},
      {"X2 RequestInfo",
       "83 a1 6b 01 ae 61 63 6b 5f 74 69 6d 65 6f 75 74 5f 6d 73 cd 09 c4 a5 63 6c 6f 73 65 c2",
       RequestInfo{2500, false, std::nullopt, false}},
      {"X3 RequestInfo close",
       "83 a1 6b 01 ae 61 63 6b 5f 74 69 6d 65 6f 75 74 5f 6d 73 00 a5 63 6c 6f 73 65 c3",
       RequestInfo{0, true, std::nullopt, false}},
      {"X4 FetchDetails",
       "82 a1 6b 02 a7 73 6f 63 6b 65 74 73 91 84 a2 69 64 b0 C… a5 72 6f 6f 6d 73 91 a2 72 31 a9 "
       "68 61 6e 64 73 68 61 6b 65 c4 02 7b 7d a4 64 61 74 61 c4 00",
       FetchDetails{{SocketDetails{C, {"r1"}, "{}", ""}}}},
      {"X5 ServerSideEmit",
       "85 a1 6b 03 a2 69 64 b0 B… a7 70 61 79 6c 6f 61 64 c4 08 5b 22 70 69 6e 67 22 5d a9 77 61 "
       "6e 74 73 5f 61 63 6b c3 aa 74 69 6d 65 6f 75 74 5f 6d 73 cd 0b b8",
       ServerSideEmit{B, "[\"ping\"]", true, 3000}},
      {"X6 ServerSideEmitReply",
       "84 a1 6b 04 a9 72 65 73 70 6f 6e 73 65 73 91 c4 08 5b 22 70 6f 6e 67 22 5d a4 67 6f 6e 65 "
       "00 a7 73 65 72 76 65 72 73 02",
       ServerSideEmitReply{{"[\"pong\"]"}, 0, 2}},
      {"X7 Goodbye", "81 a1 6b 05", Goodbye{}},
      {"X8 RecoverySession",
       "85 a1 6b 07 a3 70 69 64 a1 70 a3 73 69 64 a1 73 a5 72 6f 6f 6d 73 91 a1 72 a4 64 61 74 61 "
       "c4 02 7b 7d",
       RecoverySession{"p", "s", {"r"}, "{}"}},
      {"X9 RecoveryClaim", "83 a1 6b 08 a3 70 69 64 a1 70 a5 63 6c 61 69 6d b0 D…",
       RecoveryClaim{"p", std::string(16, 'D')}},
      {"X10 RequestInfo of a log-only packet",
       "85 a1 6b 01 ae 61 63 6b 5f 74 69 6d 65 6f 75 74 5f 6d 73 00 a5 63 6c 6f 73 65 c2 a8 6c 6f "
       "67 5f 6f 6e 6c 79 c3 a8 72 65 63 6f 76 65 72 79 84 a1 69 a8 69 6e 73 74 30 30 30 31 a1 73 "
       "07 a1 61 02 a1 6f 03",
       RequestInfo{0, false, RecoveryEntryInfo{"inst0001", 7, 2, 3}, true}},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      INFO("encoded " << siobridge::wire::testing::to_hex(encode_extension(c.value)));
      CHECK(encode_extension(c.value) == from_hex(c.hex));
      auto decoded = decode_extension(from_hex(c.hex));
      REQUIRE(decoded.ok());
      CHECK(*decoded == c.value);
    }
  }
}
