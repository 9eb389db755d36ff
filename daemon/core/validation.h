// What a caller may ask of the node, checked in one place: namespaces, room
// names and lists, broadcast options. The API applies these rules to what a
// client sends, before it converts anything; the node applies them to every
// operation it is asked, so that no caller skips them. A failure is
// kInvalidArgument with a message that names the field.
//
// Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

inline constexpr std::size_t kMaxNamespaceBytes = 256;
inline constexpr std::size_t kMaxRoomBytes = 1024;
inline constexpr std::size_t kMaxRooms = 10000;

// `text` as quoted in an error message: its first 64 bytes, "..." when cut.
std::string excerpt(const std::string& text);

// Starts with '/', at most kMaxNamespaceBytes, no NUL byte.
Status check_namespace(const std::string& ns);

Status check_room_count(std::size_t count, std::string_view field);
// Not empty, at most kMaxRoomBytes; `index` is its place in `field`.
Status check_room_name(const std::string& room, std::string_view field, std::size_t index);

// A list of rooms (std::vector or a protobuf repeated field): at most
// kMaxRooms names, each valid.
template <typename Rooms>
Status check_rooms(const Rooms& rooms, std::string_view field) {
  if (auto s = check_room_count(static_cast<std::size_t>(rooms.size()), field); !s) return s;
  std::size_t index = 0;
  for (const auto& room : rooms) {
    if (auto s = check_room_name(room, field, index++); !s) return s;
  }
  return {};
}

// The rooms that sockets join or leave: as check_rooms, and at least one.
Status missing_rooms(std::string_view field);
template <typename Rooms>
Status check_target_rooms(const Rooms& rooms, std::string_view field) {
  if (rooms.empty()) return missing_rooms(field);
  return check_rooms(rooms, field);
}

// opts.rooms and opts.except as lists of rooms; opts.sid a socket id;
// opts.server_id a node uid.
Status check_options(const wire::BroadcastOptions& opts);

}  // namespace siobridge::core
