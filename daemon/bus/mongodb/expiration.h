// How documents leave the shared collection (PROTOCOL.md section 1): a TTL index
// on `createdAt`, or a capped collection of a fixed size. Plain value type.
#pragma once

#include <cstdint>
#include <string>

namespace siobridge::bus::mongodb {

struct Expiration {
  enum class Kind { kTtl, kCapped };
  Kind kind = Kind::kTtl;
  std::int64_t ttl_seconds = 60;        // kTtl
  std::int64_t capped_bytes = 1 << 20;  // kCapped

  static Expiration ttl(std::int64_t seconds) { return {Kind::kTtl, seconds, 0}; }
  static Expiration capped(std::int64_t bytes) { return {Kind::kCapped, 0, bytes}; }

  // "ttl 60 s" / "capped 1048576 bytes"
  std::string describe() const;
};

}  // namespace siobridge::bus::mongodb
