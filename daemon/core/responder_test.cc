// Responder on its own: what a request of another node becomes for the
// attached servers, and what goes back.
#include <catch2/catch.hpp>

#include "daemon/core/responder.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;
namespace flags = siobridge::wire::broadcast_flags;

namespace {

struct Answering {
  Parts parts;
  Responder responder{parts.operations, parts.membership, parts.recovery};
  RecordingServer s1, s2;
  AttachmentId id1 = parts.attach(s1, "s1");
  AttachmentId id2 = parts.attach(s2, "s2");

  Answering() { parts.bus.clear(); }

  // A request from node "peer"; `siobridge`: with the RequestInfo extension a
  // siobridge requester adds.
  void request(wire::Request request, bool siobridge, const std::string& position = "pos-1") {
    wire::Document document{{wire::MessageKind::kRequest, "/", "peer", std::nullopt, std::nullopt},
                            wire::encode_request(request),
                            std::nullopt};
    if (siobridge) document.extension = wire::encode_extension(wire::RequestInfo{});
    responder.respond(document, std::move(request), position);
  }
  void emit(wire::ServerSideEmit emit) {
    wire::Document document{{wire::MessageKind::kRequest, "/", "peer",
                             std::string(wire::kSiobridgeTarget), std::nullopt},
                            {},
                            wire::encode_extension(emit)};
    responder.on_extension_request(document, "pos-2");
  }
};

wire::Request make_request(wire::RequestType type, wire::BroadcastOptions opts = {}) {
  wire::Request request{"peer", "req-1", type, std::nullopt, std::nullopt, std::move(opts)};
  if (type == wire::RequestType::kBroadcast || type == wire::RequestType::kBroadcastWithAck) {
    request.packet = event("[\"e\"]");
  }
  if (type == wire::RequestType::kAddSockets || type == wire::RequestType::kDelSockets) {
    request.rooms = std::vector<std::string>{"joined"};  // the decoder requires them
  }
  return request;
}

}  // namespace

TEST_CASE("a broadcast of another node reaches every attached server, with its position") {
  Answering a;
  wire::BroadcastOptions opts;
  opts.flags = flags::kBroadcast | flags::kLocal;
  a.request(make_request(wire::RequestType::kBroadcast, opts), true);
  for (auto* server : {&a.s1, &a.s2}) {
    REQUIRE(server->commands.size() == 1);
    const Command& command = server->commands[0];
    CHECK(command.kind == CommandKind::kBroadcast);
    CHECK(command.position == "pos-1");
    CHECK_FALSE(command.opts.has(flags::kLocal));  // never crosses nodes
    CHECK(command.opts.has(flags::kBroadcast));
  }
  CHECK(a.parts.bus.published.empty());
}

TEST_CASE("socket ids of a socketioxide requester are mapped back from their aliases") {
  Answering a;
  const std::string sid = "a-socket-id-of-20-ch";
  const std::string alias = a.parts.aliases.report(sid);
  wire::BroadcastOptions opts;
  opts.rooms = {alias};
  a.request(make_request(wire::RequestType::kAddSockets, opts), /*siobridge=*/false);
  REQUIRE(a.s1.commands.size() == 1);
  CHECK(a.s1.commands[0].opts.rooms == std::vector<std::string>{sid});
}

