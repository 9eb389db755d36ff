#include "daemon/wire/document.h"
#include "daemon/wire/owned_bson.h"

#include <catch2/catch.hpp>

#include <memory>

using namespace siobridge::wire;

namespace {

const std::string A(16, 'A'), B(16, 'B');

using BsonPtr = OwnedBson;

BsonPtr encode(const Document& doc, EncodeOptions options = {}) {
  BsonPtr out;
  encode_document(doc, options, out.get());
  return out;
}

Document request_doc(Bytes data) {
  Document doc;
  doc.header = DocumentHeader{MessageKind::kRequest, "/", A, std::nullopt, std::nullopt};
  doc.data = std::move(data);
  return doc;
}

std::string all_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

}  // namespace

TEST_CASE("data is written as an array of int32, one per byte, keys 0..n-1") {
  const auto payload = all_bytes(1234);
  auto bson = encode(request_doc(payload));
  bson_iter_t it, child;
  REQUIRE(bson_iter_init_find(&it, bson.get(), "data"));
  REQUIRE(BSON_ITER_HOLDS_ARRAY(&it));
  REQUIRE(bson_iter_recurse(&it, &child));
  std::size_t i = 0;
  while (bson_iter_next(&child)) {
    REQUIRE(BSON_ITER_HOLDS_INT32(&child));
    REQUIRE(std::string(bson_iter_key(&child)) == std::to_string(i));
    REQUIRE(bson_iter_int32(&child) == static_cast<std::uint8_t>(payload[i]));
    ++i;
  }
  REQUIRE(i == payload.size());
  REQUIRE(bson_validate(bson.get(), BSON_VALIDATE_NONE, nullptr));
}

TEST_CASE("header fields are written as PROTOCOL.md section 2 says") {
  Document doc = request_doc("\x90");
  doc.header.kind = MessageKind::kResponse;
  doc.header.target = B;
  doc.header.request = B;
  doc.header.ns = "/admin";
  doc.extension = "\x01\x02";
  auto bson = encode(doc, EncodeOptions{DataFormat::kInt32Array, 1700000000123});
  bson_iter_t it;
  REQUIRE(bson_iter_init_find(&it, bson.get(), "t"));
  CHECK(std::string(bson_iter_utf8(&it, nullptr)) == "Res");
  REQUIRE(bson_iter_init_find(&it, bson.get(), "target"));
  CHECK(std::string(bson_iter_utf8(&it, nullptr)) == B);
  REQUIRE(bson_iter_init_find(&it, bson.get(), "request"));
  CHECK(std::string(bson_iter_utf8(&it, nullptr)) == B);
  REQUIRE(bson_iter_init_find(&it, bson.get(), "ns"));
  CHECK(std::string(bson_iter_utf8(&it, nullptr)) == "/admin");
  REQUIRE(bson_iter_init_find(&it, bson.get(), "origin"));
  CHECK(std::string(bson_iter_utf8(&it, nullptr)) == A);
  REQUIRE(bson_iter_init_find(&it, bson.get(), "createdAt"));
  REQUIRE(BSON_ITER_HOLDS_DATE_TIME(&it));
  CHECK(bson_iter_date_time(&it) == 1700000000123);
  REQUIRE(bson_iter_init_find(&it, bson.get(), "siobridge"));
  CHECK(BSON_ITER_HOLDS_BINARY(&it));

  auto requests_have_no_target = encode(request_doc("\x90"));
  CHECK_FALSE(bson_iter_init_find(&it, requests_have_no_target.get(), "target"));
  CHECK_FALSE(bson_iter_init_find(&it, requests_have_no_target.get(), "request"));
  CHECK_FALSE(bson_iter_init_find(&it, requests_have_no_target.get(), "createdAt"));
}

TEST_CASE("documents round-trip in both data formats") {
  for (auto format : {DataFormat::kInt32Array, DataFormat::kBinary}) {
    for (std::size_t size :
         {std::size_t{1}, std::size_t{10}, std::size_t{101}, std::size_t{100000}}) {
      Document doc = request_doc(all_bytes(size));
      doc.header.target = B;
      doc.extension = std::string("ext\0data", 8);
      auto bson = encode(doc, EncodeOptions{format, 42});
      auto decoded = decode_document(bson.get());
      REQUIRE(decoded.ok());
      CHECK(*decoded == doc);
      auto from_bytes = decode_document(bson_get_data(bson.get()), bson->len);
      REQUIRE(from_bytes.ok());
      CHECK(*from_bytes == doc);
    }
  }
}

TEST_CASE("BinData is more compact than the int32 array") {
  auto payload = all_bytes(10240);
  auto as_array = encode(request_doc(payload));
  auto as_binary = encode(request_doc(payload), EncodeOptions{DataFormat::kBinary, {}});
  CHECK(as_array->len > 8 * payload.size());
  CHECK(as_binary->len < payload.size() + 100);
}

