// The offsets that connection state recovery gives socket.io clients
// (docs/recovery.md): "<attachment id>.<log entry>.<bus position>.<own
// packets>", a core::RecoveryPoint. The attachment id starts with the daemon
// instance's token: an offset of another instance (another daemon, or this one
// before a restart) is a point of that instance, which only a shared bus can
// resolve.
//
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>

#include "daemon/api/api_context.h"
#include "daemon/common/result.h"
#include "daemon/core/recovery_log.h"

namespace siobridge::api {

// What Command.recovery_base carries for the server `attachment_id`.
// `seen_through`: the bus position read when the entry was logged (none: "0").
std::string recovery_base(const std::string& attachment_id, std::uint64_t log_seq,
                          const std::string& seen_through);
// The offset of a packet: its base and the server's own packets so far.
std::string recovery_offset(const std::string& base, std::uint64_t own_seq);
// kNotFound for what is not an offset (a client sends back whatever it last
// received).
Result<core::RecoveryPoint> parse_recovery_offset(const ApiContext& context,
                                                  const std::string& offset);

}  // namespace siobridge::api
