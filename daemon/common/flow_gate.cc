#include "daemon/common/flow_gate.h"

namespace siobridge {

void FlowGate::report(const void* consumer, std::size_t bytes) {
  std::vector<std::function<void()>> resumed;
  {
    MutexLock lock(mutex_);
    if (bytes > high_water_) {
      if (over_.insert(consumer).second && over_.size() == 1) ++closings_;
      return;
    }
    if (bytes >= low_water_ || !over_.erase(consumer)) return;
    open_if_clear(resumed);
  }
  for (auto& resume : resumed) resume();
}

void FlowGate::forget(const void* consumer) {
  std::vector<std::function<void()>> resumed;
  {
    MutexLock lock(mutex_);
    if (!over_.erase(consumer)) return;
    open_if_clear(resumed);
  }
  for (auto& resume : resumed) resume();
}

void FlowGate::open_if_clear(std::vector<std::function<void()>>& resumed) {
  if (!over_.empty()) return;
  resumed.swap(waiting_);
  opened_.signal_all();
}

bool FlowGate::is_open() const {
  MutexLock lock(mutex_);
  return over_.empty();
}

bool FlowGate::wait_open(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  MutexLock lock(mutex_);
  while (!over_.empty()) {
    if (!opened_.wait_until(deadline)) break;
  }
  return over_.empty();
}

bool FlowGate::when_open(std::function<void()> resume) {
  {
    MutexLock lock(mutex_);
    if (!over_.empty()) {
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

}  // namespace siobridge
