// Internal to the MongoDB bus: what its writer and watcher threads share. The
// watcher sets the collection up and publishes its UUID; the writer inserts
// with that UUID (so a dropped collection is never re-created implicitly) and
// waits for a new one after the collection is gone. Both report their state;
// the combined state reaches the core through `post`.
//
// Thread-safe.
#pragma once

#include <mongoc/mongoc.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/bus/bus.h"
#include "daemon/bus/mongodb/mongo_bus_config.h"
#include "daemon/bus/mongodb/mongo_bus_stats.h"

namespace siobridge::bus::mongodb {

using Post = std::function<void(std::function<void()>)>;

class BusContext {
 public:
  BusContext(MongoBusConfig config, std::string uid, BusListener& listener, Post post,
             mongoc_client_pool_t* pool);

  const MongoBusConfig config;
  const std::string uid;
  mongoc_client_pool_t* const pool;
  MongoBusStats stats;

  // ---- the collection's incarnation ----
  // After set-up: the UUID (16 raw bytes; empty when the server gives none).
  void collection_ready(std::string uuid);
  // The writer found the collection gone: wait for the watcher's set-up.
  void collection_gone(const std::string& uuid);
  // The watcher saw the collection end (drop, rename): set-up follows.
  void collection_invalidated();
  bool needs_setup() const;
  // Blocks until the collection is ready (returns its UUID) or the bus stops.
  std::optional<std::string> wait_collection();

  // ---- state ----
  enum class Part { kWriter, kWatcher };
  void report(Part part, BusState state, const std::string& detail);
  BusState state() const { return state_.load(); }

  // ---- delivery to the core thread ----
  void deliver(wire::Document document);

  // ---- stopping ----
  void request_stop();
  bool stopping() const { return stopping_.load(); }
  // Sleeps up to `duration`; returns false when woken by a stop request.
  bool sleep_for(core::Millis duration);
  void wake_all();

 private:
  BusListener& listener_;
  Post post_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool ready_ = false;
  std::string uuid_;
  BusState writer_state_ = BusState::kStarting;
  BusState watcher_state_ = BusState::kStarting;
  std::string writer_detail_, watcher_detail_;
  std::atomic<BusState> state_{BusState::kStarting};
  std::atomic<bool> stopping_{false};
};

// Backoff doubling from config.retry_min to config.retry_max.
class Backoff {
 public:
  explicit Backoff(const MongoBusConfig& config)
      : min_(config.retry_min), max_(config.retry_max), next_(min_) {}
  core::Millis next() {
    auto current = next_;
    next_ = std::min(max_, next_ * 2);
    return current;
  }
  void reset() { next_ = min_; }

 private:
  core::Millis min_, max_, next_;
};

// Transient failures (the server is unreachable, stepping down, shutting
// down): retry later. Anything else is the request's own fault.
bool is_transient(const bson_error_t& error);

}  // namespace siobridge::bus::mongodb
