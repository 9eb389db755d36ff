// Requester on its own: what an operation asked by an attached server
// publishes, which attached servers get its command, and when it answers.
#include <catch2/catch.hpp>

#include "daemon/core/requester.h"
#include "daemon/core/testing/parts.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

wire::BroadcastOptions everyone() {
  wire::BroadcastOptions opts;
  opts.flags = flags::kBroadcast;
  return opts;
}

struct Asking {
  Parts parts;
  BusHealth health{bus::BusState::kReady, {}};
  Requester requester{parts.operations, parts.membership, parts.recovery, health};
  RecordingServer s1, s2;
  AttachmentId id1 = parts.attach(s1, "s1");
  AttachmentId id2 = parts.attach(s2, "s2");

  Asking() { parts.bus.clear(); }
  std::vector<wire::Request> requests(wire::RequestType type) const {
    std::vector<wire::Request> out;
    for (const auto& [request, published] : parts.bus.requests())
      if (request.type == type) out.push_back(request);
    return out;
  }
};

}  // namespace

TEST_CASE("a broadcast goes to the other nodes and the other attached servers") {
  Asking a;
  REQUIRE(a.requester.broadcast(a.id1, event("[\"hi\"]"), everyone(), RecoveryTag{}).ok());
  CHECK(a.requests(wire::RequestType::kBroadcast).size() == 1);
  CHECK(a.s1.commands.empty());  // the caller applies it to its own sockets
  REQUIRE(a.s2.commands.size() == 1);
  CHECK(a.s2.commands[0].kind == CommandKind::kBroadcast);
  CHECK(a.s2.commands[0].ns == "/");
}

TEST_CASE("the local flag reaches no one; this node's own server id stays here") {
  Asking a;
  auto local = everyone();
  local.flags |= flags::kLocal;
  REQUIRE(a.requester.broadcast(a.id1, event("[\"hi\"]"), local, RecoveryTag{}).ok());
  CHECK(a.parts.bus.published.empty());
  CHECK(a.s2.commands.empty());

  auto here = everyone();
  here.server_id = a.parts.uid;
  REQUIRE(a.requester.add_sockets(a.id1, "/", here, {"room"}).ok());
  CHECK(a.parts.bus.published.empty());
  REQUIRE(a.s2.commands.size() == 1);
  CHECK(a.s2.commands[0].rooms == std::vector<std::string>{"room"});
}

TEST_CASE("a refused publish still reaches the attached servers, and says so") {
  Asking a;
  a.parts.bus.refuse = true;
  auto status = a.requester.disconnect_sockets(a.id1, "/", everyone(), /*close=*/true);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kUnavailable);
  CHECK(status.error().message.find("delivered to 1 server(s)") != std::string::npos);
  REQUIRE(a.s2.commands.size() == 1);
  CHECK(a.s2.commands[0].close);
}

TEST_CASE("callers that did not join, and bad options, are refused before anything goes") {
  Asking a;
  RecordingServer other;
  const auto stranger = a.parts.attach(other, "other", {"/other"});
  a.parts.bus.clear();
  CHECK(
      a.requester.broadcast(stranger, event("[\"hi\"]"), everyone(), RecoveryTag{}).error().code ==
      ErrorCode::kFailedPrecondition);
  CHECK(a.requester.del_sockets(a.id1, "/", everyone(), {}).error().code ==
        ErrorCode::kInvalidArgument);
  CHECK(a.parts.bus.published.empty());
  CHECK(a.s2.commands.empty());
}

TEST_CASE("questions fail at once while the bus cannot reach the other nodes") {
  Asking a;
  a.health = {bus::BusState::kUnavailable, "connection refused"};
  bool answered = false;
  auto status =
      a.requester.fetch_sockets(a.id1, "/", everyone(), [&](SocketsResult) { answered = true; });
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kUnavailable);
  CHECK(status.error().message.find("connection refused") != std::string::npos);
  CHECK_FALSE(answered);
  CHECK(a.parts.table.size() == 0);
  // A broadcast waits in the bus's queue instead.
  CHECK(a.requester.broadcast(a.id1, event("[\"hi\"]"), everyone(), RecoveryTag{}).ok());
}

