#include "daemon/api/ack_event_stream.h"

#include <memory>
#include <optional>

#include "daemon/api/convert.h"
#include "daemon/api/outbox.h"
#include "daemon/common/mutex.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

namespace {

// Shared between the reactor (gRPC threads) and the operation's callbacks.
class AckState {
 public:
  using Reactor = grpc::ServerWriteReactor<pb::AckEvent>;
  explicit AckState(Reactor* reactor)
      : reactor_(reactor), outbox_([this](const pb::AckEvent* event) {
          MutexLock lock(mutex_);
          if (reactor_) reactor_->StartWrite(event);
        }) {}

  // Events are numbered as pushed (in order, from the core thread) and counted
  // as written, so the RPC finishes right after Done is written.
  void push(pb::AckEvent event) SIOBRIDGE_EXCLUDES(mutex_) {
    {
      MutexLock lock(mutex_);
      if (event.has_done()) done_index_ = pushed_;
      ++pushed_;
    }
    outbox_.push(std::move(event));
  }
  void on_write_done(bool ok) SIOBRIDGE_EXCLUDES(mutex_) {
    outbox_.on_write_done(ok);
    MutexLock lock(mutex_);
    ++written_;
    if (!ok) {
      finish_locked(grpc::Status::CANCELLED);
    } else if (done_index_ && written_ > *done_index_) {
      finish_locked(grpc::Status::OK);
    }
  }
  void finish(const grpc::Status& status) SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    finish_locked(status);
  }
  void reactor_done() SIOBRIDGE_EXCLUDES(mutex_) {
    {
      MutexLock lock(mutex_);
      reactor_ = nullptr;
    }
    outbox_.close();
  }

 private:
  void finish_locked(const grpc::Status& status) SIOBRIDGE_REQUIRES(mutex_) {
    if (finished_ || !reactor_) return;
    finished_ = true;
    outbox_.close();
    reactor_->Finish(status);
  }

  Mutex mutex_;
  // Null once gRPC is done with the RPC.
  Reactor* reactor_ SIOBRIDGE_GUARDED_BY(mutex_);
  // Its own lock; its write callback takes mutex_.
  Outbox<pb::AckEvent> outbox_;
  std::uint64_t pushed_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::uint64_t written_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::optional<std::uint64_t> done_index_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool finished_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
};

class Reactor final : public grpc::ServerWriteReactor<pb::AckEvent> {
 public:
  Reactor() : state_(std::make_shared<AckState>(this)) {}
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
                                                              Operations& operations,
                                                              const pb::BroadcastRequest& request) {
  auto* reactor = new Reactor();
  auto state = reactor->state();
  auto from = context.parse_attachment(request.attachment_id());
  if (!from.ok()) {
    state->finish(to_grpc(from.error()));
    return reactor;
  }
  operations.broadcast_with_ack(
      *from, request, [state](pb::AckEvent event) { state->push(std::move(event)); },
      [state](const grpc::Status& status) {
        if (!status.ok()) state->finish(status);
      });
  return reactor;
}

}  // namespace siobridge::api
