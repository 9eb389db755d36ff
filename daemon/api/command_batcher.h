// CommandBatcher: the group commit of an Attach stream. While the stream
// writes one message, the Commands queued behind it for servers that read
// batches (Hello.features "command_batch") join into one CommandBatch, so the
// server reads and applies them in one turn instead of one message each; so do
// the Commands of one turn of the core thread (AttachStream writes them when
// the turn ends, TurnFlush). It never waits for more than that. Only
// consecutive Commands merge (the Outbox offers only its newest message), so
// Welcomes, Results and NamespaceErrors keep their place.
//
// Pure logic on messages; const after construction, so thread-safe.
#pragma once

#include <cstddef>

#include "siobridge/v1/bridge.pb.h"

namespace siobridge::api {

class CommandBatcher {
 public:
  // A batch stays within both, except a single Command larger than max_bytes
  // (sent alone, as without batches).
  struct Caps {
    std::size_t max_bytes = 256 * 1024;
    std::size_t max_commands = 1024;
  };

  explicit CommandBatcher(Caps caps) : caps_(caps) {}

  // Moves the Command of `next` into `last` (a Command or a CommandBatch,
  // holding `last_commands` Commands encoded in `last_bytes` as single
  // DaemonMessages) when the result stays within the caps. False leaves both
  // unchanged, and for anything but two Command messages.
  bool append(::siobridge::v1::DaemonMessage& last, std::size_t last_commands,
              std::size_t last_bytes, ::siobridge::v1::DaemonMessage& next,
              std::size_t next_bytes) const;

  const Caps& caps() const { return caps_; }

 private:
  Caps caps_;
};

}  // namespace siobridge::api
