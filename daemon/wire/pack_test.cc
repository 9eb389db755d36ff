#include "daemon/wire/pack.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <memory>
#include <random>

#include "daemon/wire/testing/hex.h"
#include "daemon/wire/testing/zstd_frame.h"

using namespace siobridge::wire;
using siobridge::wire::testing::from_hex;
using siobridge::wire::testing::zstd_frame;

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

namespace {

std::vector<PackedMessage> chat_messages(int count) {
  std::vector<PackedMessage> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(PackedMessage{
        MessageKind::kRequest, "/chat", std::nullopt, std::nullopt,
        fmt::format(R"({{"user":"user-{}","room":"general","text":"message number {}"}})", i % 7,
                    i),
        std::nullopt});
  }
  return out;
}

Document carrying(const Bytes& extension) {
  return Document{
      {MessageKind::kRequest, "/", A, std::string(kSiobridgeTarget), std::nullopt}, {}, extension};
}

}  // namespace

TEST_CASE("a pack of compressible messages goes compressed and comes back the same") {
  PackCompressor compressor;
  const auto messages = chat_messages(200);
  const auto built = build_pack(A, messages, compressor);
  REQUIRE(built.compressed);
  CHECK(built.message_bytes == encode_packed_messages(messages).size());
  CHECK(built.document.extension->size() * 4 < built.message_bytes);
  CHECK(built.document.header.target == std::string(kSiobridgeTarget));
  CHECK(built.document.header.ns == "/chat");
  auto decoded = decode_extension(*built.document.extension);
  REQUIRE(decoded.ok());
  CHECK(std::holds_alternative<CompressedPack>(*decoded));

  auto unpacked = unpack_document(built.document);
  REQUIRE(unpacked.ok());
  REQUIRE(unpacked->has_value());
  REQUIRE((*unpacked)->size() == messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    CHECK(to_packed((**unpacked)[i]) == messages[i]);
    CHECK((**unpacked)[i].header.origin == A);
  }
}

TEST_CASE("a pack stays plain when compressing would not pay") {
  PackCompressor compressor;
  SECTION("too small") {
    const auto built = build_pack(A, chat_messages(3), compressor);
    CHECK_FALSE(built.compressed);
    CHECK(built.document == pack_document(A, chat_messages(3)));
  }
  SECTION("incompressible") {
    std::mt19937 random(7);
    Bytes noise(8192, '\0');
    for (auto& c : noise) c = static_cast<char>(random());
    const std::vector<PackedMessage> messages = {
        {MessageKind::kRequest, "/", std::nullopt, std::nullopt, noise, std::nullopt}};
    const auto built = build_pack(A, messages, compressor);
    CHECK_FALSE(built.compressed);
    CHECK(built.document == pack_document(A, messages));
    auto unpacked = unpack_document(built.document);
    REQUIRE(unpacked.ok());
    REQUIRE(unpacked->has_value());
    CHECK((**unpacked)[0].data == noise);
  }
}

TEST_CASE("a compressed pack that is not one bounded zstd frame of messages is refused") {
  const Bytes messages = encode_packed_messages(chat_messages(20));
  auto refused = [](const Bytes& frame) {
    auto result = unpack_document(carrying(encode_extension(CompressedPack{frame})));
    return !result.ok() && result.error().code == siobridge::ErrorCode::kDecode;
  };
  CHECK_FALSE(refused(zstd_frame(messages, true)));
  CHECK(refused("not a zstd frame at all"));
  CHECK(refused(zstd_frame(messages, false)));               // content size not declared
  CHECK(refused(zstd_frame(messages, true) + "x"));          // bytes after the frame
  CHECK(refused(zstd_frame(messages, true).substr(0, 20)));  // cut short
  CHECK(refused(zstd_frame("\x93\x01", true)));              // content that is not messages
  // Declares more than any writer makes: refused before it is allocated.
  const std::vector<PackedMessage> huge = {{MessageKind::kRequest, "/", std::nullopt, std::nullopt,
                                            Bytes(kMaxPackContentBytes, '\0'), std::nullopt}};
  CHECK(refused(zstd_frame(encode_packed_messages(huge), true)));
  // Only a key `z` of bin makes a CompressedPack.
  CHECK_FALSE(decode_extension(from_hex("81 a1 6b 09")).ok());
  CHECK_FALSE(decode_extension(from_hex("82 a1 6b 09 a1 7a a1 78")).ok());
}

TEST_CASE("PROTOCOL.md section 14.10 vector P2") {
  // Vector P1's message, compressed: one zstd frame declaring 11 bytes.
  const auto bytes = from_hex(
      "82 a1 6b 09 a1 7a c4 14 28 b5 2f fd 20 0b 59 00 00 91 96 00 a1 2f c0 c0 c4 01 96 c0");
  auto unpacked = unpack_document(carrying(bytes));
  REQUIRE(unpacked.ok());
  REQUIRE(unpacked->has_value());
  REQUIRE((*unpacked)->size() == 1);
  CHECK(to_packed((**unpacked)[0]) == PackedMessage{MessageKind::kRequest, "/", std::nullopt,
                                                    std::nullopt, "\x96", std::nullopt});
  CHECK(encode_extension(CompressedPack{bytes.substr(8)}) == bytes);
}
