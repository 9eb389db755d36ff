// Outbox: the messages of one server-streaming RPC, written one at a time (the
// gRPC callback API allows a single outstanding write). Any thread may push;
// the reactor reports each write's completion. After close(), pushes are
// refused, so a producer may outlive the RPC.
//
// With a Merge function, a mergeable push may join the newest queued message
// instead of queueing its own (never the one being written): size() and
// bytes() count what was pushed, merged or not.
//
// Thread-safe. StartWrite is always called outside the lock; Merge inside it.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>

#include "daemon/common/mutex.h"

namespace siobridge::api {

template <typename Message>
class Outbox {
 public:
  using StartWrite = std::function<void(const Message*)>;
  // Moves `next` into `last` (holding `last_items` pushes of `last_bytes`) and
  // returns true, or leaves both alone and returns false.
  using Merge = std::function<bool(Message& last, std::size_t last_items, std::size_t last_bytes,
                                   Message& next, std::size_t next_bytes)>;

  explicit Outbox(StartWrite start_write, Merge merge = nullptr)
      : start_write_(std::move(start_write)), merge_(std::move(merge)) {}

  // False when closed. `bytes` counts toward bytes(). A `mergeable` message may
  // join the newest queued one when that was mergeable too. With `start_write`
  // false an idle outbox does not start writing: the message waits for kick()
  // (or for the next push that starts a write), and more may join it.
  bool push(Message message, std::size_t bytes = 0, bool mergeable = false, bool start_write = true)
      SIOBRIDGE_EXCLUDES(mutex_) {
    const Message* start = nullptr;
    {
      MutexLock lock(mutex_);
      if (closed_) return false;
      items_ += 1;
      bytes_ += bytes;
      // queue_.front() is being written while writing_; it must not change.
      const std::size_t settled = writing_ ? 1 : 0;
      if (mergeable && merge_ && queue_.size() > settled && queue_.back().mergeable) {
        auto& last = queue_.back();
        if (merge_(last.message, last.items, last.bytes, message, bytes)) {
          last.items += 1;
          last.bytes += bytes;
          return true;
        }
      }
      queue_.push_back(Entry{std::move(message), bytes, 1, mergeable});
      if (!writing_ && start_write) {
        begin_write();
        start = &queue_.front().message;
      }
    }
    if (start) start_write_(start);
    return true;
  }

  // Starts writing what waits, unless a write is under way already.
  void kick() SIOBRIDGE_EXCLUDES(mutex_) {
    const Message* start = nullptr;
    {
      MutexLock lock(mutex_);
      if (closed_ || writing_ || queue_.empty()) return;
      begin_write();
      start = &queue_.front().message;
    }
    start_write_(start);
  }

  // The reactor's OnWriteDone. Returns true when the outbox became empty.
  bool on_write_done(bool ok) SIOBRIDGE_EXCLUDES(mutex_) {
    const Message* start = nullptr;
    bool empty = false;
    {
      MutexLock lock(mutex_);
      if (!queue_.empty()) drop(queue_.begin());
      if (!ok) closed_ = true;
      if (!queue_.empty() && !closed_) {
        begin_write();
        start = &queue_.front().message;
      } else {
        writing_ = false;
        write_started_.reset();
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
    while (queue_.size() > (writing_ ? 1u : 0u)) drop(std::prev(queue_.end()));
  }

  // Pushes waiting or being written (a merged message counts each of its own).
  std::size_t size() const SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return items_;
  }
  std::size_t bytes() const SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return bytes_;
  }
  // When the write in flight began; none while nothing is being written. A
  // reader that stops reading leaves its last write in flight: this is its
  // stall clock, which never runs while messages merely wait to be written.
  std::optional<std::chrono::steady_clock::time_point> writing_since() const
      SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return write_started_;
  }
  // Messages waiting or being written, after merging.
  std::size_t messages() const SIOBRIDGE_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return queue_.size();
  }

 private:
  struct Entry {
    Message message;
    std::size_t bytes;
    std::size_t items;
    bool mergeable;
  };

  void begin_write() SIOBRIDGE_REQUIRES(mutex_) {
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
  }

  void drop(typename std::deque<Entry>::iterator entry) SIOBRIDGE_REQUIRES(mutex_) {
    bytes_ -= entry->bytes;
    items_ -= entry->items;
    queue_.erase(entry);
  }

  StartWrite start_write_;
  Merge merge_;
  mutable Mutex mutex_;
  std::deque<Entry> queue_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::size_t bytes_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::size_t items_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  bool writing_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::optional<std::chrono::steady_clock::time_point> write_started_ SIOBRIDGE_GUARDED_BY(mutex_);
  bool closed_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
};

}  // namespace siobridge::api