TEST_CASE("fetch_sockets is answered once, aliased, with details for a siobridge requester") {
  Answering a;
  a.request(make_request(wire::RequestType::kFetchSockets), /*siobridge=*/true);
  REQUIRE(a.s1.commands.size() == 1);
  const CommandId id = a.s1.commands[0].id;
  CHECK(a.s2.commands[0].id == id);
  std::vector<wire::SocketDetails> first{{"socket-id-of-twenty1", {"r"}, "hs", "d"}};
  std::vector<wire::SocketDetails> second{{"socket-id-of-twenty2", {}, "hs", "d"}};
  a.parts.table.with(id, [&](Operation& op) { op.on_sockets(a.id1, first); });
  CHECK(a.parts.bus.published.empty());
  a.parts.table.with(id, [&](Operation& op) { op.on_sockets(a.id2, second); });
  const auto responses = a.parts.bus.responses();
  REQUIRE(responses.size() == 1);
  const auto& list = std::get<wire::SocketList>(responses[0].first.body);
  REQUIRE(list.sockets.size() == 2);
  CHECK(list.sockets[0].id == wire::socket_alias("socket-id-of-twenty1"));
  CHECK(list.sockets[0].server_id == a.parts.uid);
  CHECK(responses[0].second.document.header.target == "peer");
  CHECK(responses[0].second.document.header.request == "req-1");
  auto details = wire::decode_extension(*responses[0].second.document.extension);
  REQUIRE(details.ok());
  CHECK(std::get<wire::FetchDetails>(*details).sockets.size() == 2);
}

TEST_CASE("all_rooms leaves out a silent server after local_timeout") {
  Answering a;
  a.request(make_request(wire::RequestType::kAllRooms), true);
  std::vector<std::string> rooms{"r1"};
  a.parts.table.with(a.s1.commands[0].id, [&](Operation& op) { op.on_rooms(a.id1, rooms); });
  CHECK(a.parts.bus.published.empty());
  a.parts.advance(a.parts.config.local_timeout);
  const auto responses = a.parts.bus.responses();
  REQUIRE(responses.size() == 1);
  CHECK(std::get<wire::RoomList>(responses[0].first.body).rooms == std::vector<std::string>{"r1"});
  CHECK(a.parts.stats.local_timeouts == 1);
}

TEST_CASE("a broadcast with acks is counted over the servers before the acks go back") {
  Answering a;
  a.request(make_request(wire::RequestType::kBroadcastWithAck), true);
  REQUIRE(a.s1.commands.size() == 1);
  CHECK(a.s1.commands[0].kind == CommandKind::kBroadcastWithAck);
  CHECK(a.s1.commands[0].timeout == a.parts.config.ack_timeout);  // the request named none
  const CommandId id = a.s1.commands[0].id;
  a.parts.table.with(id, [&](Operation& op) { op.on_ack_count(a.id1, 0); });
  a.parts.table.with(id, [&](Operation& op) { op.on_ack_count(a.id2, 2); });
  const auto responses = a.parts.bus.responses();
  REQUIRE(responses.size() == 1);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].first.body).count == 2);
}

TEST_CASE("a server-side emit reaches every server; with acks their answers go back") {
  Answering a;
  a.emit(wire::ServerSideEmit{"emitRequest00001", "[\"no-ack\"]", false, 0});
  CHECK(a.s1.commands.size() == 1);
  CHECK(a.s1.commands[0].id == 0);  // no answer expected
  CHECK(a.parts.table.size() == 0);

  a.emit(wire::ServerSideEmit{"emitRequest00002", "[\"ack\"]", true, 300});
  REQUIRE(a.s1.commands.size() == 2);
  const Command& command = a.s1.commands[1];
  CHECK(command.wants_ack);
  CHECK(command.position == "pos-2");
  wire::Bytes reply = "[\"pong\"]";
  a.parts.table.with(command.id, [&](Operation& op) { op.on_emit_reply(a.id1, reply); });
  const auto extensions = a.parts.bus.extensions();
  REQUIRE(extensions.size() == 1);
  CHECK(std::get<wire::ServerSideEmitReply>(extensions[0]).servers == 2u);
  // The requester's deadline ends it.
  a.parts.advance(Millis{300});
  CHECK(a.parts.table.size() == 0);
}

TEST_CASE("an extension request that does not decode is counted and skipped") {
  Answering a;
  wire::Document document{
      {wire::MessageKind::kRequest, "/", "peer", std::string(wire::kSiobridgeTarget), std::nullopt},
      {},
      std::string("\xc1garbage")};
  a.responder.on_extension_request(document, "pos-3");
  document.extension.reset();
  a.responder.on_extension_request(document, "pos-4");
  CHECK(a.parts.stats.decode_errors == 2);
  CHECK(a.s1.commands.empty());
}
