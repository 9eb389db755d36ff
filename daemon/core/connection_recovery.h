// ConnectionRecovery: connection state recovery (docs/recovery.md) for a Node.
// In namespaces where a server asked for recovery it logs every recoverable
// packet the servers are given (one RecoveryLog per namespace) and keeps the
// sessions of disconnected clients, so that a client recovers on any server
// attached to this daemon or, through a shared bus, to any daemon of the
// cluster: sessions travel as wire::RecoverySession, and a restore claims the
// session across the cluster first (wire::RecoveryClaim).
//
// Not thread-safe: core thread only. The `done` callbacks of restore() run on
// that thread and must not call back into it before returning.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/common/result.h"
#include "daemon/core/local_server.h"
#include "daemon/core/node_context.h"
#include "daemon/core/outbox.h"
#include "daemon/core/recovery_log.h"
#include "daemon/core/socket_aliases.h"
#include "daemon/wire/document.h"
#include "daemon/wire/extension.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

class ConnectionRecovery {
 public:
  ConnectionRecovery(const NodeContext& context, Outbox& outbox, const SocketAliases& aliases)
      : context_(context), outbox_(outbox), aliases_(aliases) {}
  ~ConnectionRecovery();  // cancels the timers of pending restores
  ConnectionRecovery(const ConnectionRecovery&) = delete;
  ConnectionRecovery& operator=(const ConnectionRecovery&) = delete;

  // Turns recovery on in `ns` for `retention` (or extends it). Returns the
  // mark to send to the server that asked: its clients' offsets count from there.
  Command enable(const std::string& ns, Millis retention);
  bool enabled(const std::string& ns) const { return logs_.count(ns) != 0; }
  // Null when `ns` has recovery off.
  const RecoveryLog* log(const std::string& ns) const;
  RecoveryTotals totals() const;
  void forget_attachment(AttachmentId id);

  // Every document read from the bus passes its position here (in order):
  // every recoverable packet before it is logged.
  void read_through(const std::string& position);
  // Logs a recoverable packet given to servers of `ns` (when recovery is on)
  // and marks `command` with its entry. On a shared bus, returns where it
  // stands in the log, for the document that carries it.
  std::optional<wire::RecoveryEntryInfo> log_own(const wire::Packet& packet,
                                                 const wire::BroadcastOptions& opts,
                                                 AttachmentId origin, std::uint64_t own_seq,
                                                 Command& command);
  // The same for a packet read from the bus at `position`.
  void log_from_bus(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                    const std::optional<wire::RequestInfo>& info, const std::string& position,
                    Command& command);
  // A packet its server delivered itself: the other daemons log it too.
  void publish_log_only(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                        const wire::RecoveryEntryInfo& entry);

  // The caller was checked. kFailedPrecondition when `ns` has recovery off.
  Status persist(const std::string& ns, SessionRecord session);
  // The caller was checked. Calls `done` once: kNotFound (the client gets a
  // new session) when there is nothing to restore. On a shared bus `done`
  // runs when the claim came back, or with kNotFound after request_timeout.
  void restore(AttachmentId from, const std::string& ns, const std::string& pid,
               const RecoveryPoint& point, std::function<void(Result<RestoredSession>)> done);

  // Sessions, claims and log-only packets of another node; false for other
  // extensions.
  bool on_extension(const wire::Document& document, wire::Extension& extension,
                    const std::string& position);
  // A document of a namespace with recovery on but no server here: what its
  // servers would have been given is logged all the same.
  void on_unattended_document(const wire::Document& document, const std::string& position);
  // A document of this node's, back through the bus (wire::Document::echo),
  // after read_through(position).
  void on_echo(const wire::Document& document, const std::string& position);

 private:
  struct PendingRestore {
    AttachmentId from;
    std::string ns;
    std::string pid;
    RecoveryPoint point;
    std::function<void(Result<RestoredSession>)> done;
    TimerId timer = 0;
    bool claimed = false;  // the claim came back before the session: waiting for it
  };
  RecoveryLog* mutable_log(const std::string& ns);
  void on_claim(const std::string& ns, const std::string& claimant,
                const wire::RecoveryClaim& claim);
  void on_session(const std::string& ns, SessionRecord session);
  // Answers the restore of `claim_id`, if still waiting, with kNotFound.
  void fail_restore(const std::string& claim_id, const std::string& why);
  // Answers a claimed restore with `session` and what its point missed.
  void finish_restore(PendingRestore pending, SessionRecord session);

  const NodeContext context_;
  Outbox& outbox_;
  const SocketAliases& aliases_;
  // Kept while the node lives, not only while the namespace is active:
  // sessions outlive a restart of the app server.
  std::map<std::string, RecoveryLog> logs_;
  std::unordered_map<std::string, PendingRestore> pending_restores_;  // by claim id
  // The position of the last document read from the bus (none held back).
  std::string bus_position_;
};

}  // namespace siobridge::core
