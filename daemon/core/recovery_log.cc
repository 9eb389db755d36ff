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

RecoveryLog::RecoveryLog(Millis retention, RecoveryLimits limits)
    : retention_(retention), limits_(limits) {}

void RecoveryLog::extend_retention(Millis retention) {
  retention_ = std::max(retention_, retention);
}

std::uint64_t RecoveryLog::append(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                                  AttachmentId origin, std::uint64_t own_seq, Millis now) {
  expire(now);
  const std::uint64_t seq = next_seq_++;
  const std::size_t bytes = size_of(packet, opts);
  entries_.push_back(Entry{seq, now, packet, opts, origin, own_seq, bytes});
  bytes_ += bytes;
  ++stats_.packets_logged;
  if (origin != kNoAttachment) own_seqs_[origin] = own_seq;
  while (bytes_ > limits_.max_bytes && entries_.size() > 1) {
    drop_oldest_entry();
    ++stats_.trimmed_early;
  }
  return seq;
}

std::uint64_t RecoveryLog::own_seq(AttachmentId attachment) const {
  auto it = own_seqs_.find(attachment);
  return it == own_seqs_.end() ? 0 : it->second;
}

void RecoveryLog::drop_oldest_entry() {
  floor_ = entries_.front().seq;
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
  while (!entries_.empty() && entries_.front().logged_at + retention_ < now) drop_oldest_entry();
  while (!saved_order_.empty()) {
    auto it = sessions_.find(saved_order_.front());
    if (it->second.saved_at + retention_ >= now) break;
    drop_session(it);
  }
}

Result<RestoredSession> RecoveryLog::restore(const std::string& pid, const RecoveryPoint& point,
                                             AttachmentId restoring, Millis now) {
  expire(now);
  auto refuse = [this](std::string why) -> Result<RestoredSession> {
    ++stats_.not_restored;
    return make_error(ErrorCode::kNotFound, std::move(why));
  };
  auto it = sessions_.find(pid);
  if (it == sessions_.end()) return refuse("no session with this pid (unknown, used or expired)");
  if (point.seq < floor_) {
    return refuse(fmt::format("the offset is older than the packets kept (entry {}, kept from {})",
                              point.seq, floor_ + 1));
  }
  if (point.seq > last_seq()) {
    return refuse(fmt::format("the offset names entry {}, the log has {}", point.seq, last_seq()));
  }
  RestoredSession restored;
  restored.session = std::move(it->second.record);
  drop_session(it);
  for (const auto& entry : entries_) {
    if (entry.seq <= point.seq) continue;
    if (entry.origin == point.attachment && point.attachment != kNoAttachment &&
        entry.own_seq <= point.own_seq) {
      continue;  // its server had delivered it itself
    }
    if (!reaches(entry.opts, restored.session.rooms)) continue;
    restored.missed.push_back(MissedPacket{entry.seq, entry.packet});
  }
  restored.own_seq = own_seq(restoring);
  ++stats_.restored;
  return restored;
}

}  // namespace siobridge::core
