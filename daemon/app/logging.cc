#include "daemon/app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "daemon/common/secrets.h"

namespace siobridge::app {
namespace {

LogConfig current;

// %V: the message with every registered secret redacted (secrets.h).
class RedactedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string text = redact(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RedactedMessage>();
  }
};

// %j: the message, redacted, as a JSON string body (quotes, backslashes and
// control characters escaped), so that JSON lines stay valid whatever is logged.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    const std::string text = redact(std::string_view(msg.payload.data(), msg.payload.size()));
    for (char c : text) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char escaped[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
            dest.append(escaped, escaped + 6);
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

// The log file's directory must exist (spdlog would create it, hiding a typo)
// and the file must be writable, else the daemon logs nowhere.
Status check_log_file(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("log.file: the directory {} does not exist", parent.string()));
  }
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (!file) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("log.file: cannot write {}: {}", path, std::strerror(errno)));
  }
  std::fclose(file);
  return {};
}

Status install(const LogConfig& config) {
  if (!config.file.empty()) {
    if (auto s = check_log_file(config.file); !s.ok()) return s;
  }
  spdlog::sink_ptr sink;
  try {
    if (config.file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.file);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("log.file: ") + e.what());
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (config.format == "json") {
    formatter->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%j"})");
  } else {
    formatter->add_flag<RedactedMessage>('V').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %V");
  }
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>("siobridged", sink);
  logger->set_level(spdlog::level::from_str(config.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  return {};
}

}  // namespace

Status setup_logging(const LogConfig& config) {
  current = config;
  return install(config);
}

Status reopen_log_file() {
  if (current.file.empty()) return {};
  spdlog::default_logger()->flush();
  auto status = install(current);
  if (status.ok()) spdlog::info("log file reopened");
  return status;
}

}  // namespace siobridge::app
