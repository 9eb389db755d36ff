#include "daemon/api/attach_stream.h"

#include <spdlog/spdlog.h>

#include "daemon/api/convert.h"
#include "daemon/api/recovery_offset.h"
#include "daemon/common/memory.h"
#include "daemon/common/turn_flush.h"
#include "daemon/core/validation.h"
#include "daemon/wire/ids.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

// The Hello.features this daemon accepts.
constexpr const char* kCommandBatch = "command_batch";
constexpr const char* kMessageBatch = "message_batch";
constexpr const char* kConfirm = "confirm";

// ---- Attachment ----

std::size_t Attachment::queued() const {
  auto stream = stream_.lock();
  return stream ? stream->queued() : 0;
}

void Attachment::deliver(const core::Command& command) {
  if (auto stream = stream_.lock()) stream->push_command(command, id_, reads_batches_);
}

void Attachment::close(const grpc::Status& status, const char* reason) {
  if (auto stream = stream_.lock()) stream->close(status, reason);
}

void Attachment::close_when_written(const grpc::Status& status, const char* reason, Millis bound) {
  if (auto stream = stream_.lock()) stream->close_when_written(status, reason, bound);
}

void Attachment::close_if_stalled(std::chrono::steady_clock::time_point now) {
  if (auto stream = stream_.lock()) stream->close_if_stalled(now);
}

void Attachment::confirm_settled(std::uint64_t settled) {
  if (instance_.empty()) return;
  if (auto seq = ledger_.settle(settled)) confirm(*seq);
}

void Attachment::confirm(std::uint64_t seq) {
  confirm_due_ = std::max(confirm_due_, seq);
  if (confirm_deferred_) return;
  // One Confirmed a turn: the newest number says everything before it.
  auto flush = [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->confirm_deferred_ = false;
    auto stream = self->stream_.lock();
    if (!stream) return;
    pb::DaemonMessage message;
    auto* confirmed = message.mutable_confirmed();
    confirmed->set_attachment_id(stream->context_.attachment_id(self->id_));
    confirmed->set_seq(self->confirm_due_);
    stream->outbox_.push(std::move(message));
  };
  confirm_deferred_ = TurnFlush::defer(flush);
  if (!confirm_deferred_) flush();
}

// ---- the reactor ----

class AttachStream::StreamReactor final : public Reactor {
 public:
  explicit StreamReactor(std::shared_ptr<AttachStream> owner) : owner_(std::move(owner)) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the process closed its side, or the stream broke
      owner_->finish(grpc::Status::OK);
      return;
    }
    owner_->on_message(incoming_);
    const std::size_t bytes = incoming_.ByteSizeLong();
    incoming_.Clear();
    owner_->read_next(bytes);
  }
  void OnWriteDone(bool ok) override {
    const bool drained = owner_->outbox_.on_write_done(ok);
    owner_->report_backlog();
    if (drained) {
      owner_->release_drained_backlog();
      owner_->close_if_written();
    }
  }
  void read() { StartRead(&incoming_); }
  void OnCancel() override { owner_->finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    owner_->reactor_done();
    delete this;
  }

 private:
  std::shared_ptr<AttachStream> owner_;
  pb::ServerMessage incoming_;
};

// ---- AttachStream ----

AttachStream::AttachStream(ApiContext& context, Operations& operations,
                           grpc::CallbackServerContext* call)
    : context_(context),
      operations_(operations),
      call_(call),
      batcher_(CommandBatcher::Caps{}),
      outbox_(
          [this](const pb::DaemonMessage* message) {
            MutexLock lock(mutex_);
            if (reactor_) reactor_->StartWrite(message);
          },
          [this](pb::DaemonMessage& last, std::size_t last_items, std::size_t last_bytes,
                 pb::DaemonMessage& next, std::size_t next_bytes) {
            return batcher_.append(last, last_items, last_bytes, next, next_bytes);
          }) {}

