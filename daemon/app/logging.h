// Logging of siobridged (spdlog): text or JSON lines, to standard error or a
// file that SIGHUP reopens (for logrotate). Not for concurrent set-up: call
// from the main thread; logging itself is thread-safe.
#pragma once

#include "daemon/app/config.h"
#include "daemon/common/result.h"

namespace siobridge::app {

Status setup_logging(const LogConfig& config);
// Reopens the log file after rotation; a no-op when logging to stderr.
Status reopen_log_file();

}  // namespace siobridge::app
