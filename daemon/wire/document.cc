#include "daemon/wire/document.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

#include "daemon/wire/ids.h"

namespace siobridge::wire {
namespace {

constexpr std::uint8_t kBsonInt32 = 0x10;
constexpr std::uint8_t kBsonInt64 = 0x12;

// The decimal keys "0", "1", ... of a BSON array, produced by counting rather
// than by formatting each index. The digits live in one 64-bit word (first digit
// in the lowest byte) so that writing a key is a single 8-byte store; a BSON
// document (16 MiB at most) never needs more than 8 digits.
class ArrayKeyCounter {
 public:
  static_assert(std::endian::native == std::endian::little);
  std::uint64_t digits() const { return digits_; }
  int length() const { return length_; }

  void increment() {
    for (int i = length_ - 1; i >= 0; --i) {
      const int shift = 8 * i;
      if (((digits_ >> shift) & 0xff) != '9') {
        digits_ += std::uint64_t{1} << shift;
        return;
      }
      digits_ -= std::uint64_t{9} << shift;  // '9' -> '0', carry on
    }
    digits_ = (digits_ << 8) | '1';  // 99..9 -> 100..0
    ++length_;
  }

 private:
  std::uint64_t digits_ = '0';
  int length_ = 1;
};

void store_le32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
  p[2] = static_cast<char>(v >> 16);
  p[3] = static_cast<char>(v >> 24);
}

std::uint32_t load_le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// Appends `bytes` as a BSON array of int32 under `key`. Building the array's
// bytes directly and appending them with one libbson call is ~20x faster than
// one bson_append_int32 per byte.
void append_int32_array(bson_t* out, const char* key, std::string_view bytes) {
  // Per element at most 1 (type) + 8 (key) + 1 (NUL) + 4 (int32); the 8-byte key
  // store may write up to 7 bytes past the key, covered by the tail slack.
  thread_local std::string scratch;
  const std::size_t n = bytes.size();
  if (scratch.size() < 4 + n * 14 + 1 + 8) scratch.resize(4 + n * 14 + 1 + 8);
  char* base = scratch.data();
  char* p = base + 4;
  ArrayKeyCounter counter;
  for (std::size_t i = 0; i < n; ++i) {
    *p++ = static_cast<char>(kBsonInt32);
    const std::uint64_t key = counter.digits();
    std::memcpy(p, &key, 8);
    p += counter.length();
    *p++ = '\0';
    store_le32(p, static_cast<std::uint8_t>(bytes[i]));
    p += 4;
    counter.increment();
  }
  *p++ = '\0';
  const auto total = static_cast<std::uint32_t>(p - base);
  store_le32(base, total);
  bson_t array;
  bson_init_static(&array, reinterpret_cast<const std::uint8_t*>(base), total);
  bson_append_array(out, key, -1, &array);
}

constexpr std::size_t kPowersOf10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

int decimal_digits(std::size_t n) {
  int digits = 1;
  while (n >= 10) {
    n /= 10;
    ++digits;
  }
  return digits;
}

// Position of the NUL ending the key that starts at `pos`, or `end` if none.
// Array keys are short: look at 8 bytes at once while they are in bounds.
std::size_t skip_key(const std::uint8_t* buf, std::size_t pos, std::size_t end) {
  while (end - pos >= 8) {
    std::uint64_t word;
    std::memcpy(&word, buf + pos, 8);
    const std::uint64_t zero_bytes = (word - 0x0101010101010101ull) & ~word & 0x8080808080808080ull;
    if (zero_bytes) return pos + static_cast<std::size_t>(std::countr_zero(zero_bytes) / 8);
    pos += 8;
  }
  while (pos < end && buf[pos] != 0) ++pos;
  return pos;
}

// Reads a BSON array of int32 (or int64) values 0..255 into bytes. The array's
// raw bytes come from libbson, which checked only its outer length.
Result<Bytes> read_int32_array(const std::uint8_t* buf, std::uint32_t length) {
  if (length < 5 || load_le32(buf) != length || buf[length - 1] != 0) {
    return make_error(ErrorCode::kDecode, "data: malformed BSON array");
  }
  // Each element takes at least 7 bytes (type, 1-digit key, NUL, int32), which
  // bounds the count; writing through a raw pointer keeps the loop in registers.
  Bytes bytes((length - 5) / 7, '\0');
  char* out = bytes.data();
  std::size_t count = 0;
  std::size_t pos = 4;
  const std::size_t end = length - 1;
  while (pos < end) {
    // Fast path: a run of int32 elements whose keys all have the same number of
    // digits has a fixed stride. Each element is checked with one 8-byte load
    // (type byte, key bytes not NUL, NUL after the key) and one 4-byte load; no
    // step depends on the previous one's data, so iterations overlap.
    const int digits = decimal_digits(count);
    if (digits <= 6) {
      const std::size_t stride = static_cast<std::size_t>(digits) + 6;
      // Keys of `digits` digits are indices below 10^digits; the 8-byte load
      // of the last element must stay inside the array.
      const std::size_t same_width = kPowersOf10[digits] - count;
      const std::size_t fits = end - pos >= stride + 2 ? (end - pos - 2) / stride : 0;
      const std::size_t run = std::min(same_width, fits);
      const int nul_shift = 8 * (digits + 1);
      const std::uint64_t frame_mask = 0xff | (std::uint64_t{0xff} << nul_shift);
      // Bytes after the key read as 0x01 so that only key bytes can be zero.
      const std::uint64_t key_mask = ((std::uint64_t{1} << (8 * digits)) - 1) << 8;
      const std::uint64_t filler = 0x0101010101010101ull & ~key_mask;
      std::size_t i = 0;
      for (; i < run; ++i) {
        std::uint64_t word;
        std::memcpy(&word, buf + pos, 8);
        if ((word & frame_mask) != kBsonInt32) break;
        const std::uint64_t key = (word & key_mask) | filler;
        if ((key - 0x0101010101010101ull) & ~key & 0x8080808080808080ull) break;
        const std::uint32_t value = load_le32(buf + pos + digits + 2);
        if (value > 255) break;
        out[count++] = static_cast<char>(value);
        pos += stride;
      }
      if (i == run && run > 0) continue;
    }
    // General path: one element of any shape (or the error it contains).
    const std::uint8_t type = buf[pos++];
    pos = skip_key(buf, pos, end);  // the key itself does not matter: order does
    if (pos >= end) return make_error(ErrorCode::kDecode, "data: truncated array element");
    ++pos;
    std::int64_t value;
    if (type == kBsonInt32) {
      if (end - pos < 4) return make_error(ErrorCode::kDecode, "data: truncated int32");
      value = static_cast<std::int32_t>(load_le32(buf + pos));
      pos += 4;
    } else if (type == kBsonInt64) {
      if (end - pos < 8) return make_error(ErrorCode::kDecode, "data: truncated int64");
      std::uint64_t raw = load_le32(buf + pos) | (std::uint64_t{load_le32(buf + pos + 4)} << 32);
      value = static_cast<std::int64_t>(raw);
      pos += 8;
    } else {
      return make_error(
          ErrorCode::kDecode,
          fmt::format("data: element {} has BSON type 0x{:02x}, expected int32", count, type));
    }
    if (value < 0 || value > 255) {
      return make_error(ErrorCode::kDecode,
                        fmt::format("data: element {} is {}, outside 0..255", count, value));
    }
    out[count++] = static_cast<char>(value);
  }
  bytes.resize(count);
  return bytes;
}

Result<std::string> read_utf8(const bson_iter_t* it, const char* field) {
  if (!BSON_ITER_HOLDS_UTF8(it)) {
    return make_error(ErrorCode::kDecode, fmt::format("field '{}' is not a string", field));
  }
  std::uint32_t length = 0;
  const char* s = bson_iter_utf8(it, &length);
  return std::string(s, length);
}

}  // namespace

