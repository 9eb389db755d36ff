#include "daemon/app/library_logs.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <mongoc/mongoc.h>
#include <spdlog/spdlog.h>

#include <string_view>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/bus/mongodb/diagnosis.h"

namespace siobridge::app {
namespace {

// A record's text on one line: a library message may end with a newline or
// hold several.
std::string one_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

spdlog::level::level_enum mongoc_level(mongoc_log_level_t level) {
  switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
      return spdlog::level::err;
    case MONGOC_LOG_LEVEL_WARNING:
      return spdlog::level::warn;
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
      return spdlog::level::info;
    case MONGOC_LOG_LEVEL_DEBUG:
      return spdlog::level::debug;
    case MONGOC_LOG_LEVEL_TRACE:
      return spdlog::level::trace;
  }
  return spdlog::level::info;
}

void on_mongoc_log(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  auto target = mongoc_level(level);
  const std::string text = one_line(message ? message : "");
  const std::string where = domain ? domain : "mongoc";
  if (target <= spdlog::level::err && target >= spdlog::level::info) {
    bus::mongodb::observe_driver_log(where, text);
    if (bus::mongodb::driver_log_repeats_diagnosis(where, text)) target = spdlog::level::debug;
  }
  if (!spdlog::should_log(target)) return;
  spdlog::log(target, "mongoc {}: {}", where, text);
}

void on_grpc_log(gpr_log_func_args* args) {
  // gRPC's INFO lines are its internals (pollers, epoll descriptors): debug.
  const auto target =
      args->severity == GPR_LOG_SEVERITY_ERROR ? spdlog::level::err : spdlog::level::debug;
  if (!spdlog::should_log(target)) return;
  spdlog::log(target, "grpc {}:{}: {}", args->file ? args->file : "", args->line,
              one_line(args->message ? args->message : ""));
}

void on_protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                     const std::string& message) {
  const auto target = level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::err
                      : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                                    : spdlog::level::info;
  if (!spdlog::should_log(target)) return;
  spdlog::log(target, "protobuf {}:{}: {}", file ? file : "", line, one_line(message));
}

}  // namespace

void install_library_log_handlers(const std::string& level) {
  mongoc_log_set_handler(&on_mongoc_log, nullptr);
  // gRPC drops records under its verbosity before the handler sees them.
  gpr_set_log_verbosity(level == "trace" || level == "debug" ? GPR_LOG_SEVERITY_DEBUG
                                                             : GPR_LOG_SEVERITY_ERROR);
  gpr_set_log_function(&on_grpc_log);
  google::protobuf::SetLogHandler(&on_protobuf_log);
}

}  // namespace siobridge::app
