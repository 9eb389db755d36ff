#include "daemon/runtime/state_dir.h"

#include <unistd.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace siobridge::runtime {
namespace {

std::string fresh_directory() {
  auto dir = std::filesystem::temp_directory_path() /
             ("siobridge-state-dir-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

TEST_CASE("a state directory is held by one daemon at a time") {
  const std::string dir = fresh_directory();
  {
    auto first = StateDir::open(dir);
    REQUIRE(first.ok());
    auto second = StateDir::open(dir);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == ErrorCode::kFailedPrecondition);
    CHECK(second.error().message.find("in use by another siobridged (pid " +
                                      std::to_string(getpid()) + ")") != std::string::npos);
  }
  // Released with its holder.
  CHECK(StateDir::open(dir).ok());
  std::filesystem::remove_all(dir);
}

TEST_CASE("an unusable state directory is a clear error") {
  auto dir = StateDir::open("/proc/no-such-dir");
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.error().code == ErrorCode::kInvalidArgument);
  CHECK(dir.error().message.find("/proc/no-such-dir") != std::string::npos);
}

TEST_CASE("the node's uid and hand-over survive a restart") {
  const std::string path = fresh_directory();
  core::Handover handover;
  handover.namespaces["/"] =
      core::NamespaceSnapshot{2,
                              {core::PeerSnapshot{std::string(16, 'B'), 3, Millis{1500}},
                               core::PeerSnapshot{std::string(16, 'C'), std::nullopt, Millis{0}}}};
  handover.namespaces["/chat"] = core::NamespaceSnapshot{1, {}};
  {
    auto dir = StateDir::open(path);
    REQUIRE(dir.ok());
    CHECK(dir->load_node().error().code == ErrorCode::kNotFound);
    REQUIRE(dir->save_node(std::string(16, 'A'), handover).ok());
  }
  auto dir = StateDir::open(path);
  REQUIRE(dir.ok());
  auto loaded = dir->load_node();
  REQUIRE(loaded.ok());
  CHECK(loaded->uid == std::string(16, 'A'));
  REQUIRE(loaded->handover.namespaces.size() == 2);
  const auto& root = loaded->handover.namespaces.at("/");
  CHECK(root.servers == 2);
  REQUIRE(root.peers.size() == 2);
  CHECK(root.peers[0].servers == std::optional<std::uint32_t>(3));
  CHECK(root.peers[0].seen_ago >= Millis{1500});  // plus the time since the save
  CHECK_FALSE(root.peers[1].servers);
  CHECK(loaded->handover.namespaces.at("/chat").servers == 1);
  std::filesystem::remove_all(path);
}

TEST_CASE("a corrupt node state is reported, not trusted") {
  const std::string path = fresh_directory();
  auto dir = StateDir::open(path);
  REQUIRE(dir.ok());
  std::ofstream(path + "/node.bson") << "garbage";
  auto loaded = dir->load_node();
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().code == ErrorCode::kDecode);
  std::filesystem::remove_all(path);
}

}  // namespace
}  // namespace siobridge::runtime
