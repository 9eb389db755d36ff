// ChangeWatcher: the MongoDB bus's watcher thread, the daemon's ONE change
// stream. It sets the collection up, then reads inserts from other nodes and
// hands them to the core with their place in the cluster's order (the insert's
// operation time). It keeps the resume token and re-opens the stream with it
// after errors, with backoff. After a drop it re-creates the collection
// (staggered by rank so that nodes do not race) and continues right after the
// invalidate event. When resuming is impossible it re-reads the documents newer
// than the last one seen, skipping those already delivered; what cannot be
// re-read is logged and counted as a gap.
//
// The token is persisted in the state directory a little behind the stream
// (replay_margin): after a crash the daemon delivers the last moments again
// rather than lose what had not reached its servers yet; servers skip the
// repeats by position (docs/PROTOCOL.md sections 11 and 16).
//
// run() is the thread body (it returns when the bus stops, and may run again
// after a reconnect); set_rank() is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/bus/mongodb/resume_state.h"
#include "daemon/common/skip_log.h"

namespace siobridge::bus::mongodb {

// An insert's place in the cluster's order (its change event's clusterTime).
struct ClusterTime {
  std::uint32_t seconds = 0;
  std::uint32_t increment = 0;
};

class ChangeWatcher {
 public:
  explicit ChangeWatcher(BusContext& context);
  void run();
  // How many live peers have a smaller uid: the re-creation stagger.
  void set_rank(unsigned rank) { rank_ = rank; }

  // How far behind the stream the persisted token stays.
  static constexpr std::chrono::milliseconds kReplayMargin{2000};
  // Documents per change stream batch (the stream's batchSize).
  static constexpr int kBatchDocuments = 32;

 private:
  enum class Start { kNow, kResumeAfter, kStartAfter };
  enum class Outcome { kReopen, kSetup, kRefill, kFatal, kStop };

  // Checks the server, creates or verifies the collection, publishes its UUID.
  Outcome setup(const PooledClient& client, bool recreating);
  Outcome watch(const PooledClient& client);
  ChangeStream open(const PooledClient& client);
  // What an error of the stream (at open or later) leads to.
  Outcome on_stream_error(const bson_error_t& error, bool at_open);
  // Reads events until the stream fails, ends, or the bus stops.
  Outcome read(mongoc_change_stream_t* stream);
  void refill(const PooledClient& client);
  void handle_insert(const bson_t* event);
  // Delivers `document`, or each message of a packed one that is for this
  // node; `time`: the insert's cluster time, when known.
  // Returns how many messages it delivered.
  std::size_t deliver(wire::Document document, const std::optional<ClusterTime>& time);
  void remember(const bson_t* token, bool at_open = false);
  // Persists the newest token at least kReplayMargin old.
  void save();

  BusContext& context_;
  ResumeStateFile state_file_;
  RecentIds recent_;
  SkipLog skipped_documents_;  // documents that did not decode
  std::atomic<unsigned> rank_{0};

  struct Mark {
    std::chrono::steady_clock::time_point at;
    wire::OwnedBson token;
    std::int64_t wall_time_ms;
    bool at_open = false;  // the stream's starting point: nothing after it delivered yet
  };
  wire::OwnedBson token_{nullptr};
  std::deque<Mark> marks_;  // recent tokens, oldest first, for the lagged save
  Start start_ = Start::kNow;
  bool ran_ = false;               // run() loaded the saved state already
  bool refill_pending_ = false;    // re-read the collection once the new stream is open
  std::int64_t last_seen_ms_ = 0;  // wall time of the last event or token
  std::chrono::steady_clock::time_point last_saved_{};
};

}  // namespace siobridge::bus::mongodb
