// Unit tests of the API's conversions: what a caller sends is refused with the
// message and code it documents, and commands survive the trip to the proto
// and back.
#include "daemon/api/convert.h"

#include <catch2/catch.hpp>

#include <string>

namespace siobridge::api {
namespace {

std::string error_of(const Result<wire::BroadcastOptions>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  return r.error().message;
}

core::Command round_trip(const core::Command& command) {
  pb::Command proto;
  to_proto(command, &proto);
  auto back = from_proto(proto);
  REQUIRE(back.ok());
  return *back;
}

void check_same(const core::Command& a, const core::Command& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.id == b.id);
  CHECK(a.ns == b.ns);
  CHECK(a.opts == b.opts);
  CHECK(a.packet == b.packet);
  CHECK(a.rooms == b.rooms);
  CHECK(a.close == b.close);
  CHECK(a.timeout == b.timeout);
  CHECK(a.payload == b.payload);
  CHECK(a.wants_ack == b.wants_ack);
  CHECK(a.position == b.position);
}

}  // namespace

TEST_CASE("convert: broadcast options with every field") {
  pb::BroadcastOptions opts;
  opts.add_rooms("r1");
  opts.add_rooms("r2");
  opts.add_except("x");
  opts.set_sid("sock_1-A");
  opts.set_server_id("AAAAAAAAAAAAAAAA");
  opts.set_exclude_sid(true);
  opts.set_volatile_(true);
  opts.set_local(true);
  auto out = from_proto(opts);
  REQUIRE(out.ok());
  CHECK(out->rooms == std::vector<std::string>{"r1", "r2"});
  CHECK(out->except == std::vector<std::string>{"x"});
  CHECK(out->sid == "sock_1-A");
  CHECK(out->server_id == "AAAAAAAAAAAAAAAA");
  using namespace wire::broadcast_flags;
  CHECK(out->flags == (kBroadcast | kVolatile | kLocal));

  pb::BroadcastOptions again;
  to_proto(*out, &again);
  CHECK(again.SerializeAsString() == opts.SerializeAsString());

  auto none = from_proto(pb::BroadcastOptions{});
  REQUIRE(none.ok());
  CHECK(*none == wire::BroadcastOptions{});
}

TEST_CASE("convert: bad broadcast options name the field") {
  pb::BroadcastOptions empty_room;
  empty_room.add_rooms("a");
  empty_room.add_rooms("");
  CHECK(error_of(from_proto(empty_room)) == "opts.rooms[1]: empty room name");

  pb::BroadcastOptions long_except;
  long_except.add_except(std::string(1025, 'e'));
  CHECK(error_of(from_proto(long_except)) ==
        "opts.except[0]: room name of 1025 bytes; the limit is 1024");

  pb::BroadcastOptions many;
  for (int i = 0; i < 10001; ++i) many.add_rooms("r");
  CHECK(error_of(from_proto(many)) == "opts.rooms: 10001 rooms; the limit is 10000");

  pb::BroadcastOptions bad_sid;
  bad_sid.set_sid("not a socket id");
  CHECK(error_of(from_proto(bad_sid)) ==
        "opts.sid \"not a socket id\" is not a socket id (1..64 characters of [A-Za-z0-9_-])");

  pb::BroadcastOptions long_sid;
  long_sid.set_sid(std::string(100, 's'));
  CHECK(error_of(from_proto(long_sid)) == "opts.sid \"" + std::string(64, 's') +
                                              "...\" is not a socket id (1..64 characters of "
                                              "[A-Za-z0-9_-])");

  pb::BroadcastOptions bad_server;
  bad_server.set_server_id("short");
  CHECK(error_of(from_proto(bad_server)) ==
        "opts.server_id \"short\" is not a node uid (16 characters of [A-Za-z0-9_-])");
}

TEST_CASE("convert: packets and values") {
  pb::Packet packet;
  packet.set_namespace_("/chat");
  packet.set_type(pb::Packet::TYPE_EVENT);
  packet.mutable_data()->set_kind(pb::Value::KIND_BYTES);
  packet.mutable_data()->set_data("12345");
  packet.mutable_data()->add_attachments("678");
  packet.set_ack_id(7);
  auto out = from_proto(packet, 8);
  REQUIRE(out.ok());
  CHECK(out->ns == "/chat");
  CHECK(out->type == wire::PacketType::kEvent);
  CHECK(out->data->kind == wire::ValueKind::kBytes);
  CHECK(out->data->bytes == "12345");
  CHECK(*out->data->attachments == std::vector<wire::Bytes>{"678"});
  CHECK(out->ack == 7);

  auto over = from_proto(packet, 7);  // data and attachments together
  REQUIRE_FALSE(over.ok());
  CHECK(over.error().code == ErrorCode::kResourceExhausted);
  CHECK(over.error().message == "payload of 8 bytes exceeds max_message_bytes (7)");

  pb::Packet no_slash = packet;
  no_slash.set_namespace_("chat");
  auto bad_ns = from_proto(no_slash, 100);
  REQUIRE_FALSE(bad_ns.ok());
  CHECK(bad_ns.error().code == ErrorCode::kInvalidArgument);
  CHECK(bad_ns.error().message == "packet.namespace \"chat\" must start with '/'");

  pb::Packet bad_type = packet;
  bad_type.set_type(static_cast<pb::Packet::Type>(99));
  auto unknown = from_proto(bad_type, 100);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message == "packet.type 99 is unknown");
}

