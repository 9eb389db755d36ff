// Outbox: what each kind of publish looks like on the bus, who may read it,
// and how it is counted.
#include <catch2/catch.hpp>

#include "daemon/core/outbox.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

// An Outbox whose audience for every namespace is `audience`.
struct FixedAudience {
  Parts parts;
  bus::Audience audience = bus::Audience::kSiobridgeOnly;
  Outbox outbox{parts.context, parts.bus,
                [this](const std::string&, const std::optional<std::string>&) { return audience; }};
};

}  // namespace

TEST_CASE("a heartbeat is readable by every node and announces the attached servers") {
  FixedAudience f;
  f.outbox.publish_heartbeat("/chat", wire::RequestType::kInitHeartbeat, std::nullopt, 3);
  REQUIRE(f.parts.bus.published.size() == 1);
  const auto& published = f.parts.bus.published[0];
  CHECK(published.audience == bus::Audience::kEveryNode);  // even when packing is allowed
  CHECK(published.document.header.ns == "/chat");
  CHECK(published.document.header.origin == f.parts.uid);
  CHECK_FALSE(published.document.header.target);
  auto request = wire::decode_request(published.document.data);
  REQUIRE(request.ok());
  CHECK(request->type == wire::RequestType::kInitHeartbeat);
  auto info = wire::decode_extension(*published.document.extension);
  REQUIRE(info.ok());
  CHECK(std::get<wire::NodeInfo>(*info).servers == 3);
  CHECK(f.parts.stats.requests_out[static_cast<std::size_t>(wire::RequestType::kInitHeartbeat)] ==
        1);
}

TEST_CASE("a request takes the audience the membership gives and comes back when logged") {
  FixedAudience f;
  wire::Request request{f.parts.uid,      "r1",         wire::RequestType::kBroadcast,
                        event("[\"e\"]"), std::nullopt, wire::BroadcastOptions{}};
  wire::RequestInfo info;
  REQUIRE(f.outbox.publish_request("/", request, std::string("peer"), info).ok());
  info.recovery = wire::RecoveryEntryInfo{"inst", 7, 1, 1};
  f.audience = bus::Audience::kEveryNode;
  REQUIRE(f.outbox.publish_request("/", request, std::nullopt, info).ok());

  const auto& published = f.parts.bus.published;
  REQUIRE(published.size() == 2);
  CHECK(published[0].audience == bus::Audience::kSiobridgeOnly);
  CHECK(published[0].document.header.target == "peer");
  CHECK_FALSE(published[0].document.echo);
  CHECK(published[1].audience == bus::Audience::kEveryNode);
  CHECK(published[1].document.echo);  // its position is learnt for the recovery log
  CHECK(f.parts.stats.requests_out[static_cast<std::size_t>(wire::RequestType::kBroadcast)] == 2);
}

TEST_CASE("a refused publish returns the bus's error and is counted") {
  FixedAudience f;
  f.parts.bus.refuse = true;
  wire::Request request{f.parts.uid, "r1", wire::RequestType::kAllRooms, {}, {}, {}};
  auto status = f.outbox.publish_request("/", request, std::nullopt, {});
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::kUnavailable);
  CHECK_FALSE(f.outbox.publish_to_siobridge("/", wire::Goodbye{}).ok());
  // Answers and heartbeats cannot fail their caller: only counted.
  f.outbox.publish_response("/", "peer", "r1", wire::Response{f.parts.uid, wire::RoomList{}},
                            std::nullopt);
  f.outbox.publish_heartbeat("/", wire::RequestType::kHeartbeat, std::nullopt, 1);
  CHECK(f.parts.stats.publish_failures == 4);
  CHECK(f.parts.stats.requests_out == decltype(f.parts.stats.requests_out){});
  CHECK(f.parts.stats.responses_out == decltype(f.parts.stats.responses_out){});
}

TEST_CASE("extensions go to siobridge nodes only") {
  FixedAudience f;
  f.audience = bus::Audience::kEveryNode;
  REQUIRE(f.outbox.publish_to_siobridge("/", wire::Goodbye{}, /*echo=*/true).ok());
  f.outbox.publish_emit_reply("/", "requester", "r9", wire::ServerSideEmitReply{{"[1]"}, 0, 2});

  const auto& published = f.parts.bus.published;
  REQUIRE(published.size() == 2);
  CHECK(published[0].audience == bus::Audience::kSiobridgeOnly);
  CHECK(published[0].document.header.target == std::string(wire::kSiobridgeTarget));
  CHECK(published[0].document.echo);
  CHECK(published[1].audience == bus::Audience::kSiobridgeOnly);
  CHECK(published[1].document.header.kind == wire::MessageKind::kResponse);
  CHECK(published[1].document.header.request == "r9");
  CHECK(published[1].document.data.empty());
  const auto extensions = f.parts.bus.extensions();
  REQUIRE(extensions.size() == 2);
  CHECK(std::holds_alternative<wire::Goodbye>(extensions[0]));
  CHECK(std::get<wire::ServerSideEmitReply>(extensions[1]).servers == 2u);
  CHECK(f.parts.stats.extensions_out == 2);
}

TEST_CASE("a response is addressed to its requester with the membership's audience") {
  FixedAudience f;
  f.outbox.publish_response("/", "requester", "r2",
                            wire::Response{f.parts.uid, wire::BroadcastAckCount{4}},
                            wire::Extension{wire::FetchDetails{}});
  const auto responses = f.parts.bus.responses();
  REQUIRE(responses.size() == 1);
  CHECK(std::get<wire::BroadcastAckCount>(responses[0].first.body).count == 4);
  CHECK(responses[0].second.audience == bus::Audience::kSiobridgeOnly);
  CHECK(responses[0].second.document.header.target == "requester");
  CHECK(responses[0].second.document.header.request == "r2");
  CHECK(responses[0].second.document.extension);
  CHECK(f.parts.stats
            .responses_out[static_cast<std::size_t>(wire::ResponseType::kBroadcastAckCount)] == 1);
}
