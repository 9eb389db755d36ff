#include "daemon/common/skip_log.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>

using namespace siobridge;

namespace {

// Routes the default logger to memory for the test's length.
class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level)
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100)),
        previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_pattern("%l %v");
    logger->set_level(level);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }

  std::vector<std::string> lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace

TEST_CASE("the first skip is a warning, the others of its interval are summed up in the next") {
  CapturedLog log(spdlog::level::info);
  SkipLog skips(Millis(10'000));
  skips.skipped(Millis(1'000), "a response from {}: {}", "peer", "not an array");
  skips.skipped(Millis(2'000), "a response from {}: {}", "peer", "bad type");
  skips.skipped(Millis(10'999), "a request from {}: {}", "peer", "bad type");
  CHECK(skips.unreported() == 2);
  CHECK(log.lines() ==
        std::vector<std::string>{"warning skipping a response from peer: not an array\n"});

  skips.skipped(Millis(11'000), "a request from {}: {}", "other", "truncated");
  CHECK(skips.unreported() == 0);
  CHECK(log.lines().back() ==
        "warning skipping a request from other: truncated (2 more skipped since the last warning, "
        "logged at debug level)\n");
  CHECK(log.lines().size() == 2);
}

TEST_CASE("skips between warnings are written at debug level") {
  CapturedLog log(spdlog::level::debug);
  SkipLog skips(Millis(10'000));
  skips.skipped(Millis(0), "document {}", 1);
  skips.skipped(Millis(5), "document {}", 2);
  CHECK(log.lines() ==
        std::vector<std::string>{"warning skipping document 1\n", "debug skipping document 2\n"});
}

TEST_CASE("a skip after a quiet interval is a plain warning again") {
  CapturedLog log(spdlog::level::info);
  SkipLog skips(Millis(1'000));
  skips.skipped(Millis(0), "document {}", 1);
  skips.skipped(Millis(5'000), "document {}", 2);
  CHECK(log.lines() ==
        std::vector<std::string>{"warning skipping document 1\n", "warning skipping document 2\n"});
}