void encode_document(const Document& doc, const EncodeOptions& options, bson_t* out) {
  const auto& h = doc.header;
  BSON_APPEND_UTF8(out, "t", h.kind == MessageKind::kRequest ? "Req" : "Res");
  if (h.target)
    bson_append_utf8(out, "target", 6, h.target->data(), static_cast<int>(h.target->size()));
  if (h.request)
    bson_append_utf8(out, "request", 7, h.request->data(), static_cast<int>(h.request->size()));
  bson_append_utf8(out, "ns", 2, h.ns.data(), static_cast<int>(h.ns.size()));
  bson_append_utf8(out, "origin", 6, h.origin.data(), static_cast<int>(h.origin.size()));
  if (options.format == DataFormat::kBinary) {
    bson_append_binary(out, "data", 4, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const std::uint8_t*>(doc.data.data()),
                       static_cast<std::uint32_t>(doc.data.size()));
  } else {
    append_int32_array(out, "data", doc.data);
  }
  if (options.created_at_ms) bson_append_date_time(out, "createdAt", 9, *options.created_at_ms);
  if (doc.extension) {
    bson_append_binary(out, "siobridge", 9, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const std::uint8_t*>(doc.extension->data()),
                       static_cast<std::uint32_t>(doc.extension->size()));
  }
  if (doc.echo) BSON_APPEND_BOOL(out, "echo", true);
  if (!doc.calls.empty()) {
    bson_t array;
    bson_append_array_begin(out, "calls", 5, &array);
    char key_buffer[16];
    for (std::size_t i = 0; i < doc.calls.size(); ++i) {
      const char* key = nullptr;
      const auto key_length =
          bson_uint32_to_string(static_cast<std::uint32_t>(i), &key, key_buffer, sizeof key_buffer);
      bson_t entry;
      bson_append_document_begin(&array, key, static_cast<int>(key_length), &entry);
      const auto& mark = doc.calls[i];
      bson_append_utf8(&entry, "i", 1, mark.instance.data(),
                       static_cast<int>(mark.instance.size()));
      bson_append_int64(&entry, "n", 1, static_cast<std::int64_t>(mark.seq));
      bson_append_document_end(&array, &entry);
    }
    bson_append_array_end(out, &array);
  }
}

