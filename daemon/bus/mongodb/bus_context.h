// Internal to the MongoDB bus: what its threads share. The watcher sets the
// collection up and publishes its UUID; the writer inserts with that UUID (so
// a dropped collection is never re-created implicitly) and waits for a new one
// after the collection is gone. The writer, the watcher and the driver's
// server monitoring each report their state; the combined state (the worst of
// the three) reaches the core through `post`. What they find out about the
// cause of a trouble (diagnose()) becomes the state's detail while the bus is
// not ready: logged once at error level, shown by Status and health, and
// counted by cause (stats.cause). State changes are posted with the context's
// mutex held, so that the core hears them in order: `post` must only queue.
//
// Thread-safe.
#pragma once

#include <mongoc/mongoc.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "daemon/bus/bus.h"
#include "daemon/bus/mongodb/diagnosis.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/bus/mongodb/mongo_bus_stats.h"
#include "daemon/common/flow_gate.h"
#include "daemon/common/mutex.h"

namespace siobridge::bus::mongodb {

using Post = std::function<void(std::function<void()>)>;

// A document from the change stream with its place in the cluster's order
// (wire::format_position; empty when unknown, e.g. re-read from the collection).
struct Delivery {
  wire::Document document;
  std::string position;
};

class BusContext {
 public:
  BusContext(MongoBusConfig config, std::string uid, BusListener& listener, Post post,
             mongoc_client_pool_t* pool, FlowGate* flow_gate);
  ~BusContext();
  BusContext(const BusContext&) = delete;
  BusContext& operator=(const BusContext&) = delete;

  const MongoBusConfig config;
  const std::string uid;
  // Replaced only while the writer and the watcher are stopped
  // (MongoBus::reconnect); they take clients from it.
  mongoc_client_pool_t* pool;
  // Closed while the attached servers have too much waiting: the watcher
  // pauses reading the change stream (MongoDB keeps what it has not read).
  FlowGate* const flow_gate;  // may be null
  // Closed while the write queue is past config.write_backpressure_bytes and
  // MongoDB takes writes: the daemon pauses reading from its servers.
  FlowGate write_gate;
  MongoBusStats stats;

  // ---- the collection's incarnation ----
  // After set-up: the UUID (16 raw bytes; empty when the server gives none).
  void collection_ready(std::string uuid) SIOBRIDGE_EXCLUDES(mutex_);
  // The writer found the collection gone: wait for the watcher's set-up.
  void collection_gone(const std::string& uuid) SIOBRIDGE_EXCLUDES(mutex_);
  // The watcher saw the collection end (drop, rename): set-up follows.
  void collection_invalidated() SIOBRIDGE_EXCLUDES(mutex_);
  // Blocks until the collection is ready (returns its UUID) or the bus stops.
  std::optional<std::string> wait_collection() SIOBRIDGE_EXCLUDES(mutex_);

  // ---- state ----
  enum class Part { kWriter, kWatcher, kMonitor };
  void report(Part part, BusState state, const std::string& detail) SIOBRIDGE_EXCLUDES(mutex_);
  BusState state() const { return state_.load(); }

  // ---- causes ----
  // A cause found for a trouble. Kept until the bus is ready again or the URI
  // changes (one of `host`'s unreachable or TLS causes also until that host
  // answers a heartbeat); while the bus is not ready it is its detail, logged
  // at error level once. Another cause replaces it; the same cause again
  // (worded otherwise) does not.
  void diagnose(Diagnosis diagnosis, const std::string& host = "") SIOBRIDGE_EXCLUDES(mutex_);
  // A driver error of an operation: diagnosed when it names a cause.
  void diagnose_error(const bson_error_t& error) SIOBRIDGE_EXCLUDES(mutex_);
  // `host` answered a heartbeat: its unreachable or TLS cause is gone.
  void host_answered(const std::string& host) SIOBRIDGE_EXCLUDES(mutex_);
  UriFacts uri_facts() const SIOBRIDGE_EXCLUDES(mutex_);
  void set_uri_facts(UriFacts facts) SIOBRIDGE_EXCLUDES(mutex_);

