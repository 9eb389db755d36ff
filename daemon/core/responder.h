// Responder: requests of other nodes (PROTOCOL.md section 5), on the side that
// answers. Each is fanned out to the attached servers of its namespace as a
// Command; the answers are gathered and sent back once (fetch_sockets,
// all_rooms) or as they come (broadcast with acks, server-side emit).
//
// Not thread-safe: core thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/connection_recovery.h"
#include "daemon/core/gathering.h"
#include "daemon/core/membership.h"
#include "daemon/core/operation.h"
#include "daemon/core/operation_table.h"

namespace siobridge::core {

class Responder {
 public:
  Responder(const OperationContext& operations, Membership& membership,
            ConnectionRecovery& recovery)
      : operations_(operations), membership_(membership), recovery_(recovery) {}
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // A request (no heartbeat) of an active namespace, read at `position`.
  void respond(const wire::Document& document, wire::Request request, const std::string& position);
  // A request to every siobridge node (wire::kSiobridgeTarget) of an active
  // namespace: recovery traffic or a server-side emit.
  void on_extension_request(const wire::Document& document, const std::string& position);

 private:
  // Sends `command` to `targets` and answers through `gathering` once they all
  // answered (or config.local_timeout passed).
  void gather_locally(std::unique_ptr<Gathering> gathering, Command command,
                      const std::vector<AttachmentId>& targets);
  void answer_fetch(const std::string& ns, const std::string& requester,
                    const std::string& request_id, bool siobridge_requester, SocketsResult result);

  const NodeConfig& config() const { return operations_.node.config; }
  const std::string& uid() const { return operations_.node.uid; }
  OperationTable& table() const { return operations_.table; }

  const OperationContext operations_;
  Membership& membership_;
  ConnectionRecovery& recovery_;
};

}  // namespace siobridge::core