std::vector<CallMark> read_call_marks(const bson_t* bson) {
  std::vector<CallMark> marks;
  bson_iter_t it, entries;
  if (!bson_iter_init_find(&it, bson, "calls") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &entries)) {
    return marks;
  }
  while (bson_iter_next(&entries)) {
    bson_iter_t field;
    if (!BSON_ITER_HOLDS_DOCUMENT(&entries) || !bson_iter_recurse(&entries, &field)) continue;
    CallMark mark;
    bool has_instance = false, has_seq = false;
    while (bson_iter_next(&field)) {
      const std::string_view key(bson_iter_key(&field), bson_iter_key_len(&field));
      if (key == "i" && BSON_ITER_HOLDS_UTF8(&field)) {
        std::uint32_t length = 0;
        const char* value = bson_iter_utf8(&field, &length);
        mark.instance.assign(value, length);
        has_instance = true;
      } else if (key == "n" && BSON_ITER_HOLDS_INT64(&field) && bson_iter_int64(&field) > 0) {
        mark.seq = static_cast<std::uint64_t>(bson_iter_int64(&field));
        has_seq = true;
      }
    }
    if (has_instance && has_seq) marks.push_back(std::move(mark));
  }
  return marks;
}

namespace {

std::size_t utf8_element(std::size_t key, std::size_t value) {
  return 1 + key + 1 + 4 + value + 1;  // type, key, NUL, length, bytes, NUL
}

std::size_t binary_element(std::size_t key, std::size_t value) {
  return 1 + key + 1 + 4 + 1 + value;  // type, key, NUL, length, subtype, bytes
}

// Bytes of a BSON array of `n` int32 elements: each is a type byte, the decimal
// key, its NUL and four bytes.
std::size_t int32_array_size(std::size_t n) {
  std::size_t key_digits = 0;
  std::size_t width = 1, from = 0, to = 10;
  while (from < n) {
    key_digits += (std::min(n, to) - from) * width;
    from = to;
    to *= 10;
    ++width;
  }
  return 4 + n * (1 + 1 + 4) + key_digits + 1;
}

}  // namespace

std::size_t encoded_size(const Document& doc, const EncodeOptions& options) {
  const auto& h = doc.header;
  std::size_t size = 4 + 1;    // length and terminator
  size += 1 + 3 + 1 + 12;      // _id
  size += utf8_element(1, 3);  // t
  if (h.target) size += utf8_element(6, h.target->size());
  if (h.request) size += utf8_element(7, h.request->size());
  size += utf8_element(2, h.ns.size());      // ns
  size += utf8_element(6, h.origin.size());  // origin
  size += options.format == DataFormat::kBinary ? binary_element(4, doc.data.size())
                                                : 1 + 4 + 1 + int32_array_size(doc.data.size());
  if (options.created_at_ms) size += 1 + 9 + 1 + 8;
  if (doc.extension) size += binary_element(9, doc.extension->size());
  if (doc.echo) size += 1 + 4 + 1 + 1;
  if (!doc.calls.empty()) {
    std::size_t array = 4 + 1;  // length and terminator
    for (std::size_t i = 0; i < doc.calls.size(); ++i) {
      const std::size_t entry = 4 + utf8_element(1, doc.calls[i].instance.size()) +
                                (1 + 1 + 1 + 8) + 1;  // length, "i", "n" (int64), terminator
      array += 1 + std::to_string(i).size() + 1 + entry;
    }
    size += 1 + 5 + 1 + array;
  }
  return size;
}

std::string format_position(std::uint32_t seconds, std::uint32_t increment, std::uint32_t index) {
  return fmt::format("{:08x}{:08x}{:08x}", seconds, increment, index);
}

