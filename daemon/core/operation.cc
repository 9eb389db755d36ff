#include "daemon/core/operation.h"

#include "daemon/core/operation_table.h"

namespace siobridge::core {

Operation::~Operation() {
  for (TimerId timer : timers_) context_.node.timers.cancel(timer);
}

void Operation::after(Millis delay, std::function<void()> fn) {
  OperationTable* table = &context_.table;
  const CommandId id = id_;
  timers_.push_back(context_.node.timers.schedule(context_.node.clock.now() + delay,
                                                  [table, id, fn = std::move(fn)] {
                                                    fn();
                                                    table->reap(id);
                                                  }));
}

}  // namespace siobridge::core
