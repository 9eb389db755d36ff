#include "daemon/common/flow_gate.h"

#include <algorithm>

namespace siobridge {

bool FlowGate::closed(Clock::time_point now) const {
  if (total_over_) return true;
  for (const void* consumer : over_) {
    const auto& since = consumers_.at(consumer).writing_since;
    if (!since || now - *since <= marks_.stall_grace) return true;  // it reads: wait for it
  }
  return false;
}

void FlowGate::settle(bool was_closed, Clock::time_point now,
                      std::vector<std::function<void()>>& resumed) {
  if (closed(now)) {
    if (!was_closed) ++closings_;
    return;
  }
  resumed.swap(waiting_);
  opened_.signal_all();
}

void FlowGate::report(const void* consumer, std::size_t bytes,
                      std::optional<Clock::time_point> writing_since) {
  const auto now = Clock::now();
  std::vector<std::function<void()>> resumed;
  {
    MutexLock lock(mutex_);
    const bool was_closed = closed(now);
    auto& entry = consumers_[consumer];
    total_ = total_ - entry.bytes + bytes;
    entry.bytes = bytes;
    entry.writing_since = writing_since;
    if (bytes > marks_.high_water) {
      over_.insert(consumer);
    } else if (bytes < marks_.low_water) {
      over_.erase(consumer);
    }
    if (total_ > marks_.total_high_water) {
      total_over_ = true;
    } else if (total_ < marks_.total_low_water) {
      total_over_ = false;
    }
    if (bytes == 0 && !writing_since) consumers_.erase(consumer);
    settle(was_closed, now, resumed);
  }
  for (auto& resume : resumed) resume();
}

void FlowGate::forget(const void* consumer) {
  const auto now = Clock::now();
  std::vector<std::function<void()>> resumed;
  {
    MutexLock lock(mutex_);
    auto it = consumers_.find(consumer);
    if (it == consumers_.end()) return;
    const bool was_closed = closed(now);
    total_ -= it->second.bytes;
    consumers_.erase(it);
    over_.erase(consumer);
    if (total_ < marks_.total_low_water) total_over_ = false;
    settle(was_closed, now, resumed);
  }
  for (auto& resume : resumed) resume();
}

void FlowGate::poll(Clock::time_point now) {
  std::vector<std::function<void()>> resumed;
  {
    MutexLock lock(mutex_);
    if (waiting_.empty() && over_.empty()) return;
    settle(/*was_closed=*/true, now, resumed);
  }
  for (auto& resume : resumed) resume();
}

bool FlowGate::is_open(Clock::time_point now) const {
  MutexLock lock(mutex_);
  return !closed(now);
}

bool FlowGate::wait_open(std::chrono::milliseconds limit) {
  // In short slices: a consumer passes the stall grace without any report.
  constexpr std::chrono::milliseconds kSlice{20};
  const auto deadline = Clock::now() + limit;
  MutexLock lock(mutex_);
  for (;;) {
    const auto now = Clock::now();
    if (!closed(now)) return true;
    if (now >= deadline) return false;
    opened_.wait_until(std::min(deadline, now + kSlice));
  }
}

bool FlowGate::when_open(std::function<void()> resume) {
  {
    MutexLock lock(mutex_);
    if (closed(Clock::now())) {
      waiting_.push_back(std::move(resume));
      return false;
    }
  }
  resume();
  return true;
}

std::uint64_t FlowGate::closings() const {
  MutexLock lock(mutex_);
  return closings_;
}

std::size_t FlowGate::total_bytes() const {
  MutexLock lock(mutex_);
  return total_;
}

}  // namespace siobridge