Result<Document> decode_document(const bson_t* bson) {
  bson_iter_t it;
  if (!bson_iter_init(&it, bson)) return make_error(ErrorCode::kDecode, "not a BSON document");
  Document doc;
  std::string_view kind;
  std::optional<std::string> ns, origin;
  bool has_kind = false, has_data = false;
  while (bson_iter_next(&it)) {
    const std::string_view key(bson_iter_key(&it), bson_iter_key_len(&it));
    if (key == "t") {
      if (!BSON_ITER_HOLDS_UTF8(&it))
        return make_error(ErrorCode::kDecode, "field 't' is not a string");
      std::uint32_t length = 0;
      const char* value = bson_iter_utf8(&it, &length);
      kind = std::string_view(value, length);
      has_kind = true;
    } else if (key == "ns") {
      auto v = read_utf8(&it, "ns");
      if (!v) return v.error();
      ns = std::move(*v);
    } else if (key == "origin") {
      auto v = read_utf8(&it, "origin");
      if (!v) return v.error();
      origin = std::move(*v);
    } else if (key == "target") {
      if (BSON_ITER_HOLDS_NULL(&it)) continue;  // an Option<Uid> written as null
      auto v = read_utf8(&it, "target");
      if (!v) return v.error();
      doc.header.target = std::move(*v);
    } else if (key == "request") {
      auto v = read_utf8(&it, "request");
      if (!v) return v.error();
      doc.header.request = std::move(*v);
    } else if (key == "data") {
      if (BSON_ITER_HOLDS_ARRAY(&it)) {
        std::uint32_t length = 0;
        const std::uint8_t* buf = nullptr;
        bson_iter_array(&it, &length, &buf);
        auto bytes = read_int32_array(buf, length);
        if (!bytes) return bytes.error();
        doc.data = std::move(*bytes);
      } else if (BSON_ITER_HOLDS_BINARY(&it)) {
        bson_subtype_t subtype;
        std::uint32_t length = 0;
        const std::uint8_t* buf = nullptr;
        bson_iter_binary(&it, &subtype, &length, &buf);
        if (subtype != BSON_SUBTYPE_BINARY) {
          return make_error(ErrorCode::kDecode,
                            fmt::format("data: BinData subtype {} (expected 0)", int{subtype}));
        }
        doc.data.assign(reinterpret_cast<const char*>(buf), length);
      } else {
        return make_error(ErrorCode::kDecode, "field 'data' is neither an int32 array nor BinData");
      }
      has_data = true;
    } else if (key == "siobridge" && BSON_ITER_HOLDS_BINARY(&it)) {
      bson_subtype_t subtype;
      std::uint32_t length = 0;
      const std::uint8_t* buf = nullptr;
      bson_iter_binary(&it, &subtype, &length, &buf);
      doc.extension = Bytes(reinterpret_cast<const char*>(buf), length);
    } else if (key == "echo" && BSON_ITER_HOLDS_BOOL(&it)) {
      doc.echo = bson_iter_bool(&it);
    }
  }
  // bson_iter_next stops early on corrupt input; that must not look like success.
  if (it.err_off != 0) {
    return make_error(ErrorCode::kDecode, fmt::format("corrupt BSON at offset {}", it.err_off));
  }
  if (!has_kind) return make_error(ErrorCode::kDecode, "missing field 't'");
  if (!ns) return make_error(ErrorCode::kDecode, "missing field 'ns'");
  if (!origin) return make_error(ErrorCode::kDecode, "missing field 'origin'");
  if (!has_data) return make_error(ErrorCode::kDecode, "missing field 'data'");

  if (kind == "Req") {
    doc.header.kind = MessageKind::kRequest;
  } else if (kind == "Res") {
    doc.header.kind = MessageKind::kResponse;
    if (!doc.header.request) return make_error(ErrorCode::kDecode, "response without 'request'");
    if (!doc.header.target) return make_error(ErrorCode::kDecode, "response without 'target'");
    if (!is_valid_id(*doc.header.request)) {
      return make_error(ErrorCode::kDecode, "field 'request' is not a 16-character id");
    }
  } else {
    return make_error(
        ErrorCode::kDecode,
        fmt::format("field 't' is \"{}\", expected \"Req\" or \"Res\"", kind.substr(0, 16)));
  }
  if (ns->empty() || (*ns)[0] != '/') {
    return make_error(ErrorCode::kDecode, "field 'ns' is not a namespace (must start with '/')");
  }
  if (!is_valid_id(*origin)) {
    return make_error(ErrorCode::kDecode, "field 'origin' is not a 16-character id");
  }
  if (doc.header.target && !is_valid_id(*doc.header.target) &&
      *doc.header.target != kSiobridgeTarget) {
    return make_error(ErrorCode::kDecode, "field 'target' is not a 16-character id");
  }
  doc.header.ns = std::move(*ns);
  doc.header.origin = std::move(*origin);
  return doc;
}

Result<Document> decode_document(const std::uint8_t* data, std::size_t length) {
  bson_t bson;
  if (!bson_init_static(&bson, data, length)) {
    return make_error(ErrorCode::kDecode, "not a BSON document (bad length or terminator)");
  }
  return decode_document(&bson);
}

}  // namespace siobridge::wire
