// What the gRPC handlers share: the engine, the limits, attachment ids, the
// live attachments, draining state and an observer for metrics.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "daemon/common/result.h"
#include "daemon/core/local_server.h"
#include "daemon/runtime/engine.h"

namespace siobridge::api {

class Attachment;

struct ApiLimits {
  std::size_t max_message_bytes = 1 << 20;
  // An attached server that stops reading: volatile packets are dropped past
  // half of these, and the attachment is closed past them.
  std::size_t attachment_queue_messages = 100'000;
  std::size_t attachment_queue_bytes = 16u << 20;
};

// Metrics hooks; every method may be called from any thread.
class ApiObserver {
 public:
  virtual ~ApiObserver() = default;
  virtual void request_done(const char* operation, std::chrono::nanoseconds duration,
                            grpc::StatusCode code) = 0;
  virtual void volatile_dropped() = 0;
  virtual void attachment_closed(const char* reason) = 0;
};

class ApiContext {
 public:
  ApiContext(runtime::Engine& engine, ApiLimits limits, ApiObserver* observer);

  runtime::Engine& engine;
  const ApiLimits limits;
  ApiObserver* const observer;  // may be null
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Attachment ids carry this daemon instance's token: an id from before a
  // restart is refused instead of naming someone else.
  std::string attachment_id(core::AttachmentId id) const;
  // "" is an external emitter (kNoAttachment).
  Result<core::AttachmentId> parse_attachment(const std::string& id) const;

  void add(const std::shared_ptr<Attachment>& attachment);
  void remove(core::AttachmentId id);
  std::vector<std::shared_ptr<Attachment>> attachments() const;

  // Draining: new operations are refused, running ones are counted.
  bool begin_operation();
  void end_operation();
  void start_draining() { draining_ = true; }
  bool draining() const { return draining_; }
  // Waits until no operation runs, up to `deadline`; true when none is left.
  bool wait_idle(std::chrono::steady_clock::time_point deadline);

 private:
  const std::string instance_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::map<core::AttachmentId, std::shared_ptr<Attachment>> attachments_;
  std::atomic<bool> draining_{false};
  int in_flight_ = 0;
};

}  // namespace siobridge::api
