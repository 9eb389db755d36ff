#include "daemon/bus/mongodb/state_dir_lock.h"

#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

namespace siobridge::bus::mongodb {
namespace {

std::string fresh_directory() {
  auto dir =
      std::filesystem::temp_directory_path() / ("siobridge-lock-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST_CASE("a state directory is held by one daemon at a time", "[state_dir_lock]") {
  const std::string dir = fresh_directory();
  {
    auto first = StateDirLock::acquire(dir);
    REQUIRE(first.ok());
    auto second = StateDirLock::acquire(dir);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == ErrorCode::kFailedPrecondition);
    CHECK(second.error().message.find("in use by another siobridged (pid " +
                                      std::to_string(getpid()) + ")") != std::string::npos);
  }
  // Released with its holder.
  CHECK(StateDirLock::acquire(dir).ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("an unusable state directory is a clear error", "[state_dir_lock]") {
  auto lock = StateDirLock::acquire("/proc/no-such-dir");
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().code == ErrorCode::kInvalidArgument);
  CHECK(lock.error().message.find("/proc/no-such-dir/siobridged.lock") != std::string::npos);
}

}  // namespace
}  // namespace siobridge::bus::mongodb
