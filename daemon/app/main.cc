// siobridged: the sidecar daemon. Wires configuration, logging, the engine
// (core thread + bus), the gRPC API and metrics together, then waits for
// signals: SIGHUP reopens the log file, SIGTERM/SIGINT drain and stop.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <thread>

#include "daemon/api/api_context.h"
#include "daemon/api/bridge_service.h"
#include "daemon/app/api_server.h"
#include "daemon/app/config.h"
#include "daemon/app/logging.h"
#include "daemon/app/metrics.h"
#include "daemon/runtime/engine.h"

extern char** environ;

namespace siobridge::app {
namespace {

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && entry.rfind("SIOBRIDGE_", 0) == 0)
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

void print_config(const LoadedConfig& loaded) {
  for (const auto& s : loaded.settings) {
    std::cout << fmt::format("{:<34} = {:<40} ({}{}{})\n", s.key,
                             s.value.empty() ? "\"\"" : s.value, to_string(s.source),
                             s.origin.empty() ? "" : ": ", s.origin);
  }
  std::cout << "configuration OK\n";
}

// A stable name for this daemon instance on its host, for its state file.
std::string instance_name(const DaemonConfig& config) {
  const std::string where =
      config.listen.unix_path.empty() ? config.listen.tcp : config.listen.unix_path;
  return fmt::format("{:08x}", static_cast<std::uint32_t>(std::hash<std::string>{}(where)));
}

int run(const LoadedConfig& loaded) {
  const DaemonConfig& config = loaded.config;
  spdlog::info("siobridged {} starting ({})", SIOBRIDGE_VERSION,
               config.mongodb
                   ? "MongoDB " + config.mongodb->database + "." + config.mongodb->collection
                   : "in-memory bus: this host only");

  runtime::EngineOptions options{config.node, config.mongodb};
  if (options.mongodb) options.mongodb->instance = instance_name(config);
  auto engine = runtime::Engine::create(std::move(options));
  if (!engine.ok()) {
    spdlog::error("{}", engine.error().message);
    return 1;
  }
  (*engine)->start();
  spdlog::info("node uid {}", (*engine)->uid());

  std::unique_ptr<Metrics> metrics;
  if (!config.metrics_listen.empty()) {
    auto started = Metrics::start(config.metrics_listen, **engine);
    if (!started.ok()) {
      spdlog::error("{}", started.error().message);
      (*engine)->stop(core::Millis{0});
      return 1;
    }
    metrics = std::move(*started);
    spdlog::info("metrics on http://{}/metrics", config.metrics_listen);
  }
  api::ApiContext context(**engine, config.limits, metrics.get());
  api::BridgeService service(context);
  auto server = ApiServer::start(config, service);
  if (!server.ok()) {
    spdlog::error("{}", server.error().message);
    metrics.reset();
    (*engine)->stop(core::Millis{0});
    return 1;
  }
  (*server)->set_serving(true);
  sd_notify(0, "READY=1\nSTATUS=serving");

  // A bus that cannot work (a standalone MongoDB, a collection of the wrong
  // shape) ends the daemon with an error instead of leaving it half alive.
  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{0};
  auto failed = (*engine)->when(
      [](core::Node& node) { return node.status().bus_state == bus::BusState::kFailed; });
  std::thread failure_watch([&] {
    while (!stopping) {
      if (failed.wait_for(std::chrono::milliseconds(200)) == std::future_status::ready) {
        exit_code = 1;
        ::kill(::getpid(), SIGTERM);
        return;
      }
    }
  });

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  int signal = 0;
  while (true) {
    sigwait(&signals, &signal);
    if (signal != SIGHUP) break;
    if (auto s = reopen_log_file(); !s.ok()) spdlog::error("{}", s.error().message);
  }
  stopping = true;

  // Graceful drain: refuse new work, let running work finish, leave the
  // cluster (heartbeats stop with the attachments), write what is queued.
  const auto deadline = std::chrono::steady_clock::now() + config.drain_timeout;
  spdlog::info("{}: draining (up to {} ms)", strsignal(signal), config.drain_timeout.count());
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  (*server)->set_serving(false);
  context.start_draining();
  if (!context.wait_idle(deadline)) spdlog::warn("operations still running at the drain deadline");
  service.close_attachments();
  (*server)->shutdown(std::chrono::system_clock::now() +
                      std::max(std::chrono::steady_clock::duration::zero(),
                               deadline - std::chrono::steady_clock::now()));
  metrics.reset();
  const auto left =
      std::chrono::duration_cast<core::Millis>(deadline - std::chrono::steady_clock::now());
  (*engine)->stop(std::max(core::Millis{100}, left));
  failure_watch.join();
  server->reset();
  spdlog::info("stopped");
  spdlog::shutdown();
  return exit_code;
}

}  // namespace
}  // namespace siobridge::app

int main(int argc, char** argv) {
  using namespace siobridge::app;
  // Signals are taken by sigwait in main; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App cli{
      "siobridged: lets socket.io servers on this host scale out through MongoDB.\n"
      "Every setting comes from the YAML file, a SIOBRIDGE_* variable or a flag (flags win)."};
  cli.set_version_flag("--version", std::string("siobridged ") + SIOBRIDGE_VERSION);
  std::string config_file;
  bool check_config = false;
  cli.add_option("-c,--config", config_file, "YAML configuration file")
      ->envname("SIOBRIDGE_CONFIG");
  cli.add_flag("--check-config", check_config, "print the effective configuration and exit");
  std::map<std::string, std::string> values;
  std::map<std::string, CLI::Option*> options;
  for (const auto& info : setting_infos()) {
    options[info.key] = cli.add_option(
        info.flag, values[info.key],
        fmt::format("{} [env {}; default \"{}\"]", info.help, info.env, info.default_value));
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  std::map<std::string, std::string> flags;
  for (const auto& [key, option] : options) {
    if (option->count() > 0) flags[key] = values[key];
  }

  auto loaded = load_config(flags, config_file, environment());
  if (!loaded.ok()) {
    std::cerr << "siobridged: configuration error: " << loaded.error().message << "\n";
    return 2;
  }
  if (check_config) {
    print_config(*loaded);
    return 0;
  }
  if (auto s = setup_logging(loaded->config.log); !s.ok()) {
    std::cerr << "siobridged: " << s.error().message << "\n";
    return 2;
  }
  return run(*loaded);
}
