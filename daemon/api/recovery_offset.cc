#include "daemon/api/recovery_offset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include <fmt/format.h>

namespace siobridge::api {
namespace {

bool parse_number(std::string_view text, std::uint64_t& value) {
  if (text.empty() || text.size() > 20 || text[0] == '+') return false;
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
  return parsed.ec == std::errc() && parsed.ptr == text.data() + text.size();
}

}  // namespace

std::string recovery_base(const std::string& attachment_id, std::uint64_t log_seq,
                          const std::string& seen_through) {
  return fmt::format("{}.{}.{}", attachment_id, log_seq,
                     seen_through.empty() ? std::string_view("0") : seen_through);
}

std::string recovery_offset(const std::string& base, std::uint64_t own_seq) {
  return fmt::format("{}.{}", base, own_seq);
}

Result<core::RecoveryPoint> parse_recovery_offset(const ApiContext& context,
                                                  const std::string& offset) {
  auto unknown = [&](const std::string& why) -> Result<core::RecoveryPoint> {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("offset \"{}\" {}", offset.substr(0, 64), why));
  };
  if (offset.size() > 128) return unknown("is too long to be an offset");
  // instance . attachment . seq . position . own
  std::vector<std::string_view> parts;
  std::string_view rest(offset);
  for (std::size_t dot; (dot = rest.find('.')) != std::string_view::npos;) {
    parts.push_back(rest.substr(0, dot));
    rest.remove_prefix(dot + 1);
  }
  parts.push_back(rest);
  core::RecoveryPoint point;
  std::uint64_t attachment = 0;
  const auto is_hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  if (parts.size() != 5 || !parse_number(parts[1], attachment) ||
      !parse_number(parts[2], point.seq) || !parse_number(parts[4], point.own_seq) ||
      !(parts[3] == "0" ||
        (parts[3].size() == 24 && std::all_of(parts[3].begin(), parts[3].end(), is_hex)))) {
    return unknown("is not an offset of siobridge");
  }
  if (parts[3] != "0") point.position = std::string(parts[3]);
  auto local = context.parse_attachment(offset.substr(0, parts[0].size() + 1 + parts[1].size()));
  if (local.ok()) {
    if (*local == core::kNoAttachment) return unknown("is not an offset of siobridge");
    point.attachment = *local;
    return point;
  }
  if (local.error().code == ErrorCode::kInvalidArgument) {
    return unknown("is not an offset of siobridge");
  }
  // Another daemon instance's: its log entries are known here by their origin.
  point.instance = std::string(parts[0]);
  point.attachment = attachment;
  return point;
}

}  // namespace siobridge::api
