// RecoveryLog: what socket.io's connection state recovery needs of one
// namespace on this daemon (docs/recovery.md): the recoverable packets its
// attached servers were given, in the order the daemon gave them, and the
// sessions of the clients that lost their connection.
//
// A client's offset names a RecoveryPoint: it had every packet of the log up
// to `seq` that matched its rooms, plus the packets its own server broadcast
// itself up to `own_seq` (a server delivers its own broadcasts before the
// daemon logs them, so they are counted apart). What it missed is every later
// entry that matches its rooms, minus its server's own packets up to own_seq:
// nothing twice, nothing left out, whichever server sent what.
//
// Across daemons (a shared bus) a point also names the daemon instance that
// made it and the bus position that instance had read when it logged `seq`.
// Another daemon's log holds the same bus entries at the same positions, and
// that instance's own entries with their seq there, so it tells which of its
// entries the client had: the point instance's by seq, every other by position.
//
// Not thread-safe: owned by the Node, used on the core thread.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/common/time.h"
#include "daemon/core/local_server.h"
#include "daemon/wire/messages.h"

namespace siobridge::core {

struct RecoveryPoint {
  std::uint64_t seq = 0;                    // the last log entry its server had applied
  AttachmentId attachment = kNoAttachment;  // its server
  std::uint64_t own_seq = 0;                // that server's own packets it had, 1, 2, 3...
  // The daemon instance whose log `seq` names; empty: this log's own.
  std::string instance;
  // The bus position that instance had read when it logged `seq`
  // (wire::format_position); empty: none.
  std::string position;
  bool operator==(const RecoveryPoint&) const = default;
};

// Where a packet that came through the bus stands in its origin's log
// (wire::RecoveryEntryInfo); absent for nodes that keep none (socketioxide).
struct EntryOrigin {
  std::string instance;
  std::uint64_t seq = 0;
  std::uint64_t attachment = 0;
  std::uint64_t own_seq = 0;
};

// What socket.io persists of a disconnected socket (its pid names it).
struct SessionRecord {
  std::string pid;
  std::string sid;
  std::vector<std::string> rooms;
  wire::Bytes data;  // opaque, from the attached server
  bool operator==(const SessionRecord&) const = default;
};

struct MissedPacket {
  std::uint64_t seq = 0;     // its log entry
  std::string seen_through;  // the bus position read when it was logged
  wire::Packet packet;
};

struct RestoredSession {
  SessionRecord session;
  std::vector<MissedPacket> missed;  // in log order
  // The restoring server's own packets logged so far: the offsets of the
  // missed packets count them as had.
  std::uint64_t own_seq = 0;
};

// How an attached server counts a packet it broadcasts, for recovery.
struct RecoveryTag {
  std::uint64_t own_seq = 0;  // its recoverable packets so far, this one included; 0: not counted
  bool only =
      false;  // it delivered the packet to the only sockets it is for: log it, send it nowhere
};

struct RecoveryLimits {
  std::size_t max_bytes = 64u << 20;   // packets kept, payload bytes
  std::size_t max_sessions = 100'000;  // sessions kept
};

struct RecoveryStats {
  std::uint64_t packets_logged = 0;
  std::uint64_t trimmed_early = 0;  // dropped by max_bytes before their time
  std::uint64_t sessions_saved = 0;
  std::uint64_t sessions_dropped = 0;  // over max_sessions before their time
  std::uint64_t restored = 0;
  std::uint64_t not_restored = 0;
  RecoveryStats& operator+=(const RecoveryStats& other);
};

// What the logs of every namespace hold now, and their counts.
struct RecoveryTotals {
  RecoveryStats stats;
  std::size_t packets = 0;
  std::size_t bytes = 0;
  std::size_t sessions = 0;
};

// Whether a packet is one socket.io would give an offset: an event without
// ack id that is not volatile.
bool is_recoverable(const wire::Packet& packet, const wire::BroadcastOptions& opts);

class RecoveryLog {
 public:
  // Logging starts empty. `instance`: the daemon instance this log belongs to;
  // `position`: the bus position read so far (points of other instances from
  // before it are not covered).
  RecoveryLog(Millis retention, RecoveryLimits limits, std::string instance = {},
              std::string position = {});

  // The time a packet and a session are kept (socket.io's
  // maxDisconnectionDuration); only grows while the namespace is in use.
  void extend_retention(Millis retention);
  Millis retention() const { return retention_; }