TEST_CASE("readers ignore unknown fields and field order") {
  bson_t* raw = BCON_NEW("_id", BCON_INT32(7), "extra", "{", "x", BCON_INT32(1), "}", "data", "[",
                         BCON_INT32(0x92), BCON_INT32(1), BCON_INT32(255), "]", "origin",
                         BCON_UTF8(A.c_str()), "createdAt", BCON_DATE_TIME(1), "ns",
                         BCON_UTF8("/chat"), "future", BCON_UTF8("ignored"), "t", BCON_UTF8("Req"));
  BsonPtr bson(raw);
  auto decoded = decode_document(bson.get());
  REQUIRE(decoded.ok());
  CHECK(decoded->header.kind == MessageKind::kRequest);
  CHECK(decoded->header.ns == "/chat");
  CHECK(decoded->header.origin == A);
  CHECK(decoded->data == "\x92\x01\xff");
  CHECK_FALSE(decoded->header.target);
}

TEST_CASE("readers accept int64 elements and a null target") {
  BsonPtr bson(BCON_NEW("t", BCON_UTF8("Req"), "target", BCON_NULL, "ns", BCON_UTF8("/"), "origin",
                        BCON_UTF8(A.c_str()), "data", "[", BCON_INT64(200), BCON_INT32(1), "]"));
  auto decoded = decode_document(bson.get());
  REQUIRE(decoded.ok());
  CHECK(decoded->data == "\xc8\x01");
  CHECK_FALSE(decoded->header.target);
}

TEST_CASE("the extension target is accepted, other non-ids are not") {
  Document doc = request_doc("\x90");
  doc.header.target = std::string(kSiobridgeTarget);
  auto decoded = decode_document(encode(doc).get());
  REQUIRE(decoded.ok());
  CHECK(decoded->header.target == std::string(kSiobridgeTarget));
  doc.header.target = "~other";
  CHECK_FALSE(decode_document(encode(doc).get()).ok());
}

TEST_CASE("encoded_size is the stored size, _id included, without encoding") {
  for (auto format : {DataFormat::kInt32Array, DataFormat::kBinary}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{10}, std::size_t{11},
                             std::size_t{1000}, std::size_t{123457}}) {
      for (bool ttl : {false, true}) {
        Document doc = request_doc(all_bytes(size));
        if (size % 2) doc.header.target = B;
        if (size > 10) doc.extension = "ext";
        // Call marks: none, one, and more than ten (two-digit array keys).
        for (std::size_t i = 0; i < (size == 1000 ? 12 : size % 3); ++i) {
          doc.calls.push_back(CallMark{"server-" + std::to_string(i), (1ull << (i * 5)) + i});
        }
        const EncodeOptions options{format, ttl ? std::optional<std::int64_t>(7) : std::nullopt};
        BsonPtr stored;
        bson_oid_t id;
        bson_oid_init(&id, nullptr);
        BSON_APPEND_OID(stored.get(), "_id", &id);
        encode_document(doc, options, stored.get());
        CHECK(encoded_size(doc, options) == stored->len);
      }
    }
  }
}

TEST_CASE("positions sort as text in delivery order") {
  CHECK(format_position(1, 2, 3) == "000000010000000200000003");
  CHECK(format_position(0x6a000000, 0, 0) < format_position(0x6a000000, 1, 0));
  CHECK(format_position(0x6a000000, 0xffffffff, 9) < format_position(0x6a000001, 0, 0));
  CHECK(format_position(5, 5, 9) < format_position(5, 5, 10));
}

TEST_CASE("call marks are stored beside the message and read back; a malformed one is left out") {
  Document doc = request_doc(all_bytes(4));
  doc.calls = {CallMark{"AbCdEfGh12345678", 7}, CallMark{"other", (1ull << 40) + 3}};
  BsonPtr stored;
  encode_document(doc, {DataFormat::kBinary, std::nullopt}, stored.get());
  CHECK(read_call_marks(stored.get()) == doc.calls);
  // Readers of the message do not depend on them.
  auto decoded = decode_document(stored.get());
  REQUIRE(decoded.ok());
  CHECK(decoded->data == doc.data);

  BsonPtr bad;
  bson_t array, entry;
  BSON_APPEND_ARRAY_BEGIN(bad.get(), "calls", &array);
  BSON_APPEND_DOCUMENT_BEGIN(&array, "0", &entry);
  BSON_APPEND_UTF8(&entry, "i", "no-number");
  bson_append_document_end(&array, &entry);
  BSON_APPEND_INT32(&array, "1", 5);  // not a document
  BSON_APPEND_DOCUMENT_BEGIN(&array, "2", &entry);
  BSON_APPEND_UTF8(&entry, "i", "good");
  BSON_APPEND_INT64(&entry, "n", 9);
  bson_append_document_end(&array, &entry);
  BSON_APPEND_DOCUMENT_BEGIN(&array, "3", &entry);
  BSON_APPEND_UTF8(&entry, "i", "negative");
  BSON_APPEND_INT64(&entry, "n", -1);
  bson_append_document_end(&array, &entry);
  bson_append_array_end(bad.get(), &array);
  CHECK(read_call_marks(bad.get()) == std::vector<CallMark>{CallMark{"good", 9}});
  BsonPtr none;
  BSON_APPEND_UTF8(none.get(), "calls", "not an array");
  CHECK(read_call_marks(none.get()).empty());
}