TEST_CASE("convert: error codes map to gRPC codes") {
  CHECK(to_grpc(Status{}).ok());
  auto code = [](ErrorCode c) { return to_grpc(make_error(c, "m")).error_code(); };
  CHECK(code(ErrorCode::kInvalidArgument) == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(code(ErrorCode::kDecode) == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(code(ErrorCode::kFailedPrecondition) == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(code(ErrorCode::kMismatch) == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(code(ErrorCode::kUnavailable) == grpc::StatusCode::UNAVAILABLE);
  CHECK(code(ErrorCode::kTimeout) == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(code(ErrorCode::kResourceExhausted) == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(code(ErrorCode::kNotFound) == grpc::StatusCode::NOT_FOUND);
  CHECK(code(ErrorCode::kCancelled) == grpc::StatusCode::CANCELLED);
  CHECK(code(ErrorCode::kInternal) == grpc::StatusCode::INTERNAL);
  CHECK(to_grpc(make_error(ErrorCode::kTimeout, "late")).error_message() == "late");
}

TEST_CASE("convert: acks both ways") {
  wire::Value value{wire::ValueKind::kStr, "[1]", std::nullopt};
  pb::Ack ack;
  to_proto("sid1", core::AckResult{value}, &ack);
  CHECK(ack.sid() == "sid1");
  CHECK(std::get<wire::Value>(from_proto(ack)) == value);

  for (auto kind : {wire::AckError::Kind::kTimeout, wire::AckError::Kind::kSocketChannelFull,
                    wire::AckError::Kind::kSocketClosed}) {
    pb::Ack error;
    to_proto("s", core::AckResult{wire::AckError{kind, {}}}, &error);
    CHECK(std::get<wire::AckError>(from_proto(error)).kind == kind);
  }
  pb::Ack decode;
  to_proto("s", core::AckResult{wire::AckError{wire::AckError::Kind::kDecode, "bad"}}, &decode);
  const auto back = std::get<wire::AckError>(from_proto(decode));
  CHECK(back.kind == wire::AckError::Kind::kDecode);
  CHECK(back.message == "bad");
}

TEST_CASE("convert: socket lists refuse bad socket ids") {
  pb::SocketList list;
  auto* s = list.add_sockets();
  s->set_id("good");
  s->add_rooms("r");
  auto ok = from_proto(list);
  REQUIRE(ok.ok());
  REQUIRE(ok->size() == 1);
  CHECK((*ok)[0].id == "good");
  CHECK((*ok)[0].rooms == std::vector<std::string>{"r"});

  list.add_sockets()->set_id("bad id");
  auto bad = from_proto(list);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "sockets: \"bad id\" is not a socket id");
}

TEST_CASE("convert: every command kind survives to_proto and from_proto") {
  core::Command base;
  base.id = 42;
  base.ns = "/ns";
  base.opts.rooms = {"room"};
  base.opts.flags = wire::broadcast_flags::kVolatile;
  base.position = "00000001000000020000000a";
  wire::Packet packet{"/ns", wire::PacketType::kEvent,
                      wire::Value{wire::ValueKind::kStr, "[\"hi\"]", std::nullopt}, std::nullopt,
                      std::nullopt};

  auto broadcast = base;
  broadcast.kind = core::CommandKind::kBroadcast;
  broadcast.packet = packet;
  check_same(round_trip(broadcast), broadcast);

  auto with_ack = broadcast;
  with_ack.kind = core::CommandKind::kBroadcastWithAck;
  with_ack.timeout = Millis{1500};
  check_same(round_trip(with_ack), with_ack);

  for (auto kind : {core::CommandKind::kAddSockets, core::CommandKind::kDelSockets}) {
    auto rooms = base;
    rooms.kind = kind;
    rooms.rooms = {"a", "b"};
    check_same(round_trip(rooms), rooms);
  }

  auto disconnect = base;
  disconnect.kind = core::CommandKind::kDisconnectSockets;
  disconnect.close = true;
  check_same(round_trip(disconnect), disconnect);

  for (auto kind : {core::CommandKind::kFetchSockets, core::CommandKind::kAllRooms}) {
    auto query = base;
    query.kind = kind;
    check_same(round_trip(query), query);
  }

  auto emit = base;
  emit.kind = core::CommandKind::kServerSideEmit;
  emit.payload = "payload";
  emit.wants_ack = true;
  emit.timeout = Millis{250};
  check_same(round_trip(emit), emit);

  auto empty = from_proto(pb::Command{});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message == "empty command");
}

}  // namespace siobridge::api