  // Logs a packet that attached servers are being given; `origin` broadcast
  // it itself as its `own_seq`-th recoverable packet (kNoAttachment and 0
  // when it came from another node or an external emitter). Returns its seq.
  // `seen_through`: the bus position read so far.
  std::uint64_t append(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                       AttachmentId origin, std::uint64_t own_seq, Millis now,
                       const std::string& seen_through = {});
  // Logs a packet read from the bus at `position`, with where it stands in
  // its origin's log (none for a node that keeps none). Returns its seq.
  std::uint64_t append_from_bus(const wire::Packet& packet, const wire::BroadcastOptions& opts,
                                std::optional<EntryOrigin> origin, const std::string& position,
                                Millis now);
  // For a log made before the bus was read: the first position read.
  void start_reading_at(const std::string& position) {
    if (complete_from_.empty()) complete_from_ = position;
  }
  // The bus position of this log's own entry `seq`, learnt when it came back.
  void set_position(std::uint64_t seq, const std::string& position);
  // The last entry logged (0 before the first).
  std::uint64_t last_seq() const { return next_seq_ - 1; }
  // The last own_seq `attachment` logged.
  std::uint64_t own_seq(AttachmentId attachment) const;
  void forget_attachment(AttachmentId attachment) { own_seqs_.erase(attachment); }

  void save_session(SessionRecord session, Millis now);
  // The session of `pid` and what it missed since `point`, once: the session
  // is gone afterwards. kNotFound (with why) for an unknown or expired pid or
  // a point the log no longer covers; the session then stays, as socket.io's
  // own adapter leaves it.
  Result<RestoredSession> restore(const std::string& pid, const RecoveryPoint& point,
                                  AttachmentId restoring, Millis now);

  // The steps of restore(), for a restore that claims the session across the
  // cluster first. kNotFound when the log cannot tell what `point` missed.
  Status check_point(const RecoveryPoint& point) const;
  // Forgets the session of `pid` (restored here or by another node).
  std::optional<SessionRecord> take_session(const std::string& pid, Millis now);
  // A claim that came before its session (the session is still on its way):
  // remembered until `until`, so that the session is the claimant's when it
  // comes. False when an earlier claim holds the pid.
  bool remember_claim(const std::string& pid, Millis until, Millis now);
  // Whether a claim holds `pid`.
  bool claimed(const std::string& pid, Millis now);
  RestoredSession replay(SessionRecord session, const RecoveryPoint& point,
                         AttachmentId restoring) const;
  void count_restore(bool restored) { ++(restored ? stats_.restored : stats_.not_restored); }

  // Drops what is older than the retention.
  void expire(Millis now);

  std::size_t packets() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::size_t sessions() const { return sessions_.size(); }
  const RecoveryStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::uint64_t seq;
    Millis logged_at;
    wire::Packet packet;
    wire::BroadcastOptions opts;
    AttachmentId origin;  // the sending server here, or in `origin_instance`
    std::uint64_t own_seq;
    std::size_t bytes;
    std::string seen_through;      // the bus position read when it was logged
    std::string position;          // its own bus position; empty while unknown
    std::string origin_instance;   // empty: this log's; "-": a node that keeps no log
    std::uint64_t origin_seq = 0;  // its seq in origin_instance's log
  };
  bool missed(const Entry& entry, const RecoveryPoint& point, bool local) const;
  struct Session {
    SessionRecord record;
    Millis saved_at;
    std::list<std::string>::iterator order;  // in saved_order_
  };

  void drop_oldest_entry();
  void drop_session(std::unordered_map<std::string, Session>::iterator it);

  Millis retention_;
  RecoveryLimits limits_;
  std::deque<Entry> entries_;
  std::size_t bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  // Every entry after `floor_` is in entries_ (the ones up to it were never
  // logged or were dropped).
  std::uint64_t floor_ = 0;
  std::map<AttachmentId, std::uint64_t> own_seqs_;
  std::string instance_;
  // Points of other instances from before this position are not covered.
  std::string complete_from_;
  std::unordered_map<std::string, Session> sessions_;
  std::list<std::string> saved_order_;                      // pids, oldest first
  std::unordered_map<std::string, Millis> claims_;          // pid -> until
  std::deque<std::pair<Millis, std::string>> claim_order_;  // by `until`
  RecoveryStats stats_;
};

}  // namespace siobridge::core