AttachStream::Reactor* AttachStream::start(ApiContext& context, Operations& operations,
                                           grpc::CallbackServerContext* call) {
  std::shared_ptr<AttachStream> stream(new AttachStream(context, operations, call));
  auto* reactor = new StreamReactor(stream);
  MutexLock lock(stream->mutex_);
  stream->reactor_ = reactor;
  return reactor;
}

void AttachStream::on_message(const pb::ServerMessage& message) {
  bool first;
  {
    MutexLock lock(mutex_);
    first = !hello_seen_;
  }
  if (first && !message.has_hello()) {
    finish(invalid("the first message of an Attach stream must be Hello"));
    return;
  }
  switch (message.kind_case()) {
    case pb::ServerMessage::kHello:
      on_hello(message.hello());
      return;
    case pb::ServerMessage::kJoinNamespace:
      change_namespace(message.join_namespace(), true);
      return;
    case pb::ServerMessage::kLeaveNamespace:
      change_namespace(message.leave_namespace(), false);
      return;
    case pb::ServerMessage::kReply:
      on_reply(message.reply());
      return;
    case pb::ServerMessage::kDetach: {
      auto id = resolve(message.detach().attachment_id());
      if (id.ok()) detach(*id, /*for_good=*/true);
      return;
    }
    case pb::ServerMessage::kCall:
      on_call(message.call());
      return;
    case pb::ServerMessage::kBatch:
      for (const auto& inner : message.batch().messages()) {
        if (inner.has_batch()) {
          finish(invalid("a MessageBatch inside a MessageBatch"));
          return;
        }
        on_message(inner);
        MutexLock lock(mutex_);
        if (finishing_) return;  // an earlier message of the batch ended the stream
      }
      return;
    case pb::ServerMessage::KIND_NOT_SET:
      finish(invalid("empty ServerMessage"));
      return;
  }
}

void AttachStream::on_hello(const pb::Hello& hello) {
  for (const auto& ns : hello.namespaces()) {
    if (auto s = core::check_namespace(ns); !s) {
      finish(invalid("Hello.namespaces: " + s.error().message));
      return;
    }
  }
  {
    MutexLock lock(mutex_);
    hello_seen_ = true;
  }
  std::string name = hello.name().empty() ? "unnamed" : hello.name().substr(0, 128);
  bool reads_batches = false, sends_batches = false, confirms = false;
  for (const auto& feature : hello.features()) {
    reads_batches |= feature == kCommandBatch;
    sends_batches |= feature == kMessageBatch;
    confirms |= feature == kConfirm;
  }
  // Numbered calls need a well-formed instance; without one the server gets
  // no "confirm" in its Welcome and works as a server that does not number.
  std::string instance;
  if (confirms && wire::is_valid_socket_id(hello.instance())) instance = hello.instance();
  const std::uint64_t resend_from = instance.empty() ? 0 : hello.resend_from();
  auto attachment = std::make_shared<Attachment>(weak_from_this(), name, reads_batches, instance);
  std::vector<std::string> namespaces(hello.namespaces().begin(), hello.namespaces().end());
  context_.engine.post([self = shared_from_this(), attachment, namespaces,
                        client_ref = hello.client_ref(), sends_batches,
                        resend_from](core::Node& node) {
    {
      MutexLock lock(self->mutex_);
      if (self->finishing_) return;  // the stream ended before the server could attach
    }
    const auto id = node.attach(*attachment, attachment->name());
    attachment->id_ = id;
    {
      MutexLock lock(self->mutex_);
      self->servers_[id] = attachment;
      if (self->first_ == 0) self->first_ = id;
    }
    self->context_.add(attachment);
    pb::DaemonMessage welcome;
    auto* w = welcome.mutable_welcome();
    w->set_node_uid(node.uid());
    w->set_attachment_id(self->context_.attachment_id(id));
    w->set_max_message_bytes(self->context_.limits.max_message_bytes);
    w->set_daemon_version(SIOBRIDGE_VERSION);
    w->set_client_ref(client_ref);
    if (attachment->reads_batches_) w->add_features(kCommandBatch);
    if (sends_batches) w->add_features(kMessageBatch);
    if (!attachment->instance_.empty()) w->add_features(kConfirm);
    self->outbox_.push(std::move(welcome));
    if (resend_from > 0) self->tell_what_cluster_has(attachment, resend_from);
    // After the Welcome: joining can deliver at once what was held for the
    // namespace since a restart, and a client only knows the attachment id of
    // a Command once it has its Welcome.
    for (const auto& ns : namespaces) (void)node.join_namespace(id, ns);
    // One line however many namespaces: a Hello may list thousands.
    std::string listed;
    for (std::size_t i = 0; i < namespaces.size() && i < 5; ++i) {
      listed += (i ? ", " : "") + namespaces[i].substr(0, 64);
    }
    if (namespaces.size() > 5) listed += fmt::format(" and {} more", namespaces.size() - 5);
    spdlog::info("server '{}' attached as {} ({} namespace{}{}{})", attachment->name(),
                 self->context_.attachment_id(id), namespaces.size(),
                 namespaces.size() == 1 ? "" : "s", listed.empty() ? "" : ": ", listed);
  });
}

