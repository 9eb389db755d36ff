// The operations of the API, shared by the separate RPCs and the calls made on
// an Attach stream. Each validates its request, refuses work while the daemon
// drains, runs on the core thread, reports its duration, and calls `done`
// exactly once (from any thread).
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>

#include <grpcpp/support/status.h>

#include "daemon/api/api_context.h"
#include "daemon/wire/document.h"
#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

class Operations {
 public:
  explicit Operations(ApiContext& context) : context_(context) {}

  // A call numbered by its server ("confirm", AttachStream), on the core
  // thread: `before` says whether it is new (false: a repeat, answered OK
  // and not applied); the documents it publishes and the Commands it causes
  // carry `mark`; `after` follows it either way (also for a call refused as
  // invalid).
  struct CallHooks {
    wire::CallMark mark;
    std::function<bool()> before;
    std::function<void()> after;
  };
  using CallHooksPtr = std::shared_ptr<const CallHooks>;
  // These operations, for one numbered call.
  Operations numbered(CallHooksPtr hooks) const {
    Operations copy(context_);
    copy.hooks_ = std::move(hooks);
    return copy;
  }

  template <typename Reply>
  using Done = std::function<void(const grpc::Status&, Reply reply)>;
  using StatusDone = std::function<void(const grpc::Status&)>;

  void broadcast(core::AttachmentId from, const ::siobridge::v1::BroadcastRequest& request,
                 StatusDone done);
  // `on_event` gets the counts and acks, then Done; `done` follows it (or
  // reports an error instead, with no events).
  void broadcast_with_ack(core::AttachmentId from, const ::siobridge::v1::BroadcastRequest& request,
                          std::function<void(::siobridge::v1::AckEvent)> on_event, StatusDone done);
  void change_rooms(core::AttachmentId from, const ::siobridge::v1::RoomsRequest& request,
                    bool join, StatusDone done);
  void disconnect_sockets(core::AttachmentId from,
                          const ::siobridge::v1::DisconnectRequest& request, StatusDone done);
  void fetch_sockets(core::AttachmentId from, const ::siobridge::v1::QueryRequest& request,
                     Done<::siobridge::v1::FetchSocketsReply> done);
  void all_rooms(core::AttachmentId from, const ::siobridge::v1::QueryRequest& request,
                 Done<::siobridge::v1::AllRoomsReply> done);
  void server_count(const ::siobridge::v1::ServerCountRequest& request,
                    Done<::siobridge::v1::ServerCountReply> done);
  void server_side_emit(core::AttachmentId from,
                        const ::siobridge::v1::ServerSideEmitRequest& request,
                        Done<::siobridge::v1::ServerSideEmitReply> done);
  // Connection state recovery (docs/recovery.md).
  void persist_session(core::AttachmentId from,
                       const ::siobridge::v1::PersistSessionRequest& request, StatusDone done);
  // Nothing to restore is a reply with found = false, not an error.
  void restore_session(core::AttachmentId from,
                       const ::siobridge::v1::RestoreSessionRequest& request,
                       Done<::siobridge::v1::RestoreSessionReply> done);
  void status(Done<::siobridge::v1::StatusReply> done);

 private:
  ApiContext& context_;
  CallHooksPtr hooks_;  // null: not a numbered call
};

}  // namespace siobridge::api
