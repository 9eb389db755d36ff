// A MongoDB of a test's own, on its own port, that the test may stop, restart
// or run standalone (scripts/mongo). Tests that need one skip with a warning
// when the test MongoDB binary is not installed (MONGODB_URI pointing at an
// external server, no scripts/setup run).
//
// Ports are offsets from the test MongoDB's ($SIOBRIDGE_MONGO_PORT, else
// 27117), so that runs on other ports, side by side, never stop, wipe or
// share each other's servers. The offsets in use (docs/testing.md): +1 to +3
// the fault suites (tests/faults), +4 and +5 the tests here.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace siobridge::testing {

// The port `offset` above the test MongoDB's.
inline int private_mongo_port(int offset) {
  const char* base = std::getenv("SIOBRIDGE_MONGO_PORT");
  return (base && *base ? std::atoi(base) : 27117) + offset;
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
