// Building blocks of the msgpack codecs: a writer that appends to Bytes, the
// fast path for byte arrays (PROTOCOL.md writes Vec<u8> as an array of small
// integers), a bounded unpack of untrusted input, and typed readers that fail
// with a message naming the field.
//
// Not synchronized; every function works on its arguments only.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/wire/messages.h"

namespace siobridge::wire {

// msgpack::packer's stream: appends to a Bytes.
class BytesWriter {
 public:
  explicit BytesWriter(Bytes& out) : out_(out) {}
  void write(const char* data, std::size_t size) { out_.append(data, size); }
  Bytes& bytes() { return out_; }

 private:
  Bytes& out_;
};

using Packer = msgpack::packer<BytesWriter>;

void pack_str(Packer& packer, std::string_view s);
void pack_optional_str(Packer& packer, const std::optional<std::string>& s);
void pack_str_array(Packer& packer, const std::vector<std::string>& items);

// Packs bytes as an array of integers, byte for byte what rmp-serde writes for a
// Vec<u8>: runs of bytes below 0x80 are their own positive fixint encoding and are
// copied in one append.
void pack_byte_array(Packer& packer, BytesWriter& writer, std::string_view bytes);

// Thrown by the readers below, caught at the codec boundary and turned into an
// Error value; it never leaves the wire module.
class DecodeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exactly one msgpack object filling the whole input, unpacked into this
// thread's reusable zone (no allocation per message once warm). Sizes are capped
// by the input length, so a forged length prefix cannot make it allocate more
// than a small multiple of the input. Strings and bins reference `input`, which
// must outlive this object; one UnpackedObject per thread at a time.
class UnpackedObject {
 public:
  explicit UnpackedObject(std::string_view input);  // throws DecodeFailure
  ~UnpackedObject();
  UnpackedObject(const UnpackedObject&) = delete;
  UnpackedObject& operator=(const UnpackedObject&) = delete;

  const msgpack::object& get() const { return root_; }

 private:
  static msgpack::zone& thread_zone();
  msgpack::zone& zone_;
  msgpack::object root_;
};

// Typed reads; `what` names the field in the error message.
const msgpack::object* expect_array(const msgpack::object& o, std::uint32_t size, const char* what);
std::string_view read_str(const msgpack::object& o, const char* what);
std::optional<std::string> read_optional_str(const msgpack::object& o, const char* what);
std::uint64_t read_uint(const msgpack::object& o, std::uint64_t max, const char* what);
std::int64_t read_int(const msgpack::object& o, const char* what);
std::vector<std::string> read_str_array(const msgpack::object& o, const char* what);
// An array of integers 0..255 (the Vec<u8> form); an empty array is empty bytes.
Bytes read_byte_array(const msgpack::object& o, const char* what);
bool is_nil(const msgpack::object& o);

const char* type_name(const msgpack::object& o);

}  // namespace siobridge::wire
