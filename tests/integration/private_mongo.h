// A MongoDB of a test's own, on its own port, that the test may stop, restart
// or run standalone (scripts/mongo). Ports: private_port(0), private_port(1),
// from $SIOBRIDGE_MONGO_PORT + 4 (scripts/test's shared server is on that port
// and its failover replica set on the three after it), so that checkouts given
// different ports never meet. Tests that need one are skipped ("case
// skipped:", siobridge_test's SKIPPABLE) when the test MongoDB binary is not
// installed (MONGODB_URI pointing at an external server, no scripts/setup run).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace siobridge::testing {

// The `index`th private port (0 or 1).
inline int private_port(int index) {
  const char* shared = std::getenv("SIOBRIDGE_MONGO_PORT");
  const int base = shared && *shared ? std::atoi(shared) : 27117;
  return base + 4 + index;
}

class PrivateMongo {
 public:
  PrivateMongo(int port, bool standalone = false) : port_(port), standalone_(standalone) {}
  ~PrivateMongo() { run("wipe"); }

  static bool available() {
    return std::filesystem::exists(std::string(SIOBRIDGE_SOURCE_DIR) +
                                   "/.cache/mongodb/mongod.exe");
  }
  std::string uri() const {
    const std::string base = "mongodb://127.0.0.1:" + std::to_string(port_) + "/";
    return standalone_ ? base + "?serverSelectionTimeoutMS=2000"
                       : base + "?replicaSet=rs0&serverSelectionTimeoutMS=2000";
  }
  void start() { REQUIRE(run("start") == 0); }
  void stop() { REQUIRE(run("stop") == 0); }
  void wipe() { run("wipe"); }

 private:
  int run(const std::string& command) const {
    const std::string line = "bash '" + std::string(SIOBRIDGE_SOURCE_DIR) + "/scripts/mongo' " +
                             command + " --port " + std::to_string(port_) +
                             (standalone_ ? " --standalone" : "") + " >/dev/null";
    return std::system(line.c_str());
  }
  int port_;
  bool standalone_;
};

}  // namespace siobridge::testing
