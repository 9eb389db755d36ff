#include "daemon/api/recovery_offset.h"

#include <charconv>

#include <fmt/format.h>

namespace siobridge::api {
namespace {

bool parse_number(std::string_view text, std::uint64_t& value) {
  if (text.empty() || text.size() > 20 || text[0] == '+') return false;
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
  return parsed.ec == std::errc() && parsed.ptr == text.data() + text.size();
}

}  // namespace

std::string recovery_base(const std::string& attachment_id, std::uint64_t log_seq) {
  return fmt::format("{}.{}", attachment_id, log_seq);
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
  const auto last = offset.rfind('.');
  const auto middle =
      last == std::string::npos || last == 0 ? std::string::npos : offset.rfind('.', last - 1);
  if (middle == std::string::npos) return unknown("is not an offset of siobridge");
  core::RecoveryPoint point;
  const std::string_view text(offset);
  if (!parse_number(text.substr(middle + 1, last - middle - 1), point.seq) ||
      !parse_number(text.substr(last + 1), point.own_seq)) {
    return unknown("is not an offset of siobridge");
  }
  auto attachment = context.parse_attachment(offset.substr(0, middle));
  if (!attachment.ok() || *attachment == core::kNoAttachment) {
    return unknown(attachment.ok() || attachment.error().code == ErrorCode::kInvalidArgument
                       ? "is not an offset of siobridge"
                       : "was given before the daemon restarted");
  }
  point.attachment = *attachment;
  return point;
}

}  // namespace siobridge::api
