// The bookkeeping of numbered calls ("confirm", docs/PROTOCOL.md section 20):
// which calls of each server instance this daemon applied, so that a call sent
// again is applied once (CallRegistry), and which calls of one attachment are
// settled, so that the server can forget them (ConfirmLedger).
//
// Pure logic. Not thread-safe: the API uses both on the core thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace siobridge::api {

// The highest call number applied per server instance, for the instances that
// attached to this daemon process (at most `capacity`: the least recently
// used goes first).
class CallRegistry {
 public:
  explicit CallRegistry(std::size_t capacity = 100'000) : capacity_(capacity) {}

  // True when call `seq` of `instance` is new (then it counts as applied);
  // false for a number at or below one applied already (a repeat).
  bool first_time(const std::string& instance, std::uint64_t seq);
  // 0 when none was applied.
  std::uint64_t highest(const std::string& instance) const;
  // Everything up to `seq` counts as applied (what the cluster already has).
  void raise(const std::string& instance, std::uint64_t seq);
  // The instance ended for good (its server detached).
  void forget(const std::string& instance);
  std::size_t size() const { return entries_.size(); }

 private:
  using Order = std::list<std::string>;  // most recently used first
  struct Entry {
    std::uint64_t highest = 0;
    Order::iterator place;
  };
  Entry& touch(const std::string& instance);

  std::size_t capacity_;
  Order order_;
  std::unordered_map<std::string, Entry> entries_;
};

// The calls of one attachment between their application and their settlement:
// each call applied is recorded with the bus's publish count after it; once
// the bus has settled that many documents, the call and every one before it
// are settled.
class ConfirmLedger {
 public:
  // Call `seq` was applied (or answered as a repeat); everything it published
  // is among the first `published` documents.
  void applied(std::uint64_t seq, std::uint64_t published);
  // The bus settled its first `settled` documents: the highest call number
  // now confirmed, when it moved on since the last one returned.
  std::optional<std::uint64_t> settle(std::uint64_t settled);
  std::uint64_t confirmed() const { return confirmed_; }
  // Raises the confirmed number to what the cluster already has, without
  // returning it from settle().
  void assume(std::uint64_t seq);
  std::size_t waiting() const { return waiting_.size(); }

 private:
  std::deque<std::pair<std::uint64_t, std::uint64_t>> waiting_;  // seq, published
  std::uint64_t confirmed_ = 0;
  std::uint64_t reported_ = 0;
};

}  // namespace siobridge::api
