// Warnings for input the daemon skips: malformed documents read from the bus,
// payloads that do not decode. Each skip is counted in the metrics by its
// caller; this class decides what the log says. An operator at the default
// level must see that input is being dropped, yet a peer that writes nothing
// but garbage must not flood the log: the first skip of an interval is a
// warning, the others of that interval go to the debug level only and are
// summed up in the next warning.
//
// Thread-compatible: each thread that skips input owns its own SkipLog (the
// core thread one per Node, the change stream thread one per watcher).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/common/time.h"

namespace siobridge {

class SkipLog {
 public:
  static constexpr Millis kDefaultInterval{10'000};

  explicit SkipLog(Millis interval = kDefaultInterval) : interval_(interval) {}

  // `now` is the caller's clock; `format` and `args` say what was skipped and
  // why, e.g. ("a response from {}: {}", origin, error).
  template <typename... Args>
  void skipped(Millis now, fmt::format_string<Args...> format, Args&&... args) {
    if (const auto unreported = begin_warning(now)) {
      warn(fmt::format(format, std::forward<Args>(args)...), *unreported);
    } else if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("skipping {}", fmt::format(format, std::forward<Args>(args)...));
    }
  }

  // Skips written at debug level only since the last warning.
  std::uint64_t unreported() const { return unreported_; }

 private:
  // The number of skips to report with a warning now, or nullopt when this
  // skip falls in the interval of the last warning.
  std::optional<std::uint64_t> begin_warning(Millis now);
  static void warn(const std::string& what, std::uint64_t unreported_before);

  Millis interval_;
  std::optional<Millis> last_warning_;
  std::uint64_t unreported_ = 0;
};

}  // namespace siobridge
