// One log: what libmongoc, gRPC and protobuf log goes through the daemon's
// logger, with its level, format and file, one record per line. The driver's
// DEBUG lines (its server monitoring writes two a second during an outage)
// show only at log.level debug; a driver line that repeats what the daemon
// reports itself (a failed login, at each retry) goes to debug as well.
//
// install_library_log_handlers() is for the main thread, after
// setup_logging(); the handlers themselves are thread-safe (the libraries call
// them from their own threads).
#pragma once

#include <string>

namespace siobridge::app {

void install_library_log_handlers(const std::string& level);

}  // namespace siobridge::app
