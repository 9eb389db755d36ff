#include "daemon/wire/msgpack_io.h"

#include <fmt/format.h>

namespace siobridge::wire {

namespace {
// Deeper than any PROTOCOL.md payload (Response > BroadcastAck > Result > Value >
// attachments is 6); bounds the unpacker's work on hostile nesting.
constexpr std::size_t kMaxDepth = 16;
}  // namespace

void pack_str(Packer& packer, std::string_view s) {
  packer.pack_str(static_cast<std::uint32_t>(s.size()));
  packer.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_optional_str(Packer& packer, const std::optional<std::string>& s) {
  if (s) {
    pack_str(packer, *s);
  } else {
    packer.pack_nil();
  }
}

void pack_str_array(Packer& packer, const std::vector<std::string>& items) {
  packer.pack_array(static_cast<std::uint32_t>(items.size()));
  for (const auto& item : items) pack_str(packer, item);
}

void pack_byte_array(Packer& packer, BytesWriter& writer, std::string_view bytes) {
  packer.pack_array(static_cast<std::uint32_t>(bytes.size()));
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p < end) {
    const char* run = p;
    while (p < end && static_cast<std::uint8_t>(*p) < 0x80) ++p;
    if (p > run) writer.write(run, static_cast<std::size_t>(p - run));
    while (p < end && static_cast<std::uint8_t>(*p) >= 0x80) {
      const char uint8_form[2] = {static_cast<char>(0xcc), *p};
      writer.write(uint8_form, 2);
      ++p;
    }
  }
}

namespace {

msgpack::object unpack_or_throw(msgpack::zone& zone, std::string_view input) {
  const std::size_t n = input.size();
  msgpack::unpack_limit limit(n, n / 2 + 1, n, n, n, kMaxDepth);
  std::size_t offset = 0;
  bool referenced = false;
  auto reference_input = [](msgpack::type::object_type, std::size_t, void*) { return true; };
  msgpack::object root;
  try {
    root =
        msgpack::unpack(zone, input.data(), n, offset, referenced, reference_input, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw DecodeFailure("truncated msgpack");
  } catch (const msgpack::depth_size_overflow&) {
    throw DecodeFailure("msgpack nested too deep");
  } catch (const msgpack::size_overflow& e) {
    throw DecodeFailure(
        fmt::format("msgpack length prefix larger than the payload ({})", e.what()));
  } catch (const msgpack::parse_error& e) {
    throw DecodeFailure(fmt::format("malformed msgpack: {}", e.what()));
  } catch (const msgpack::unpack_error& e) {
    throw DecodeFailure(fmt::format("malformed msgpack: {}", e.what()));
  } catch (const std::bad_alloc&) {
    throw DecodeFailure("msgpack payload too large to decode");
  }
  if (offset != n) {
    throw DecodeFailure(fmt::format("{} trailing bytes after the msgpack payload", n - offset));
  }
  return root;
}

}  // namespace

UnpackedObject::UnpackedObject(std::string_view input) : zone_(thread_zone()) {
  try {
    root_ = unpack_or_throw(zone_, input);
  } catch (...) {
    zone_.clear();
    throw;
  }
}

UnpackedObject::~UnpackedObject() {
  zone_.clear();
}

msgpack::zone& UnpackedObject::thread_zone() {
  thread_local msgpack::zone zone;
  return zone;
}

const char* type_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
      return "unsigned integer";
    case msgpack::type::NEGATIVE_INTEGER:
      return "negative integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

const msgpack::object* expect_array(const msgpack::object& o, std::uint32_t size,
                                    const char* what) {
  if (o.type != msgpack::type::ARRAY) {
    throw DecodeFailure(
        fmt::format("{}: expected an array of {}, got {}", what, size, type_name(o)));
  }
  if (o.via.array.size != size) {
    throw DecodeFailure(
        fmt::format("{}: expected an array of {}, got {} elements", what, size, o.via.array.size));
  }
  return o.via.array.ptr;
}

std::string_view read_str(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::STR) {
    throw DecodeFailure(fmt::format("{}: expected str, got {}", what, type_name(o)));
  }
  return {o.via.str.ptr, o.via.str.size};
}

std::optional<std::string> read_optional_str(const msgpack::object& o, const char* what) {
  if (is_nil(o)) return std::nullopt;
  return std::string(read_str(o, what));
}

std::uint64_t read_uint(const msgpack::object& o, std::uint64_t max, const char* what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    throw DecodeFailure(fmt::format("{}: expected unsigned integer, got {}", what, type_name(o)));
  }
  if (o.via.u64 > max) {
    throw DecodeFailure(fmt::format("{}: {} is larger than {}", what, o.via.u64, max));
  }
  return o.via.u64;
}

std::int64_t read_int(const msgpack::object& o, const char* what) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<std::uint64_t>(INT64_MAX)) {
      throw DecodeFailure(fmt::format("{}: {} does not fit in int64", what, o.via.u64));
    }
    return static_cast<std::int64_t>(o.via.u64);
  }
  throw DecodeFailure(fmt::format("{}: expected integer, got {}", what, type_name(o)));
}

std::vector<std::string> read_str_array(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::ARRAY) {
    throw DecodeFailure(fmt::format("{}: expected an array of str, got {}", what, type_name(o)));
  }
  std::vector<std::string> items;
  items.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& item = o.via.array.ptr[i];
    if (item.type != msgpack::type::STR) {
      throw DecodeFailure(
          fmt::format("{}: element {} is {}, expected str", what, i, type_name(item)));
    }
    items.emplace_back(item.via.str.ptr, item.via.str.size);
  }
  return items;
}

Bytes read_byte_array(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::ARRAY) {
    throw DecodeFailure(fmt::format("{}: expected an array of bytes, got {}", what, type_name(o)));
  }
  const std::uint32_t n = o.via.array.size;
  Bytes bytes(n, '\0');
  const msgpack::object* items = o.via.array.ptr;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (items[i].type != msgpack::type::POSITIVE_INTEGER || items[i].via.u64 > 255) {
      throw DecodeFailure(fmt::format("{}: element {} is not a byte (0..255)", what, i));
    }
    bytes[i] = static_cast<char>(items[i].via.u64);
  }
  return bytes;
}

bool is_nil(const msgpack::object& o) {
  return o.type == msgpack::type::NIL;
}

}  // namespace siobridge::wire
