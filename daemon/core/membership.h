// Membership: who takes part in each namespace, as a Node sees it. The
// attached servers here (and the namespaces each joined), and the other nodes
// of each active namespace with their liveness (PROTOCOL.md section 6): this
// node heartbeats every active namespace, learns peers from their heartbeats
// and forgets those not heard from for heartbeat_timeout, or that said
// goodbye. Operations waiting for a peer that went are told through
// `peer_gone`.
//
// Not thread-safe: core thread only. `peer_gone` and LocalServer::deliver run
// on that thread and must not call back into the Membership before returning.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/bus/bus.h"
#include "daemon/common/result.h"
#include "daemon/core/local_server.h"
#include "daemon/core/node_config.h"
#include "daemon/core/node_context.h"
#include "daemon/core/node_status.h"
#include "daemon/core/outbox.h"
#include "daemon/core/peer_table.h"
#include "daemon/core/results.h"
#include "daemon/wire/document.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

class Membership {
 public:
  using PeerGoneFn =
      std::function<void(const std::string& ns, const std::string& uid, const PeerExit& exit)>;

  Membership(const NodeContext& context, Outbox& outbox, PeerGoneFn peer_gone)
      : context_(context), outbox_(outbox), peer_gone_(std::move(peer_gone)) {}
  ~Membership();  // cancels the heartbeat timers
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // ---- attached servers ----
  AttachmentId attach(LocalServer& server, std::string name);
  bool has_attachment(AttachmentId id) const { return attachments_.count(id) != 0; }
  std::set<std::string> namespaces_of(AttachmentId id) const;
  // Forgets an attachment that left its namespaces.
  void forget(AttachmentId id) { attachments_.erase(id); }
  // `id` (known) uses `ns` from now on. False when it did already. The first
  // server of a namespace activates it (InitHeartbeat, then heartbeats every
  // heartbeat_interval); any other is announced to the peers at once.
  bool join(AttachmentId id, const std::string& ns);
  // `id` (known) no longer uses `ns`. The last server deactivates it unless
  // `keep_active` (documents of the namespace are held for servers to come).
  void leave(AttachmentId id, const std::string& ns, bool keep_active);
  // kFailedPrecondition unless `from` is attached and joined `ns`
  // (kNoAttachment passes with any valid namespace).
  Status check_caller(AttachmentId from, const std::string& ns) const;

  std::vector<AttachmentId> local_targets(const std::string& ns, AttachmentId except) const;
  std::size_t attached_count(const std::string& ns) const;
  void send(AttachmentId to, const Command& command);
  // The attached server's name, or "#id" once it is gone.
  std::string name_of(AttachmentId id) const;

  // ---- namespaces and their peers ----
  // A namespace is active while a server uses it, or while it is held.
  bool is_active(const std::string& ns) const { return namespaces_.count(ns) != 0; }
  // Stops heartbeats and forgets the peers of `ns`; operations stop waiting
  // for them.
  void deactivate(const std::string& ns);
  // Peers known before a restart count as alive until heard from or expired.
  void remember_peers(const std::string& ns, const std::vector<PeerSnapshot>& peers);
  // A heartbeat of `ns` from another node (its document and decoded request).
  void on_heartbeat(const wire::Document& document, const wire::Request& request);
  // Any other message from a known peer keeps it alive.
  void touch(const std::string& ns, const std::string& uid);
  // A peer's graceful stop: it leaves every namespace.
  void on_goodbye(const std::string& uid);
  // A graceful stop of this node: no heartbeat from now on.
  void stop_heartbeats();
  bool leaving() const { return leaving_; }
  // Some active namespace, to say goodbye in.
  std::optional<std::string> any_namespace() const;

  const PeerTable& peers_of(const std::string& ns) const;
  // Attached servers using `ns` plus the servers of its live peers.
  std::uint32_t server_count(const std::string& ns) const;
  // Who must be able to read a document of `ns` for `target` (none: every
  // node of the namespace): siobridge nodes only when no socketioxide node is
  // among its readers, nor can be unknown yet (discovering_until).
  bus::Audience audience_for(const std::string& ns, const std::optional<std::string>& target) const;
  std::set<std::string> all_peers() const;

  // The namespaces in use and their peers; `held_servers` counts the servers
  // a namespace still held after a restart had before it.
  Handover snapshot(const std::function<std::uint32_t(const std::string&)>& held_servers) const;
  void fill_status(NodeStatus& status) const;

  std::uint64_t peers_version() const { return peers_version_; }
  std::uint64_t state_version() const { return state_version_; }

 private:
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

  void activate(const std::string& ns);
  void heartbeat_tick(const std::string& ns);
  void publish_heartbeat(const std::string& ns, wire::RequestType type,
                         std::optional<std::string> target);
  void changed() {
    ++peers_version_;
    ++state_version_;
  }

  const NodeContext context_;
  Outbox& outbox_;
  PeerGoneFn peer_gone_;
  std::unordered_map<AttachmentId, Attachment> attachments_;
  std::map<std::string, NamespaceState> namespaces_;
  AttachmentId next_attachment_id_ = 1;
  bool leaving_ = false;
  std::uint64_t peers_version_ = 0;
  std::uint64_t state_version_ = 0;
  std::uint64_t activations_ = 0;
};

}  // namespace siobridge::core
