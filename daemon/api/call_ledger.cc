#include "daemon/api/call_ledger.h"

#include <algorithm>

namespace siobridge::api {

CallRegistry::Entry& CallRegistry::touch(const std::string& instance) {
  auto it = entries_.find(instance);
  if (it != entries_.end()) {
    order_.splice(order_.begin(), order_, it->second.place);
    return it->second;
  }
  if (entries_.size() >= capacity_ && !order_.empty()) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(instance);
  auto& entry = entries_[instance];
  entry.place = order_.begin();
  return entry;
}

bool CallRegistry::first_time(const std::string& instance, std::uint64_t seq) {
  auto& entry = touch(instance);
  if (seq <= entry.highest) return false;
  entry.highest = seq;
  return true;
}

std::uint64_t CallRegistry::highest(const std::string& instance) const {
  auto it = entries_.find(instance);
  return it == entries_.end() ? 0 : it->second.highest;
}

void CallRegistry::raise(const std::string& instance, std::uint64_t seq) {
  auto& entry = touch(instance);
  entry.highest = std::max(entry.highest, seq);
}

void CallRegistry::forget(const std::string& instance) {
  auto it = entries_.find(instance);
  if (it == entries_.end()) return;
  order_.erase(it->second.place);
  entries_.erase(it);
}

void ConfirmLedger::applied(std::uint64_t seq, std::uint64_t published) {
  if (seq <= confirmed_) return;
  if (!waiting_.empty() && waiting_.back().second >= published) {
    waiting_.back().first = std::max(waiting_.back().first, seq);  // settles with it
    return;
  }
  waiting_.emplace_back(seq, published);
}

std::optional<std::uint64_t> ConfirmLedger::settle(std::uint64_t settled) {
  while (!waiting_.empty() && waiting_.front().second <= settled) {
    confirmed_ = std::max(confirmed_, waiting_.front().first);
    waiting_.pop_front();
  }
  if (confirmed_ <= reported_) return std::nullopt;
  reported_ = confirmed_;
  return confirmed_;
}

void ConfirmLedger::assume(std::uint64_t seq) {
  confirmed_ = std::max(confirmed_, seq);
  reported_ = std::max(reported_, seq);
  while (!waiting_.empty() && waiting_.front().first <= confirmed_) waiting_.pop_front();
}

}  // namespace siobridge::api
