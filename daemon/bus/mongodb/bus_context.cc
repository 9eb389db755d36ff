#include "daemon/bus/mongodb/bus_context.h"

#include <spdlog/spdlog.h>

#include <limits>
#include <set>

namespace siobridge::bus::mongodb {
namespace {

// The buses of the process, for the driver's log (one handler per process).
// Lock order: this, then a BusContext's own mutex.
Mutex contexts_mutex;
std::set<BusContext*> contexts SIOBRIDGE_GUARDED_BY(contexts_mutex);

// failed > unavailable > starting > ready
int severity(BusState state) {
  switch (state) {
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
}

// What a delivery holds in memory, near enough.
std::size_t weight(const wire::Document& document) {
  constexpr std::size_t kOverhead = 160;  // the header's strings, the queued closure
  return document.data.size() + (document.extension ? document.extension->size() : 0) +
         document.header.ns.size() + kOverhead;
}

// One consumer, the writer's queue: the gate closes past the mark (never when
// it is 0) and opens at half of it.
FlowGate::Marks write_gate_marks(std::size_t backpressure_bytes) {
  FlowGate::Marks marks;
  marks.high_water =
      backpressure_bytes ? backpressure_bytes : std::numeric_limits<std::size_t>::max();
  marks.low_water = backpressure_bytes / 2;
  marks.total_high_water = std::numeric_limits<std::size_t>::max();
  marks.total_low_water = std::numeric_limits<std::size_t>::max();
  marks.stall_grace = std::chrono::milliseconds::max();  // the writer never counts as stalled
  return marks;
}

}  // namespace

BusContext::BusContext(MongoBusConfig config_in, std::string uid_in, BusListener& listener,
                       Post post, mongoc_client_pool_t* pool_in, FlowGate* flow_gate_in)
    : config(std::move(config_in)),
      uid(std::move(uid_in)),
      pool(pool_in),
      flow_gate(flow_gate_in),
      write_gate(write_gate_marks(config.write_backpressure_bytes)),
      listener_(listener),
      post_(std::move(post)) {
  MutexLock lock(contexts_mutex);
  contexts.insert(this);
}

BusContext::~BusContext() {
  MutexLock lock(contexts_mutex);
  contexts.erase(this);
}

void observe_driver_log(const std::string& domain, const std::string& message) {
  MutexLock lock(contexts_mutex);
  for (BusContext* context : contexts) {
    if (auto found = diagnose_driver_log(domain, message, context->uri_facts())) {
      context->diagnose(std::move(*found));
    }
  }
}

void BusContext::collection_ready(std::string uuid) {
  {
    MutexLock lock(mutex_);
    ready_ = true;
    uuid_ = std::move(uuid);
  }
  changed_.signal_all();
}

void BusContext::collection_gone(const std::string& uuid) {
  MutexLock lock(mutex_);
  if (uuid == uuid_) ready_ = false;  // a newer incarnation may already be ready
}

void BusContext::collection_invalidated() {
  MutexLock lock(mutex_);
  ready_ = false;
}

std::optional<std::string> BusContext::wait_collection() {
  MutexLock lock(mutex_);
  while (!ready_ && !stopping_.load()) changed_.wait();
  if (!ready_) return std::nullopt;
  return uuid_;
}

void BusContext::report(Part part, BusState state, const std::string& detail) {
  BusState combined = BusState::kReady;
  std::string combined_detail;
  std::optional<std::chrono::milliseconds> outage;
  BusState previous;
  std::string shown, cause_line;
  bool post = false, has_cause = false;
  {
    MutexLock lock(mutex_);
    const auto index = static_cast<std::size_t>(part);
    parts_[index] = state;
    details_[index] = detail;
    for (std::size_t i = 0; i < 3; ++i) {
      if (severity(parts_[i]) > severity(combined)) {
        combined = parts_[i];
        combined_detail = details_[i];
      }
    }
    // The writer idles in kStarting until its first batch: that is not news.
    if (combined == BusState::kStarting && parts_[1] == BusState::kReady &&
        parts_[2] == BusState::kReady) {
      combined = BusState::kReady;
      combined_detail.clear();
    }
    const auto now = std::chrono::steady_clock::now();
    if (combined == BusState::kUnavailable && !unavailable_since_) unavailable_since_ = now;
    if (combined == BusState::kReady && unavailable_since_) {
      outage = std::chrono::duration_cast<std::chrono::milliseconds>(now - *unavailable_since_);
      unavailable_since_.reset();
    }
    previous = state_.exchange(combined);
    // Once ready again, what went wrong before is over. (A cause found while
    // the bus was ready, e.g. a member that stopped answering, is kept: it is
    // the likely one if the bus stops being ready next.)
    if (combined == BusState::kReady && previous != BusState::kReady) {
      diagnosis_.reset();
      diagnosis_host_.clear();
    }
    publish_cause(combined);
    shown = detail_for(combined, combined_detail);
    has_cause = combined != BusState::kReady && diagnosis_.has_value();
    if (combined != BusState::kReady && diagnosis_ && !diagnosis_logged_) {
      cause_line = diagnosis_->message;
      diagnosis_logged_ = true;
    }
    post = previous != combined || combined == BusState::kFailed ||
           (combined != BusState::kReady && shown != posted_detail_);
    if (post) {
      posted_detail_ = shown;
      // Under the mutex: the core hears the states in the order they were
      // combined, also against diagnose()'s.
      post_([this, combined, shown] { listener_.on_bus_state(combined, shown); });
    }
  }
  if (outage) stats.record_outage(static_cast<std::uint64_t>(outage->count()));
  if (!cause_line.empty()) spdlog::error("MongoDB: {}", cause_line);
  if (!post) return;
  if (previous != combined || combined == BusState::kFailed) {
    if (combined == BusState::kReady) {
      if (outage) {
        spdlog::info("MongoDB bus ready again after {} ms", outage->count());
      } else {
        spdlog::info("MongoDB bus ready");
      }
    } else if (combined != BusState::kStarting && !has_cause) {
      spdlog::warn("MongoDB bus {}: {}", to_string(combined), shown);
    }
  }
}

std::string BusContext::detail_for(BusState combined, const std::string& part_detail) {
  if (combined != BusState::kReady && diagnosis_) return diagnosis_->message;
  return part_detail;
}

void BusContext::publish_cause(BusState combined) {
  const Cause cause = combined != BusState::kReady && diagnosis_ ? diagnosis_->cause : Cause::kNone;
  stats.cause.store(static_cast<std::uint8_t>(cause), std::memory_order_relaxed);
}

void BusContext::diagnose(Diagnosis diagnosis, const std::string& host) {
  std::string line;
  {
    MutexLock lock(mutex_);
    // One line per cause: the same cause seen again (each heartbeat, each
    // retry of an operation, worded by another part of the driver) is not news.
    if (diagnosis_ && diagnosis_->cause == diagnosis.cause) return;
    diagnosis_ = std::move(diagnosis);
    diagnosis_host_ = host;
    diagnosis_logged_ = false;
    const BusState combined = state_.load();
    publish_cause(combined);
    if (combined == BusState::kReady) return;  // shown if the bus stops being ready
    line = diagnosis_->message;
    diagnosis_logged_ = true;
    const std::string shown = detail_for(combined, "");
    posted_detail_ = shown;
    post_([this, combined, shown] { listener_.on_bus_state(combined, shown); });
  }
  spdlog::error("MongoDB: {}", line);
}

void BusContext::diagnose_error(const bson_error_t& error) {
  if (auto found = mongodb::diagnose_error(error.domain, error.code, error.message, uri_facts())) {
    diagnose(std::move(*found));
  }
}

void BusContext::host_answered(const std::string& host) {
  MutexLock lock(mutex_);
  if (!diagnosis_ || diagnosis_host_ != host) return;
  if (diagnosis_->cause != Cause::kUnreachable && diagnosis_->cause != Cause::kTls) return;
  diagnosis_.reset();
  diagnosis_host_.clear();
  publish_cause(state_.load());
}

UriFacts BusContext::uri_facts() const {
  MutexLock lock(mutex_);
  return facts_;
}

void BusContext::set_uri_facts(UriFacts facts) {
  MutexLock lock(mutex_);
  facts_ = std::move(facts);
  // A new URI or password: what went wrong with the old one is no news.
  diagnosis_.reset();
  diagnosis_host_.clear();
  publish_cause(state_.load());
}

void BusContext::deliver(Delivery delivery) {
  const std::size_t bytes = weight(delivery.document);
  const std::size_t backlog = core_backlog_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (backlog > stats.core_backlog_peak.load(std::memory_order_relaxed)) {
    stats.core_backlog_peak.store(backlog, std::memory_order_relaxed);  // one writer: the watcher
  }
  post_([this, bytes, delivery = std::move(delivery)]() mutable {
    listener_.on_document(std::move(delivery.document), delivery.position);
    const std::size_t before = core_backlog_.fetch_sub(bytes, std::memory_order_relaxed);
    if (before > kCoreBacklogLow && before - bytes <= kCoreBacklogLow) {
      // Under the mutex, so that a watcher between its check and its wait
      // cannot miss this.
      { MutexLock lock(mutex_); }
      core_caught_up_.signal_all();
    }
  });
}

void BusContext::settled(std::uint64_t count) {
  post_([this, count] { listener_.on_settled(count); });
}

bool BusContext::wait_for_core() {
  if (core_backlog_.load(std::memory_order_relaxed) <= kCoreBacklogHigh) return !stopping();
  ++stats.core_waits;
  MutexLock lock(mutex_);
  while (!stopping_ && core_backlog_.load(std::memory_order_relaxed) > kCoreBacklogLow) {
    core_caught_up_.wait();
  }
  return !stopping_;
}

void BusContext::request_stop() {
  stopping_ = true;
  { MutexLock lock(mutex_); }
  changed_.signal_all();
  core_caught_up_.signal_all();
}

bool BusContext::sleep_for(Millis duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  MutexLock lock(mutex_);
  const auto kicks = kicks_;
  while (!stopping_.load() && kicks == kicks_) {
    if (!changed_.wait_until(deadline)) break;
  }
  return !stopping_.load();
}

void BusContext::kick() {
  {
    MutexLock lock(mutex_);
    ++kicks_;
  }
  changed_.signal_all();
}

bool is_transient_code(std::uint32_t code) {
  switch (code) {
    case 6:      // HostUnreachable
    case 7:      // HostNotFound
    case 64:     // WriteConcernFailed
    case 89:     // NetworkTimeout
    case 91:     // ShutdownInProgress
    case 189:    // PrimarySteppedDown
    case 262:    // ExceededTimeLimit
    case 9001:   // SocketException
    case 10058:  // LegacyNotPrimary
    case 10107:  // NotWritablePrimary
    case 11600:  // InterruptedAtShutdown
    case 11602:  // InterruptedDueToReplStateChange
    case 13435:  // NotPrimaryNoSecondaryOk
    case 13436:  // NotPrimaryOrSecondary
      return true;
    default:
      return false;
  }
}

bool is_transient(const bson_error_t& error, const bson_t* reply) {
  if (reply && mongoc_error_has_label(reply, "RetryableWriteError")) return true;
  switch (error.domain) {
    case MONGOC_ERROR_STREAM:
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_PROTOCOL:  // a reply cut off by a dying server
      return true;
    case MONGOC_ERROR_CLIENT:
      return error.code == MONGOC_ERROR_CLIENT_NOT_READY ||
             error.code == MONGOC_ERROR_CLIENT_NO_ACCEPTABLE_PEER;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_QUERY:
    case MONGOC_ERROR_COMMAND:
    case MONGOC_ERROR_WRITE_CONCERN:
      return is_transient_code(error.code);
    default:
      return false;
  }
}

bool refused_access(const bson_error_t& error) {
  constexpr std::uint32_t kUnauthorized = 13;
  return (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
         ((error.domain == MONGOC_ERROR_SERVER || error.domain == MONGOC_ERROR_QUERY) &&
          error.code == kUnauthorized);
}

}  // namespace siobridge::bus::mongodb
