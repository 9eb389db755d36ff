// Outbox: the messages of one server-streaming RPC, written one at a time (the
// gRPC callback API allows a single outstanding write). Any thread may push;
// the reactor reports each write's completion. After close(), pushes are
// refused, so a producer may outlive the RPC.
//
// Thread-safe. StartWrite is always called outside the lock.
#pragma once

#include <deque>
#include <functional>

#include "daemon/common/mutex.h"

namespace siobridge::api {

template <typename Message>
class Outbox {
 public:
  using StartWrite = std::function<void(const Message*)>;
  explicit Outbox(StartWrite start_write) : start_write_(std::move(start_write)) {}

  // False when closed. `bytes` counts toward bytes().
  bool push(Message message, std::size_t bytes = 0) SIOBRIDGE_EXCLUDES(mutex_) {
    const Message* start = nullptr;
    {
      MutexLock lock(mutex_);
      if (closed_) return false;
      queue_.emplace_back(std::move(message), bytes);
      bytes_ += bytes;
      if (!writing_) {
        writing_ = true;
        start = &queue_.front().first;
      }
    }
    if (start) start_write_(start);
    return true;
  }

  // The reactor's OnWriteDone. Returns true when the outbox became empty.
  bool on_write_done(bool ok) SIOBRIDGE_EXCLUDES(mutex_) {
    const Message* start = nullptr;
    bool empty = false;
    {
      MutexLock lock(mutex_);
      if (!queue_.empty()) {
        bytes_ -= queue_.front().second;
        queue_.pop_front();
      }
      if (!ok) closed_ = true;
      if (!queue_.empty() && !closed_) {
        start = &queue_.front().first;
      } else {
        writing_ = false;
        empty = queue_.empty();
      }
    }
    if (start) start_write_(start);
    return empty;
  }

  // Refuses further pushes; drops what is not being written.
  void close() SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    closed_ = true;
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      bytes_ -= queue_.back().second;
      queue_.pop_back();
    }
  }

  std::size_t size() const SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return queue_.size();
  }
  std::size_t bytes() const SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return bytes_;
  }

 private:
  StartWrite start_write_;
  mutable Mutex mutex_;
  std::deque<std::pair<Message, std::size_t>> queue_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::size_t bytes_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  bool writing_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  bool closed_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
};

}  // namespace siobridge::api
