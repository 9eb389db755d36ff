#include "daemon/api/ack_event_stream.h"

#include <memory>
#include <mutex>
#include <optional>

#include "daemon/api/convert.h"
#include "daemon/api/outbox.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

namespace {

// Shared between the reactor (gRPC threads) and the core's AckStream callbacks.
class AckState {
 public:
  using Reactor = grpc::ServerWriteReactor<pb::AckEvent>;
  AckState(ApiContext& context, Reactor* reactor)
      : context_(context), reactor_(reactor), outbox_([this](const pb::AckEvent* event) {
          std::lock_guard lock(mutex_);
          if (reactor_) reactor_->StartWrite(event);
        }) {}

  // Events are numbered as pushed (all from the core thread, in order) and
  // counted as written, so the RPC finishes right after Done is written.
  void push(pb::AckEvent event) {
    {
      std::lock_guard lock(mutex_);
      ++pushed_;
    }
    outbox_.push(std::move(event));
  }
  void push_done(const core::Missing& missing, bool timed_out) {
    pb::AckEvent event;
    to_proto(missing, event.mutable_done()->mutable_missing());
    event.mutable_done()->set_timed_out(timed_out);
    {
      std::lock_guard lock(mutex_);
      done_index_ = pushed_++;
    }
    outbox_.push(std::move(event));
  }
  void on_write_done(bool ok) {
    outbox_.on_write_done(ok);
    std::lock_guard lock(mutex_);
    ++written_;
    if (!ok) {
      finish_locked(grpc::Status::CANCELLED);
    } else if (done_index_ && written_ > *done_index_) {
      finish_locked(grpc::Status::OK);
    }
  }
  void finish(const grpc::Status& status) {
    std::lock_guard lock(mutex_);
    finish_locked(status);
  }
  void reactor_done() {
    {
      std::lock_guard lock(mutex_);
      reactor_ = nullptr;
    }
    outbox_.close();
    if (begun && !ended_.exchange(true)) context_.end_operation();
  }
  bool begun = false;

 private:
  void finish_locked(const grpc::Status& status) {
    if (finished_ || !reactor_) return;
    finished_ = true;
    outbox_.close();
    reactor_->Finish(status);
    if (begun && context_.observer) {
      context_.observer->request_done(
          "broadcast_with_ack", std::chrono::steady_clock::now() - started_, status.error_code());
    }
  }

  ApiContext& context_;
  std::mutex mutex_;
  Reactor* reactor_;
  Outbox<pb::AckEvent> outbox_;
  std::uint64_t pushed_ = 0, written_ = 0;
  std::optional<std::uint64_t> done_index_;
  bool finished_ = false;
  std::atomic<bool> ended_{false};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

class Reactor final : public grpc::ServerWriteReactor<pb::AckEvent> {
 public:
  explicit Reactor(ApiContext& context) : state_(std::make_shared<AckState>(context, this)) {}
  std::shared_ptr<AckState> state() const { return state_; }
  void OnWriteDone(bool ok) override { state_->on_write_done(ok); }
  void OnCancel() override { state_->finish(grpc::Status::CANCELLED); }
  void OnDone() override {
    state_->reactor_done();
    delete this;
  }

 private:
  std::shared_ptr<AckState> state_;
};

}  // namespace

grpc::ServerWriteReactor<pb::AckEvent>* AckEventStream::start(ApiContext& context,
                                                              grpc::CallbackServerContext*,
                                                              const pb::BroadcastRequest& request) {
  auto* reactor = new Reactor(context);
  auto state = reactor->state();
  auto from = context.parse_attachment(request.attachment_id());
  if (!from.ok()) {
    state->finish(to_grpc(from.error()));
    return reactor;
  }
  auto opts = from_proto(request.opts());
  if (!opts.ok()) {
    state->finish(to_grpc(opts.error()));
    return reactor;
  }
  auto packet = from_proto(request.packet(), context.limits.max_message_bytes);
  if (!packet.ok()) {
    state->finish(to_grpc(packet.error()));
    return reactor;
  }
  if (!context.begin_operation()) {
    state->finish({grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"});
    return reactor;
  }
  state->begun = true;
  context.engine.post([state, from = *from, opts = std::move(*opts), packet = std::move(*packet),
                       timeout = core::Millis{request.ack_timeout_ms()}](core::Node& node) {
    core::AckStream stream{[state](std::uint32_t count) {
                             pb::AckEvent event;
                             event.set_count(count);
                             state->push(std::move(event));
                           },
                           [state](const std::string& sid, const core::AckResult& result) {
                             pb::AckEvent event;
                             to_proto(sid, result, event.mutable_ack());
                             state->push(std::move(event));
                           },
                           [state](const core::Missing& missing, bool timed_out) {
                             state->push_done(missing, timed_out);
                           }};
    auto status = node.broadcast_with_ack(from, packet, opts, timeout, std::move(stream));
    if (!status.ok()) state->finish(to_grpc(status));
  });
  return reactor;
}

}  // namespace siobridge::api
