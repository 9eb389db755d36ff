#include "daemon/api/attachment.h"

#include <spdlog/spdlog.h>

#include "daemon/api/convert.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

class Attachment::StreamReactor final : public Reactor {
 public:
  explicit StreamReactor(std::shared_ptr<Attachment> owner) : owner_(std::move(owner)) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the server closed its side, or the stream broke
      owner_->finish(grpc::Status::OK);
      return;
    }
    owner_->on_message(incoming_);
    incoming_.Clear();
    StartRead(&incoming_);
  }
  void OnWriteDone(bool ok) override { owner_->outbox_.on_write_done(ok); }
  void OnCancel() override { owner_->finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    owner_->reactor_done();
    delete this;
  }

  using Reactor::Finish;
  using Reactor::StartWrite;

 private:
  std::shared_ptr<Attachment> owner_;
  pb::ServerMessage incoming_;
};

Attachment::Attachment(ApiContext& context, grpc::CallbackServerContext* call)
    : context_(context), call_(call), outbox_([this](const pb::DaemonMessage* message) {
        std::lock_guard lock(mutex_);
        if (reactor_) reactor_->StartWrite(message);
      }) {}

Attachment::Reactor* Attachment::start(ApiContext& context, grpc::CallbackServerContext* call) {
  std::shared_ptr<Attachment> attachment(new Attachment(context, call));
  auto* reactor = new StreamReactor(attachment);
  std::lock_guard lock(attachment->mutex_);
  attachment->reactor_ = reactor;
  return reactor;
}

std::string Attachment::name() const {
  std::lock_guard lock(mutex_);
  return name_;
}

void Attachment::on_message(const pb::ServerMessage& message) {
  bool first;
  {
    std::lock_guard lock(mutex_);
    first = !hello_seen_;
  }
  if (first) {
    if (!message.has_hello()) {
      finish(invalid("the first message of an Attach stream must be Hello"));
      return;
    }
    on_hello(message.hello());
    return;
  }
  switch (message.kind_case()) {
    case pb::ServerMessage::kHello:
      finish(invalid("Hello sent twice on one Attach stream"));
      return;
    case pb::ServerMessage::kJoinNamespace:
      change_namespace(message.join_namespace().namespace_(), true);
      return;
    case pb::ServerMessage::kLeaveNamespace:
      change_namespace(message.leave_namespace().namespace_(), false);
      return;
    case pb::ServerMessage::kReply:
      on_reply(message.reply());
      return;
    case pb::ServerMessage::KIND_NOT_SET:
      finish(invalid("empty ServerMessage"));
      return;
  }
}

void Attachment::on_hello(const pb::Hello& hello) {
  for (const auto& ns : hello.namespaces()) {
    if (auto s = check_namespace(ns); !s.ok()) {
      finish(invalid("Hello.namespaces: " + s.error_message()));
      return;
    }
  }
  std::string name = hello.name().empty() ? "unnamed" : hello.name().substr(0, 128);
  {
    std::lock_guard lock(mutex_);
    hello_seen_ = true;
    name_ = name;
  }
  std::vector<std::string> namespaces(hello.namespaces().begin(), hello.namespaces().end());
  context_.engine.post([self = shared_from_this(), name, namespaces](core::Node& node) {
    const auto id = node.attach(*self, name);
    self->id_ = id;
    self->context_.add(self);
    for (const auto& ns : namespaces) (void)node.join_namespace(id, ns);
    pb::DaemonMessage welcome;
    auto* w = welcome.mutable_welcome();
    w->set_node_uid(node.uid());
    w->set_attachment_id(self->context_.attachment_id(id));
    w->set_max_message_bytes(self->context_.limits.max_message_bytes);
    w->set_daemon_version(SIOBRIDGE_VERSION);
    self->welcomed_ = true;
    self->outbox_.push(std::move(welcome));
    spdlog::info("server '{}' attached as {}", name, self->context_.attachment_id(id));
  });
}

void Attachment::change_namespace(const std::string& ns, bool join) {
  if (auto s = check_namespace(ns); !s.ok()) {
    pb::DaemonMessage error;
    error.mutable_namespace_error()->set_namespace_(ns.substr(0, 256));
    error.mutable_namespace_error()->set_message(s.error_message());
    outbox_.push(std::move(error));
    return;
  }
  context_.engine.post([self = shared_from_this(), ns, join](core::Node& node) {
    auto status = join ? node.join_namespace(self->id_, ns) : node.leave_namespace(self->id_, ns);
    if (!status.ok()) {
      pb::DaemonMessage error;
      error.mutable_namespace_error()->set_namespace_(ns);
      error.mutable_namespace_error()->set_message(status.error().message);
      self->outbox_.push(std::move(error));
    }
  });
}