Result<core::AttachmentId> AttachStream::resolve(const std::string& attachment_id) const {
  MutexLock lock(mutex_);
  if (attachment_id.empty()) {
    if (first_ == 0)
      return make_error(ErrorCode::kFailedPrecondition, "no server attached on this stream yet");
    return first_;
  }
  auto id = context_.parse_attachment(attachment_id);
  if (!id.ok()) return id.error();
  if (!servers_.count(*id)) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "attachment " + attachment_id + " is not attached on this stream");
  }
  return *id;
}

void AttachStream::change_namespace(const pb::NamespaceChange& change, bool join) {
  auto report = [this](const std::string& ns, const std::string& attachment,
                       const grpc::Status& status) {
    pb::DaemonMessage error;
    auto* refused = error.mutable_namespace_error();
    refused->set_namespace_(ns.substr(0, 256));
    refused->set_message(status.error_message());
    refused->set_attachment_id(attachment.substr(0, 64));
    refused->set_status_code(status.error_code());
    outbox_.push(std::move(error));
  };
  auto id = resolve(change.attachment_id());
  if (!id.ok()) {
    report(change.namespace_(), change.attachment_id(), to_grpc(id.error()));
    return;
  }
  if (auto s = core::check_namespace(change.namespace_()); !s) {
    report(change.namespace_(), change.attachment_id(), to_grpc(s));
    return;
  }
  context_.engine.post([self = shared_from_this(), id = *id, ns = change.namespace_(), join, report,
                        attachment = change.attachment_id(),
                        recovery = Millis{change.recovery_ms()}](core::Node& node) {
    auto status = join ? node.join_namespace(id, ns, recovery) : node.leave_namespace(id, ns);
    if (!status.ok()) report(ns, attachment, to_grpc(status));
  });
}

