// siobridgectl against a real siobridged (in-memory bus) with one attached
// server: every subcommand, readable and --json, the common options before and
// after the subcommand, and `health` as a probe (exit 0 only while serving).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <array>
#include <csignal>
#include <cstdio>
#include <future>
#include <string>

#include "tests/process/process_helpers.h"
#include "tests/support/client_server.h"
#include "tests/support/daemon_process.h"

using namespace siobridge;
using namespace siobridge::testing;

namespace {

struct CtlRun {
  int code = -1;
  std::string output;  // standard output and error
};

// Arguments are single-quoted for the shell; none of the tests' contain a quote
// of their own except JSON data, which uses double quotes only.
CtlRun ctl_args(const std::string& args) {
  const std::string command = std::string(SIOBRIDGE_CTL_BINARY) + " " + args + " 2>&1";
  CtlRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    run.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

CtlRun ctl(const DaemonProcess& daemon, const std::string& args) {
  return ctl_args("--address '" + daemon.address() + "' " + args);
}

}  // namespace

TEST_CASE("siobridgectl: status, emit, rooms, sockets and disconnect") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "app-server");
  a.with([](auto& s) {
    s.add_socket("s1", {"red"});
    s.add_socket("s2", {"blue"});
    return 0;
  });
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));

  SECTION("status names the node and the attached server") {
    auto readable = ctl(daemon, "status");
    REQUIRE(readable.code == 0);
    CHECK_THAT(readable.output, Catch::Contains("backend   memory") &&
                                    Catch::Contains("attached servers (1)") &&
                                    Catch::Contains("app-server"));
    auto json = ctl(daemon, "--json status");
    REQUIRE(json.code == 0);
    CHECK_THAT(json.output, Catch::Contains("\"bus_state\": \"ready\"") &&
                                Catch::Contains("\"name\": \"app-server\""));
  }

  SECTION("emit without rooms reaches every socket; with a room, only its members") {
    auto everyone = ctl(daemon, "emit --event news --data '\"hello\",{\"n\":1}'");
    REQUIRE(everyone.code == 0);
    CHECK_THAT(everyone.output, Catch::Contains("sent [\"news\",\"hello\",{\"n\":1}] to /"));
    REQUIRE(a.wait_until([](const auto& s) { return s.sids_reached().size() == 2; }));
    a.with([](auto& s) {
      REQUIRE(s.delivered.size() == 2);
      CHECK(s.delivered[0].packet.data->bytes == "[\"news\",\"hello\",{\"n\":1}]");
      s.delivered.clear();
      return 0;
    });
    REQUIRE(ctl(daemon, "emit --room red --event alert").code == 0);
    REQUIRE(a.wait_until([](const auto& s) { return !s.delivered.empty(); }));
    a.with([](auto& s) {
      CHECK(s.sids_reached() == std::set<std::string>{"s1"});
      return 0;
    });
  }

  SECTION("rooms and sockets list the cluster's") {
    auto rooms = ctl(daemon, "rooms");
    REQUIRE(rooms.code == 0);
    CHECK_THAT(rooms.output, Catch::Contains("red\n") && Catch::Contains("blue\n"));
    auto sockets = ctl(daemon, "sockets --room blue");
    REQUIRE(sockets.code == 0);
    CHECK_THAT(sockets.output, Catch::Contains("s2") && Catch::Contains("1 sockets"));
    CHECK_THAT(sockets.output, !Catch::Contains("s1 "));
  }

  SECTION("disconnect one room") {
    REQUIRE(ctl(daemon, "disconnect --room red").code == 0);
    REQUIRE(a.wait_until([](const auto& s) { return !s.disconnected.empty(); }));
    a.with([](auto& s) {
      CHECK(s.disconnected == std::set<std::string>{"s1"});
      return 0;
    });
  }

  SECTION("errors are reported with the daemon's message and a non-zero exit") {
    auto bad = ctl(daemon, "emit --namespace admin --event x");
    CHECK(bad.code != 0);
    CHECK_THAT(bad.output,
               Catch::Contains("INVALID_ARGUMENT") || Catch::Contains("must start with '/'"));
  }

  SECTION("event data that is not JSON never reaches the cluster") {
    for (const char* data : {"not json", "\"open", "1,,2", "{\"a\":}"}) {
      INFO(data);
      auto bad = ctl(daemon, std::string("emit --event news --data '") + data + "'");
      CHECK(bad.code == 2);
      CHECK_THAT(bad.output, Catch::Contains("--data is not JSON"));
    }
    // A marker sent after them is the first thing the sockets get.
    REQUIRE(ctl(daemon, "emit --event marker").code == 0);
    REQUIRE(a.wait_until([](const auto& s) { return !s.delivered.empty(); }));
    a.with([](auto& s) {
      CHECK(s.delivered.front().packet.data->bytes == "[\"marker\"]");
      return 0;
    });
  }
}

