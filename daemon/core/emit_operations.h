// The two sides of a server-side emit with acks (PROTOCOL.md section 5,
// siobridge nodes only): EmitQuery gathers the answers on the requester,
// EmitResponder relays those of this node's attached servers.
//
// Not thread-safe: core thread only (operation.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/operation.h"

namespace siobridge::core {

// The requester side: one answer from each attached server, and from each
// other siobridge node as many answers as it has servers (it says how many;
// until then its heartbeat's count stands).
class EmitQuery final : public Operation {
 public:
  EmitQuery(const OperationContext& context, CommandId id, std::string ns,
            std::function<void(EmitResult)> done)
      : Operation(context, id, std::move(ns)), done_(std::move(done)) {}

  void expect_local(AttachmentId id, std::string name) { local_.emplace(id, std::move(name)); }
  void expect_remote(const std::string& uid, std::uint32_t servers);
  void set_request_id(std::string request_id) { request_id_ = std::move(request_id); }
  // Starts the deadline; completes at once when nobody is awaited.
  void arm(Millis deadline);

  void on_emit_reply(AttachmentId from, wire::Bytes& payload) override;
  void on_emit_response(const std::string& uid, wire::ServerSideEmitReply& reply) override;
  void on_attachment_gone(AttachmentId id) override;
  void on_peer_gone(const std::string& uid, const PeerExit& exit) override;

 private:
  struct Remote {
    std::uint32_t servers = 0;  // from its heartbeats, then from its own answer
    std::uint32_t answered = 0;
    std::uint32_t gone = 0;
    bool done() const { return answered + gone >= servers; }
  };
  void check_done();
  void complete(bool timed_out);

  std::map<AttachmentId, std::string> local_;  // attached servers yet to answer
  std::map<std::string, Remote> remote_;
  std::uint32_t local_expected_ = 0;
  std::vector<wire::Bytes> responses_;
  std::function<void(EmitResult)> done_;
};

// The responder side: asks the attached servers and publishes each answer as
// it comes, until all answered or left, or the requester's deadline passed.
class EmitResponder final : public Operation {
 public:
  EmitResponder(const OperationContext& context, CommandId id, std::string ns,
                std::string requester, std::string request_id)
      : Operation(context, id, std::move(ns)), requester_(std::move(requester)) {
    request_id_ = std::move(request_id);
  }

  void expect_local(AttachmentId id) { pending_.insert(id); }
  // With no server to ask, answers at once that there are none.
  void arm(Millis deadline);

  void on_emit_reply(AttachmentId from, wire::Bytes& payload) override;
  void on_attachment_gone(AttachmentId id) override;

 private:
  void publish(wire::ServerSideEmitReply reply);

  std::string requester_;
  std::set<AttachmentId> pending_;
  std::uint32_t servers_ = 0;
};

}  // namespace siobridge::core
