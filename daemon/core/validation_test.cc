// Unit tests of the caller rules (validation.h): each rule, its limit, and the
// message naming the field.
#include "daemon/core/validation.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace siobridge::core {
namespace {

std::string message_of(const Status& status) {
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kInvalidArgument);
  return status.error().message;
}

}  // namespace

TEST_CASE("validation: namespaces") {
  CHECK(check_namespace("/").ok());
  CHECK(check_namespace("/" + std::string(255, 'n')).ok());
  CHECK(message_of(check_namespace("")) == "namespace \"\" must start with '/'");
  CHECK(message_of(check_namespace(std::string(70, 'x'))) ==
        "namespace \"" + std::string(64, 'x') + "...\" must start with '/'");
  CHECK(message_of(check_namespace("/" + std::string(256, 'n'))) ==
        "namespace of 257 bytes; the limit is 256");
  CHECK(message_of(check_namespace(std::string("/a\0b", 4))) == "namespace contains a NUL byte");
}

TEST_CASE("validation: room lists") {
  CHECK(check_rooms(std::vector<std::string>{}, "rooms").ok());
  CHECK(check_rooms(std::vector<std::string>(kMaxRooms, "r"), "rooms").ok());
  CHECK(message_of(check_rooms(std::vector<std::string>(kMaxRooms + 1, "r"), "opts.rooms")) ==
        "opts.rooms: 10001 rooms; the limit is 10000");
  CHECK(message_of(check_rooms(std::vector<std::string>{"a", "b", ""}, "x")) ==
        "x[2]: empty room name");
  CHECK(check_rooms(std::vector<std::string>{std::string(kMaxRoomBytes, 'r')}, "x").ok());
  CHECK(message_of(check_rooms(std::vector<std::string>{std::string(1025, 'r')}, "x")) ==
        "x[0]: room name of 1025 bytes; the limit is 1024");

  CHECK(message_of(check_target_rooms(std::vector<std::string>{}, "rooms")) ==
        "rooms: at least one room is needed");
  CHECK(message_of(check_target_rooms(std::vector<std::string>{""}, "rooms")) ==
        "rooms[0]: empty room name");
  CHECK(check_target_rooms(std::vector<std::string>{"a"}, "rooms").ok());
}

TEST_CASE("validation: broadcast options") {
  wire::BroadcastOptions opts;
  CHECK(check_options(opts).ok());
  opts.rooms = {"a"};
  opts.except = {"b"};
  opts.sid = "sid_1";
  opts.server_id = "AAAAAAAAAAAAAAAA";
  opts.flags = wire::broadcast_flags::kLocal | wire::broadcast_flags::kBroadcast;
  CHECK(check_options(opts).ok());

  auto bad = opts;
  bad.except = {"b", ""};
  CHECK(message_of(check_options(bad)) == "opts.except[1]: empty room name");
  bad = opts;
  bad.sid = "a b";
  CHECK(message_of(check_options(bad)) ==
        "opts.sid \"a b\" is not a socket id (1..64 characters of [A-Za-z0-9_-])");
  bad = opts;
  bad.server_id = "AAAA";
  CHECK(message_of(check_options(bad)) ==
        "opts.server_id \"AAAA\" is not a node uid (16 characters of [A-Za-z0-9_-])");
  bad = opts;  // the first rule broken is the one reported
  bad.rooms = {""};
  bad.sid = "a b";
  CHECK(message_of(check_options(bad)) == "opts.rooms[0]: empty room name");
}

}  // namespace siobridge::core