  // ---- delivery to the core thread ----
  // Hands a document to the core thread. What it has not taken yet is
  // bounded: wait_for_core() holds the watcher while more than
  // kCoreBacklogHigh bytes wait, until they are under kCoreBacklogLow. The
  // FlowGate alone cannot bound them: it closes only once the core has routed
  // the documents, and a change stream batch (up to 16 MiB) is read faster.
  void deliver(Delivery delivery) SIOBRIDGE_EXCLUDES(mutex_);
  // True at once when the core keeps up; false when the bus stops meanwhile.
  bool wait_for_core() SIOBRIDGE_EXCLUDES(mutex_);
  std::size_t core_backlog() const { return core_backlog_.load(std::memory_order_relaxed); }
  static constexpr std::size_t kCoreBacklogHigh = 4u << 20;
  static constexpr std::size_t kCoreBacklogLow = 1u << 20;

  // ---- settlement (the writer) ----
  // Tells the core thread that the first `count` published documents are
  // settled (BusListener::on_settled).
  void settled(std::uint64_t count);
  // Runs `fn` on the core thread.
  void post(std::function<void()> fn) { post_(std::move(fn)); }

  // ---- waiting ----
  void request_stop() SIOBRIDGE_EXCLUDES(mutex_);
  bool stopping() const { return stopping_.load(); }
  // After the threads stopped for a reconnect: they may run again.
  void clear_stop() { stopping_ = false; }
  // Sleeps up to `duration`; returns false when woken by a stop request. A
  // server becoming reachable again cuts the sleep short (kick()).
  bool sleep_for(Millis duration) SIOBRIDGE_EXCLUDES(mutex_);
  void kick() SIOBRIDGE_EXCLUDES(mutex_);

 private:
  // The detail shown for `combined`, and whether a cause is to be logged now.
  std::string detail_for(BusState combined, const std::string& part_detail)
      SIOBRIDGE_REQUIRES(mutex_);
  void publish_cause(BusState combined) SIOBRIDGE_REQUIRES(mutex_);

  BusListener& listener_;
  Post post_;

  mutable Mutex mutex_;
  CondVar changed_{mutex_};
  bool ready_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::string uuid_ SIOBRIDGE_GUARDED_BY(mutex_);
  BusState parts_[3] SIOBRIDGE_GUARDED_BY(mutex_) = {BusState::kStarting, BusState::kStarting,
                                                     BusState::kReady};
  std::string details_[3] SIOBRIDGE_GUARDED_BY(mutex_);
  UriFacts facts_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::optional<Diagnosis> diagnosis_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::string diagnosis_host_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool diagnosis_logged_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::string posted_detail_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::uint64_t kicks_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::optional<std::chrono::steady_clock::time_point> unavailable_since_
      SIOBRIDGE_GUARDED_BY(mutex_);
  std::atomic<BusState> state_{BusState::kStarting};
  std::atomic<bool> stopping_{false};
  // Bytes delivered that the core thread has not taken yet.
  std::atomic<std::size_t> core_backlog_{0};
  CondVar core_caught_up_{mutex_};
};

// A line of the driver's log, for every bus of the process to diagnose
// (the driver logs a failed login before an operation fails with it).
// Thread-safe; called by the daemon's handler of libmongoc's log.
void observe_driver_log(const std::string& domain, const std::string& message);

// Backoff doubling from config.retry_min to config.retry_max.
class Backoff {
 public:
  explicit Backoff(const MongoBusConfig& config)
      : min_(config.retry_min), max_(config.retry_max), next_(min_) {}
  Millis next() {
    auto current = next_;
    next_ = std::min(max_, next_ * 2);
    return current;
  }
  void reset() { next_ = min_; }

 private:
  Millis min_, max_, next_;
};

// Transient failures (the server is unreachable, stepping down, shutting
// down, an election is running): retry later. Anything else is the request's
// own fault. `reply` (may be null) is checked for the RetryableWriteError label.
bool is_transient(const bson_error_t& error, const bson_t* reply = nullptr);
// The server refused the user (a failed login, a missing privilege), not the
// request: nothing is wrong with what was sent, and no retry helps until the
// credentials or the user's roles change.
bool refused_access(const bson_error_t& error);
bool is_transient_code(std::uint32_t server_code);

}  // namespace siobridge::bus::mongodb
