// Outbox: every document a Node publishes goes through here, so that the bus
// counters (NodeStats requests_out, responses_out, extensions_out,
// publish_failures) and the choice of audience are made in one place. It
// holds no state of its own beyond what it is given: who may read a document
// of a namespace is the membership's knowledge, asked through `audience`.
//
// Not thread-safe: core thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "daemon/bus/bus.h"
#include "daemon/common/result.h"
#include "daemon/core/node_context.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

class Outbox {
 public:
  // Who must be able to read a document of `ns` for `target` (none: every
  // node of the namespace).
  using AudienceFn =
      std::function<bus::Audience(const std::string& ns, const std::optional<std::string>& target)>;

  Outbox(const NodeContext& context, bus::Bus& bus, AudienceFn audience)
      : context_(context), bus_(bus), audience_(std::move(audience)) {}
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // A request of `ns`; its RequestInfo travels in the extension. A request
  // carrying a recovery entry comes back (echo) for the recovery log.
  Status publish_request(const std::string& ns, const wire::Request& request,
                         std::optional<std::string> target, const wire::RequestInfo& info);
  // A request of `ns` to every siobridge node (wire::kSiobridgeTarget)
  // carrying `extension`; `echo`: this node reads it back too.
  Status publish_to_siobridge(const std::string& ns, const wire::Extension& extension,
                              bool echo = false, wire::Bytes data = {});
  // An answer to `request_id` of `target`. A refused answer is only counted
  // and logged: the requester reports the node missing at its deadline.
  void publish_response(const std::string& ns, const std::string& target,
                        const std::string& request_id, const wire::Response& response,
                        std::optional<wire::Extension> extension);
  // A ServerSideEmitReply, which only siobridge requesters read.
  void publish_emit_reply(const std::string& ns, const std::string& target,
                          const std::string& request_id, wire::ServerSideEmitReply reply);
  // A heartbeat announcing `servers` attached servers. Always readable by
  // every node: heartbeats are how socketioxide nodes find this one. A
  // heartbeat the bus refuses is skipped; the next one follows.
  void publish_heartbeat(const std::string& ns, wire::RequestType type,
                         std::optional<std::string> target, std::uint32_t servers);

  bus::Audience audience_for(const std::string& ns,
                             const std::optional<std::string>& target) const {
    return audience_(ns, target);
  }
  bool shared() const { return bus_.shared(); }
  // Discovery at once (Bus::find_socketioxide): whether a socketioxide node
  // wrote to `ns` within `lookback`, answered on the core thread.
  void find_socketioxide(const std::string& ns, Millis lookback,
                         std::function<void(Result<bool>)> done) {
    bus_.find_socketioxide(ns, lookback, std::move(done));
  }

 private:
  const NodeContext context_;
  bus::Bus& bus_;
  AudienceFn audience_;
};

}  // namespace siobridge::core
