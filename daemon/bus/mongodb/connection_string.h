// The MongoDB URI as the daemon uses it: parsed by libmongoc, with the
// daemon's defaults for the options the URI leaves out (server selection,
// heartbeat and socket timeouts, appname) and with a password given apart
// from the URI (mongodb.password_file) set on it. What it says about the
// connection (user, authSource, replica set, TLS) feeds the diagnoses.
//
// Move-only owner of a mongoc_uri_t; not synchronized.
#pragma once

#include <mongoc/mongoc.h>

#include "daemon/bus/mongodb/diagnosis.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/common/result.h"

namespace siobridge::bus::mongodb {

class ConnectionString {
 public:
  // kInvalidArgument for a URI libmongoc refuses (the message never holds
  // the password), or a password without a user name in the URI.
  static Result<ConnectionString> parse(const MongoBusConfig& config);

  const mongoc_uri_t* get() const { return uri_.get(); }
  UriFacts facts() const;
  // A client pool on this URI (error API version 2).
  Result<ClientPool> new_pool() const;

 private:
  Uri uri_;
};

// mongoc_init once per process, before any other thread uses the driver.
void init_driver();

}  // namespace siobridge::bus::mongodb
