#include "tests/support/daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "siobridge/client.h"

extern char** environ;

namespace siobridge::testing {
namespace {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    // The tests' own SIOBRIDGE_* settings must not leak into the daemons.
    if (entry.rfind("SIOBRIDGE_", 0) == 0) continue;
    env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
            const std::string& output_path) {
  std::vector<char*> argv;
  std::string binary = DaemonProcess::binary();
  argv.push_back(binary.data());
  std::vector<std::string> owned_args = args;
  for (auto& a : owned_args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env_strings = merged_environment(env);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + binary);
  return pid;
}

// Waits for `pid` to exit via its pidfd; the exit code, or -1 on timeout.
int await_exit(pid_t pid, int pidfd, std::chrono::milliseconds timeout) {
  pollfd fd{pidfd, POLLIN, 0};
  if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string DaemonProcess::binary() {
  return SIOBRIDGE_DAEMON_BINARY;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::map<std::string, std::string> env)
    : args_(std::move(args)), env_(std::move(env)) {
  char pattern[] = "/tmp/siobridged-test-XXXXXX";
  dir_ = ::mkdtemp(pattern);
  socket_ = dir_ + "/siobridged.sock";
  log_path_ = dir_ + "/daemon.log";
  start();
}

DaemonProcess::~DaemonProcess() {
  if (running() && terminate(std::chrono::seconds(15)) < 0) kill9();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void DaemonProcess::start() {
  std::vector<std::string> args = {"--listen-unix", socket_, "--mongodb-state-dir",
                                   dir_ + "/state"};
  args.insert(args.end(), args_.begin(), args_.end());
  pid_ = spawn(args, env_, log_path_);
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

bool DaemonProcess::wait_ready(std::chrono::milliseconds timeout) {
  auto channel = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  auto stub = ::siobridge::v1::Bridge::NewStub(channel);
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  ::siobridge::v1::StatusReply reply;
  return stub->Status(&context, {}, &reply).ok();
}

int DaemonProcess::terminate(std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  ::kill(pid_, SIGTERM);
  return wait_exit(timeout);
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  const int code = await_exit(pid_, pidfd_, timeout);
  if (code >= 0) {
    ::close(pidfd_);
    pid_ = -1;
  }
  return code;
}

void DaemonProcess::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  await_exit(pid_, pidfd_, std::chrono::seconds(30));
  ::close(pidfd_);
  pid_ = -1;
}

void DaemonProcess::signal(int number) {
  if (running()) ::kill(pid_, number);
}

std::string DaemonProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

long DaemonProcess::rss_kib() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

std::pair<int, std::string> run_daemon_command(const std::vector<std::string>& args,
                                               const std::map<std::string, std::string>& env) {
  char pattern[] = "/tmp/siobridged-out-XXXXXX";
  const int fd = ::mkstemp(pattern);
  ::close(fd);
  const pid_t pid = spawn(args, env, pattern);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  const int code = await_exit(pid, pidfd, std::chrono::seconds(30));
  ::close(pidfd);
  std::ifstream in(pattern);
  std::stringstream s;
  s << in.rdbuf();
  std::filesystem::remove(pattern);
  return {code, s.str()};
}

}  // namespace siobridge::testing
