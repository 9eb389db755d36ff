// The offsets that connection state recovery gives socket.io clients
// (docs/recovery.md): "<attachment id>.<log entry>.<own packets>", a
// core::RecoveryPoint written for one daemon instance. An offset from before a
// restart, or from another daemon, names no point here.
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
std::string recovery_base(const std::string& attachment_id, std::uint64_t log_seq);
// The offset of a packet: its base and the server's own packets so far.
std::string recovery_offset(const std::string& base, std::uint64_t own_seq);
// kNotFound for an offset this daemon instance did not make (including
// malformed ones: a client sends back whatever it last received).
Result<core::RecoveryPoint> parse_recovery_offset(const ApiContext& context,
                                                  const std::string& offset);

}  // namespace siobridge::api
