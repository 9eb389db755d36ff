// Settings of the MongoDB bus. Plain value type.
#pragma once

#include <cstddef>
#include <string>

#include "daemon/bus/mongodb/expiration.h"
#include "daemon/core/time.h"
#include "daemon/wire/document.h"

namespace siobridge::bus::mongodb {

struct MongoBusConfig {
  std::string uri;  // must name a replica set or a sharded cluster
  std::string database = "siobridge";
  std::string collection = "socket.io-adapter";
  Expiration expiration;
  wire::DataFormat data_format = wire::DataFormat::kInt32Array;
  std::string state_dir;  // where the resume token is kept; empty: not kept
  std::string instance;   // tells daemons apart that share a state directory

  std::size_t max_batch = 1000;                // documents per insertMany
  std::size_t max_queued_documents = 100'000;  // publish() refuses beyond
  std::size_t max_queued_bytes = 256u << 20;
  core::Millis retry_min{100};  // backoff after errors
  core::Millis retry_max{5000};
  core::Millis recreate_step{1000};             // stagger of re-creation by rank
  core::Millis server_selection_timeout{5000};  // unless the URI sets one
};

}  // namespace siobridge::bus::mongodb
