// The gRPC server of siobridged: the Bridge service on a Unix socket (mode set
// after binding) and optionally TCP (TLS required off loopback unless
// allowed; client certificates required with listen.tls_client_ca), with the
// standard health service and server reflection.
//
// Start and shut down from one thread; the server itself is thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "daemon/api/bridge_service.h"
#include "daemon/app/config.h"
#include "daemon/common/result.h"

namespace siobridge::app {

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(const DaemonConfig& config,
                                                  api::BridgeService& service);
  ~ApiServer();

  void set_serving(bool serving);
  // Stops accepting calls and waits for running ones up to `deadline`.
  void shutdown(std::chrono::system_clock::time_point deadline);

 private:
  ApiServer() = default;
  std::unique_ptr<grpc::Server> server_;
  std::string unix_path_;
};

}  // namespace siobridge::app
