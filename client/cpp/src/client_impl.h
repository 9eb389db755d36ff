// BridgeClient's state and its work (client.cc, client_numbered.cc): the
// public class forwards every call here, so that its header stays free of
// the daemon's locking types.
//
// Thread-safe, as BridgeClient; locking checked by clang's -Wthread-safety.
#pragma once

#include <atomic>
#include <deque>
#include <optional>
#include <set>
#include <thread>

#include "daemon/common/mutex.h"
#include "siobridge/client.h"

namespace siobridge::client {

class BridgeClient::Impl {
 public:
  Impl(ClientOptions options, CommandHandler* handler);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Attached clients: waits for Welcome (after each reconnect too).
  bool wait_attached(std::chrono::milliseconds timeout) SIOBRIDGE_EXCLUDES(mutex_);
  std::string attachment_id() const SIOBRIDGE_EXCLUDES(mutex_);
  std::string node_uid() const SIOBRIDGE_EXCLUDES(mutex_);
  // How many times the Attach stream was established.
  int attach_count() const { return attach_count_; }
  // Numbered calls sent again after a daemon restart, and still kept.
  std::uint64_t resent() const SIOBRIDGE_EXCLUDES(mutex_);
  std::size_t kept() const SIOBRIDGE_EXCLUDES(mutex_);

  void join_namespace(const std::string& ns) SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);
  void leave_namespace(const std::string& ns) SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);
  // Answers a Command that has an id.
  void reply(const pb::Reply& reply) SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);

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

  pb::Bridge::Stub& stub() { return *stub_; }
  // The daemon's channel, for the other services it serves (grpc.health.v1).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  void run_attach_loop() SIOBRIDGE_EXCLUDES(mutex_);
  bool attach_once() SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);
  // Writes `message` on the stream if there is one (the daemon forgets what
  // a stream that ended carried, so there is nothing to keep).
  void write(const pb::ServerMessage& message) SIOBRIDGE_REQUIRES(mutex_)
      SIOBRIDGE_EXCLUDES(write_mutex_);
  std::unique_ptr<grpc::ClientContext> call_context() const;
  // A numbered call (client_numbered.cc): sent on the stream, kept until
  // confirmed; `unary` runs instead while the daemon does not number calls.
  struct NumberedCall {
    std::uint64_t seq = 0;
    pb::Call call;          // its attachment id and ref are set when it is sent
    std::uint64_t ref = 0;  // of its sending on the current stream; 0: not sent there
    bool sent = false;      // on any stream
    std::shared_ptr<std::optional<grpc::Status>> outcome;
  };
  static std::string new_instance();
  Outcome<pb::OperationReply> numbered(pb::Call call,
                                       const std::function<Outcome<pb::OperationReply>()>& unary)
      SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);
  void send_numbered(NumberedCall& call) SIOBRIDGE_REQUIRES(mutex_)
      SIOBRIDGE_EXCLUDES(write_mutex_);
  // The Hello's numbering fields, and what a Welcome, a Result, a Confirmed or
  // the stream's end mean for the numbered calls.
  void number_hello(pb::Hello& hello) SIOBRIDGE_REQUIRES(mutex_);
  void numbered_welcome(const pb::Welcome& welcome) SIOBRIDGE_REQUIRES(mutex_)
      SIOBRIDGE_EXCLUDES(write_mutex_);
  void numbered_answer(const pb::DaemonMessage& message) SIOBRIDGE_EXCLUDES(mutex_, write_mutex_);
  void numbered_stream_ended() SIOBRIDGE_REQUIRES(mutex_);
  // Runs `call` with the current attachment id; retries once after a
  // reattach when the daemon no longer knows the id (it restarted).
  template <typename Reply, typename Call>
  Outcome<Reply> with_attachment(Call&& call) SIOBRIDGE_EXCLUDES(mutex_);

  ClientOptions options_;
  // Not OK when the options' TLS files could not be used: every call fails
  // with it, and no stream is attached.
  grpc::Status setup_;
  CommandHandler* handler_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Bridge::Stub> stub_;

  mutable Mutex mutex_;
  CondVar changed_{mutex_};  // the attachment changed, or the client stops
  std::string attachment_id_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::string node_uid_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::set<std::string> namespaces_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::unique_ptr<grpc::ClientContext> stream_context_ SIOBRIDGE_GUARDED_BY(mutex_);
  // Read by the stream thread alone (gRPC allows one reader beside one
  // writer); writes and Finish() hold write_mutex_.
  std::unique_ptr<grpc::ClientReaderWriter<pb::ServerMessage, pb::DaemonMessage>> stream_
      SIOBRIDGE_GUARDED_BY(mutex_);
  Mutex write_mutex_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> attach_count_{0};

  // Numbered calls: this client's instance (its name across reattachments),
  // the next numbers, the calls kept until confirmed (in order), whether the
  // current attachment numbers calls, and whether calls wait for the daemon's
  // first Confirmed after a reattach.
  const std::string instance_;
  std::uint64_t next_seq_ SIOBRIDGE_GUARDED_BY(mutex_) = 1;
  std::uint64_t next_ref_ SIOBRIDGE_GUARDED_BY(mutex_) = 1;
  std::deque<NumberedCall> kept_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool confirms_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  bool awaiting_resend_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::uint64_t hello_resend_from_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::uint64_t resent_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;

  std::thread attach_thread_;
};

}  // namespace siobridge::client