void AttachStream::on_reply(const pb::Reply& reply) {
  auto from = resolve(reply.attachment_id());
  if (!from.ok()) return;  // a reply for a server already detached
  const auto command = reply.command_id();
  const auto id = *from;
  auto& engine = context_.engine;
  switch (reply.kind_case()) {
    case pb::Reply::kAckCount:
      engine.post([id, command, count = reply.ack_count()](core::Node& n) {
        n.on_ack_count(id, command, count);
      });
      return;
    case pb::Reply::kAck:
      engine.post([id, command, sid = reply.ack().sid(), result = from_proto(reply.ack())](
                      core::Node& n) { n.on_ack(id, command, sid, result); });
      return;
    case pb::Reply::kRooms:
      engine.post([id, command,
                   rooms = std::vector<std::string>(reply.rooms().rooms().begin(),
                                                    reply.rooms().rooms().end())](core::Node& n) {
        n.on_rooms(id, command, rooms);
      });
      return;
    case pb::Reply::kSockets: {
      auto sockets = from_proto(reply.sockets());
      if (!sockets.ok()) {
        spdlog::warn("an attached server sent an invalid socket list: {}", sockets.error().message);
        return;
      }
      engine.post([id, command, list = std::move(*sockets)](core::Node& n) {
        n.on_sockets(id, command, list);
      });
      return;
    }
    case pb::Reply::kEmitReply:
      engine.post([id, command, payload = reply.emit_reply()](core::Node& n) {
        n.on_emit_reply(id, command, payload);
      });
      return;
    case pb::Reply::KIND_NOT_SET:
      return;
  }
}

void AttachStream::push_result(pb::Result result) {
  pb::DaemonMessage message;
  *message.mutable_result() = std::move(result);
  const auto bytes = message.ByteSizeLong();
  outbox_.push(std::move(message), bytes);
}

Operations AttachStream::operations_for(core::AttachmentId id, const pb::Call& call) {
  if (call.seq() == 0) return operations_;
  std::shared_ptr<Attachment> attachment;
  {
    MutexLock lock(mutex_);
    auto it = servers_.find(id);
    if (it != servers_.end()) attachment = it->second;
  }
  if (!attachment || attachment->instance_.empty()) return operations_;
  auto hooks = std::make_shared<Operations::CallHooks>();
  hooks->mark = wire::CallMark{attachment->instance_, call.seq()};
  ApiContext& context = context_;
  hooks->before = [&context, instance = attachment->instance_, seq = call.seq()] {
    if (context.calls.first_time(instance, seq)) return true;
    if (context.observer) context.observer->repeated_call();
    return false;
  };
  hooks->after = [&context, weak = std::weak_ptr<Attachment>(attachment), seq = call.seq()] {
    auto server = weak.lock();
    if (!server) return;
    server->ledger_.applied(seq, context.engine.published());
    server->confirm_settled(context.engine.settled());
  };
  return operations_.numbered(std::move(hooks));
}

void AttachStream::tell_what_cluster_has(const std::shared_ptr<Attachment>& attachment,
                                         std::uint64_t resend_from) {
  context_.engine.find_last_call(
      attachment->instance_,
      [weak_stream = weak_from_this(), weak = std::weak_ptr<Attachment>(attachment),
       resend_from](Result<std::uint64_t> stored) {
        auto self = weak_stream.lock();
        auto server = weak.lock();
        if (!self || !server) return;
        auto& calls = self->context_.calls;
        // What the cluster stored, what this daemon applied already (it may
        // not be stored yet), and nothing the server does not hold anyway.
        const std::uint64_t has = std::max(
            {stored.ok() ? *stored : 0, calls.highest(server->instance_), resend_from - 1});
        calls.raise(server->instance_, has);
        server->ledger_.assume(has);
        server->confirm(has);  // sent also when it says nothing new: the server waits for it
      });
}

