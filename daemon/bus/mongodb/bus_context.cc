#include "daemon/bus/mongodb/bus_context.h"

#include <spdlog/spdlog.h>

namespace siobridge::bus::mongodb {

BusContext::BusContext(MongoBusConfig config_in, std::string uid_in, BusListener& listener,
                       Post post, mongoc_client_pool_t* pool_in)
    : config(std::move(config_in)),
      uid(std::move(uid_in)),
      pool(pool_in),
      listener_(listener),
      post_(std::move(post)) {}

void BusContext::collection_ready(std::string uuid) {
  {
    std::lock_guard lock(mutex_);
    ready_ = true;
    uuid_ = std::move(uuid);
  }
  changed_.notify_all();
}

void BusContext::collection_gone(const std::string& uuid) {
  std::lock_guard lock(mutex_);
  if (uuid == uuid_) ready_ = false;  // a newer incarnation may already be ready
}

void BusContext::collection_invalidated() {
  std::lock_guard lock(mutex_);
  ready_ = false;
}

bool BusContext::needs_setup() const {
  std::lock_guard lock(mutex_);
  return !ready_;
}

std::optional<std::string> BusContext::wait_collection() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return ready_ || stopping_.load(); });
  if (!ready_) return std::nullopt;
  return uuid_;
}

void BusContext::report(Part part, BusState state, const std::string& detail) {
  BusState combined;
  std::string combined_detail;
  {
    std::lock_guard lock(mutex_);
    (part == Part::kWriter ? writer_state_ : watcher_state_) = state;
    (part == Part::kWriter ? writer_detail_ : watcher_detail_) = detail;
    // The worse of the two parts: failed > unavailable > starting > ready.
    auto rank = [](BusState s) {
      switch (s) {
        case BusState::kReady:
          return 0;
        case BusState::kStarting:
          return 1;
        case BusState::kUnavailable:
          return 2;
        case BusState::kFailed:
          return 3;
      }
      return 3;
    };
    const bool writer_worse = rank(writer_state_) >= rank(watcher_state_);
    combined = writer_worse ? writer_state_ : watcher_state_;
    combined_detail = writer_worse ? writer_detail_ : watcher_detail_;
    // The writer idles in kStarting until its first batch: that is not news.
    if (combined == BusState::kStarting && watcher_state_ == BusState::kReady) {
      combined = BusState::kReady;
      combined_detail.clear();
    }
  }
  if (state_.exchange(combined) == combined && combined != BusState::kFailed) return;
  if (combined == BusState::kReady) {
    spdlog::info("MongoDB bus ready");
  } else if (combined != BusState::kStarting) {
    spdlog::warn("MongoDB bus {}: {}", to_string(combined), combined_detail);
  }
  post_([this, combined, combined_detail] { listener_.on_bus_state(combined, combined_detail); });
}

void BusContext::deliver(wire::Document document) {
  post_([this, doc = std::move(document)]() mutable { listener_.on_document(std::move(doc)); });
}

void BusContext::request_stop() {
  stopping_ = true;
  wake_all();
}

bool BusContext::sleep_for(core::Millis duration) {
  std::unique_lock lock(mutex_);
  return !changed_.wait_for(lock, duration, [&] { return stopping_.load(); });
}

void BusContext::wake_all() {
  { std::lock_guard lock(mutex_); }
  changed_.notify_all();
}

bool is_transient(const bson_error_t& error) {
  switch (error.domain) {
    case MONGOC_ERROR_STREAM:
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_CLIENT:
    case MONGOC_ERROR_PROTOCOL:
      return true;
    default:
      break;
  }
  switch (error.code) {
    case 6:      // HostUnreachable
    case 7:      // HostNotFound
    case 89:     // NetworkTimeout
    case 91:     // ShutdownInProgress
    case 189:    // PrimarySteppedDown
    case 262:    // ExceededTimeLimit
    case 9001:   // SocketException
    case 10107:  // NotWritablePrimary
    case 11600:  // InterruptedAtShutdown
    case 11602:  // InterruptedDueToReplStateChange
    case 13435:  // NotPrimaryNoSecondaryOk
    case 13436:  // NotPrimaryOrSecondary
    case 64:     // WriteConcernFailed
    case 10058:  // LegacyNotPrimary
      return true;
    default:
      return false;
  }
}

}  // namespace siobridge::bus::mongodb
