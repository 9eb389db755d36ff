// How the core reaches a socket.io server attached to this daemon: it pushes
// Commands (work that another server asked of this server's sockets) through a
// LocalServer. The transport behind it (a gRPC Attach stream, a fake in tests)
// answers commands that expect an answer by calling the Node's on_* methods
// with the command id, later, on the core thread.
//
// LocalServer::deliver is called on the core thread and must not call into the
// Node before it returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/time.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

using AttachmentId = std::uint64_t;
// Operations from no attached server (an external emitter): every attached
// server of the namespace gets the work, and the namespace need not be active.
inline constexpr AttachmentId kNoAttachment = 0;
using CommandId = std::uint64_t;

enum class CommandKind : std::uint8_t {
  kBroadcast,          // apply packet; no answer
  kBroadcastWithAck,   // answer: ack count, then the acks
  kAddSockets,         // join rooms; no answer
  kDelSockets,         // leave rooms; no answer
  kDisconnectSockets,  // no answer
  kFetchSockets,       // answer: sockets
  kAllRooms,           // answer: rooms
  kServerSideEmit,     // answer (if wants_ack): one payload
  kRecoveryMark,       // log_seq only: where the server's recovery offsets start; no answer
};

const char* to_string(CommandKind kind);

struct Command {
  CommandKind kind = CommandKind::kBroadcast;
  CommandId id = 0;  // non-zero when an answer is expected
  std::string ns;
  wire::BroadcastOptions opts;
  std::optional<wire::Packet> packet;  // broadcasts
  std::vector<std::string> rooms;      // add / del sockets
  bool close = false;                  // disconnect: close the underlying connection
  Millis timeout{0};                   // broadcast with ack: per-client; server-side emit
  wire::Bytes payload;                 // server-side emit
  bool wants_ack = false;              // server-side emit
  // The causing document's place in the cluster's delivery order, when it came
  // through a bus that knows it (wire::format_position): a server that saw a
  // position already skips the command (a repeat after a daemon restart).
  std::string position;
  // Connection state recovery (recovery_log.h): the entry of the namespace's
  // recovery log this broadcast is; the server builds its clients' offsets
  // from it.
  std::optional<std::uint64_t> log_seq;
  // With log_seq: the bus position the daemon had read when it logged it.
  std::string log_seen_through;
};

inline Command make_command(CommandKind kind, const std::string& ns,
                            const wire::BroadcastOptions& opts) {
  Command command;
  command.kind = kind;
  command.ns = ns;
  command.opts = opts;
  return command;
}

class LocalServer {
 public:
  virtual ~LocalServer() = default;
  virtual void deliver(const Command& command) = 0;
};

// One ack from a client: its answer, or why there is none.
using AckResult = std::variant<wire::Value, wire::AckError>;

}  // namespace siobridge::core
