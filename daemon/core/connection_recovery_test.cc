// ConnectionRecovery on its own: what is logged and marked, what travels to
// the other daemons, and the restore of a session here and, through a shared
// bus, by a claim that has to come back.
#include <catch2/catch.hpp>

#include "daemon/core/connection_recovery.h"
#include "daemon/core/testing/parts.h"
#include "daemon/wire/payload_codec.h"

using namespace siobridge;
using namespace siobridge::core;
using namespace siobridge::core::testing;

namespace {

constexpr Millis kRetention{120'000};
constexpr AttachmentId kServer = 1;

wire::BroadcastOptions everyone() {
  wire::BroadcastOptions opts;
  opts.flags = wire::broadcast_flags::kBroadcast;
  return opts;
}

SessionRecord session(const std::string& pid) {
  return SessionRecord{pid, "sid-" + pid, {"room"}, "{}"};
}

// The point of a client of kServer that had every entry up to `seq`.
RecoveryPoint point_at(const Parts& parts, std::uint64_t seq) {
  RecoveryPoint point;
  point.seq = seq;
  point.attachment = kServer;
  point.instance = parts.instance;
  return point;
}

// Restores `pid` for a client of kServer that had everything; the answer
// lands in `answer`.
void restore(Parts& parts, const std::string& pid, std::optional<Result<RestoredSession>>& answer) {
  parts.recovery.restore(kServer, "/", pid, point_at(parts, 0),
                         [&answer](Result<RestoredSession> r) { answer = std::move(r); });
}

// The claim this node published last, as the bus brings it back.
wire::Document last_claim(const Parts& parts) {
  for (auto it = parts.bus.published.rbegin(); it != parts.bus.published.rend(); ++it) {
    auto ext = wire::decode_extension(*it->document.extension);
    if (ext.ok() && std::holds_alternative<wire::RecoveryClaim>(*ext)) return it->document;
  }
  FAIL("no claim published");
  return {};
}

}  // namespace

TEST_CASE("recovery is on once a server asks, and its offsets start at the mark") {
  Parts parts;
  CHECK_FALSE(parts.recovery.enabled("/"));
  CHECK(parts.recovery.log("/") == nullptr);
  const Command mark = parts.recovery.enable("/", kRetention);
  CHECK(mark.kind == CommandKind::kRecoveryMark);
  CHECK(mark.ns == "/");
  CHECK(mark.log_seq == 0u);
  REQUIRE(parts.recovery.log("/") != nullptr);

  Command command;
  CHECK_FALSE(parts.recovery.log_own(event("[\"e\"]"), everyone(), kServer, 1, command));
  CHECK(command.log_seq == 1u);
  // A second server of the namespace starts after what the first logged.
  CHECK(parts.recovery.enable("/", kRetention * 2).log_seq == 1u);
  CHECK(parts.recovery.log("/")->retention() == kRetention * 2);
  CHECK(parts.recovery.totals().packets == 1);
}

TEST_CASE("only recoverable packets are logged; on a shared bus their entry travels along") {
  Parts parts;
  parts.bus.is_shared = true;
  (void)parts.recovery.enable("/", kRetention);
  Command with_ack;
  auto packet = event("[\"e\"]");
  packet.ack = 3;
  CHECK_FALSE(parts.recovery.log_own(packet, everyone(), kServer, 1, with_ack));
  CHECK_FALSE(with_ack.log_seq);
  Command volatile_one;
  auto opts = everyone();
  opts.flags |= wire::broadcast_flags::kVolatile;
  CHECK_FALSE(parts.recovery.log_own(event("[\"e\"]"), opts, kServer, 1, volatile_one));

  Command command;
  const auto entry = parts.recovery.log_own(event("[\"e\"]"), everyone(), kServer, 1, command);
  REQUIRE(entry);
  CHECK(*entry == wire::RecoveryEntryInfo{parts.instance, 1, kServer, 1});
  Command uncounted;
  const auto external = parts.recovery.log_own(event("[\"e\"]"), everyone(), kServer, 0, uncounted);
  REQUIRE(external);
  CHECK(external->attachment == kNoAttachment);  // not counted by a server: no one's own
}

TEST_CASE("a packet its server delivered itself goes to the other daemons to be logged") {
  Parts parts;
  parts.recovery.publish_log_only(event("[\"mine\"]"), everyone(),
                                  wire::RecoveryEntryInfo{parts.instance, 4, kServer, 2});
  REQUIRE(parts.bus.published.size() == 1);
  const auto& document = parts.bus.published[0].document;
  CHECK(document.echo);
  auto info = wire::decode_extension(*document.extension);
  REQUIRE(info.ok());
  CHECK(std::get<wire::RequestInfo>(*info).log_only);
  CHECK(std::get<wire::RequestInfo>(*info).recovery->seq == 4);
  auto request = wire::decode_request(document.data);
  REQUIRE(request.ok());
  CHECK(request->type == wire::RequestType::kBroadcast);

  // Another daemon reading it logs it without giving it to any server.
  Parts other;
  (void)other.recovery.enable("/", kRetention);
  wire::Document read = document;
  read.header.origin = "the-sender";
  auto extension = *wire::decode_extension(*read.extension);
  CHECK(other.recovery.on_extension(read, extension, "pos-1"));
  CHECK(other.recovery.log("/")->packets() == 1);
}

TEST_CASE("on an unshared bus a session is restored here, with what it missed, once") {
  Parts parts;
  (void)parts.recovery.enable("/", kRetention);
  REQUIRE(parts.recovery.persist("/", session("p")).ok());
  Command command;
  parts.recovery.log_from_bus(event("[\"missed\"]"), everyone(), std::nullopt, "pos-1", command);

  std::optional<Result<RestoredSession>> answer;
  restore(parts, "p", answer);
  REQUIRE(answer);
  REQUIRE(answer->ok());
  CHECK((*answer)->session == session("p"));
  CHECK((*answer)->missed.size() == 1);

  answer.reset();
  restore(parts, "p", answer);
  REQUIRE(answer);
  CHECK(answer->error().code == ErrorCode::kNotFound);
  CHECK_FALSE(parts.recovery.persist("/off", session("q")).ok());
}

TEST_CASE("on a shared bus a restore waits for its claim to come back through the bus") {
  Parts parts;
  parts.bus.is_shared = true;
  (void)parts.recovery.enable("/", kRetention);
  REQUIRE(parts.recovery.persist("/", session("p")).ok());
  std::optional<Result<RestoredSession>> answer;
  restore(parts, "p", answer);
  CHECK_FALSE(answer);
  parts.recovery.read_through("pos-9");
  parts.recovery.on_echo(last_claim(parts), "pos-9");
  REQUIRE(answer);
  REQUIRE(answer->ok());
  CHECK((*answer)->session.sid == "sid-p");
}

TEST_CASE("a restore whose claim never comes back fails after request_timeout") {
  Parts parts;
  parts.bus.is_shared = true;
  (void)parts.recovery.enable("/", kRetention);
  std::optional<Result<RestoredSession>> answer;
  restore(parts, "p", answer);
  parts.advance(parts.config.request_timeout - Millis{1});
  CHECK_FALSE(answer);
  parts.advance(Millis{1});
  REQUIRE(answer);
  CHECK(answer->error().code == ErrorCode::kNotFound);
}

TEST_CASE("a claim back before its session waits for the session on its way") {
  Parts parts;
  parts.bus.is_shared = true;
  (void)parts.recovery.enable("/", kRetention);
  std::optional<Result<RestoredSession>> answer;
  restore(parts, "p", answer);
  parts.recovery.on_echo(last_claim(parts), "pos-1");
  CHECK_FALSE(answer);
  // The session of another daemon arrives.
  wire::Document from_peer{
      {wire::MessageKind::kRequest, "/", "peer", std::string(wire::kSiobridgeTarget), std::nullopt},
      {},
      std::nullopt};
  wire::Extension extension = wire::RecoverySession{"p", "sid-p", {"room"}, "{}"};
  CHECK(parts.recovery.on_extension(from_peer, extension, "pos-2"));
  REQUIRE(answer);
  REQUIRE(answer->ok());
  CHECK((*answer)->session == session("p"));
}

TEST_CASE("what reaches a namespace without servers is logged as they would have had it") {
  Parts parts;
  (void)parts.recovery.enable("/", kRetention);
  const std::string peer = "peerNode00000001";  // valid ids: the request is decoded
  wire::Request request{
      peer,         "request000000001", wire::RequestType::kBroadcast, event("[\"e\"]"),
      std::nullopt, everyone()};
  wire::Document document{{wire::MessageKind::kRequest, "/", peer, std::nullopt, std::nullopt},
                          wire::encode_request(request),
                          std::nullopt};
  parts.recovery.on_unattended_document(document, "pos-1");
  document.header.target = "someoneElse00001";  // not for this node's servers
  parts.recovery.on_unattended_document(document, "pos-2");
  CHECK(parts.recovery.log("/")->packets() == 1);
}
