// siobridged refuses at start what it cannot run safely or as configured, with
// a message that names the setting and what to do, and never half-starts:
// --check-config says what start-up would say (exit code 2 for configuration,
// 1 for the environment).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "tests/process/process_helpers.h"
#include "tests/support/daemon_process.h"

using namespace siobridge::testing;

namespace {

// A directory of the test's own, removed at the end.
struct ScratchDir {
  ScratchDir() {
    char pattern[] = "/tmp/siobridged-refusals-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

TEST_CASE("a socket directory that others may write to is refused") {
  ScratchDir dir;
  REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);
  auto [code, out] =
      run_daemon_command({"--listen-unix", dir.path + "/siobridged.sock", "--metrics-listen", ""});
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Contains("refusing " + dir.path) && Catch::Contains("anyone can write"));
  CHECK_FALSE(std::filesystem::exists(dir.path + "/siobridged.sock"));
}

TEST_CASE("a log file that cannot be written stops the start") {
  ScratchDir dir;
  auto [code, out] =
      run_daemon_command({"--log-file", "/nonexistent/dir/siobridged.log", "--listen-unix",
                          dir.path + "/siobridged.sock", "--metrics-listen", ""});
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Contains("log.file") && Catch::Contains("/nonexistent/dir"));
  CHECK_FALSE(std::filesystem::exists(dir.path + "/siobridged.sock"));
}

TEST_CASE("settings start-up would refuse are refused by --check-config, named") {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--listen-tcp", "garbage"}, "listen.tcp \"garbage\" is not host:port"},
      {{"--listen-tcp", "10.1.2.3:7400"}, "is not a loopback address"},
      {{"--listen-tcp", "127.0.0.1:7400", "--listen-tls-cert", "/nonexistent/cert.pem",
        "--listen-tls-key", "/nonexistent/key.pem"},
       "/nonexistent/cert.pem"},
      {{"--metrics-listen", "nonsense"}, "metrics.listen \"nonsense\" is not host:port"},
      {{"--node-request-timeout", "9999999999999h"}, "is too long"},
      {{"--limits-attachment-queue-messages", "16MiB"}, "is not a count"},
  };
  for (const auto& c : cases) {
    auto args = c.args;
    args.push_back("--check-config");
    INFO(fmt::format("{}", fmt::join(args, " ")));
    auto [code, out] = run_daemon_command(args);
    CHECK(code == 2);
    CHECK_THAT(out, Catch::Contains(c.says));
  }
}

TEST_CASE("API over TCP reachable by others without TLS: refused unless allowed, then a warning") {
  const std::string address = fmt::format("0.0.0.0:{}", free_port());
  auto [code, out] = run_daemon_command({"--check-config", "--listen-tcp", address});
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Contains("allow_insecure_tcp"));

  DaemonProcess daemon(
      {"--listen-tcp", address, "--listen-allow-insecure-tcp", "true", "--metrics-listen", ""});
  REQUIRE(daemon.wait_ready());
  CHECK_THAT(daemon.log(), Catch::Contains("without TLS") && Catch::Contains(address));
}
