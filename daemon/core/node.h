// Node: one member of the socket.io cluster, the core of siobridged. It owns all
// cluster state of a daemon: the attached local servers and their namespaces,
// the peers of each namespace and their liveness, and the requests in flight in
// both directions (PROTOCOL.md sections 5-6). It does no I/O: it publishes
// documents through a Bus, pushes Commands through LocalServers and schedules
// its deadlines on a TimerQueue; events (calls from attached servers, documents
// from the bus, timers) drive it.
//
// Not thread-safe: every method runs on the core thread. Callbacks it invokes
// (results, LocalServer::deliver) run on that thread too and must not call back
// into the Node before returning.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/bus/bus.h"
#include "daemon/common/result.h"
#include "daemon/common/skip_log.h"
#include "daemon/core/local_server.h"
#include "daemon/core/node_config.h"
#include "daemon/core/node_status.h"
#include "daemon/core/peer_table.h"
#include "daemon/core/recovery_log.h"
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
  static constexpr Millis kAckSlack{250};

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
  std::uint64_t state_version() const { return state_version_; }
  // A graceful stop: tells the other siobridge nodes that this node leaves,
  // and publishes no heartbeat from now on.
  void leave_cluster();

  NodeStatus status() const;
  const NodeStats& stats() const { return stats_; }
  bool has_attachment(AttachmentId id) const { return attachments_.count(id) != 0; }
  // Changes whenever a peer joins or leaves any namespace.
  std::uint64_t peers_version() const { return peers_version_; }
  // Every live peer uid, over all namespaces.
  std::set<std::string> all_peers() const;

 private:
  // Operations in flight (node_operation.h): gatherings collect answers from
  // attached servers and other nodes; the ack ones stream.
  class Operation;
  class Gathering;
  class RoomsGathering;
  class SocketsGathering;
  class EmitQuery;
  class EmitResponder;
  class AckQuery;
  class AckResponder;

  struct Attachment {
    LocalServer* server = nullptr;
    std::string name;
    std::set<std::string> namespaces;
  };

  struct NamespaceState {
    std::set<AttachmentId> attachments;
    PeerTable peers;
    TimerId heartbeat_timer = 0;
    // Until then the peer table may still lack a live socketioxide node (every
    // node heartbeats once per interval): nothing of the namespace is packed.
    Millis discovering_until{0};
    // Which activation of the namespace this is: a discovery answer asked
    // for an earlier one does not count.
    std::uint64_t activation = 0;
  };

  // Documents of a namespace held after a restart (resume()).
  struct Held {
    std::uint32_t servers_before = 0;
    std::deque<std::pair<wire::Document, std::string>> documents;  // with their positions
    std::size_t bytes = 0;
  };

  // node.cc: attachments, namespaces, liveness, dispatch
  Status check_caller(AttachmentId from, const std::string& ns) const;
  void activate(const std::string& ns);
  void deactivate(const std::string& ns);
  void heartbeat_tick(const std::string& ns);
  void publish_heartbeat(const std::string& ns, wire::RequestType type,
                         std::optional<std::string> target);
  void on_request_document(const wire::Document& document, const std::string& position,
                           NamespaceState& state);
  void on_response_document(const wire::Document& document);
  void on_heartbeat(const wire::Document& document, const wire::Request& request,
                    NamespaceState& state);
  // Heartbeats of a held namespace count at once; everything else waits.
  bool hold(const wire::Document& document, const std::string& position, Held& held);
  void release(std::string ns);  // by value: callers pass keys of held_
  void on_goodbye(const std::string& uid);
  // Operations of `ns` stop waiting for `uid`.
  void peer_gone(const std::string& ns, const std::string& uid, const PeerExit& exit);

  // node_outgoing.cc: the requester side
  bool is_local_only(const wire::BroadcastOptions& opts) const;
  // kUnavailable while the bus cannot reach the other nodes.
  Status check_cluster_reachable() const;
  // Who must be able to read a document of `ns` for `target` (none: every
  // node of the namespace): siobridge nodes only when no socketioxide node is
  // among its readers, nor can be unknown yet (discovering_until).
  bus::Audience audience_for(const std::string& ns, const std::optional<std::string>& target) const;
  std::optional<std::string> target_of(const wire::BroadcastOptions& opts) const;
  Status publish_request(const std::string& ns, wire::Request request,
                         std::optional<std::string> target, const wire::RequestInfo& info);
  // A request of `ns` to every siobridge node (wire::kSiobridgeTarget)
  // carrying `extension`; `echo`: this node reads it back too.
  Status publish_to_siobridge(const std::string& ns, const wire::Extension& extension,
                              bool echo = false, wire::Bytes data = {});
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
  void discard(CommandId id);

  // node_recovery.cc
  struct PendingRestore {
    AttachmentId from;
    std::string ns;
    std::string pid;
    RecoveryPoint point;
    std::function<void(Result<RestoredSession>)> done;
    TimerId timer = 0;
    bool claimed = false;  // the claim came back before the session: waiting for it
  };
  void enable_recovery(AttachmentId id, const std::string& ns, Millis retention);
  // Logs a recoverable packet given to servers of `ns` (when recovery is on)
  // and marks `command` with its entry. On a shared bus, returns where it
  // stands in the log, for the document that carries it.
  std::optional<wire::RecoveryEntryInfo> log_for_recovery(const wire::Packet& packet,
                                                          const wire::BroadcastOptions& opts,
                                                          AttachmentId origin,
                                                          std::uint64_t own_seq, Command& command);
  // The same for a packet read from the bus at `position`.
  void log_from_bus(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                    const std::optional<wire::RequestInfo>& info, const std::string& position,
                    Command& command);
  // A packet its server delivered itself: the other daemons log it too.
  void publish_log_only(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                        const wire::RecoveryEntryInfo& entry);
  // Sessions, claims and log-only packets; false for other extensions.
  bool on_recovery_extension(const wire::Document& document, wire::Extension& extension,
                             const std::string& position);
  // What a namespace without servers here still logs.
  void on_unattended_document(const wire::Document& document, const std::string& position);
  // A document of this node's, back through the bus (wire::Document::echo).
  void on_echo(const wire::Document& document, const std::string& position);
  void on_claim(const std::string& ns, const std::string& claimant,
                const wire::RecoveryClaim& claim);
  void on_session(const std::string& ns, SessionRecord session);
  // Answers the restore of `claim_id`, if still waiting, with kNotFound.
  void fail_restore(const std::string& claim_id, const std::string& why);
  // Answers a claimed restore with `session` and what its point missed.
  void finish_restore(PendingRestore pending, SessionRecord session);
  void read_through(const std::string& position);
  RecoveryLog* mutable_recovery_log(const std::string& ns);

  // node_incoming.cc: the responder side
  void respond(const wire::Document& document, wire::Request request, const std::string& position,
               NamespaceState& state);
  // Sends `command` to `targets` and answers through `gathering` once they all
  // answered (or config.local_timeout passed).
  void gather_locally(std::unique_ptr<Gathering> gathering, Command command,
                      const std::vector<AttachmentId>& targets);
  void answer_fetch(const std::string& ns, const std::string& requester,
                    const std::string& request_id, bool siobridge_requester, SocketsResult result);
  void publish_response(const std::string& ns, const std::string& target,
                        const std::string& request_id, wire::Response response,
                        std::optional<wire::Extension> extension);
  void on_extension_request(const wire::Document& document, const std::string& position,
                            NamespaceState& state);

  // Plumbing shared by every operation.
  std::vector<AttachmentId> local_targets(const std::string& ns, AttachmentId except) const;
  void send(AttachmentId to, const Command& command);
  std::string name_of(AttachmentId id) const;
  const PeerTable& peers_of(const std::string& ns) const;
  CommandId next_command_id() { return next_command_id_++; }
  Operation* start(std::unique_ptr<Operation> operation);
  Operation* find_operation(CommandId id);
  void reap(CommandId id);
  template <typename Fn>
  void with_operation(CommandId id, Fn&& fn);

  NodeConfig config_;
  std::string uid_;
  std::string instance_;
  bus::Bus& bus_;
  const Clock& clock_;
  TimerQueue& timers_;

  std::unordered_map<AttachmentId, Attachment> attachments_;
  std::map<std::string, NamespaceState> namespaces_;
  std::unordered_map<CommandId, std::unique_ptr<Operation>> operations_;
  std::unordered_map<std::string, CommandId> by_request_id_;
  std::map<std::string, Held> held_;
  SocketAliases aliases_;
  // Kept while the node lives, not only while the namespace is active:
  // sessions outlive a restart of the app server.
  std::map<std::string, RecoveryLog> recovery_;
  std::unordered_map<std::string, PendingRestore> pending_restores_;  // by claim id
  // The position of the last document read from the bus (none held back):
  // every recoverable packet before it is logged.
  std::string bus_position_;
  TimerId handover_timer_ = 0;
  bool leaving_ = false;
  AttachmentId next_attachment_id_ = 1;
  CommandId next_command_id_ = 1;

  std::uint64_t peers_version_ = 0;
  std::uint64_t activations_ = 0;
  std::uint64_t state_version_ = 0;
  bus::BusState bus_state_ = bus::BusState::kStarting;
  std::string bus_detail_;
  NodeStats stats_;
  SkipLog skipped_input_;  // documents of the bus skipped because they did not decode
};

}  // namespace siobridge::core
