// Connection state recovery (docs/recovery.md): the node logs what its
// servers are given in namespaces where a server asked for recovery, and keeps
// the sessions of disconnected clients, so that a client recovers on any
// server attached to this daemon.
#include <spdlog/spdlog.h>

#include "daemon/core/node.h"

namespace siobridge::core {

RecoveryLog* Node::mutable_recovery_log(const std::string& ns) {
  auto it = recovery_.find(ns);
  return it == recovery_.end() ? nullptr : &it->second;
}

const RecoveryLog* Node::recovery_log(const std::string& ns) const {
  auto it = recovery_.find(ns);
  return it == recovery_.end() ? nullptr : &it->second;
}

RecoveryTotals Node::recovery_totals() const {
  RecoveryTotals totals;
  for (const auto& [ns, log] : recovery_) {
    totals.stats += log.stats();
    totals.packets += log.packets();
    totals.bytes += log.bytes();
    totals.sessions += log.sessions();
  }
  return totals;
}

void Node::enable_recovery(AttachmentId id, const std::string& ns, Millis retention) {
  auto [it, created] = recovery_.try_emplace(ns, retention, config_.recovery);
  if (created) {
    spdlog::info("connection state recovery on in {}: packets and sessions kept {} s", ns,
                 retention.count() / 1000);
  } else {
    it->second.extend_retention(retention);
  }
  // The server counts its clients' offsets from here: entries logged before
  // it used the namespace were never its clients'.
  Command mark = make_command(CommandKind::kRecoveryMark, ns, {});
  mark.log_seq = it->second.last_seq();
  send(id, mark);
}

void Node::log_for_recovery(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                            AttachmentId origin, std::uint64_t own_seq, Command& command) {
  RecoveryLog* log = mutable_recovery_log(packet.ns);
  if (log == nullptr || !is_recoverable(packet, opts)) return;
  const auto trimmed_before = log->stats().trimmed_early;
  command.log_seq =
      log->append(packet, opts, own_seq == 0 ? kNoAttachment : origin, own_seq, clock_.now());
  if (log->stats().trimmed_early != trimmed_before && trimmed_before % 10'000 == 0) {
    // Clients that were away longer than what is left cannot recover.
    spdlog::warn(
        "connection state recovery in {}: packets dropped for space before their time ({} so "
        "far); raise recovery.log_bytes to keep maxDisconnectionDuration",
        packet.ns, log->stats().trimmed_early);
  }
}

Status Node::persist_session(AttachmentId from, const std::string& ns, SessionRecord session) {
  if (auto s = check_caller(from, ns); !s) return s;
  RecoveryLog* log = mutable_recovery_log(ns);
  if (log == nullptr) {
    return make_error(ErrorCode::kFailedPrecondition, "connection state recovery is off in " + ns +
                                                          " (join the namespace with recovery_ms)");
  }
  log->save_session(std::move(session), clock_.now());
  return {};
}

Result<RestoredSession> Node::restore_session(AttachmentId from, const std::string& ns,
                                              const std::string& pid, const RecoveryPoint& point) {
  if (auto s = check_caller(from, ns); !s) return s.error();
  RecoveryLog* log = mutable_recovery_log(ns);
  if (log == nullptr) {
    return make_error(ErrorCode::kNotFound, "connection state recovery is off in " + ns);
  }
  return log->restore(pid, point, from, clock_.now());
}

}  // namespace siobridge::core
