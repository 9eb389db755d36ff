// Node: one member of the socket.io cluster, the core of siobridged. It owns all
// cluster state of a daemon: the attached local servers and their namespaces,
// the peers of each namespace and their liveness, and the requests in flight in
// both directions (PROTOCOL.md sections 5-6). It does no I/O: it publishes
// documents through a Bus, pushes Commands through LocalServers and schedules
// its deadlines on a TimerQueue; events (calls from attached servers, documents
// from the bus, timers) drive it.
//
// The work is done by parts with one job each, which the Node owns and wires
// together: Membership (attached servers, namespaces, peers and their
// liveness), RestartHold (what arrives for a namespace while its servers come
// back after a restart), Requester and Responder (the two sides of every
// operation, kept in flight in an OperationTable), ConnectionRecovery
// (connection state recovery) and an Outbox for all that is published. The
// Node itself routes the documents of the bus and the answers of attached
// servers to the part they concern.
//
// Not thread-safe: every method runs on the core thread. Callbacks it invokes
// (results, LocalServer::deliver) run on that thread too and must not call back
// into the Node before returning.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "daemon/bus/bus.h"
#include "daemon/common/result.h"
#include "daemon/common/skip_log.h"
#include "daemon/core/ack_operations.h"
#include "daemon/core/connection_recovery.h"
#include "daemon/core/local_server.h"
#include "daemon/core/membership.h"
#include "daemon/core/node_config.h"
#include "daemon/core/node_context.h"
#include "daemon/core/node_status.h"
#include "daemon/core/operation.h"
#include "daemon/core/operation_table.h"
#include "daemon/core/outbox.h"
#include "daemon/core/peer_table.h"
#include "daemon/core/recovery_log.h"
#include "daemon/core/requester.h"
#include "daemon/core/responder.h"
#include "daemon/core/restart_hold.h"
#include "daemon/core/results.h"
#include "daemon/core/socket_aliases.h"
#include "daemon/core/timer_queue.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

class Node {
 public:
  Node(NodeConfig config, bus::Bus& bus, const Clock& clock, TimerQueue& timers);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& uid() const { return uid_; }
  const std::string& instance() const { return instance_; }
  const NodeConfig& config() const { return config_; }

  // A broadcast with acks ends this long after the caller's ack timeout: what
  // an ack sent in time needs to travel from another node.
  static constexpr Millis kAckSlack = core::kAckSlack;

  // ---- attached servers ----
  AttachmentId attach(LocalServer& server, std::string name);
  // Forgets the server at once; operations waiting for it stop waiting.
  void detach(AttachmentId id);
  // A namespace is active while at least one attached server uses it. A
  // non-zero `recovery` turns on connection state recovery for the namespace
  // (see below) with that retention.
  Status join_namespace(AttachmentId id, const std::string& ns, Millis recovery = Millis{0});
  Status leave_namespace(AttachmentId id, const std::string& ns);

  // ---- operations asked by an attached server ----
  // The caller applies each operation to its own sockets itself; the node
  // reaches the other attached servers and the other nodes. A callback (`done`,
  // the AckStream) is called exactly when the call returns OK, possibly before
  // it returns. Errors:
  // kFailedPrecondition for an unknown attachment or a namespace it did not
  // join, kInvalidArgument for bad options, kUnavailable when the bus refused,
  // kResourceExhausted when the bus can never take the message (too large).
  // `tag`: how the caller counts the packet for connection state recovery.
  Status broadcast(AttachmentId from, const wire::Packet& packet,
                   const wire::BroadcastOptions& opts, const RecoveryTag& tag = {});
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
  // Reaches the other servers of the namespace (attached here or to other
  // siobridge nodes; socketioxide nodes have no server-side emit). With
  // wants_ack, `done` gets one response per server that answered within
  // `timeout`; without, `done` may be empty.
  Status server_side_emit(AttachmentId from, const std::string& ns, wire::Bytes payload,
                          bool wants_ack, Millis timeout, std::function<void(EmitResult)> done);
  // Attached servers using `ns` plus the servers of its live peers.
  std::uint32_t server_count(const std::string& ns) const;