TEST_CASE("all_rooms asks the peers and the other attached servers, then answers") {
  Asking a;
  a.parts.heartbeat_from("peer", 1);
  std::optional<RoomsResult> result;
  REQUIRE(a.requester.all_rooms(a.id1, "/", everyone(), [&](RoomsResult r) { result = r; }).ok());
  const auto asked = a.requests(wire::RequestType::kAllRooms);
  REQUIRE(asked.size() == 1);
  REQUIRE(a.s2.commands.size() == 1);
  const CommandId command = a.s2.commands[0].id;
  std::vector<std::string> rooms{"local-room"};
  a.parts.table.with(command, [&](Operation& op) { op.on_rooms(a.id2, rooms); });
  CHECK_FALSE(result);
  a.parts.table.with_request(asked[0].id, [&](Operation& op) {
    op.on_response(wire::Response{"peer", wire::RoomList{{"remote-room"}}}, {});
  });
  REQUIRE(result);
  CHECK(result->rooms == std::vector<std::string>{"local-room", "remote-room"});
}

TEST_CASE("fetch_sockets with the local flag answers at once, empty, for the caller") {
  Asking a;
  auto local = everyone();
  local.flags |= flags::kLocal;
  std::optional<SocketsResult> result;
  REQUIRE(a.requester.fetch_sockets(a.id1, "/", local, [&](SocketsResult r) { result = r; }).ok());
  REQUIRE(result);
  CHECK(result->sockets.empty());
  CHECK(a.s2.commands.empty());
}

TEST_CASE("server_side_emit with acks waits for the servers of siobridge nodes only") {
  Asking a;
  a.parts.heartbeat_from("bridge", 2);
  a.parts.heartbeat_from("empty-bridge", 0);
  a.parts.heartbeat_from("sioxide", std::nullopt);
  std::optional<EmitResult> result;
  REQUIRE(a.requester
              .server_side_emit(a.id1, "/", "[\"ping\"]", /*wants_ack=*/true, Millis{0},
                                [&](EmitResult r) { result = std::move(r); })
              .ok());
  const auto extensions = a.parts.bus.extensions();
  REQUIRE(extensions.size() == 1);
  const auto& emit = std::get<wire::ServerSideEmit>(extensions[0]);
  CHECK(emit.wants_ack);
  CHECK(emit.timeout_ms == a.parts.config.request_timeout.count());  // 0: the default
  REQUIRE(a.s2.commands.size() == 1);
  wire::Bytes reply = "[\"pong\"]";
  a.parts.table.with(a.s2.commands[0].id, [&](Operation& op) { op.on_emit_reply(a.id2, reply); });
  wire::ServerSideEmitReply remote{{"[1]", "[2]"}, 0, 2u};
  a.parts.table.with_request(emit.id,
                             [&](Operation& op) { op.on_emit_response("bridge", remote); });
  REQUIRE(result);
  CHECK(result->expected == 3);
  CHECK(result->responses.size() == 3);
}

TEST_CASE("broadcast_with_ack streams the attached servers' counts and acks") {
  Asking a;
  std::vector<std::uint32_t> counts;
  std::optional<bool> timed_out;
  AckStream stream;
  stream.on_count = [&](std::uint32_t count) { counts.push_back(count); };
  stream.on_done = [&](const Missing&, bool t) { timed_out = t; };
  REQUIRE(a.requester
              .broadcast_with_ack(a.id1, event("[\"q\"]"), everyone(), Millis{0}, std::move(stream))
              .ok());
  CHECK(a.requests(wire::RequestType::kBroadcastWithAck).size() == 1);
  REQUIRE(a.s2.commands.size() == 1);
  CHECK(a.s2.commands[0].timeout == a.parts.config.ack_timeout);  // 0: the default
  a.parts.table.with(a.s2.commands[0].id, [&](Operation& op) { op.on_ack_count(a.id2, 0); });
  CHECK(counts == std::vector<std::uint32_t>{0});
  REQUIRE(timed_out);
  CHECK_FALSE(*timed_out);
}
