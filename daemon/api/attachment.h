// Attachment: one socket.io server attached over an Attach stream. Its gRPC
// reactor reads the server's messages (Hello, namespace changes, replies) and
// writes the daemon's (Welcome, Commands) from a bounded Outbox. The core
// delivers Commands to the Attachment as a LocalServer; it outlives the
// reactor until the core has detached it.
//
// A server that stops reading cannot grow the daemon's memory without bound:
// past half of the queue limits volatile packets are dropped, past the limits
// the attachment is closed with RESOURCE_EXHAUSTED.
//
// Thread-safe: gRPC threads and the core thread use it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/api/api_context.h"
#include "daemon/api/outbox.h"
#include "daemon/core/local_server.h"
#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

class Attachment final : public core::LocalServer, public std::enable_shared_from_this<Attachment> {
 public:
  using Reactor =
      grpc::ServerBidiReactor<::siobridge::v1::ServerMessage, ::siobridge::v1::DaemonMessage>;
  // The reactor of a new Attach call.
  static Reactor* start(ApiContext& context, grpc::CallbackServerContext* call);

  core::AttachmentId id() const { return id_; }
  std::string name() const;
  std::size_t queued() const { return outbox_.size(); }

  void deliver(const core::Command& command) override;
  // Ends the stream with `status` and detaches (drain, overload).
  void close(const grpc::Status& status, const char* reason);

 private:
  class StreamReactor;
  Attachment(ApiContext& context, grpc::CallbackServerContext* call);

  void on_message(const ::siobridge::v1::ServerMessage& message);
  void on_hello(const ::siobridge::v1::Hello& hello);
  void on_reply(const ::siobridge::v1::Reply& reply);
  void change_namespace(const std::string& ns, bool join);
  // Sends the status once; false when already finishing.
  bool finish(const grpc::Status& status);
  void reactor_done();
  void detach();

  ApiContext& context_;
  grpc::CallbackServerContext* const call_;
  Outbox<::siobridge::v1::DaemonMessage> outbox_;
  std::atomic<core::AttachmentId> id_{0};
  std::atomic<bool> welcomed_{false};

  mutable std::mutex mutex_;
  StreamReactor* reactor_ = nullptr;  // null once the RPC is done
  bool finishing_ = false;
  bool hello_seen_ = false;
  std::string name_;
};

}  // namespace siobridge::api
