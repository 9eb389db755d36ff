#include "daemon/core/recovery_log.h"

#include <algorithm>

#include <fmt/format.h>

namespace siobridge::core {
namespace {

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool any_in(const std::vector<std::string>& rooms, const std::vector<std::string>& list) {
  return std::any_of(rooms.begin(), rooms.end(),
                     [&](const std::string& room) { return contains(list, room); });
}

// socket.io's rule for a missed packet (its in-memory SessionAwareAdapter): it
// goes to a session that is in one of its rooms (or it names none) and in none
// of its except rooms. The options are first read as PROTOCOL.md section 3
// says: `sid` is left out under the Broadcast flag, or is the only target.
bool reaches(const wire::BroadcastOptions& opts, const std::vector<std::string>& session_rooms) {
  using namespace wire::broadcast_flags;
  std::vector<std::string> rooms = opts.rooms;
  std::vector<std::string> except = opts.except;
  if (opts.sid) {
    if (opts.has(kBroadcast)) {
      except.push_back(*opts.sid);
    } else if (rooms.empty()) {
      rooms.push_back(*opts.sid);
    }
  } else if (rooms.empty() && !opts.has(kBroadcast)) {
    return false;  // selects no socket at all
  }
  const bool included = rooms.empty() || any_in(session_rooms, rooms);
  return included && !any_in(session_rooms, except);
}

std::size_t size_of(const wire::Packet& packet, const wire::BroadcastOptions& opts) {
  std::size_t bytes = 64 + packet.ns.size();
  if (packet.data) {
    bytes += packet.data->bytes.size();
    if (packet.data->attachments) {
      for (const auto& attachment : *packet.data->attachments) bytes += attachment.size();
    }
  }
  for (const auto* list : {&opts.rooms, &opts.except}) {
    for (const auto& room : *list) bytes += room.size() + 16;
  }
  return bytes;
}

}  // namespace

RecoveryStats& RecoveryStats::operator+=(const RecoveryStats& other) {
  packets_logged += other.packets_logged;
  trimmed_early += other.trimmed_early;
  sessions_saved += other.sessions_saved;
  sessions_dropped += other.sessions_dropped;
  restored += other.restored;
  not_restored += other.not_restored;
  return *this;
}

bool is_recoverable(const wire::Packet& packet, const wire::BroadcastOptions& opts) {
  const bool event =
      packet.type == wire::PacketType::kEvent || packet.type == wire::PacketType::kBinaryEvent;
  return event && !packet.ack && !opts.has(wire::broadcast_flags::kVolatile);
}

RecoveryLog::RecoveryLog(Millis retention, RecoveryLimits limits, std::string instance,
                         std::string position)
    : retention_(retention),
      limits_(limits),
      instance_(std::move(instance)),
      complete_from_(std::move(position)) {}

void RecoveryLog::extend_retention(Millis retention) {
  retention_ = std::max(retention_, retention);
}

std::uint64_t RecoveryLog::append(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                                  AttachmentId origin, std::uint64_t own_seq, Millis now,
                                  const std::string& seen_through) {
  expire(now);
  const std::uint64_t seq = next_seq_++;
  const std::size_t bytes = size_of(packet, opts);
  entries_.push_back(
      Entry{seq, now, packet, opts, origin, own_seq, bytes, seen_through, {}, {}, 0});
  bytes_ += bytes;
  ++stats_.packets_logged;
  if (origin != kNoAttachment) own_seqs_[origin] = own_seq;
  while (bytes_ > limits_.max_bytes && entries_.size() > 1) {
    drop_oldest_entry();
    ++stats_.trimmed_early;
  }
  return seq;
}

std::uint64_t RecoveryLog::append_from_bus(const wire::Packet& packet,
                                           const wire::BroadcastOptions& opts,
                                           std::optional<EntryOrigin> origin,
                                           const std::string& position, Millis now) {
  const std::uint64_t seq = append(packet, opts, kNoAttachment, 0, now, position);
  Entry& entry = entries_.back();
  entry.position = position;
  if (origin) {
    entry.origin_instance = std::move(origin->instance);
    entry.origin_seq = origin->seq;
    entry.origin = origin->attachment;
    entry.own_seq = origin->own_seq;
  } else {
    entry.origin_instance = "-";
  }
  return seq;
}

void RecoveryLog::set_position(std::uint64_t seq, const std::string& position) {
  if (entries_.empty() || seq < entries_.front().seq || seq > entries_.back().seq) return;
  Entry& entry = entries_[seq - entries_.front().seq];
  if (entry.origin_instance.empty()) entry.position = position;
}

std::uint64_t RecoveryLog::own_seq(AttachmentId attachment) const {
  auto it = own_seqs_.find(attachment);
  return it == own_seqs_.end() ? 0 : it->second;
}

void RecoveryLog::drop_oldest_entry() {
  const Entry& oldest = entries_.front();
  floor_ = std::max(floor_, oldest.seq);
  // A later entry may sit before it in the bus order (its position came back
  // late): every point before its position may have missed it.
  complete_from_ = std::max({complete_from_, oldest.seen_through, oldest.position});
  bytes_ -= entries_.front().bytes;
  entries_.pop_front();
}

void RecoveryLog::drop_session(std::unordered_map<std::string, Session>::iterator it) {
  saved_order_.erase(it->second.order);
  sessions_.erase(it);
}

void RecoveryLog::save_session(SessionRecord session, Millis now) {
  expire(now);
  if (auto it = sessions_.find(session.pid); it != sessions_.end()) drop_session(it);
  while (!saved_order_.empty() && sessions_.size() >= limits_.max_sessions) {
    drop_session(sessions_.find(saved_order_.front()));
    ++stats_.sessions_dropped;
  }
  const std::string pid = session.pid;
  saved_order_.push_back(pid);
  sessions_.emplace(pid, Session{std::move(session), now, std::prev(saved_order_.end())});
  ++stats_.sessions_saved;
}

void RecoveryLog::expire(Millis now) {
  while (!claim_order_.empty() && claim_order_.front().first < now) {
    auto it = claims_.find(claim_order_.front().second);
    if (it != claims_.end() && it->second == claim_order_.front().first) claims_.erase(it);
    claim_order_.pop_front();
  }
  while (!entries_.empty() && entries_.front().logged_at + retention_ < now) drop_oldest_entry();
  while (!saved_order_.empty()) {
    auto it = sessions_.find(saved_order_.front());
    if (it->second.saved_at + retention_ >= now) break;
    drop_session(it);
  }
}

Status RecoveryLog::check_point(const RecoveryPoint& point) const {
  if (point.instance.empty() || point.instance == instance_) {
    if (point.seq < floor_) {
      return make_error(
          ErrorCode::kNotFound,
          fmt::format("the offset is older than the packets kept (entry {}, kept from {})",
                      point.seq, floor_ + 1));
    }
    if (point.seq > last_seq()) {
      return make_error(
          ErrorCode::kNotFound,
          fmt::format("the offset names entry {}, the log has {}", point.seq, last_seq()));
    }
    return {};
  }
  if (complete_from_.empty() || point.position.empty() || point.position < complete_from_) {
    return make_error(ErrorCode::kNotFound,
                      fmt::format("the offset of daemon instance {} is older than what this daemon "
                                  "kept (bus position {}, kept from {})",
                                  point.instance, point.position.empty() ? "none" : point.position,
                                  complete_from_));
  }
  return {};
}

std::optional<SessionRecord> RecoveryLog::take_session(const std::string& pid, Millis now) {
  expire(now);
  auto it = sessions_.find(pid);
  if (it == sessions_.end()) return std::nullopt;
  SessionRecord record = std::move(it->second.record);
  drop_session(it);
  return record;
}

bool RecoveryLog::remember_claim(const std::string& pid, Millis until, Millis now) {
  expire(now);
  if (claims_.count(pid) != 0) return false;
  while (claims_.size() >= limits_.max_sessions && !claim_order_.empty()) {
    claims_.erase(claim_order_.front().second);
    claim_order_.pop_front();
  }
  claims_.emplace(pid, until);
  claim_order_.emplace_back(until, pid);
  return true;
}

bool RecoveryLog::claimed(const std::string& pid, Millis now) {
  expire(now);
  return claims_.count(pid) != 0;
}

bool RecoveryLog::missed(const Entry& entry, const RecoveryPoint& point, bool local) const {
  const bool same_log =
      local ? entry.origin_instance.empty() : entry.origin_instance == point.instance;
  if (!same_log) {
    if (local) return entry.seq > point.seq;  // this log's order is the point's
    // Another log's entry the point's instance read from the bus: it had it
    // if it sits before the point's position. An entry of this log whose
    // position is not back yet was written after anything read so far.
    return entry.position.empty() || entry.position > point.position;
  }
  const std::uint64_t seq = local ? entry.seq : entry.origin_seq;
  if (seq <= point.seq) return false;
  // Its server had delivered it itself.
  return !(point.attachment != kNoAttachment && entry.origin == point.attachment &&
           entry.own_seq <= point.own_seq);
}

RestoredSession RecoveryLog::replay(SessionRecord session, const RecoveryPoint& point,
                                    AttachmentId restoring) const {
  const bool local = point.instance.empty() || point.instance == instance_;
  RestoredSession restored;
  restored.session = std::move(session);
  for (const auto& entry : entries_) {
    if (!missed(entry, point, local) || !reaches(entry.opts, restored.session.rooms)) continue;
    restored.missed.push_back(MissedPacket{entry.seq, entry.seen_through, entry.packet});
  }
  restored.own_seq = own_seq(restoring);
  return restored;
}

Result<RestoredSession> RecoveryLog::restore(const std::string& pid, const RecoveryPoint& point,
                                             AttachmentId restoring, Millis now) {
  expire(now);
  auto refuse = [this](std::string why) -> Result<RestoredSession> {
    ++stats_.not_restored;
    return make_error(ErrorCode::kNotFound, std::move(why));
  };
  if (!sessions_.count(pid)) return refuse("no session with this pid (unknown, used or expired)");
  if (auto s = check_point(point); !s) return refuse(s.error().message);
  auto restored = replay(*take_session(pid, now), point, restoring);
  ++stats_.restored;
  return restored;
}

}  // namespace siobridge::core
