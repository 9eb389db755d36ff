// BridgeClient's numbered calls (docs/PROTOCOL.md section 20): sent on the
// Attach stream, answered by a Result, kept until a Confirmed covers them and
// sent again, with their numbers, after the client reattached to a restarted
// daemon and heard which of them the cluster holds.
#include <random>

#include "client/cpp/src/client_impl.h"

namespace siobridge::client {

namespace {

constexpr const char* kConfirm = "confirm";

// Internal: the daemon does not number calls, the call goes as a unary RPC.
const grpc::Status kUseUnary{grpc::StatusCode::UNIMPLEMENTED, "numbered calls not accepted"};

}  // namespace

std::string BridgeClient::Impl::new_instance() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device random;
  std::string instance(16, 'A');
  for (auto& c : instance) c = kAlphabet[random() % 64];
  return instance;
}

std::uint64_t BridgeClient::Impl::resent() const {
  MutexLock lock(mutex_);
  return resent_;
}

std::size_t BridgeClient::Impl::kept() const {
  MutexLock lock(mutex_);
  return kept_.size();
}

Outcome<pb::OperationReply> BridgeClient::Impl::numbered(
    pb::Call call, const std::function<Outcome<pb::OperationReply>()>& unary) {
  if (!options_.attach || !setup_.ok()) return unary();  // unary() reports a bad setup
  auto outcome = std::make_shared<std::optional<grpc::Status>>();
  const auto deadline = std::chrono::steady_clock::now() + options_.call_timeout;
  {
    MutexLock lock(mutex_);
    // Attached to a daemon that does not number calls. (Detached, the call
    // waits for the next Welcome, which tells.)
    if (stream_ && !confirms_) *outcome = kUseUnary;
  }
  if (*outcome) return unary();
  {
    MutexLock lock(mutex_);
    call.set_want_result(true);
    kept_.push_back(NumberedCall{next_seq_++, std::move(call), 0, false, outcome});
    // Without a numbering stream it waits in kept_: the next Welcome sends it.
    if (stream_ && confirms_ && !awaiting_resend_) send_numbered(kept_.back());
    while (!*outcome && !stopping_) {
      if (!changed_.wait_until(deadline)) break;
    }
    if (!*outcome) {
      // It stays kept: applied once at most, when a daemon takes it.
      return {{grpc::StatusCode::DEADLINE_EXCEEDED,
               "siobridged did not apply the call in time; it is kept and will be applied at "
               "most once when the daemon takes it"},
              {}};
    }
  }
  if (outcome->value().error_code() == kUseUnary.error_code() &&
      outcome->value().error_message() == kUseUnary.error_message()) {
    return unary();
  }
  return {outcome->value(), {}};
}

void BridgeClient::Impl::send_numbered(NumberedCall& call) {
  call.ref = next_ref_++;
  call.sent = true;
  pb::ServerMessage message;
  *message.mutable_call() = call.call;
  message.mutable_call()->set_ref(call.ref);
  message.mutable_call()->set_seq(call.seq);
  message.mutable_call()->set_attachment_id(attachment_id_);
  write(message);
}

void BridgeClient::Impl::number_hello(pb::Hello& hello) {
  hello.add_features(kConfirm);
  hello.set_instance(instance_);
  hello_resend_from_ = kept_.empty() ? 0 : kept_.front().seq;
  hello.set_resend_from(hello_resend_from_);
}

void BridgeClient::Impl::numbered_welcome(const pb::Welcome& welcome) {
  confirms_ = false;
  for (const auto& feature : welcome.features()) confirms_ |= feature == kConfirm;
  if (confirms_) {
    // With calls to send again: none goes before the daemon's first Confirmed.
    awaiting_resend_ = hello_resend_from_ > 0;
    if (!awaiting_resend_) {
      for (auto& call : kept_) send_numbered(call);  // made while the Hello was on its way
    }
    return;
  }
  // A daemon that does not number calls: they go as unary calls instead.
  for (auto& call : kept_) *call.outcome = kUseUnary;
  kept_.clear();
  changed_.signal_all();
}

void BridgeClient::Impl::numbered_answer(const pb::DaemonMessage& message) {
  MutexLock lock(mutex_);
  if (message.has_result()) {
    const auto& result = message.result();
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->ref != result.ref()) continue;
      *it->outcome = grpc::Status(static_cast<grpc::StatusCode>(result.status_code()),
                                  result.status_message());
      // Refused: not to be sent again.
      if (result.status_code() != 0) kept_.erase(it);
      changed_.signal_all();
      return;
    }
    return;
  }
  if (!message.has_confirmed()) return;
  const std::uint64_t seq = message.confirmed().seq();
  while (!kept_.empty() && kept_.front().seq <= seq) {
    // The cluster had it before the daemon restarted: applied, once.
    if (!*kept_.front().outcome) *kept_.front().outcome = grpc::Status::OK;
    kept_.pop_front();
  }
  changed_.signal_all();
  if (!awaiting_resend_) return;
  // The daemon said which calls the cluster has: the others again, in order.
  awaiting_resend_ = false;
  for (auto& call : kept_) {
    if (call.sent) ++resent_;
    send_numbered(call);
  }
}

void BridgeClient::Impl::numbered_stream_ended() {
  confirms_ = false;
  awaiting_resend_ = false;
  for (auto& call : kept_) call.ref = 0;
}

}  // namespace siobridge::client
