// siobridged: the sidecar daemon. Wires configuration, logging, the engine
// (core thread + bus), the gRPC API and metrics together, then waits for
// signals: SIGHUP reopens the log file and reads the MongoDB URI and password
// files again (reconnecting when they changed), SIGTERM/SIGINT drain and stop;
// a MongoDB bus that fails for good (a standalone server, a collection of the
// wrong shape, a missing privilege) drains and stops too, with exit code 1.
//
// Exit codes: 0 after a drain; 1 when the bus failed or the daemon could not
// start; 2 for a configuration error. --check-config --connect: 0 when
// MongoDB takes the daemon, else 3 unreachable (network, TLS), 4
// authentication failed, 5 not authorized (a missing privilege), 6 the
// server or collection does not fit (a standalone server, another replica
// set, a collection of the wrong shape).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <CLI/CLI.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>

#include "daemon/api/api_context.h"
#include "daemon/api/bridge_service.h"
#include "daemon/app/api_server.h"
#include "daemon/app/config.h"
#include "daemon/app/library_logs.h"
#include "daemon/app/logging.h"
#include "daemon/app/metrics.h"
#include "daemon/bus/mongodb/mongo_bus.h"
#include "daemon/bus/mongodb/probe.h"
#include "daemon/common/memory.h"
#include "daemon/common/secrets.h"
#include "daemon/runtime/engine.h"

extern char** environ;

namespace siobridge::app {
namespace {

// How long a stopping daemon lets its servers read what it queued for them:
// a server that reads has it in milliseconds; one that does not is not waited for.
constexpr Millis kCloseBound{2000};

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
    const std::string value = s.key == "mongodb.uri" ? redact_uri(s.value) : s.value;
    std::cout << fmt::format("{:<34} = {:<40} ({}{}{})\n", s.key, value.empty() ? "\"\"" : value,
                             to_string(s.source), s.origin.empty() ? "" : ": ", s.origin);
  }
  const auto& config = loaded.config;
  if (config.mongodb && !config.mongodb_uri_file.empty()) {
    std::cout << fmt::format("{:<34} = {}\n", "mongodb.uri (from mongodb.uri_file)",
                             redact_uri(config.mongodb->uri));
  }
  if (config.mongodb && !config.mongodb->password.empty()) {
    std::cout << fmt::format("{:<34} = *** (from mongodb.password_file)\n", "mongodb password");
  }
  std::cout << "configuration OK\n";
}

// --check-config --connect: the exit code names the kind of failure.
int check_connection(const DaemonConfig& config) {
  if (!config.mongodb) {
    std::cout << "connect: no mongodb.uri: the in-memory bus connects to nothing\n";
    return 0;
  }
  using bus::mongodb::Cause;
  const auto report = bus::mongodb::probe_mongodb(*config.mongodb);
  for (const auto& line : report.checked) std::cout << "connect: " << line << "\n";
  if (report.ok) {
    std::cout << "connection OK\n";
    return 0;
  }
  std::cout << "connect: FAILED: " << report.error << "\n";
  switch (report.cause) {
    case Cause::kAuthentication:
    case Cause::kAuthMechanism:
      return 4;
    case Cause::kNotAuthorized:
      return 5;
    case Cause::kReplicaSetName:
    case Cause::kStandalone:
      return 6;
    case Cause::kUnreachable:
    case Cause::kTls:
      return 3;
    case Cause::kNone:
      break;
  }
  if (report.code == ErrorCode::kInvalidArgument) return 2;
  if (report.code == ErrorCode::kMismatch || report.code == ErrorCode::kFailedPrecondition) {
    return 6;
  }
  return 3;
}

// The password of a URI given as a flag is visible to every user of the host
// in the process list: hidden there (each character by '*') as soon as the
// flags are read. It was visible until then; hence the warning.
bool hide_uri_passwords(int argc, char** argv) {
  bool hidden = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string redacted = redact_uri(arg);
    if (redacted == arg) continue;
    // The password is where the two differ: "***" stands in for it.
    std::size_t begin = 0;
    while (arg[begin] == redacted[begin]) ++begin;
    const std::size_t end = arg.size() - (redacted.size() - begin - 3);
    for (std::size_t at = begin; at < end; ++at) argv[i][at] = '*';
    hidden = true;
  }
  return hidden;
}

