// FlowGate: back-pressure from slow consumers to producers. Each consumer (an
// attached server's outbound queue) reports how many bytes wait for it and
// since when the write in flight to it waits. Producers (Attach streams reading
// calls, the change stream reading documents) pause while the gate is closed:
// a server that is merely slower than a burst slows the burst down instead of
// being cut off, and the daemon's memory stays bounded.
//
// The gate closes when
// - a consumer that still reads has more than the high-water mark waiting (it
//   holds the gate until it is back under the low-water mark), or
// - all consumers together have more than the total high-water mark waiting
//   (until they are back under the total low-water mark).
// A consumer whose write has waited longer than the stall grace does not hold
// the gate: one server that stops reading must not hold up the others. Its
// queue grows instead, within the total mark, until its owner closes it (stall
// timeout, queue limits); once it reads again it holds the gate as before.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/common/mutex.h"

namespace siobridge {

class FlowGate {
 public:
  using Clock = std::chrono::steady_clock;

  struct Marks {
    // The daemon's defaults (limits.backpressure_bytes and
    // limits.total_backpressure_bytes: api::ApiLimits).
    static constexpr std::size_t kDefaultBytes = 4u << 20;
    static constexpr std::size_t kDefaultTotalBytes = 16u << 20;
    // The marks for `bytes` per consumer and `total_bytes` for all: the gate
    // opens again under a quarter of one, half of the other. The defaults
    // below are for_limits(kDefaultBytes, kDefaultTotalBytes).
    static Marks for_limits(std::size_t bytes, std::size_t total_bytes) {
      Marks marks;
      marks.high_water = bytes;
      marks.low_water = bytes / 4;
      marks.total_high_water = total_bytes;
      marks.total_low_water = total_bytes / 2;
      return marks;
    }

    // Bytes waiting for one consumer that close the gate, and under which it
    // opens again.
    std::size_t high_water = kDefaultBytes;
    std::size_t low_water = kDefaultBytes / 4;
    // The same for all consumers together.
    std::size_t total_high_water = kDefaultTotalBytes;
    std::size_t total_low_water = kDefaultTotalBytes / 2;
    // A write waiting longer than this marks its consumer as not reading.
    std::chrono::milliseconds stall_grace{100};

    bool operator==(const Marks&) const = default;
  };

  explicit FlowGate(Marks marks) : marks_(marks) {}

  // `consumer` identifies the queue; `bytes` is what waits in it now;
  // `writing_since` is when the write in flight to it began (none: no write
  // in flight).
  void report(const void* consumer, std::size_t bytes,
              std::optional<Clock::time_point> writing_since = std::nullopt)
      SIOBRIDGE_EXCLUDES(mutex_);
  // The consumer is gone (its queue with it).
  void forget(const void* consumer) SIOBRIDGE_EXCLUDES(mutex_);
  // Weighs the consumers again at `now` (a write may have passed the stall
  // grace since it was reported) and resumes the waiting producers if the gate
  // opened. Owners call it periodically while the gate is closed.
  void poll(Clock::time_point now = Clock::now()) SIOBRIDGE_EXCLUDES(mutex_);

  bool is_open(Clock::time_point now = Clock::now()) const SIOBRIDGE_EXCLUDES(mutex_);
  // Blocks while the gate is closed, up to `limit`; true when it is open.
  bool wait_open(std::chrono::milliseconds limit) SIOBRIDGE_EXCLUDES(mutex_);
  // Runs `resume` once the gate is open: at once (on this thread) if it is,
  // else on the thread that opens it. Returns true when it ran at once.
  bool when_open(std::function<void()> resume) SIOBRIDGE_EXCLUDES(mutex_);

  // How often producers found it closed, for metrics.
  std::uint64_t closings() const SIOBRIDGE_EXCLUDES(mutex_);
  // Bytes waiting for all consumers together.
  std::size_t total_bytes() const SIOBRIDGE_EXCLUDES(mutex_);
  const Marks& marks() const { return marks_; }

 private:
  struct Consumer {
    std::size_t bytes = 0;
    std::optional<Clock::time_point> writing_since;
  };

  bool closed(Clock::time_point now) const SIOBRIDGE_REQUIRES(mutex_);
  // After any change: counts a closing, or collects the waiting producers and
  // wakes the blocked ones when the gate is open.
  void settle(bool was_closed, Clock::time_point now, std::vector<std::function<void()>>& resumed)
      SIOBRIDGE_REQUIRES(mutex_);

  const Marks marks_;
  mutable Mutex mutex_;
  CondVar opened_{mutex_};
  std::unordered_map<const void*, Consumer> consumers_ SIOBRIDGE_GUARDED_BY(mutex_);
  // Consumers past high_water, until they are back under low_water.
  std::unordered_set<const void*> over_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::size_t total_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  // Past total_high_water, until back under total_low_water.
  bool total_over_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::vector<std::function<void()>> waiting_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::uint64_t closings_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
};

}  // namespace siobridge
