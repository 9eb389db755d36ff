// FlowGate: back-pressure from slow consumers to producers. Each consumer (an
// attached server's outbound queue) reports how many bytes wait for it; once
// one is past the high-water mark the gate closes, and it opens again when
// every consumer is back under the low-water mark. Producers (Attach streams
// reading calls, the change stream reading documents) pause while it is
// closed: a server that is merely slower than a burst slows the burst down
// instead of being cut off, and the daemon's memory stays bounded. (A server
// that stops reading altogether is closed by its owner after a stall timeout.)
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_set>
#include <vector>

#include "daemon/common/mutex.h"

namespace siobridge {

class FlowGate {
 public:
  FlowGate(std::size_t high_water, std::size_t low_water)
      : high_water_(high_water), low_water_(low_water) {}

  // `consumer` identifies the queue; `bytes` is what waits in it now.
  void report(const void* consumer, std::size_t bytes) SIOBRIDGE_EXCLUDES(mutex_);
  // The consumer is gone (its queue with it).
  void forget(const void* consumer) SIOBRIDGE_EXCLUDES(mutex_);

  bool is_open() const SIOBRIDGE_EXCLUDES(mutex_);
  // Blocks while the gate is closed, up to `limit`; true when it is open.
  bool wait_open(std::chrono::milliseconds limit) SIOBRIDGE_EXCLUDES(mutex_);
  // Runs `resume` once the gate is open: at once (on this thread) if it is,
  // else on the thread that opens it. Returns true when it ran at once.
  bool when_open(std::function<void()> resume) SIOBRIDGE_EXCLUDES(mutex_);

  // How often producers found it closed, for metrics.
  std::uint64_t closings() const SIOBRIDGE_EXCLUDES(mutex_);

 private:
  // Runs after a consumer left the over-high set.
  void open_if_clear(std::vector<std::function<void()>>& resumed) SIOBRIDGE_REQUIRES(mutex_);

  const std::size_t high_water_, low_water_;
  mutable Mutex mutex_;
  CondVar opened_{mutex_};
  std::unordered_set<const void*> over_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::vector<std::function<void()>> waiting_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::uint64_t closings_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
};

}  // namespace siobridge
