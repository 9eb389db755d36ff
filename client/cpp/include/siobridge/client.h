// siobridge::client::BridgeClient: a connection to siobridged for a socket.io
// server written in C++, or for a tool. One gRPC channel; optionally one Attach
// stream that reconnects with backoff after the daemon restarts, restoring its
// namespaces; every operation as a blocking call with a deadline.
//
// An attached client numbers its broadcasts, room changes and disconnections
// ("confirm", docs/PROTOCOL.md section 20): they
// go on the Attach stream, each returns once the daemon applied it, and each
// is kept until the daemon confirms the cluster has it, to be sent again after
// a daemon restart. A call made while the daemon restarts returns once the new
// daemon applied it; none is lost or applied twice.
//
// Thread-safety, per type: ClientOptions and Outcome are values (not
// thread-safe, copied where they are used). A CommandHandler is called on the
// client's stream thread, one Command at a time. BridgeClient is thread-safe:
// any thread may call any method (the operations block their caller only);
// answer Commands with reply() from any thread. Its locking, inside the
// implementation, is checked by clang's -Wthread-safety.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "siobridge/v1/bridge.grpc.pb.h"

namespace siobridge::client {

namespace pb = ::siobridge::v1;

struct ClientOptions {
  // "/path/to.sock" or "unix:/path" (Unix socket), or "host:port" (TCP).
  std::string address;
  // Attach as a socket.io server with these namespaces; false: a tool that only
  // calls operations (as an external emitter).
  bool attach = false;
  std::string name = "siobridge-client";
  std::vector<std::string> namespaces = {"/"};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  std::chrono::milliseconds call_timeout{30000};
  // TLS for a TCP address (PEM files): the CA that signed the daemon's
  // certificate (listen.tls_cert); empty: plaintext. A client certificate and
  // its key, for a daemon that asks for one (listen.tls_client_ca).
  std::string tls_ca_file;
  std::string tls_cert_file, tls_key_file;
};

// The channel credentials `options` ask for: insecure without tls_ca_file,
// TLS with the files' contents otherwise. INVALID_ARGUMENT naming a file that
// cannot be read, a certificate without its key, or TLS for a Unix socket.
grpc::Status channel_credentials(const ClientOptions& options,
                                 std::shared_ptr<grpc::ChannelCredentials>* out);

// What an attached server does with the daemon's Commands. The client asks
// for CommandBatches (Hello.features "command_batch"); a batch reaches the
// handler as its Commands, one by one, in order.
class CommandHandler {
 public:
  virtual ~CommandHandler() = default;
  virtual void on_command(const pb::Command& command) = 0;
};

// A call's outcome: the gRPC status and, when OK, the reply.
template <typename T>
struct Outcome {
  grpc::Status status;
  T value{};
  bool ok() const { return status.ok(); }
};

class BridgeClient {
 public:
  explicit BridgeClient(ClientOptions options, CommandHandler* handler = nullptr);
  ~BridgeClient();
  BridgeClient(const BridgeClient&) = delete;
  BridgeClient& operator=(const BridgeClient&) = delete;

  // Attached clients: waits for Welcome (after each reconnect too).
  bool wait_attached(std::chrono::milliseconds timeout);
  std::string attachment_id() const;
  std::string node_uid() const;
  // How many times the Attach stream was established.
  int attach_count() const;
  // Numbered calls sent again after a daemon restart, and still kept.
  std::uint64_t resent() const;
  std::size_t kept() const;

  void join_namespace(const std::string& ns);
  void leave_namespace(const std::string& ns);
  // Answers a Command that has an id.
  void reply(const pb::Reply& reply);

  Outcome<pb::OperationReply> broadcast(const pb::Packet& packet, const pb::BroadcastOptions& opts);
  // Streams counts and acks to `on_event`; returns the Done event.
  Outcome<pb::AckDone> broadcast_with_ack(const pb::Packet& packet,
                                          const pb::BroadcastOptions& opts,
                                          std::chrono::milliseconds ack_timeout,
                                          const std::function<void(const pb::AckEvent&)>& on_event);
  Outcome<pb::OperationReply> add_sockets(const std::string& ns, const pb::BroadcastOptions& opts,
                                          const std::vector<std::string>& rooms);
  Outcome<pb::OperationReply> del_sockets(const std::string& ns, const pb::BroadcastOptions& opts,
                                          const std::vector<std::string>& rooms);
  Outcome<pb::OperationReply> disconnect_sockets(const std::string& ns,
                                                 const pb::BroadcastOptions& opts, bool close);
  Outcome<pb::FetchSocketsReply> fetch_sockets(const std::string& ns,
                                               const pb::BroadcastOptions& opts);
  Outcome<pb::AllRoomsReply> all_rooms(const std::string& ns, const pb::BroadcastOptions& opts);
  Outcome<pb::ServerCountReply> server_count(const std::string& ns);
  Outcome<pb::ServerSideEmitReply> server_side_emit(const std::string& ns,
                                                    const std::string& payload, bool wants_ack,
                                                    std::chrono::milliseconds timeout);
  Outcome<pb::StatusReply> status();

  pb::Bridge::Stub& stub();
  // The daemon's channel, for the other services it serves (grpc.health.v1).
  std::shared_ptr<grpc::Channel> channel() const;

 private:
  // The state and its locking (client/cpp/src/client_impl.h): this header
  // needs nothing but gRPC and the generated API.
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The daemon's default Unix socket for this user (as siobridged computes it).
std::string default_address();

}  // namespace siobridge::client
