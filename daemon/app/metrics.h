// Prometheus metrics of siobridged (prometheus-cpp): request latencies and
// API events as they happen, and a snapshot of the core's and the MongoDB
// bus's counters taken on the core thread at every scrape.
//
// Thread-safe. Destroy before stopping the engine.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "daemon/api/api_context.h"
#include "daemon/common/result.h"
#include "daemon/runtime/engine.h"

namespace siobridge::app {

class Metrics final : public api::ApiObserver {
 public:
  // Serves /metrics on `listen` (host:port); kInvalidArgument if it cannot bind.
  static Result<std::unique_ptr<Metrics>> start(const std::string& listen, runtime::Engine& engine);

  void request_done(const char* operation, std::chrono::nanoseconds duration,
                    grpc::StatusCode code) override;
  void volatile_dropped() override;
  void repeated_call() override;
  void attachment_closed(const char* reason) override;

 private:
  Metrics() = default;

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> engine_collector_;
  prometheus::Family<prometheus::Histogram>* request_duration_ = nullptr;
  prometheus::Family<prometheus::Counter>* volatile_dropped_ = nullptr;
  prometheus::Family<prometheus::Counter>* repeated_calls_ = nullptr;
  prometheus::Family<prometheus::Counter>* attachments_closed_ = nullptr;
};

}  // namespace siobridge::app
