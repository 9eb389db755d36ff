// The values a setting takes: durations (10s, 500ms), sizes (16MiB) and counts,
// each refused with a message that says what was expected.
//
// Thread-safe (pure functions).
#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "daemon/app/config.h"

namespace siobridge::app {
namespace {

Error bad(const std::string& what) {
  return make_error(ErrorCode::kInvalidArgument, what);
}

}  // namespace

namespace {

// The leading decimal digits of `text` as a number, and where they end.
struct Leading {
  std::uint64_t value = 0;
  std::size_t digits = 0;
  bool overflow = false;
};

Leading leading_number(const std::string& text) {
  Leading out;
  while (out.digits < text.size() && std::isdigit(static_cast<unsigned char>(text[out.digits]))) {
    ++out.digits;
  }
  if (out.digits > 0) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + out.digits, out.value);
    out.overflow = ec != std::errc() || end != text.data() + out.digits;
  }
  return out;
}

}  // namespace

Result<Millis> parse_duration(const std::string& text) {
  const auto n = leading_number(text);
  const std::string unit = text.substr(n.digits);
  if (n.digits == 0 || (unit.empty() && text != "0")) {
    return bad(fmt::format("\"{}\" is not a duration like 10s, 500ms, 2m or 1h", text));
  }
  std::uint64_t scale = 0;
  if (unit == "ms" || unit.empty()) scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (scale == 0) return bad(fmt::format("\"{}\" has an unknown unit; use ms, s, m or h", text));
  // A year is more than any timeout needs; beyond it is a typo.
  constexpr std::uint64_t kMaxMs = 366ull * 24 * 3'600'000;
  if (n.overflow || n.value > kMaxMs / scale) {
    return bad(fmt::format("\"{}\" is too long (at most 366 days)", text));
  }
  return Millis{static_cast<std::int64_t>(n.value * scale)};
}

Result<std::uint64_t> parse_size(const std::string& text) {
  const auto n = leading_number(text);
  if (n.digits == 0) {
    return bad(fmt::format("\"{}\" is not a size like 1048576, 512KiB or 16MiB", text));
  }
  const std::string unit = text.substr(n.digits);
  unsigned shift = 64;
  if (unit.empty() || unit == "B") shift = 0;
  if (unit == "KiB") shift = 10;
  if (unit == "MiB") shift = 20;
  if (unit == "GiB") shift = 30;
  if (shift == 64) {
    return bad(fmt::format("\"{}\" has an unknown unit; use KiB, MiB or GiB", text));
  }
  constexpr std::uint64_t kMaxBytes = 1ull << 40;  // 1 TiB: no limit here needs more
  if (n.overflow || n.value > (kMaxBytes >> shift)) {
    return bad(fmt::format("\"{}\" is too large (at most 1024GiB)", text));
  }
  return n.value << shift;
}

Result<std::uint64_t> parse_count(const std::string& text) {
  const auto n = leading_number(text);
  if (n.digits == 0 || n.digits != text.size()) {
    return bad(fmt::format("\"{}\" is not a count (a whole number, no unit)", text));
  }
  if (n.overflow || n.value > (1ull << 40)) return bad(fmt::format("\"{}\" is too large", text));
  return n.value;
}

}  // namespace siobridge::app
