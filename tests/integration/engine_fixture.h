// Engines on the real MongoDB of $MONGODB_URI, sharing a collection in a fresh
// database. The collection is created once before any engine starts (the
// Wine-hosted test server cannot take concurrent creation, docs/testing.md).
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/testing/mongo_test_env.h"
#include "daemon/runtime/engine.h"
#include "tests/support/engine_server.h"

namespace siobridge::testing {

using bus::mongodb::testing::ClientHandle;
using bus::mongodb::testing::connect;
using bus::mongodb::testing::mongodb_uri;
using bus::mongodb::testing::TestDatabase;

inline core::NodeConfig quick_node_config() {
  core::NodeConfig config;
  config.heartbeat_interval = Millis{1000};
  config.heartbeat_timeout = Millis{4000};
  config.request_timeout = Millis{3000};
  config.ack_timeout = Millis{2000};
  config.local_timeout = Millis{1000};
  return config;
}

class EngineSet {
 public:
  explicit EngineSet(bus::mongodb::Expiration expiration, std::string uri = mongodb_uri())
      : uri_(std::move(uri)), expiration_(expiration), db_(uri_) {
    auto status =
        bus::mongodb::ensure_collection(db_.client(), db_.name(), kCollection, expiration_);
    INFO((status.ok() ? "" : status.error().message));
    REQUIRE(status.ok());
  }
  ~EngineSet() {
    for (auto& engine : engines_) engine->stop(Millis{0});
  }

  bus::mongodb::MongoBusConfig bus_config() const {
    bus::mongodb::MongoBusConfig config;
    config.uri = uri_;
    config.database = db_.name();
    config.collection = kCollection;
    config.expiration = expiration_;
    config.retry_min = Millis{50};
    config.retry_max = Millis{1000};
    config.server_selection_timeout = Millis{2000};
    return config;
  }

  runtime::Engine& add(core::NodeConfig node = quick_node_config()) {
    return add(node, bus_config());
  }
  runtime::Engine& add(core::NodeConfig node, bus::mongodb::MongoBusConfig bus) {
    auto engine = runtime::Engine::create({node, bus});
    INFO((engine.ok() ? "" : engine.error().message));
    REQUIRE(engine.ok());
    (*engine)->start();
    engines_.push_back(std::move(*engine));
    return *engines_.back();
  }
  // Stops an engine without its peers hearing anything: as if it were killed.
  void kill(runtime::Engine& engine) { engine.stop(Millis{0}); }

  const TestDatabase& db() const { return db_; }
  const std::string& uri() const { return uri_; }
  static constexpr const char* kCollection = "socket.io-adapter";

 private:
  std::string uri_;
  bus::mongodb::Expiration expiration_;
  TestDatabase db_;
  std::vector<std::unique_ptr<runtime::Engine>> engines_;
};

inline wire::Packet testing_event(const std::string& json, const std::string& ns = "/") {
  return core::testing::event(json, ns);
}

inline std::uint32_t peers_in(core::Node& node, const std::string& ns = "/") {
  for (const auto& n : node.status().namespaces)
    if (n.ns == ns) return static_cast<std::uint32_t>(n.peers.size());
  return 0;
}

}  // namespace siobridge::testing
