#include "daemon/common/skip_log.h"

namespace siobridge {

std::optional<std::uint64_t> SkipLog::begin_warning(Millis now) {
  if (last_warning_ && now - *last_warning_ < interval_) {
    ++unreported_;
    return std::nullopt;
  }
  last_warning_ = now;
  return std::exchange(unreported_, 0);
}

void SkipLog::warn(const std::string& what, std::uint64_t unreported_before) {
  if (unreported_before == 0) {
    spdlog::warn("skipping {}", what);
  } else {
    spdlog::warn("skipping {} ({} more skipped since the last warning, logged at debug level)",
                 what, unreported_before);
  }
}

}  // namespace siobridge
