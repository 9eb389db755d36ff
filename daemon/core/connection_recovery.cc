#include <spdlog/spdlog.h>

#include "daemon/core/connection_recovery.h"
#include "daemon/wire/ids.h"
#include "daemon/wire/payload_codec.h"

namespace siobridge::core {
namespace {

// How long a restore whose claim came back before the session waits for it:
// the session's daemon may still be writing what its server sent before.
constexpr Millis kSessionWait{1'500};

void warn_if_trimmed(const RecoveryLog& log, std::uint64_t trimmed_before, const std::string& ns) {
  if (log.stats().trimmed_early != trimmed_before && trimmed_before % 10'000 == 0) {
    // Clients that were away longer than what is left cannot recover.
    spdlog::warn(
        "connection state recovery in {}: packets dropped for space before their time ({} so "
        "far); raise recovery.log_bytes to keep maxDisconnectionDuration",
        ns, log.stats().trimmed_early);
  }
}

}  // namespace

ConnectionRecovery::~ConnectionRecovery() {
  for (auto& [claim_id, pending] : pending_restores_) context_.timers.cancel(pending.timer);
}

void ConnectionRecovery::forget_attachment(AttachmentId id) {
  for (auto& [ns, log] : logs_) log.forget_attachment(id);
}

RecoveryLog* ConnectionRecovery::mutable_log(const std::string& ns) {
  auto it = logs_.find(ns);
  return it == logs_.end() ? nullptr : &it->second;
}

const RecoveryLog* ConnectionRecovery::log(const std::string& ns) const {
  auto it = logs_.find(ns);
  return it == logs_.end() ? nullptr : &it->second;
}

RecoveryTotals ConnectionRecovery::totals() const {
  RecoveryTotals totals;
  for (const auto& [ns, log] : logs_) {
    totals.stats += log.stats();
    totals.packets += log.packets();
    totals.bytes += log.bytes();
    totals.sessions += log.sessions();
  }
  return totals;
}

void ConnectionRecovery::read_through(const std::string& position) {
  if (position.empty()) return;
  if (bus_position_.empty()) {
    // The first document read: what came before was never seen here.
    for (auto& [ns, log] : logs_) log.start_reading_at(position);
  }
  if (position > bus_position_) bus_position_ = position;
}

Command ConnectionRecovery::enable(const std::string& ns, Millis retention) {
  auto [it, created] =
      logs_.try_emplace(ns, retention, context_.config.recovery, context_.instance, bus_position_);
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
  mark.log_seen_through = bus_position_;
  return mark;
}

std::optional<wire::RecoveryEntryInfo> ConnectionRecovery::log_own(
    const wire::Packet& packet, const wire::BroadcastOptions& opts, AttachmentId origin,
    std::uint64_t own_seq, Command& command) {
  RecoveryLog* log = mutable_log(packet.ns);
  if (log == nullptr || !is_recoverable(packet, opts)) return std::nullopt;
  const auto trimmed_before = log->stats().trimmed_early;
  if (own_seq == 0) origin = kNoAttachment;
  command.log_seq = log->append(packet, opts, origin, own_seq, context_.clock.now(), bus_position_);
  command.log_seen_through = bus_position_;
  warn_if_trimmed(*log, trimmed_before, packet.ns);
  if (!outbox_.shared()) return std::nullopt;
  return wire::RecoveryEntryInfo{context_.instance, *command.log_seq, origin, own_seq};
}

void ConnectionRecovery::log_from_bus(const wire::Packet& packet,
                                      const wire::BroadcastOptions& opts,
                                      const std::optional<wire::RequestInfo>& info,
                                      const std::string& position, Command& command) {
  RecoveryLog* log = mutable_log(packet.ns);
  if (log == nullptr || !is_recoverable(packet, opts)) return;
  std::optional<EntryOrigin> origin;
  if (info && info->recovery) {
    const auto& r = *info->recovery;
    origin = EntryOrigin{r.instance, r.seq, r.attachment, r.own_seq};
  }
  const auto trimmed_before = log->stats().trimmed_early;
  command.log_seq =
      log->append_from_bus(packet, opts, std::move(origin), position, context_.clock.now());
  command.log_seen_through = position;
  warn_if_trimmed(*log, trimmed_before, packet.ns);
}

void ConnectionRecovery::publish_log_only(const wire::Packet& packet,
                                          const wire::BroadcastOptions& opts,
                                          const wire::RecoveryEntryInfo& entry) {
  wire::Request request{context_.uid, wire::generate_id(), wire::RequestType::kBroadcast,
                        packet,       std::nullopt,        opts};
  wire::RequestInfo info;
  info.recovery = entry;
  info.log_only = true;
  // On failure it is logged here all the same: recoverable on this daemon.
  (void)outbox_.publish_to_siobridge(packet.ns, info, /*echo=*/true, wire::encode_request(request));
}

Status ConnectionRecovery::persist(const std::string& ns, SessionRecord session) {
  RecoveryLog* log = mutable_log(ns);
  if (log == nullptr) {
    return make_error(ErrorCode::kFailedPrecondition, "connection state recovery is off in " + ns +
                                                          " (join the namespace with logs_ms)");
  }
  if (outbox_.shared()) {
    // After every packet its server sent before (the bus keeps a node's
    // order), so a daemon that has read the session has read those too.
    if (!outbox_
             .publish_to_siobridge(
                 ns, wire::RecoverySession{session.pid, session.sid, session.rooms, session.data})
             .ok()) {
      spdlog::warn("session {} of {} is kept on this daemon only: the bus refused it", session.sid,
                   ns);
    }
  }
  log->save_session(std::move(session), context_.clock.now());
  return {};
}

void ConnectionRecovery::restore(AttachmentId from, const std::string& ns, const std::string& pid,
                                 const RecoveryPoint& point,
                                 std::function<void(Result<RestoredSession>)> done) {
  RecoveryLog* log = mutable_log(ns);
  if (log == nullptr) {
    return done(make_error(ErrorCode::kNotFound, "connection state recovery is off in " + ns));
  }
  if (!outbox_.shared()) return done(log->restore(pid, point, from, context_.clock.now()));
  // Checked before the claim: the session stays when the offset cannot be used.
  if (auto s = log->check_point(point); !s) {
    log->count_restore(false);
    return done(s.error());
  }
  // The session may be another daemon's and still on its way; the claim comes
  // back after it, and after everything its server sent before it.
  const std::string claim_id = wire::generate_id();
  if (!outbox_.publish_to_siobridge(ns, wire::RecoveryClaim{pid, claim_id}, /*echo=*/true).ok()) {
    log->count_restore(false);
    return done(make_error(ErrorCode::kNotFound,
                           "the session could not be claimed: the bus refused the claim"));
  }
  const TimerId timer = context_.timers.schedule(
      context_.clock.now() + context_.config.request_timeout, [this, claim_id] {
        fail_restore(claim_id, "the session claim did not come back through the bus in time");
      });
  pending_restores_.emplace(claim_id,
                            PendingRestore{from, ns, pid, point, std::move(done), timer, false});
}

void ConnectionRecovery::on_claim(const std::string& ns, const std::string& claimant,
                                  const wire::RecoveryClaim& claim) {
  RecoveryLog* log = mutable_log(ns);
  // The first claim of a pid gets the session; every node forgets it then. A
  // claim read before its session holds the pid for the session to come.
  const Millis now = context_.clock.now();
  auto session = log ? log->take_session(claim.pid, now) : std::nullopt;
  // Every claim holds the pid for a while: a later claim of it fails at once,
  // and a session still on its way is the first claimant's when it comes.
  const bool first = log != nullptr &&
                     log->remember_claim(claim.pid, now + 2 * context_.config.request_timeout, now);
  if (claimant != context_.uid) return;
  auto it = pending_restores_.find(claim.claim);
  if (it == pending_restores_.end()) return;
  if (!session && first) {
    // Answered when the session comes; a session that does not come soon was
    // never there (or expired): the client should not wait long for that.
    PendingRestore& waiting = it->second;
    waiting.claimed = true;
    context_.timers.cancel(waiting.timer);
    waiting.timer = context_.timers.schedule(now + kSessionWait, [this, id = claim.claim] {
      fail_restore(id, "no session with this pid (unknown, used or expired)");
    });
    return;
  }
  auto pending = std::move(it->second);
  pending_restores_.erase(it);
  context_.timers.cancel(pending.timer);
  if (!session) {
    if (log != nullptr) log->count_restore(false);
    return pending.done(make_error(ErrorCode::kNotFound, "the session was restored already"));
  }
  finish_restore(std::move(pending), std::move(*session));
}

void ConnectionRecovery::fail_restore(const std::string& claim_id, const std::string& why) {
  auto it = pending_restores_.find(claim_id);
  if (it == pending_restores_.end()) return;
  auto pending = std::move(it->second);
  pending_restores_.erase(it);
  if (RecoveryLog* log = mutable_log(pending.ns)) log->count_restore(false);
  pending.done(make_error(ErrorCode::kNotFound, why));
}

void ConnectionRecovery::on_session(const std::string& ns, SessionRecord session) {
  RecoveryLog* log = mutable_log(ns);
  if (log == nullptr) return;
  if (!log->claimed(session.pid, context_.clock.now())) {
    log->save_session(std::move(session), context_.clock.now());
    return;
  }
  // Claimed before it came: the claimant's, if that is this node.
  for (auto it = pending_restores_.begin(); it != pending_restores_.end(); ++it) {
    if (!it->second.claimed || it->second.ns != ns || it->second.pid != session.pid) continue;
    auto pending = std::move(it->second);
    pending_restores_.erase(it);
    context_.timers.cancel(pending.timer);
    finish_restore(std::move(pending), std::move(session));
    return;
  }
}

void ConnectionRecovery::finish_restore(PendingRestore pending, SessionRecord session) {
  RecoveryLog* log = mutable_log(pending.ns);
  if (log == nullptr) {
    return pending.done(make_error(ErrorCode::kNotFound, "connection state recovery is off"));
  }
  if (auto s = log->check_point(pending.point); !s) {
    log->count_restore(false);
    return pending.done(s.error());
  }
  log->count_restore(true);
  auto restored = log->replay(std::move(session), pending.point, pending.from);
  pending.done(std::move(restored));
}

bool ConnectionRecovery::on_extension(const wire::Document& document, wire::Extension& extension,
                                      const std::string& position) {
  const std::string& ns = document.header.ns;
  if (auto* claim = std::get_if<wire::RecoveryClaim>(&extension)) {
    on_claim(ns, document.header.origin, *claim);
    return true;
  }
  if (auto* session = std::get_if<wire::RecoverySession>(&extension)) {
    on_session(ns, SessionRecord{std::move(session->pid), std::move(session->sid),
                                 std::move(session->rooms), std::move(session->data)});
    return true;
  }
  auto* info = std::get_if<wire::RequestInfo>(&extension);
  if (info == nullptr || !info->log_only) return false;
  auto request = wire::decode_request(document.data);
  if (!request.ok() || request->type != wire::RequestType::kBroadcast || !request->packet ||
      request->packet->ns != ns) {
    ++context_.stats.decode_errors;
    context_.skipped_input.skipped(
        context_.clock.now(), "a log-only packet from {}: {}", document.header.origin,
        request.ok() ? "not a broadcast of its namespace" : request.error().message);
    return true;
  }
  Command unused;
  log_from_bus(*request->packet, request->opts.value_or(wire::BroadcastOptions{}), *info, position,
               unused);
  return true;
}

void ConnectionRecovery::on_unattended_document(const wire::Document& document,
                                                const std::string& position) {
  if (document.header.kind != wire::MessageKind::kRequest) return;
  std::optional<wire::RequestInfo> info;
  if (document.extension) {
    auto ext = wire::decode_extension(*document.extension);
    if (!ext.ok()) {
      ++context_.stats.decode_errors;
      context_.skipped_input.skipped(context_.clock.now(), "an extension from {}: {}",
                                     document.header.origin, ext.error().message);
      return;
    }
    if (document.header.target && *document.header.target == wire::kSiobridgeTarget) {
      on_extension(document, *ext, position);
      return;
    }
    if (auto* request_info = std::get_if<wire::RequestInfo>(&*ext)) info = *request_info;
  }
  if (document.header.target && *document.header.target != context_.uid) return;
  auto request = wire::decode_request(document.data);
  if (!request.ok() || request->type != wire::RequestType::kBroadcast || !request->packet) return;
  // As respond() would have given it to the servers.
  auto opts = request->opts.value_or(wire::BroadcastOptions{});
  opts.flags &= static_cast<std::uint8_t>(~wire::broadcast_flags::kLocal);
  if (!info) aliases_.resolve(opts);
  Command unused;
  log_from_bus(*request->packet, opts, info, position, unused);
}

void ConnectionRecovery::on_echo(const wire::Document& document, const std::string& position) {
  if (!document.extension) return;
  auto ext = wire::decode_extension(*document.extension);
  if (!ext.ok()) return;
  if (auto* claim = std::get_if<wire::RecoveryClaim>(&*ext)) {
    on_claim(document.header.ns, context_.uid, *claim);
    return;
  }
  auto* info = std::get_if<wire::RequestInfo>(&*ext);
  if (info == nullptr || !info->recovery || info->recovery->instance != context_.instance) return;
  if (RecoveryLog* log = mutable_log(document.header.ns)) {
    log->set_position(info->recovery->seq, position);
  }
}

}  // namespace siobridge::core
