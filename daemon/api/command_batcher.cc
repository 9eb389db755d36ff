#include "daemon/api/command_batcher.h"

namespace siobridge::api {

namespace pb = ::siobridge::v1;

bool CommandBatcher::append(pb::DaemonMessage& last, std::size_t last_commands,
                            std::size_t last_bytes, pb::DaemonMessage& next,
                            std::size_t next_bytes) const {
  if (!next.has_command()) return false;
  if (!last.has_command() && !last.has_command_batch()) return false;
  // A Command inside a batch costs what it costs as its own DaemonMessage (tag,
  // length, body); the batch adds a few bytes of its own.
  if (last_commands + 1 > caps_.max_commands || last_bytes + next_bytes > caps_.max_bytes) {
    return false;
  }
  if (last.has_command()) {
    pb::Command first;
    first.Swap(last.mutable_command());
    last.mutable_command_batch()->add_commands()->Swap(&first);
  }
  last.mutable_command_batch()->add_commands()->Swap(next.mutable_command());
  return true;
}

}  // namespace siobridge::api
