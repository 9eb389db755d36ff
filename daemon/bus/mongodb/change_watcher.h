// ChangeWatcher: the MongoDB bus's watcher thread, the daemon's ONE change
// stream. It sets the collection up, then reads inserts from other nodes and
// hands them to the core. It keeps the resume token (persisted in the state
// directory) and re-opens the stream with it after errors, with backoff. After
// a drop it re-creates the collection (staggered by rank so that nodes do not
// race) and continues right after the invalidate event. When resuming is
// impossible it re-reads the documents newer than the last one seen, skipping
// those already delivered; what cannot be re-read is logged and counted as a
// gap.
//
// run() is the thread body; set_rank() is thread-safe.
#pragma once

#include <atomic>
#include <string>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/bus/mongodb/resume_state.h"

namespace siobridge::bus::mongodb {

class ChangeWatcher {
 public:
  explicit ChangeWatcher(BusContext& context);
  void run();
  // How many live peers have a smaller uid: the re-creation stagger.
  void set_rank(unsigned rank) { rank_ = rank; }

 private:
  enum class Start { kNow, kResumeAfter, kStartAfter };
  enum class Outcome { kReopen, kSetup, kRefill, kFatal, kStop };

  // Checks the server, creates or verifies the collection, publishes its UUID.
  Outcome setup(mongoc_client_t* client, bool recreating);
  Outcome watch(mongoc_client_t* client);
  void refill(mongoc_client_t* client);
  void handle_insert(const bson_t* event);
  void remember(const bson_t* token, bool force_save);

  BusContext& context_;
  ResumeStateFile state_file_;
  RecentIds recent_;
  std::atomic<unsigned> rank_{0};

  wire::OwnedBson token_{nullptr};
  Start start_ = Start::kNow;
  bool refill_pending_ = false;    // re-read the collection once the new stream is open
  std::int64_t last_seen_ms_ = 0;  // wall time of the last event or token
  std::chrono::steady_clock::time_point last_saved_{};
};

}  // namespace siobridge::bus::mongodb