TEST_CASE("siobridgectl: --json, --address and --timeout-ms also after the subcommand") {
  DaemonProcess daemon;
  REQUIRE(daemon.wait_ready());
  ClientServer a(daemon.address(), "app-server");
  a.with([](auto& s) {
    s.add_socket("s1", {"red"});
    return 0;
  });
  REQUIRE(a.client().wait_attached(std::chrono::seconds(20)));
  const std::string address = "'" + daemon.address() + "'";

  auto status = ctl_args("status --json --address " + address);
  REQUIRE(status.code == 0);
  CHECK_THAT(status.output, Catch::Contains("\"name\": \"app-server\""));
  auto rooms = ctl_args("rooms --namespace / --json --timeout-ms 5000 --address " + address);
  REQUIRE(rooms.code == 0);
  CHECK_THAT(rooms.output, Catch::Contains("\"rooms\"") && Catch::Contains("\"red\""));
  auto mixed = ctl_args("--json sockets --room red --address " + address);
  REQUIRE(mixed.code == 0);
  CHECK_THAT(mixed.output, Catch::Contains("\"s1\""));
  // An option that is nobody's is still an error.
  auto unknown = ctl_args("status --no-such-option --address " + address);
  CHECK(unknown.code != 0);
  CHECK_THAT(unknown.output, Catch::Contains("--no-such-option"));
}

TEST_CASE("siobridgectl health: exit 0 while serving, 1 otherwise, with the reason") {
  SECTION("a serving daemon") {
    DaemonProcess daemon;
    REQUIRE(daemon.wait_ready());
    auto serving = ctl(daemon, "health");
    CHECK(serving.code == 0);
    CHECK_THAT(serving.output, Catch::Contains("serving"));
    auto json = ctl(daemon, "health --json");
    CHECK(json.code == 0);
    CHECK_THAT(json.output, Catch::Contains("{\"status\": \"SERVING\"}"));
    auto unknown = ctl(daemon, "health --service no.such.Service");
    CHECK(unknown.code == 1);
    CHECK_THAT(unknown.output, Catch::Contains("unknown service"));
  }

  SECTION("no daemon at the address") {
    DaemonProcess daemon;
    REQUIRE(daemon.wait_ready());
    REQUIRE(daemon.terminate() == 0);
    auto gone = ctl(daemon, "health --timeout-ms 2000");
    CHECK(gone.code == 1);
    CHECK_THAT(gone.output, Catch::Contains("cannot reach it"));
  }

  SECTION("a draining daemon is not serving") {
    // A request held by a slow server keeps the daemon draining after SIGTERM.
    DaemonProcess daemon({"--shutdown-drain-timeout", "30s", "--node-local-timeout", "30s",
                          "--node-request-timeout", "40s"});
    REQUIRE(daemon.wait_ready());
    ClientServer slow(daemon.address(), "slow");
    ClientServer caller(daemon.address(), "caller");
    slow.with([](auto& s) {
      s.add_socket("s1", {"room-of-slow"});
      return 0;
    });
    slow.set_answer_delay(std::chrono::milliseconds(10000));
    REQUIRE(slow.client().wait_attached(std::chrono::seconds(20)));
    REQUIRE(caller.client().wait_attached(std::chrono::seconds(20)));
    REQUIRE(ctl(daemon, "health").code == 0);
    auto pending =
        std::async(std::launch::async, [&] { return caller.client().all_rooms("/", {}); });
    REQUIRE(slow.wait_until([](auto& s) { return !s.commands.empty(); }));
    daemon.signal(SIGTERM);
    CtlRun draining;
    CHECK(poll_until([&] {
      draining = ctl(daemon, "health");
      return draining.code == 1;
    }));
    CHECK_THAT(draining.output, Catch::Contains("NOT_SERVING"));
    CHECK(pending.get().ok());
    CHECK(daemon.wait_exit(std::chrono::seconds(30)) == 0);
  }
}