void AttachStream::on_call(const pb::Call& call) {
  const auto ref = call.ref();
  auto failed = [this, ref](const grpc::Status& status) {
    pb::Result result;
    result.set_ref(ref);
    result.set_status_code(status.error_code());
    result.set_status_message(status.error_message());
    push_result(std::move(result));
  };
  auto from = resolve(call.attachment_id());
  if (!from.ok()) {
    failed(to_grpc(from.error()));
    return;
  }
  auto self = shared_from_this();
  Operations operations = operations_for(*from, call);
  // Broadcast and the socket changes answer only on failure unless asked.
  auto status_done = [self, ref, failed, want = call.want_result()](const grpc::Status& status) {
    if (!status.ok()) {
      failed(status);
    } else if (want) {
      pb::Result result;
      result.set_ref(ref);
      result.mutable_operation();
      self->push_result(std::move(result));
    }
  };
  auto reply_done = [self, ref, failed](auto setter) {
    return [self, ref, failed, setter](const grpc::Status& status, auto reply) {
      if (!status.ok()) {
        failed(status);
        return;
      }
      pb::Result result;
      result.set_ref(ref);
      setter(result, std::move(reply));
      self->push_result(std::move(result));
    };
  };
  switch (call.kind_case()) {
    case pb::Call::kBroadcast:
      operations.broadcast(*from, call.broadcast(), status_done);
      return;
    case pb::Call::kBroadcastWithAck:
      operations.broadcast_with_ack(
          *from, call.broadcast_with_ack(),
          [self, ref](pb::AckEvent event) {
            pb::Result result;
            result.set_ref(ref);
            *result.mutable_ack_event() = std::move(event);
            self->push_result(std::move(result));
          },
          [failed](const grpc::Status& status) {
            if (!status.ok()) failed(status);
          });
      return;
    case pb::Call::kAddSockets:
      operations.change_rooms(*from, call.add_sockets(), true, status_done);
      return;
    case pb::Call::kDelSockets:
      operations.change_rooms(*from, call.del_sockets(), false, status_done);
      return;
    case pb::Call::kDisconnectSockets:
      operations.disconnect_sockets(*from, call.disconnect_sockets(), status_done);
      return;
    case pb::Call::kFetchSockets:
      operations.fetch_sockets(*from, call.fetch_sockets(),
                               reply_done([](pb::Result& r, pb::FetchSocketsReply v) {
                                 *r.mutable_fetch_sockets() = std::move(v);
                               }));
      return;
    case pb::Call::kAllRooms:
      operations.all_rooms(*from, call.all_rooms(),
                           reply_done([](pb::Result& r, pb::AllRoomsReply v) {
                             *r.mutable_all_rooms() = std::move(v);
                           }));
      return;
    case pb::Call::kServerCount:
      operations.server_count(call.server_count(),
                              reply_done([](pb::Result& r, pb::ServerCountReply v) {
                                *r.mutable_server_count() = std::move(v);
                              }));
      return;
    case pb::Call::kServerSideEmit:
      operations.server_side_emit(*from, call.server_side_emit(),
                                  reply_done([](pb::Result& r, pb::ServerSideEmitReply v) {
                                    *r.mutable_server_side_emit() = std::move(v);
                                  }));
      return;
    case pb::Call::kPersistSession:
      operations.persist_session(*from, call.persist_session(), status_done);
      return;
    case pb::Call::kRestoreSession:
      operations.restore_session(*from, call.restore_session(),
                                 reply_done([](pb::Result& r, pb::RestoreSessionReply v) {
                                   *r.mutable_restore_session() = std::move(v);
                                 }));
      return;
    case pb::Call::KIND_NOT_SET:
      failed(invalid("empty Call"));
      return;
  }
}

