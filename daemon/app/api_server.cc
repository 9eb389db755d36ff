#include "daemon/app/api_server.h"

#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace siobridge::app {
namespace {

Result<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in)
    return make_error(ErrorCode::kInvalidArgument, fmt::format("{}: cannot read {}", what, path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The directory of the socket. One the daemon creates is private (0700), or
// 0750 for root's /run/siobridge (the socket's group reaches it). One that
// exists must not let others replace the socket: the per-user default under
// /tmp must be a directory of this user that nobody else can write (another
// user who created it first could swap the socket and pose as the daemon, as
// OpenSSH and tmux also refuse), and no directory may be writable by all
// without the sticky bit.
Status prepare_socket_directory(const std::filesystem::path& parent) {
  if (parent.empty()) return {};
  const bool per_user_default =
      parent == std::filesystem::path(default_unix_socket()).parent_path() && ::getuid() != 0;
  struct stat info {};
  if (::lstat(parent.c_str(), &info) != 0) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("listen.unix: cannot create {}: {} (set listen.unix or "
                                    "SIOBRIDGE_LISTEN_UNIX to a writable place)",
                                    parent.string(), ec.message()));
    }
    ::chmod(parent.c_str(), ::getuid() == 0 ? 0750 : 0700);
    return {};
  }
  if (per_user_default) {
    if (!S_ISDIR(info.st_mode) || info.st_uid != ::getuid() || (info.st_mode & 022) != 0) {
      return make_error(
          ErrorCode::kFailedPrecondition,
          fmt::format("listen.unix: refusing {}: it must be a directory owned by uid {} that "
                      "nobody else can write (it is {}owned by uid {}, mode {:o}); another user "
                      "may have made it to take the daemon's place: remove it, or set listen.unix",
                      parent.string(), ::getuid(), S_ISDIR(info.st_mode) ? "" : "not a directory, ",
                      info.st_uid, info.st_mode & 07777));
    }
    return {};
  }
  if (S_ISDIR(info.st_mode) && (info.st_mode & S_IWOTH) && !(info.st_mode & S_ISVTX)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      fmt::format("listen.unix: refusing {}: anyone can write to it (mode {:o}) "
                                  "and so replace the socket; use a directory of your own",
                                  parent.string(), info.st_mode & 07777));
  }
  return {};
}

// A socket file left by a daemon that died is removed; one that answers means
// another daemon listens there.
Status prepare_unix_socket(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("listen.unix: {} is longer than a Unix socket path may be", path));
  }
  std::error_code ec;
  if (auto s = prepare_socket_directory(std::filesystem::path(path).parent_path()); !s.ok()) {
    return s;
  }
  if (!std::filesystem::exists(path)) return {};
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const bool answered = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  if (answered) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        fmt::format("another process listens on {}: is siobridged already running?", path));
  }
  std::filesystem::remove(path, ec);
  return {};
}

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::start(const DaemonConfig& config,
                                                    api::BridgeService& service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Ample headroom over the payload limit: an oversized call is refused on its
  // own (RESOURCE_EXHAUSTED with the limit in the message) by the daemon's
  // check, instead of gRPC's limit ending the whole Attach stream and every
  // server of the process with it.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<std::size_t>(4 * config.limits.max_message_bytes + (4u << 20), 1u << 30)));
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&service);

  std::unique_ptr<ApiServer> server(new ApiServer());
  if (!config.listen.unix_path.empty()) {
    if (auto s = prepare_unix_socket(config.listen.unix_path); !s.ok()) return s.error();
    builder.AddListeningPort("unix:" + config.listen.unix_path, grpc::InsecureServerCredentials());
    server->unix_path_ = config.listen.unix_path;
  }
  int tcp_port = 0;
  if (!config.listen.tcp.empty()) {
    std::shared_ptr<grpc::ServerCredentials> credentials;
    if (!config.listen.tls_cert.empty()) {
      auto cert = read_file(config.listen.tls_cert, "listen.tls_cert");
      if (!cert.ok()) return cert.error();
      auto key = read_file(config.listen.tls_key, "listen.tls_key");
      if (!key.ok()) return key.error();
      grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      options.pem_key_cert_pairs.push_back({*key, *cert});
      if (!config.listen.tls_client_ca.empty()) {
        auto ca = read_file(config.listen.tls_client_ca, "listen.tls_client_ca");
        if (!ca.ok()) return ca.error();
        // Mutual TLS: a client without a certificate these CAs signed is
        // refused during the handshake, before any call.
        options.pem_root_certs = *ca;
        options.client_certificate_request =
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      credentials = grpc::SslServerCredentials(options);
    } else if (is_loopback(config.listen.tcp) || config.listen.allow_insecure_tcp) {
      if (!is_loopback(config.listen.tcp)) {
        spdlog::warn(
            "listening on {} without TLS (listen.allow_insecure_tcp): anyone who can "
            "reach it can act as a socket.io server of this cluster",
            config.listen.tcp);
      }
      credentials = grpc::InsecureServerCredentials();
    } else {
      return make_error(
          ErrorCode::kInvalidArgument,
          fmt::format("listen.tcp {} is not a loopback address: configure listen.tls_cert "
                      "and listen.tls_key, or set listen.allow_insecure_tcp if the network "
                      "is trusted",
                      config.listen.tcp));
    }
    builder.AddListeningPort(config.listen.tcp, credentials, &tcp_port);
  }
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || (!config.listen.tcp.empty() && tcp_port == 0)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("cannot listen on {}{}{}", config.listen.unix_path,
                    config.listen.unix_path.empty() || config.listen.tcp.empty() ? "" : " and ",
                    config.listen.tcp));
  }
  if (!server->unix_path_.empty() &&
      ::chmod(server->unix_path_.c_str(), config.listen.unix_mode) != 0) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("chmod {}: {}", server->unix_path_, std::strerror(errno)));
  }
  spdlog::info("listening on {}{}{}",
               config.listen.unix_path.empty() ? "" : "unix:" + config.listen.unix_path,
               config.listen.unix_path.empty() || config.listen.tcp.empty() ? "" : " and ",
               config.listen.tcp.empty()
                   ? ""
                   : config.listen.tcp + (config.listen.tls_cert.empty()        ? ""
                                          : config.listen.tls_client_ca.empty() ? " (TLS)"
                                                                                : " (mutual TLS)"));
  return server;
}

ApiServer::~ApiServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
  if (!unix_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove(unix_path_, ec);
  }
}

void ApiServer::set_serving(bool serving) {
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(serving);  // every service, "" included
  }
}

void ApiServer::shutdown(std::chrono::system_clock::time_point deadline) {
  server_->Shutdown(deadline);
}

}  // namespace siobridge::app
