// What the gRPC handlers share: the engine, the limits, attachment ids, the
// live attachments, draining state and an observer for metrics.
//
// Thread-safe.
#pragma once

#include "daemon/common/mutex.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "daemon/api/call_ledger.h"
#include "daemon/common/flow_gate.h"
#include "daemon/common/result.h"
#include "daemon/core/local_server.h"
#include "daemon/runtime/engine.h"

namespace siobridge::api {

class Attachment;

struct ApiLimits {
  std::size_t max_message_bytes = 1 << 20;
  // What waits for one attached server. Past backpressure_bytes the daemon's
  // producers pause (runtime FlowGate) and volatile packets for it are dropped;
  // a server that reads nothing for stall_timeout while work waits is closed
  // with RESOURCE_EXHAUSTED, and so is one past the hard limits below.
  std::size_t backpressure_bytes = FlowGate::Marks::kDefaultBytes;
  // What waits for all of them together past which the producers pause, even
  // when the servers it waits for stopped reading (those do not hold the
  // others up: FlowGate's stall grace).
  std::size_t total_backpressure_bytes = FlowGate::Marks::kDefaultTotalBytes;
  Millis stall_timeout{10'000};
  std::size_t attachment_queue_messages = 1'000'000;
  std::size_t attachment_queue_bytes = 64u << 20;
};

// Metrics hooks; every method may be called from any thread.
class ApiObserver {
 public:
  virtual ~ApiObserver() = default;
  virtual void request_done(const char* operation, std::chrono::nanoseconds duration,
                            grpc::StatusCode code) = 0;
  virtual void volatile_dropped() = 0;
  // A numbered call sent again and not applied a second time.
  virtual void repeated_call() = 0;
  virtual void attachment_closed(const char* reason) = 0;
};

class ApiContext {
 public:
  ApiContext(runtime::Engine& engine, ApiLimits limits, ApiObserver* observer);
  ~ApiContext();

  runtime::Engine& engine;
  const ApiLimits limits;
  ApiObserver* const observer;  // may be null
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Attachment ids carry this daemon instance's token: an id from before a
  // restart is refused instead of naming someone else.
  std::string attachment_id(core::AttachmentId id) const;
  // "" is an external emitter (kNoAttachment).
  Result<core::AttachmentId> parse_attachment(const std::string& id) const;

  void add(const std::shared_ptr<Attachment>& attachment) SIOBRIDGE_EXCLUDES(mutex_);
  void remove(core::AttachmentId id) SIOBRIDGE_EXCLUDES(mutex_);
  std::vector<std::shared_ptr<Attachment>> attachments() const SIOBRIDGE_EXCLUDES(mutex_);

  // Draining: new operations are refused, running ones are counted.
  bool begin_operation() SIOBRIDGE_EXCLUDES(mutex_);
  void end_operation() SIOBRIDGE_EXCLUDES(mutex_);
  void start_draining() { draining_ = true; }
  bool draining() const { return draining_; }
  // Waits until no operation runs, up to `deadline`; true when none is left.
  bool wait_idle(std::chrono::steady_clock::time_point deadline) SIOBRIDGE_EXCLUDES(mutex_);

  // The numbered calls this daemon applied, per server instance (core thread
  // only).
  CallRegistry calls;

 private:
  // On the core thread, every second (more often while work waits for the
  // servers): resumes producers the flow gate no longer holds, closes the
  // attachments that stopped reading.
  void schedule_stall_check();

  const std::string instance_;
  mutable Mutex mutex_;
  CondVar idle_{mutex_};
  std::map<core::AttachmentId, std::shared_ptr<Attachment>> attachments_
      SIOBRIDGE_GUARDED_BY(mutex_);
  std::atomic<bool> draining_{false};
  int in_flight_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::shared_ptr<std::atomic<bool>> stall_check_cancelled_ =
      std::make_shared<std::atomic<bool>>(false);
};

}  // namespace siobridge::api
