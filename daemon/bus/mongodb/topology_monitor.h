// TopologyMonitor: the MongoDB bus's view of the driver's server monitoring.
// The driver checks every server each heartbeat_frequency and at once after a
// network error; when no writable server is left (MongoDB stopped, an election
// running) the bus reports kUnavailable within about that period, without
// waiting for an insert or the change stream to fail, and when one is back it
// cuts the writer's and watcher's backoff short. Failed heartbeats and server
// descriptions that do not fit the URI (another replica set, a standalone
// server) are diagnosed as they happen (diagnosis.h): a wrong set name is
// named within a heartbeat, not after a server selection timeout.
//
// install() must run before any client is popped from the pool; the callbacks
// run on the driver's monitoring threads.
#pragma once

#include <mongoc/mongoc.h>

#include "daemon/bus/mongodb/bus_context.h"

namespace siobridge::bus::mongodb {

class TopologyMonitor {
 public:
  explicit TopologyMonitor(BusContext& context) : context_(context) {}
  TopologyMonitor(const TopologyMonitor&) = delete;
  TopologyMonitor& operator=(const TopologyMonitor&) = delete;

  void install(mongoc_client_pool_t* pool);

 private:
  static void on_topology_changed(const mongoc_apm_topology_changed_t* event);
  static void on_server_changed(const mongoc_apm_server_changed_t* event);
  static void on_heartbeat_failed(const mongoc_apm_server_heartbeat_failed_t* event);
  static void on_heartbeat_succeeded(const mongoc_apm_server_heartbeat_succeeded_t* event);
  BusContext& context_;
};

}  // namespace siobridge::bus::mongodb