// Wakes the main thread out of wait_for_stop() from another thread.
class ShutdownEvent {
 public:
  ShutdownEvent() : fd_(::eventfd(0, EFD_CLOEXEC)) {}
  ~ShutdownEvent() { ::close(fd_); }
  ShutdownEvent(const ShutdownEvent&) = delete;
  ShutdownEvent& operator=(const ShutdownEvent&) = delete;
  void notify() const {
    const std::uint64_t one = 1;
    (void)!::write(fd_, &one, sizeof one);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Waits for SIGTERM or SIGINT (returned) or the event (0); SIGHUP runs
// `on_hangup`. The signals are blocked in every thread (main() does that first).
int wait_for_stop(const ShutdownEvent& event, const std::function<void()>& on_hangup) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  while (true) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {event.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents & POLLIN) {
      ::close(signal_fd);
      return 0;
    }
    signalfd_siginfo info;
    if (!(fds[0].revents & POLLIN) || ::read(signal_fd, &info, sizeof info) != sizeof info) {
      continue;
    }
    const int signal = static_cast<int>(info.ssi_signo);
    if (signal != SIGHUP) {
      ::close(signal_fd);
      return signal;
    }
    on_hangup();
  }
}

// SIGHUP: the URI and password files are read again; when they changed, the
// MongoDB bus connects anew with them (a rotated password, a fixed typo).
void reload_mongodb_secrets(const DaemonConfig& config, runtime::Engine& engine,
                            MongoSecrets& current) {
  if (config.mongodb_uri_file.empty() && config.mongodb_password_file.empty()) return;
  auto* bus = engine.mongo_bus();
  if (!bus) {
    spdlog::warn(
        "SIGHUP: the daemon started without a MongoDB URI (in memory): restart it to use one");
    return;
  }
  auto read = read_mongodb_secrets(config.mongodb_uri_file.empty() ? current.uri : "",
                                   config.mongodb_uri_file, config.mongodb_password_file);
  if (!read.ok()) {
    spdlog::error("SIGHUP: {}; the MongoDB connection stays as it is", read.error().message);
    return;
  }
  if (read->uri.empty()) {
    spdlog::error("SIGHUP: {} is empty now; the MongoDB connection stays as it is",
                  config.mongodb_uri_file);
    return;
  }
  if (*read == current) {
    spdlog::info("SIGHUP: the MongoDB URI and password are unchanged");
    return;
  }
  register_secret(uri_password(read->uri));
  register_secret(read->password);
  if (auto s = bus->reconnect(read->uri, read->password); !s.ok()) {
    spdlog::error("SIGHUP: {}; the MongoDB connection stays as it is", s.error().message);
    return;
  }
  current = std::move(*read);
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
  options.flow = FlowGate::Marks::for_limits(config.limits.backpressure_bytes,
                                             config.limits.total_backpressure_bytes);
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
      (*engine)->stop(Millis{0});
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
    (*engine)->stop(Millis{0});
    return 1;
  }
  // Health follows the bus: SERVING while it is ready (a MongoDB outage makes
  // the daemon NOT_SERVING until it recovers); a bus that cannot work (a
  // standalone MongoDB, a collection of the wrong shape) ends the daemon.
  ShutdownEvent bus_failed;
  std::atomic<bool> draining{false};
  (*engine)->set_bus_observer([&](bus::BusState state, const std::string&) {
    if (!draining) (*server)->set_serving(state == bus::BusState::kReady);
    if (state == bus::BusState::kFailed) bus_failed.notify();
  });
  sd_notify(0, "READY=1\nSTATUS=serving");

  MongoSecrets secrets;
  if (config.mongodb) secrets = {config.mongodb->uri, config.mongodb->password};
  const int signal = wait_for_stop(bus_failed, [&] {
    if (auto s = reopen_log_file(); !s.ok()) spdlog::error("{}", s.error().message);
    reload_mongodb_secrets(config, **engine, secrets);
  });
  const int exit_code = signal == 0 ? 1 : 0;

  // Graceful drain: refuse new work, let running work finish, leave the
  // cluster (heartbeats stop with the attachments), write what is queued.
  const auto deadline = std::chrono::steady_clock::now() + config.drain_timeout;
  spdlog::info("{}: draining (up to {} ms)",
               signal == 0 ? "the MongoDB bus failed" : strsignal(signal),
               config.drain_timeout.count());
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  draining = true;
  (*server)->set_serving(false);
  context.start_draining();
  if (!context.wait_idle(deadline)) spdlog::warn("operations still running at the drain deadline");
  // Before the servers detach: the hand-over keeps them, and peers stop
  // counting this node at once.
  (*engine)->leave_cluster();
  // Once the core's turn in hand is over, what it queued for the servers
  // (the Confirmed of the calls it applied among them) is in their outboxes.
  (*engine)->call([](core::Node&) { return 0; });
  service.close_attachments(
      std::min(kCloseBound, std::max(Millis{0}, std::chrono::duration_cast<Millis>(
                                                    deadline - std::chrono::steady_clock::now()))));
  (*server)->shutdown(std::chrono::system_clock::now() +
                      std::max(std::chrono::steady_clock::duration::zero(),
                               deadline - std::chrono::steady_clock::now()));
  metrics.reset();
  const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
  (*engine)->stop(std::max(Millis{100}, left));
  server->reset();
  spdlog::info("stopped");
  spdlog::shutdown();
  return exit_code;
}

}  // namespace
}  // namespace siobridge::app

