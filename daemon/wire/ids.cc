#include "daemon/wire/ids.h"

#include <array>
#include <cstdint>
#include <random>

namespace siobridge::wire {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<bool, 256> kIdChars = [] {
  std::array<bool, 256> table{};
  for (const char* c = kAlphabet; *c; ++c) table[static_cast<unsigned char>(*c)] = true;
  return table;
}();

bool all_id_chars(std::string_view s) {
  bool ok = true;
  for (char c : s) ok &= kIdChars[static_cast<unsigned char>(c)];
  return ok;
}

std::mt19937_64& thread_generator() {
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return generator;
}

// 12 bytes as 16 characters of URL-safe base64, without padding.
std::string encode_id(const std::array<std::uint8_t, 12>& raw) {
  std::string id(kIdLength, '\0');
  for (int group = 0; group < 4; ++group) {
    std::uint32_t bits = (raw[3 * group] << 16) | (raw[3 * group + 1] << 8) | raw[3 * group + 2];
    id[4 * group + 0] = kAlphabet[(bits >> 18) & 63];
    id[4 * group + 1] = kAlphabet[(bits >> 12) & 63];
    id[4 * group + 2] = kAlphabet[(bits >> 6) & 63];
    id[4 * group + 3] = kAlphabet[bits & 63];
  }
  return id;
}

// FNV-1a, 64 bits, from `basis`: a fixed function every node computes alike.
std::uint64_t fnv1a(std::string_view text, std::uint64_t basis) {
  std::uint64_t hash = basis;
  for (char c : text) {
    hash ^= static_cast<std::uint8_t>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

std::string generate_id() {
  auto& generator = thread_generator();
  std::array<std::uint8_t, 12> raw{};
  std::uint64_t a = generator(), b = generator();
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::uint8_t>(a >> (8 * i));
  for (int i = 0; i < 4; ++i) raw[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  return encode_id(raw);
}

std::string socket_alias(std::string_view sid) {
  if (is_valid_id(sid)) return std::string(sid);
  // Two independent 64-bit hashes, 96 of their bits kept: a collision between
  // two live sockets is out of reach.
  const std::uint64_t a = fnv1a(sid, 0xcbf29ce484222325ull);
  const std::uint64_t b = fnv1a(sid, 0x84222325cbf29ce4ull ^ sid.size());
  std::array<std::uint8_t, 12> raw{};
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<std::uint8_t>(a >> (8 * i));
  for (int i = 0; i < 4; ++i) raw[8 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  return encode_id(raw);
}

bool is_valid_id(std::string_view id) {
  return id.size() == kIdLength && all_id_chars(id);
}

bool is_valid_socket_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxSocketIdLength && all_id_chars(id);
}

}  // namespace siobridge::wire
