#include "daemon/wire/pack.h"

#include <catch2/catch.hpp>

#include "daemon/wire/testing/hex.h"

using namespace siobridge::wire;
using siobridge::wire::testing::from_hex;

namespace {

const std::string A(16, 'A'), B(16, 'B');

Document message(MessageKind kind, std::string ns, std::optional<std::string> target,
                 std::optional<std::string> request, Bytes data, std::optional<Bytes> ext) {
  return Document{{kind, std::move(ns), A, std::move(target), std::move(request)},
                  std::move(data),
                  std::move(ext)};
}

}  // namespace

TEST_CASE("a packed document carries its messages, in order, unchanged") {
  const std::vector<Document> messages = {
      message(MessageKind::kRequest, "/", std::nullopt, std::nullopt, "\x96\x01", "ext"),
      message(MessageKind::kRequest, "/chat", B, std::nullopt, std::string(300, '\xff'),
              std::nullopt),
      message(MessageKind::kResponse, "/", B, std::string(16, 'C'), "\x92", std::nullopt),
  };
  std::vector<PackedMessage> packed;
  for (const auto& m : messages) packed.push_back(to_packed(m));
  const Document doc = pack_document(A, packed);
  CHECK(doc.header.target == std::string(kSiobridgeTarget));
  CHECK(doc.header.ns == "/");
  CHECK(doc.data.empty());

  auto unpacked = unpack_document(doc);
  REQUIRE(unpacked.ok());
  REQUIRE(unpacked->has_value());
  CHECK(**unpacked == messages);
}

TEST_CASE("documents that are not packs are left alone") {
  const Document plain = message(MessageKind::kRequest, "/", std::nullopt, std::nullopt, "x", {});
  auto result = unpack_document(plain);
  REQUIRE(result.ok());
  CHECK_FALSE(result->has_value());
  Document emit{{MessageKind::kRequest, "/", A, std::string(kSiobridgeTarget), std::nullopt},
                {},
                encode_extension(Goodbye{})};
  result = unpack_document(emit);
  REQUIRE(result.ok());
  CHECK_FALSE(result->has_value());
}

TEST_CASE("a malformed pack is an error, not a crash") {
  Document bad{{MessageKind::kRequest, "/", A, std::string(kSiobridgeTarget), std::nullopt},
               {},
               from_hex("82 a1 6b 06 a1 6d 91 93 00 a1 2f c0")};  // a message of 3 fields
  CHECK_FALSE(unpack_document(bad).ok());
  // A response without its request id.
  bad.extension = encode_extension(
      Pack{{PackedMessage{MessageKind::kResponse, "/", B, std::nullopt, "x", std::nullopt}}});
  CHECK_FALSE(unpack_document(bad).ok());
}

TEST_CASE("PROTOCOL.md section 18 vector P1") {
  // One Broadcast payload 0x96 for every node in "/", no extension.
  const Pack pack{{PackedMessage{MessageKind::kRequest, "/", std::nullopt, std::nullopt, "\x96",
                                 std::nullopt}}};
  const auto bytes = from_hex("82 a1 6b 06 a1 6d 91 96 00 a1 2f c0 c0 c4 01 96 c0");
  CHECK(encode_extension(pack) == bytes);
  auto decoded = decode_extension(bytes);
  REQUIRE(decoded.ok());
  CHECK(std::get<Pack>(*decoded) == pack);
}
