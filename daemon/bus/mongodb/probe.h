// `siobridged --check-config --connect`: connects once the way the daemon
// does (the same URI options and password) and checks, without changing
// anything, what the daemon would check at start: the server (a replica set
// or a sharded cluster, of the set the URI names), the login, the user's
// privileges, and the collection. A failure is named by its Cause (the same
// diagnoses as the running daemon's).
//
// Blocking; one client of its own; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "daemon/bus/mongodb/diagnosis.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

struct ProbeReport {
  std::vector<std::string> checked;  // one line per check that passed
  bool ok = false;
  Cause cause = Cause::kNone;  // when !ok, if one was found
  ErrorCode code = ErrorCode::kInternal;
  std::string error;  // when !ok: one line, no password
};

ProbeReport probe_mongodb(const MongoBusConfig& config);

}  // namespace siobridge::bus::mongodb
