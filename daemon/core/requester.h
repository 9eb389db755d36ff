// Requester: the operations an attached server (or an external emitter) asks
// of the cluster (PROTOCOL.md section 5), on the side that asks. The caller
// applies each operation to its own sockets itself; the requester reaches the
// other attached servers and the other nodes. Remote first, then local: the
// request is published before the other attached servers get their command,
// and the operation gathering the answers is registered before publishing.
// Errors and callbacks are those of the same methods of Node (node.h).
//
// Not thread-safe: core thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/core/connection_recovery.h"
#include "daemon/core/gathering.h"
#include "daemon/core/membership.h"
#include "daemon/core/operation.h"
#include "daemon/core/operation_table.h"
#include "daemon/core/results.h"

namespace siobridge::core {

class Requester {
 public:
  Requester(const OperationContext& operations, Membership& membership,
            ConnectionRecovery& recovery, const BusHealth& bus)
      : operations_(operations), membership_(membership), recovery_(recovery), bus_(bus) {}
  Requester(const Requester&) = delete;
  Requester& operator=(const Requester&) = delete;

  Status broadcast(AttachmentId from, const wire::Packet& packet,
                   const wire::BroadcastOptions& opts, const RecoveryTag& tag);
  Status broadcast_with_ack(AttachmentId from, const wire::Packet& packet,
                            const wire::BroadcastOptions& opts, Millis ack_timeout,
                            AckStream stream);
  Status add_sockets(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                     const std::vector<std::string>& rooms);
  Status del_sockets(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                     const std::vector<std::string>& rooms);
  Status disconnect_sockets(AttachmentId from, const std::string& ns,
                            const wire::BroadcastOptions& opts, bool close);
  Status fetch_sockets(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                       std::function<void(SocketsResult)> done);
  Status all_rooms(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
                   std::function<void(RoomsResult)> done);
  Status server_side_emit(AttachmentId from, const std::string& ns, wire::Bytes payload,
                          bool wants_ack, Millis timeout, std::function<void(EmitResult)> done);

 private:
  bool is_local_only(const wire::BroadcastOptions& opts) const;
  // kUnavailable while the bus cannot reach the other nodes.
  Status check_cluster_reachable() const;
  Status fire_and_forget(AttachmentId from, const std::string& ns, wire::RequestType type,
                         const wire::BroadcastOptions& opts, Command command,
                         std::optional<std::vector<std::string>> rooms,
                         const wire::RequestInfo& info);
  // fire_and_forget without the checks, for callers that made them.
  Status fan_out(AttachmentId from, const std::string& ns, wire::RequestType type,
                 const wire::BroadcastOptions& opts, Command command,
                 std::optional<std::vector<std::string>> rooms, const wire::RequestInfo& info);
  // Registers `gathering`, runs `publish` (when it waits for other nodes: they
  // are in `remote`), sends `command` to the other attached servers of `ns` and
  // arms `deadline`. On a publish error nothing is sent and the gathering is
  // discarded without calling its callback.
  Status run_gathering(AttachmentId from, const std::string& ns,
                       std::unique_ptr<Gathering> gathering, Command command,
                       std::vector<std::string> remote, Millis deadline,
                       const std::function<Status(const std::string& request_id)>& publish);
  // A question to every server that `opts` selects (fetch_sockets, all_rooms):
  // checks, then run_gathering with the gathering that `make` returns for its
  // command id. With the local flag only `answer_empty` runs: the caller
  // answers for its own sockets.
  Status ask(AttachmentId from, const std::string& ns, const wire::BroadcastOptions& opts,
             wire::RequestType type, CommandKind kind,
             const std::function<std::unique_ptr<Gathering>(CommandId)>& make,
             const std::function<void()>& answer_empty);

  const NodeConfig& config() const { return operations_.node.config; }
  const std::string& uid() const { return operations_.node.uid; }

  OperationTable& table() const { return operations_.table; }

  const OperationContext operations_;
  Membership& membership_;
  ConnectionRecovery& recovery_;
  const BusHealth& bus_;
};

}  // namespace siobridge::core