void Attachment::on_reply(const pb::Reply& reply) {
  const auto command = reply.command_id();
  const auto from = id_.load();
  auto post = [&](auto fn) { context_.engine.post(std::move(fn)); };
  switch (reply.kind_case()) {
    case pb::Reply::kAckCount:
      post([from, command, count = reply.ack_count()](core::Node& n) {
        n.on_ack_count(from, command, count);
      });
      return;
    case pb::Reply::kAck:
      post([from, command, sid = reply.ack().sid(), result = from_proto(reply.ack())](
               core::Node& n) { n.on_ack(from, command, sid, result); });
      return;
    case pb::Reply::kRooms:
      post([from, command,
            rooms = std::vector<std::string>(reply.rooms().rooms().begin(),
                                             reply.rooms().rooms().end())](core::Node& n) {
        n.on_rooms(from, command, rooms);
      });
      return;
    case pb::Reply::kSockets: {
      auto sockets = from_proto(reply.sockets());
      if (!sockets.ok()) {
        spdlog::warn("server '{}' sent an invalid socket list: {}", name(),
                     sockets.error().message);
        return;
      }
      post([from, command, list = std::move(*sockets)](core::Node& n) {
        n.on_sockets(from, command, list);
      });
      return;
    }
    case pb::Reply::kEmitReply:
      post([from, command, payload = reply.emit_reply()](core::Node& n) {
        n.on_emit_reply(from, command, payload);
      });
      return;
    case pb::Reply::KIND_NOT_SET:
      return;
  }
}

void Attachment::deliver(const core::Command& command) {
  pb::DaemonMessage message;
  to_proto(command, message.mutable_command());
  const std::size_t bytes = message.ByteSizeLong();
  const auto& limits = context_.limits;
  const std::size_t queued = outbox_.size(), queued_bytes = outbox_.bytes();
  const bool over_half = queued * 2 >= limits.attachment_queue_messages ||
                         queued_bytes * 2 >= limits.attachment_queue_bytes;
  if (over_half && command.opts.has(wire::broadcast_flags::kVolatile)) {
    if (context_.observer) context_.observer->volatile_dropped();
    return;  // volatile packets may be lost, by contract
  }
  if (queued + 1 > limits.attachment_queue_messages ||
      queued_bytes + bytes > limits.attachment_queue_bytes) {
    close({grpc::StatusCode::RESOURCE_EXHAUSTED,
           fmt::format("the server stopped reading its Attach stream: {} messages ({} bytes) were "
                       "waiting; the daemon closed it",
                       queued, queued_bytes)},
          "stalled reader");
    return;
  }
  outbox_.push(std::move(message), bytes);
}

void Attachment::close(const grpc::Status& status, const char* reason) {
  if (!finish(status)) return;
  spdlog::warn("closing attachment of '{}': {}", name(), status.error_message());
  if (context_.observer) context_.observer->attachment_closed(reason);
  // Leave the cluster now rather than when the RPC is done, and cut the stream
  // if the server does not even read the status.
  detach();
  std::weak_ptr<Attachment> weak = shared_from_this();
  context_.engine.after(core::Millis{2000}, [weak] {
    if (auto self = weak.lock()) {
      std::lock_guard lock(self->mutex_);
      if (self->reactor_) self->call_->TryCancel();
    }
  });
}

bool Attachment::finish(const grpc::Status& status) {
  std::lock_guard lock(mutex_);
  if (finishing_ || !reactor_) return false;
  finishing_ = true;
  outbox_.close();
  reactor_->Finish(status);
  return true;
}

void Attachment::reactor_done() {
  {
    std::lock_guard lock(mutex_);
    reactor_ = nullptr;
    finishing_ = true;
  }
  outbox_.close();
  detach();
}

void Attachment::detach() {
  context_.engine.post([self = shared_from_this()](core::Node& node) {
    const auto id = self->id_.load();
    if (id == 0 || !node.has_attachment(id)) return;
    node.detach(id);
    self->context_.remove(id);
    spdlog::info("server '{}' detached", self->name());
  });
}

}  // namespace siobridge::api
