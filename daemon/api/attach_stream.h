// The Attach stream of one socket.io server process, and the servers attached
// through it. The stream's gRPC reactor reads what the process sends (Hellos,
// namespace changes, replies, calls) and writes what the daemon sends
// (Welcomes, Commands, Results) from one bounded Outbox. Each Hello attaches
// one server: an Attachment, which the core delivers Commands to. Calls made
// on the stream run in the order they were sent. Commands for a server whose
// Hello asked for "command_batch" that queue while a message is being written
// go out together as one CommandBatch (CommandBatcher).
//
// A process that reads slower than the cluster sends slows the cluster's
// producers down instead (the engine's FlowGate: this stream reports what waits
// in its outbox and since when its write waits); past
// limits.backpressure_bytes its volatile packets are dropped. One that stops
// reading holds nobody up past the gate's stall grace: its queue grows, within
// limits.total_backpressure_bytes for all servers together, until a write has
// waited limits.stall_timeout for it or it passes the hard limits; then it is
// closed with RESOURCE_EXHAUSTED and its servers detached.
//
// What the stream read is bounded too: past kMaxUntakenBytes of calls that
// the core thread has not taken yet, reading waits for it (a burst otherwise
// piles up in the core's queue faster than the gates above can close).
//
// Thread-safe: gRPC threads and the core thread use them.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "daemon/api/api_context.h"
#include "daemon/api/call_ledger.h"
#include "daemon/api/command_batcher.h"
#include "daemon/api/operations.h"
#include "daemon/api/outbox.h"
#include "daemon/common/mutex.h"
#include "daemon/core/local_server.h"
#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

class AttachStream;

// One attached socket.io server.
class Attachment final : public core::LocalServer, public std::enable_shared_from_this<Attachment> {
 public:
  // `instance`: the server's instance when its Hello asked for "confirm"
  // (its calls are numbered), else empty.
  Attachment(std::weak_ptr<AttachStream> stream, std::string name, bool reads_batches,
             std::string instance)
      : stream_(std::move(stream)),
        name_(std::move(name)),
        reads_batches_(reads_batches),
        instance_(std::move(instance)) {}

  core::AttachmentId id() const { return id_; }
  const std::string& name() const { return name_; }
  std::size_t queued() const;
  void deliver(const core::Command& command) override;
  // Ends this server's stream (and so every server on it) with `status`.
  void close(const grpc::Status& status, const char* reason);
  // As close(), once what is queued on the stream is written (AttachStream).
  void close_when_written(const grpc::Status& status, const char* reason, Millis bound);
  // Closes the stream if a write to it has waited limits.stall_timeout.
  void close_if_stalled(std::chrono::steady_clock::time_point now);
  // Core thread: the bus settled its first `settled` documents; confirms the
  // calls that waited for them (a Confirmed at the end of the turn).
  void confirm_settled(std::uint64_t settled);

 private:
  friend class AttachStream;
  // Queues a Confirmed for `seq` (core thread), one per turn at most.
  void confirm(std::uint64_t seq);

  // Weak: the stream owns its attachments; a Command for a stream already gone
  // is dropped.
  std::weak_ptr<AttachStream> stream_;
  std::string name_;
  // Its Hello asked for "command_batch".
  const bool reads_batches_;
  // Its Hello asked for "confirm" with this instance; empty otherwise.
  const std::string instance_;
  std::atomic<core::AttachmentId> id_{0};

  // Core thread only: its calls between application and settlement, and the
  // Confirmed waiting for the end of the turn.
  ConfirmLedger ledger_;
  std::uint64_t confirm_due_ = 0;
  bool confirm_deferred_ = false;
};

class AttachStream final : public std::enable_shared_from_this<AttachStream> {
 public:
  friend class Attachment;
  using Reactor =
      grpc::ServerBidiReactor<::siobridge::v1::ServerMessage, ::siobridge::v1::DaemonMessage>;
  // The reactor of a new Attach call.
  static Reactor* start(ApiContext& context, Operations& operations,
                        grpc::CallbackServerContext* call);