void AttachStream::push_command(const core::Command& command, core::AttachmentId to, bool batch) {
  pb::DaemonMessage message;
  to_proto(command, message.mutable_command());
  message.mutable_command()->set_attachment_id(context_.attachment_id(to));
  // Caused by a numbered call of another server here: receivers skip it if
  // that call is sent again after a restart of this daemon.
  if (const auto& origin = context_.engine.current_call()) {
    message.mutable_command()->set_origin_instance(origin->instance);
    message.mutable_command()->set_origin_seq(origin->seq);
  }
  if (command.log_seq) {
    message.mutable_command()->set_recovery_base(recovery_base(
        message.command().attachment_id(), *command.log_seq, command.log_seen_through));
  }
  const std::size_t bytes = message.ByteSizeLong();
  const auto& limits = context_.limits;
  const std::size_t queued = outbox_.size(), queued_bytes = outbox_.bytes();
  if (backlog() > limits.backpressure_bytes && command.opts.has(wire::broadcast_flags::kVolatile)) {
    if (context_.observer) context_.observer->volatile_dropped();
    return;  // volatile packets may be lost, by contract
  }
  if (queued + 1 > limits.attachment_queue_messages ||
      queued_bytes + bytes > limits.attachment_queue_bytes) {
    close({grpc::StatusCode::RESOURCE_EXHAUSTED,
           fmt::format("the server did not keep up with its Attach stream: {} messages ({} bytes) "
                       "were waiting, over limits.attachment_queue_messages/_bytes; the daemon "
                       "closed it",
                       queued, queued_bytes)},
          "queue limit");
    return;
  }
  // The Commands of one core turn leave together: the first registers a write
  // for the end of the turn instead of starting one alone, which would send it
  // by itself and wake the server once more for the rest.
  bool start_write = true;
  if (batch) {
    start_write = false;
    if (!flush_deferred_) {
      flush_deferred_ = TurnFlush::defer([weak = weak_from_this()] {
        if (auto self = weak.lock()) {
          self->flush_deferred_ = false;
          self->outbox_.kick();
        }
      });
      start_write = !flush_deferred_;
    }
  }
  outbox_.push(std::move(message), bytes, batch, start_write);
  const std::size_t now_queued = queued_bytes + bytes;
  if (now_queued > peak_bytes_.load(std::memory_order_relaxed)) {
    peak_bytes_.store(now_queued, std::memory_order_relaxed);  // one producer: the core thread
  }
  report_backlog();
}

void AttachStream::release_drained_backlog() {
  // Small backlogs come and go all the time; trimming after each would cost
  // more than the memory is worth. 4 MiB: one that reached the default
  // back-pressure mark (limits.backpressure_bytes).
  constexpr std::size_t kLargeBacklog = 4 * kLargeFreeBytes;
  if (peak_bytes_.exchange(0) >= kLargeBacklog) release_free_memory();
}

std::size_t AttachStream::backlog() const {
  // Many small messages weigh like their memory: ~128 bytes each beside the payload.
  return outbox_.bytes() + outbox_.size() * 128;
}

void AttachStream::report_backlog() {
  context_.engine.flow_gate().report(this, backlog(), outbox_.writing_since());
}

void AttachStream::read_next(std::size_t bytes) {
  // Posted after the calls just read, a marker runs once the core took them.
  // One per 64 KiB keeps it cheap for small calls; one always before a pause,
  // so that something will end it.
  constexpr std::size_t kMarkEvery = 64u << 10;
  unmarked_bytes_ += bytes;
  const std::size_t untaken = untaken_bytes_.fetch_add(bytes) + bytes;
  if (unmarked_bytes_ >= kMarkEvery || untaken > kMaxUntakenBytes) {
    context_.engine.post([weak = weak_from_this(), marked = unmarked_bytes_](core::Node&) {
      if (auto self = weak.lock()) self->taken(marked);
    });
    unmarked_bytes_ = 0;
  }
  {
    MutexLock lock(mutex_);
    if (untaken_bytes_.load() > kMaxUntakenBytes) {
      read_waits_for_core_ = true;
      return;
    }
  }
  read_when_producers_may_go();
}

void AttachStream::taken(std::size_t bytes) {
  const std::size_t untaken = untaken_bytes_.fetch_sub(bytes) - bytes;
  if (untaken > kMaxUntakenBytes / 2) return;
  {
    MutexLock lock(mutex_);
    if (!read_waits_for_core_) return;
    read_waits_for_core_ = false;
  }
  read_when_producers_may_go();
}

void AttachStream::read_when_producers_may_go() {
  context_.engine.when_producers_may_go([weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    MutexLock lock(self->mutex_);
    if (self->reactor_ && !self->finishing_) self->reactor_->read();
  });
}

