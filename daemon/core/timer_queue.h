// TimerQueue: the deadlines of the single-threaded core. The core never sleeps:
// its driver (a libuv timer in the daemon, a test advancing a FakeClock) asks
// next_deadline(), waits until then and calls run_due(now).
//
// Not thread-safe: used on the core thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "daemon/common/time.h"

namespace siobridge::core {

using TimerId = std::uint64_t;

class TimerQueue {
 public:
  // Runs `callback` once at `deadline` (or at the first run_due after it).
  TimerId schedule(Millis deadline, std::function<void()> callback);
  // Forgets a timer; a no-op for one that already ran or was cancelled.
  void cancel(TimerId id);

  std::optional<Millis> next_deadline() const;
  // Runs every timer due at `now`, earliest first (ties in scheduling order),
  // including timers that those callbacks schedule for no later than `now`.
  void run_due(Millis now);

  std::size_t size() const { return timers_.size(); }

 private:
  using Key = std::pair<Millis, TimerId>;
  std::map<Key, std::function<void()>> timers_;
  std::unordered_map<TimerId, Millis> deadlines_;
  TimerId next_id_ = 1;
};

}  // namespace siobridge::core
