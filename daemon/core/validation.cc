#include "daemon/core/validation.h"

#include <fmt/format.h>

#include "daemon/wire/ids.h"

namespace siobridge::core {
namespace {

Status invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

}  // namespace

std::string excerpt(const std::string& text) {
  return text.size() > 64 ? text.substr(0, 64) + "..." : text;
}

Status check_namespace(const std::string& ns) {
  if (ns.empty() || ns[0] != '/') {
    return invalid(fmt::format("namespace \"{}\" must start with '/'", excerpt(ns)));
  }
  if (ns.size() > kMaxNamespaceBytes) {
    return invalid(
        fmt::format("namespace of {} bytes; the limit is {}", ns.size(), kMaxNamespaceBytes));
  }
  if (ns.find('\0') != std::string::npos) return invalid("namespace contains a NUL byte");
  return {};
}

Status check_room_count(std::size_t count, std::string_view field) {
  if (count <= kMaxRooms) return {};
  return invalid(fmt::format("{}: {} rooms; the limit is {}", field, count, kMaxRooms));
}

Status check_room_name(const std::string& room, std::string_view field, std::size_t index) {
  if (room.empty()) return invalid(fmt::format("{}[{}]: empty room name", field, index));
  if (room.size() > kMaxRoomBytes) {
    return invalid(fmt::format("{}[{}]: room name of {} bytes; the limit is {}", field, index,
                               room.size(), kMaxRoomBytes));
  }
  return {};
}

Status missing_rooms(std::string_view field) {
  return invalid(fmt::format("{}: at least one room is needed", field));
}

Status check_options(const wire::BroadcastOptions& opts) {
  if (auto s = check_rooms(opts.rooms, "opts.rooms"); !s) return s;
  if (auto s = check_rooms(opts.except, "opts.except"); !s) return s;
  if (opts.sid && !wire::is_valid_socket_id(*opts.sid)) {
    return invalid(
        fmt::format("opts.sid \"{}\" is not a socket id (1..64 characters of [A-Za-z0-9_-])",
                    excerpt(*opts.sid)));
  }
  if (opts.server_id && !wire::is_valid_id(*opts.server_id)) {
    return invalid(
        fmt::format("opts.server_id \"{}\" is not a node uid (16 characters of [A-Za-z0-9_-])",
                    excerpt(*opts.server_id)));
  }
  return {};
}

}  // namespace siobridge::core
