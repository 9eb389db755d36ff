#include "daemon/wire/extension.h"

#include <catch2/catch.hpp>

#include "daemon/wire/testing/hex.h"

using namespace siobridge::wire;
using siobridge::wire::testing::from_hex;

TEST_CASE("every extension round-trips") {
  const std::vector<Extension> all = {
      NodeInfo{3},
      RequestInfo{2500, true},
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
  auto decoded =
      decode_extension(from_hex("82 a1 6b 04 a9 72 65 73 70 6f 6e 73 65 73 90"));
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
  auto truncated = encode_extension(FetchDetails{{SocketDetails{"abc", {"r"}, "h", "d"}}});
  for (std::size_t n = 0; n < truncated.size(); ++n) {
    CHECK_FALSE(decode_extension(std::string_view(truncated).substr(0, n)).ok());
  }
}
