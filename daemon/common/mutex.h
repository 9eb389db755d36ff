// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// the thread-safety annotations that let clang check which members a mutex
// guards (thread_annotations.h). libstdc++'s own types carry none.
//
// Thread-safe, as their std counterparts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "daemon/common/thread_annotations.h"

namespace siobridge {

class SIOBRIDGE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() SIOBRIDGE_ACQUIRE() { mutex_.lock(); }
  void unlock() SIOBRIDGE_RELEASE() { mutex_.unlock(); }
  // Tells the analysis the caller holds it (e.g. inside a callback made under it).
  void assert_held() SIOBRIDGE_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mutex_;
};

// Holds a Mutex for its scope.
class SIOBRIDGE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) SIOBRIDGE_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() SIOBRIDGE_RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

// A condition variable bound to one Mutex. Waits re-acquire it before they
// return; callers loop on their condition, where the analysis can see it.
// The waits are not annotated: the analysis cannot tell that a CondVar's Mutex
// is the member its caller locked (as LevelDB's port::CondVar); callers hold
// it by contract.
class CondVar {
 public:
  explicit CondVar(Mutex& mutex) : mutex_(mutex) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait() {
    std::unique_lock<std::mutex> lock(mutex_.mutex_, std::adopt_lock);
    condition_.wait(lock);
    lock.release();
  }
  // False when `deadline` passed.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_.mutex_, std::adopt_lock);
    const bool woken = condition_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void signal() { condition_.notify_one(); }
  void signal_all() { condition_.notify_all(); }

 private:
  Mutex& mutex_;
  std::condition_variable condition_;
};

}  // namespace siobridge
