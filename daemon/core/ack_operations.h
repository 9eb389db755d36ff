// The two sides of a broadcast with acks (PROTOCOL.md section 5): AckQuery
// streams counts and acks to the requester, AckResponder sends this node's
// count and acks back to another node's request.
//
// Not thread-safe: core thread only (operation.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/core/operation.h"

namespace siobridge::core {

// A broadcast with acks ends this long after the caller's ack timeout: what
// an ack sent in time needs to travel from another node.
inline constexpr Millis kAckSlack{250};

// The requester side: counts from every attached server and node, then the
// acks they announced.
class AckQuery final : public Operation {
 public:
  AckQuery(const OperationContext& context, CommandId id, std::string ns, AckStream stream,
           Millis ack_timeout)
      : Operation(context, id, std::move(ns)),
        stream_(std::move(stream)),
        ack_timeout_(ack_timeout) {}

  void expect_local(AttachmentId id, std::string name) {
    sources_.emplace(local_key(id), Source{std::move(name), true, std::nullopt, 0});
  }
  void expect_remote(const std::vector<std::string>& uids, std::string request_id);
  // Counting closes at request_timeout (or the ack deadline if sooner); the
  // whole query ends at ack_timeout + kAckSlack.
  void arm();

  void on_ack_count(AttachmentId from, std::uint32_t count) override;
  void on_ack(AttachmentId from, const std::string& sid, const AckResult& result) override;
  void on_response(const wire::Response& response, const wire::Document& document) override;
  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 private:
  struct Source {
    std::string name;  // attached server name or node uid
    bool local = true;
    std::optional<std::uint32_t> count;
    std::uint32_t acks = 0;
  };
  static std::string local_key(AttachmentId id) { return "#" + std::to_string(id); }
  void counted(const std::string& key, std::uint32_t count);
  void acked(const std::string& key, const std::string& sid, const AckResult& result);
  // The source left: what it announced and did not send is missing; when it
  // left before counting, `graceful` says whether it is missing too.
  void drop(const std::string& key, bool graceful);
  void close_counting();
  void check_done();
  void end(bool timed_out);

  AckStream stream_;
  Millis ack_timeout_;
  std::map<std::string, Source> sources_;
  Missing missing_;
  bool counting_closed_ = false;
};

// The responder side: one count (the sum over the attached servers) before
// any ack, then every ack as it arrives.
class AckResponder final : public Operation {
 public:
  // `siobridge_requester`: acks carry real socket ids, else their aliases.
  AckResponder(const OperationContext& context, CommandId id, std::string ns, std::string requester,
               std::string request_id, Millis ack_timeout, bool siobridge_requester)
      : Operation(context, id, std::move(ns)),
        requester_(std::move(requester)),
        siobridge_requester_(siobridge_requester),
        ack_timeout_(ack_timeout) {
    request_id_ = std::move(request_id);
  }

  void expect_local(AttachmentId id, std::string name) {
    pending_counts_.emplace(id, std::move(name));
  }
  // The count goes when every server counted, or at local_timeout without the
  // silent ones; the responder ends local_timeout + ack_timeout after.
  void arm();

  void on_ack_count(AttachmentId from, std::uint32_t count) override;
  void on_ack(AttachmentId from, const std::string& sid, const AckResult& result) override;
  void on_attachment_gone(AttachmentId id) override;

 private:
  void send_count();
  void publish_ack(const std::string& sid, const AckResult& result);
  void check_done();

  std::string requester_;
  bool siobridge_requester_;
  Millis ack_timeout_;
  std::map<AttachmentId, std::string> pending_counts_;
  std::map<AttachmentId, std::pair<std::uint32_t, std::uint32_t>> counted_;  // expected, received
  std::uint32_t total_ = 0;
  bool count_sent_ = false;
  std::vector<std::pair<std::string, AckResult>> buffered_;
};

}  // namespace siobridge::core