  // ---- connection state recovery (recovery_log.h, docs/recovery.md) ----
  // While a namespace has recovery on, every recoverable packet its servers
  // are given is logged, and broadcast commands carry their log entry.
  // kFailedPrecondition when `ns` has recovery off.
  Status persist_session(AttachmentId from, const std::string& ns, SessionRecord session);
  // Calls `done` once: kNotFound (the client gets a new session) when there is
  // nothing to restore. On a shared bus the session is claimed across the
  // cluster first (wire::RecoveryClaim): `done` runs when the claim came back,
  // or with kNotFound after request_timeout.
  void restore_session(AttachmentId from, const std::string& ns, const std::string& pid,
                       const RecoveryPoint& point,
                       std::function<void(Result<RestoredSession>)> done);
  // Null when `ns` has recovery off.
  const RecoveryLog* recovery_log(const std::string& ns) const;
  RecoveryTotals recovery_totals() const;

  // ---- answers of attached servers to commands ----
  void on_ack_count(AttachmentId from, CommandId command, std::uint32_t count);
  void on_ack(AttachmentId from, CommandId command, const std::string& sid, AckResult result);
  void on_rooms(AttachmentId from, CommandId command, std::vector<std::string> rooms);
  void on_sockets(AttachmentId from, CommandId command, std::vector<wire::SocketDetails> sockets);
  void on_emit_reply(AttachmentId from, CommandId command, wire::Bytes payload);

  // ---- the bus ----
  // `position`: the document's place in the cluster's delivery order when the
  // bus knows it (wire::format_position); passed on to the commands it causes.
  void on_document(const wire::Document& document, const std::string& position = {});
  void on_bus_state(bus::BusState state, const std::string& detail);

  // ---- restarts and graceful stops ----
  // Before any server attaches: what this node was doing before it stopped.
  // Documents of those namespaces are held until as many servers use them
  // again, or config.restart_grace passes; the peers known then count as
  // alive until heard from or expired.
  void resume(const Handover& before);
  // What to resume from after a restart (see Handover).
  Handover snapshot() const;
  // Changes whenever snapshot() would.
  std::uint64_t state_version() const { return membership_.state_version(); }
  // A graceful stop: tells the other siobridge nodes that this node leaves,
  // and publishes no heartbeat from now on.
  void leave_cluster();

  NodeStatus status() const;
  const NodeStats& stats() const { return stats_; }
  bool has_attachment(AttachmentId id) const { return membership_.has_attachment(id); }
  // Changes whenever a peer joins or leaves any namespace.
  std::uint64_t peers_version() const { return membership_.peers_version(); }
  // Every live peer uid, over all namespaces.
  std::set<std::string> all_peers() const;

 private:
  // A request of an active namespace: heartbeats go to the Membership, the
  // rest to the Responder.
  void on_request_document(const wire::Document& document, const std::string& position);
  void on_response_document(const wire::Document& document);
  // Ends the hold of `ns` (RestartHold): its documents are handled now, or
  // the namespace goes when no server came back for them.
  void release(const std::string& ns);

  NodeConfig config_;
  std::string uid_;
  std::string instance_;
  NodeStats stats_;
  SkipLog skipped_input_;
  BusHealth bus_health_;
  NodeContext context_;

  // The parts, each with one job, each built from those declared above it
  // (the Outbox asks the Membership for audiences only once both exist).
  SocketAliases aliases_;
  Outbox outbox_;
  Membership membership_;
  OperationTable operations_;
  OperationContext operation_context_;
  RestartHold hold_;
  ConnectionRecovery recovery_;
  Requester requester_;
  Responder responder_;
};

}  // namespace siobridge::core
