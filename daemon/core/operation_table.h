// OperationTable: the operations a Node keeps in flight (operation.h), by
// command id and by the request id other nodes quote. An operation is deleted
// once the event that finished it has run (reap), never from inside its own
// callbacks; events for an operation that ended are dropped.
//
// Not thread-safe: core thread only.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/core/operation.h"

namespace siobridge::core {

class OperationTable {
 public:
  OperationTable() = default;
  ~OperationTable() { clear(); }
  OperationTable(const OperationTable&) = delete;
  OperationTable& operator=(const OperationTable&) = delete;

  CommandId next_id() { return next_id_++; }

  // Registers `operation` and returns it, still owned by the table. Its
  // request id, if it waits for other nodes, is set already.
  template <typename T>
  T* start(std::unique_ptr<T> operation) {
    T* raw = operation.get();
    add(std::move(operation));
    return raw;
  }
  // Deletes the operation if it finished.
  void reap(CommandId id);
  // Deletes the operation, finished or not, without calling its callback: it
  // never got going (its request could not be published).
  void discard(CommandId id);
  // Deletes every operation (their timers are cancelled), calling nothing.
  void clear();

  // Runs `fn` on the operation, then reaps it. False when there is none.
  template <typename Fn>
  bool with(CommandId id, Fn&& fn) {
    auto it = operations_.find(id);
    if (it == operations_.end()) return false;
    fn(*it->second);
    reap(id);
    return true;
  }
  // The same for the operation that request id `request_id` belongs to.
  template <typename Fn>
  bool with_request(const std::string& request_id, Fn&& fn) {
    auto it = by_request_id_.find(request_id);
    return it != by_request_id_.end() && with(it->second, std::forward<Fn>(fn));
  }
  // Runs `fn` on every operation, each reaped after. Operations started by
  // the callbacks `fn` causes are not visited.
  template <typename Fn>
  void for_each(Fn&& fn) {
    std::vector<CommandId> ids;
    ids.reserve(operations_.size());
    for (const auto& [id, operation] : operations_) ids.push_back(id);
    for (CommandId id : ids) with(id, fn);
  }

  std::size_t size() const { return operations_.size(); }

 private:
  void add(std::unique_ptr<Operation> operation);

  std::unordered_map<CommandId, std::unique_ptr<Operation>> operations_;
  std::unordered_map<std::string, CommandId> by_request_id_;
  CommandId next_id_ = 1;
};

}  // namespace siobridge::core