  // Queues a Command for one of this stream's servers (core thread); it may
  // join the Commands queued before it when that server reads batches.
  void push_command(const core::Command& command, core::AttachmentId to, bool batch);
  // Ends the stream with `status` and detaches its servers.
  void close(const grpc::Status& status, const char* reason);
  // As close(), once what is queued for the servers is written (their
  // Results, Commands and Confirmed), or after `bound` if they do not read it:
  // a daemon that stops leaves no server unsure whether an applied call was
  // applied (it would send it again, to a daemon that cannot tell).
  void close_when_written(const grpc::Status& status, const char* reason, Millis bound);
  std::size_t queued() const { return outbox_.size(); }
  void close_if_stalled(std::chrono::steady_clock::time_point now);

 private:
  class StreamReactor;
  AttachStream(ApiContext& context, Operations& operations, grpc::CallbackServerContext* call);

  void on_message(const ::siobridge::v1::ServerMessage& message);
  void on_hello(const ::siobridge::v1::Hello& hello);
  void on_reply(const ::siobridge::v1::Reply& reply);
  void on_call(const ::siobridge::v1::Call& call);
  void change_namespace(const ::siobridge::v1::NamespaceChange& change, bool join);
  // The server a message names: its id, or the stream's first server for "".
  Result<core::AttachmentId> resolve(const std::string& attachment_id) const;
  void push_result(::siobridge::v1::Result result);
  // The operations for `call` of server `id`: numbered when that server's
  // calls are (Hello "confirm", Call.seq).
  Operations operations_for(core::AttachmentId id, const ::siobridge::v1::Call& call);
  // Core thread: a server that holds calls to send again (Hello.resend_from)
  // learns which of them the cluster has.
  void tell_what_cluster_has(const std::shared_ptr<Attachment>& attachment,
                             std::uint64_t resend_from);
  // What waits in the outbox, as the flow gate weighs it.
  std::size_t backlog() const;
  // After a message is pushed or written: tells the flow gate what waits.
  void report_backlog();
  // The reactor read a message of `bytes`: read the next one now, once the
  // core took enough of what was read, or once the gate opens.
  void read_next(std::size_t bytes);
  // The core thread took `bytes` of what was read.
  void taken(std::size_t bytes);
  void read_when_producers_may_go();
  bool finish(const grpc::Status& status);
  // The close close_when_written() put off, if any: now.
  void close_if_written();
  void reactor_done();
  // Once a backlog of many MiB drained or was dropped: its memory goes back to
  // the system (release_free_memory), not only to the heap.
  void release_drained_backlog();
  // `for_good`: its server closed (Detach), rather than its stream ended.
  void detach(core::AttachmentId id, bool for_good = false);
  void detach_all();

  ApiContext& context_;
  Operations& operations_;
  grpc::CallbackServerContext* const call_;
  const CommandBatcher batcher_;
  Outbox<::siobridge::v1::DaemonMessage> outbox_;

  // The most bytes waited in the outbox since it was last empty.
  std::atomic<std::size_t> peak_bytes_{0};

  static constexpr std::size_t kMaxUntakenBytes = 1u << 20;
  // Read, and handed to the core thread (or about to be), not taken yet.
  std::atomic<std::size_t> untaken_bytes_{0};
  // Core thread only: a write of the Commands queued this turn is registered
  // for the end of the turn (TurnFlush).
  bool flush_deferred_ = false;

  // Reactor thread only (reads of one stream do not overlap): read since the
  // last marker was posted to the core, which counts them taken.
  std::size_t unmarked_bytes_ = 0;

  mutable Mutex mutex_;
  StreamReactor* reactor_ SIOBRIDGE_GUARDED_BY(mutex_) = nullptr;  // null once the RPC is done
  bool finishing_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  // Set by close_when_written(): the status to end with once the outbox drains.
  std::optional<grpc::Status> close_when_drained_ SIOBRIDGE_GUARDED_BY(mutex_);
  const char* close_reason_ SIOBRIDGE_GUARDED_BY(mutex_) = "";
  bool hello_seen_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  bool read_waits_for_core_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  core::AttachmentId first_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::map<core::AttachmentId, std::shared_ptr<Attachment>> servers_ SIOBRIDGE_GUARDED_BY(mutex_);
};

}  // namespace siobridge::api
