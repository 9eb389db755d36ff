// The values a setting takes: durations (10s, 500ms), sizes (16MiB) and counts,
// each refused with a message that says what was expected; the defaults that
// depend on the host; the MongoDB secrets read from files.
//
// Thread-safe (pure functions).
#include <fmt/format.h>

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

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

bool is_loopback(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::size_t max_message_bytes_for(wire::DataFormat format) {
  // A payload of text or binary attachments is as long in msgpack as it is;
  // headers, ids and the packet's framing add well under 1 KiB.
  constexpr std::size_t kFraming = 1024;
  auto fits = [format](std::size_t payload) {
    wire::Document doc;
    doc.header = {wire::MessageKind::kRequest, std::string(64, '/'), std::string(16, 'A'),
                  std::string(16, 'B'), std::nullopt};
    doc.data.resize(payload + kFraming);
    doc.extension = std::string(64, 'x');
    return wire::encoded_size(doc, wire::EncodeOptions{format, 0}) <= wire::kMaxDocumentBytes;
  };
  std::size_t low = 0, high = wire::kMaxDocumentBytes;
  while (low < high) {
    const std::size_t mid = (low + high + 1) / 2;
    if (fits(mid)) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

const char* to_string(Source source) {
  switch (source) {
    case Source::kDefault:
      return "default";
    case Source::kFile:
      return "file";
    case Source::kEnvironment:
      return "environment";
    case Source::kFlag:
      return "flag";
  }
  return "?";
}

std::string default_unix_socket() {
  if (getuid() == 0) return "/run/siobridge/siobridged.sock";
  return fmt::format("/tmp/siobridge-{}/siobridged.sock", getuid());
}

namespace {

// The file's text without trailing white space (the line end editors and
// `echo` add); `first_line`: only up to the first line end.
Result<std::string> read_secret_file(const char* key, const std::string& path, bool first_line) {
  std::ifstream in(path);
  if (!in) return bad(fmt::format("{}: cannot read {}", key, path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (first_line) text = text.substr(0, text.find_first_of("\r\n"));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

}  // namespace

Result<MongoSecrets> read_mongodb_secrets(const std::string& uri, const std::string& uri_file,
                                          const std::string& password_file) {
  MongoSecrets secrets{uri, ""};
  if (!uri_file.empty()) {
    auto read = read_secret_file("mongodb.uri_file", uri_file, false);
    if (!read.ok()) return read.error();
    secrets.uri = std::move(*read);
    if (secrets.uri.find_first_of("\r\n") != std::string::npos) {
      return bad(
          fmt::format("mongodb.uri_file: {} holds more than one line; it must hold the "
                      "URI alone",
                      uri_file));
    }
  }
  if (!password_file.empty()) {
    auto read = read_secret_file("mongodb.password_file", password_file, true);
    if (!read.ok()) return read.error();
    secrets.password = std::move(*read);
    if (secrets.password.empty()) {
      return bad(fmt::format("mongodb.password_file: {} is empty", password_file));
    }
  }
  return secrets;
}

}  // namespace siobridge::app