int main(int argc, char** argv) {
  using namespace siobridge;
  using namespace siobridge::app;
  // Signals are read from a signalfd in run(); every thread started later
  // inherits the mask, so none of them takes one.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  siobridge::limit_malloc_arenas();

  CLI::App cli{
      "siobridged: lets socket.io servers on this host scale out through MongoDB.\n"
      "Every setting comes from the YAML file, a SIOBRIDGE_* variable or a flag (flags win)."};
  cli.set_version_flag("--version", std::string("siobridged ") + SIOBRIDGE_VERSION);
  std::string config_file;
  bool check_config = false, connect = false;
  cli.add_option("-c,--config", config_file, "YAML configuration file")
      ->envname("SIOBRIDGE_CONFIG");
  auto* check_flag =
      cli.add_flag("--check-config", check_config, "print the effective configuration and exit");
  cli.add_flag("--connect", connect,
               "with --check-config: connect to MongoDB and check the server, the login, the "
               "privileges and the collection, changing nothing (exit 3 unreachable, 4 "
               "authentication failed, 5 not authorized, 6 the server or collection does not "
               "fit)")
      ->needs(check_flag);
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
  const bool password_in_flags = hide_uri_passwords(argc, argv);
  constexpr const char* kPasswordInFlags =
      "mongodb.uri was given on the command line with a password, which every user of this "
      "host can read in the process list (hidden there now, but visible at start): give it in "
      "a file (mongodb.uri_file or mongodb.password_file) or in SIOBRIDGE_MONGODB_URI instead";

  auto loaded = load_config(flags, config_file, environment());
  if (!loaded.ok()) {
    std::cerr << "siobridged: configuration error: " << redact(loaded.error().message) << "\n";
    return 2;
  }
  if (const auto& mongodb = loaded->config.mongodb) {
    register_secret(uri_password(mongodb->uri));
    register_secret(mongodb->password);
  }
  if (check_config) {
    if (password_in_flags) std::cerr << "siobridged: warning: " << kPasswordInFlags << "\n";
    print_config(*loaded);
    if (!connect) return 0;
    // The driver's own lines go where the daemon's would (standard error).
    if (auto s = setup_logging(loaded->config.log); !s.ok()) {
      std::cerr << "siobridged: " << s.error().message << "\n";
      return 2;
    }
    install_library_log_handlers(loaded->config.log.level);
    const int code = check_connection(loaded->config);
    spdlog::shutdown();
    return code;
  }
  if (auto s = setup_logging(loaded->config.log); !s.ok()) {
    std::cerr << "siobridged: " << s.error().message << "\n";
    return 2;
  }
  install_library_log_handlers(loaded->config.log.level);
  if (password_in_flags) spdlog::warn("{}", kPasswordInFlags);
  return run(*loaded);
}
