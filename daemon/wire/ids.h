// Ids of the socketioxide protocol (PROTOCOL.md section 2): node uids, request
// ids and socket ids are 16 characters, 12 random bytes in URL-safe base64
// without padding.
//
// generate_id() is thread-safe (one generator per thread); the checks are pure.
#pragma once

#include <string>
#include <string_view>

namespace siobridge::wire {

inline constexpr std::size_t kIdLength = 16;

// A fresh id: 12 bytes from a per-thread generator seeded by the OS.
std::string generate_id();

// True for exactly 16 characters of [A-Za-z0-9_-]: node uids and request ids.
bool is_valid_id(std::string_view id);

// Socket ids are looser: socketioxide's are 16 characters, Node's socket.io uses
// 20. Anything of 1..64 characters of [A-Za-z0-9_-] is accepted.
bool is_valid_socket_id(std::string_view id);

inline constexpr std::size_t kMaxSocketIdLength = 64;

// The id a socketioxide node sees for a socket: socketioxide accepts only
// 16-character ids, socket.io (Node) makes 20-character ones. A valid 16-
// character id is its own alias; any other is mapped by a fixed hash that every
// siobridge node computes alike, so a requester matches the aliases in an
// answer to the real ids it carries (docs/PROTOCOL.md section 15).
std::string socket_alias(std::string_view sid);

}  // namespace siobridge::wire