void AttachStream::close_if_stalled(std::chrono::steady_clock::time_point now) {
  // Only a write the server leaves unread stalls it: work still being made on
  // the core thread, or waiting for the end of its turn, never does.
  const auto since = outbox_.writing_since();
  if (!since || now - *since < context_.limits.stall_timeout) return;
  close({grpc::StatusCode::RESOURCE_EXHAUSTED,
         fmt::format("the server stopped reading its Attach stream: a write waited {} ms for it "
                     "while {} messages ({} bytes) were queued (limits.stall_timeout); the daemon "
                     "closed it",
                     std::chrono::duration_cast<std::chrono::milliseconds>(now - *since).count(),
                     outbox_.size(), outbox_.bytes())},
        "stalled reader");
}

void AttachStream::close(const grpc::Status& status, const char* reason) {
  if (!finish(status)) return;
  spdlog::warn("closing an Attach stream: {}", status.error_message());
  if (context_.observer) context_.observer->attachment_closed(reason);
  // Leave the cluster now rather than when the RPC is done. The status waits
  // behind the message being written: a process that reads again gets it (and
  // its code); one that never does is cut off after a minute.
  detach_all();
  std::weak_ptr<AttachStream> weak = shared_from_this();
  context_.engine.after(Millis{60'000}, [weak] {
    if (auto self = weak.lock()) {
      MutexLock lock(self->mutex_);
      if (self->reactor_) self->call_->TryCancel();
    }
  });
}

void AttachStream::close_when_written(const grpc::Status& status, const char* reason,
                                      Millis bound) {
  {
    MutexLock lock(mutex_);
    if (finishing_ || !reactor_) return;
    close_when_drained_ = status;
    close_reason_ = reason;
  }
  outbox_.kick();  // what waited for the end of a core turn
  if (outbox_.size() == 0) {
    close_if_written();
    return;
  }
  std::weak_ptr<AttachStream> weak = shared_from_this();
  context_.engine.after(bound, [weak] {
    if (auto self = weak.lock()) self->close_if_written();
  });
}

void AttachStream::close_if_written() {
  grpc::Status status;
  const char* reason = nullptr;
  {
    MutexLock lock(mutex_);
    if (!close_when_drained_) return;
    status = *close_when_drained_;
    reason = close_reason_;
  }
  close(status, reason);
}

bool AttachStream::finish(const grpc::Status& status) {
  {
    MutexLock lock(mutex_);
    if (finishing_ || !reactor_) return false;
    finishing_ = true;
    outbox_.close();
    reactor_->Finish(status);
  }
  context_.engine.flow_gate().forget(this);
  release_drained_backlog();  // the outbox dropped what waited
  return true;
}

void AttachStream::reactor_done() {
  {
    MutexLock lock(mutex_);
    reactor_ = nullptr;
    finishing_ = true;
  }
  context_.engine.flow_gate().forget(this);
  outbox_.close();
  release_drained_backlog();
  detach_all();
}

void AttachStream::detach(core::AttachmentId id, bool for_good) {
  context_.engine.post([self = shared_from_this(), id, for_good](core::Node& node) {
    std::shared_ptr<Attachment> attachment;
    {
      MutexLock lock(self->mutex_);
      auto it = self->servers_.find(id);
      if (it == self->servers_.end()) return;
      attachment = it->second;
      self->servers_.erase(it);
    }
    node.detach(id);
    self->context_.remove(id);
    // Its server closed: its instance will not send again. (A stream that
    // ended may come back with calls to send again: its numbers are kept.)
    if (for_good && !attachment->instance_.empty())
      self->context_.calls.forget(attachment->instance_);
    spdlog::info("server '{}' detached", attachment->name());
  });
}

void AttachStream::detach_all() {
  std::vector<core::AttachmentId> ids;
  {
    MutexLock lock(mutex_);
    for (const auto& [id, server] : servers_) ids.push_back(id);
  }
  for (auto id : ids) detach(id);
}

}  // namespace siobridge::api
