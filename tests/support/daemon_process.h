// A siobridged process for tests: started with flags in its own temporary
// directory (Unix socket, state, log), stopped with SIGTERM or killed. Waits
// are event-driven: gRPC's wait-for-ready for start-up, a pidfd for exit.
//
// Not thread-safe: one owner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace siobridge::testing {

class DaemonProcess {
 public:
  // `args` are flags besides --listen-unix (in the process's directory).
  explicit DaemonProcess(std::vector<std::string> args = {},
                         std::map<std::string, std::string> env = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  void start();
  // True once the API answers Status.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM, then the exit code; -1 if it has not exited within `timeout`.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void kill9();
  void signal(int number);
  // The exit code once the process exits by itself; -1 after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }

  const std::string& socket() const { return socket_; }
  std::string address() const { return "unix:" + socket_; }
  const std::string& dir() const { return dir_; }
  std::string log() const;
  long rss_kib() const;

  static std::string binary();

 private:
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::string dir_, socket_, log_path_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
};

// Runs siobridged with `args` to completion (e.g. --check-config): its exit
// code and standard output.
std::pair<int, std::string> run_daemon_command(const std::vector<std::string>& args,
                                               const std::map<std::string, std::string>& env = {});

}  // namespace siobridge::testing
