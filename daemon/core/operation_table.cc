#include "daemon/core/operation_table.h"

namespace siobridge::core {

void OperationTable::add(std::unique_ptr<Operation> operation) {
  const CommandId id = operation->id();
  if (!operation->request_id().empty()) by_request_id_[operation->request_id()] = id;
  operations_.emplace(id, std::move(operation));
}

void OperationTable::reap(CommandId id) {
  auto it = operations_.find(id);
  if (it == operations_.end() || !it->second->finished()) return;
  const auto& request_id = it->second->request_id();
  if (auto r = by_request_id_.find(request_id); r != by_request_id_.end() && r->second == id) {
    by_request_id_.erase(r);
  }
  operations_.erase(it);
}

void OperationTable::discard(CommandId id) {
  auto it = operations_.find(id);
  if (it == operations_.end()) return;
  if (auto r = by_request_id_.find(it->second->request_id());
      r != by_request_id_.end() && r->second == id) {
    by_request_id_.erase(r);
  }
  operations_.erase(it);
}

void OperationTable::clear() {
  // Moved out first: an operation's destructor must not find the map midway.
  auto operations = std::move(operations_);
  operations_.clear();
  by_request_id_.clear();
  operations.clear();
}

}  // namespace siobridge::core
