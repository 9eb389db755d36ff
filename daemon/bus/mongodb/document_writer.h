// DocumentWriter: the MongoDB bus's writer thread, a group commit. While one
// ordered insertMany is in flight, published documents queue; the next round
// trip takes everything queued (up to max_batch), so publish order is kept and
// throughput grows with load.
//
// Each document gets its _id when it is first encoded and keeps it across
// retries: after a failure whose outcome is unknown, the documents already
// stored are looked up and skipped, so every document is stored exactly once.
// Documents go in with the collection's UUID, so a dropped collection is never
// re-created by an insert.
//
// enqueue() is thread-safe; run() is the thread body.
#pragma once

#include <deque>
#include <mutex>
#include <vector>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/common/result.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

class DocumentWriter {
 public:
  explicit DocumentWriter(BusContext& context) : context_(context) {}

  // kUnavailable when the queue is full or MongoDB has been failing: nothing
  // was queued then.
  Status enqueue(wire::Document document);
  void run();
  // Stops accepting; run() returns once the queue is written or `drain` passed.
  void close(core::Millis drain);
  void wake();

 private:
  struct Encoded {
    wire::OwnedBson bson;
    bson_oid_t id;
    std::size_t bytes;
  };

  std::vector<Encoded> take_batch();
  void write(std::vector<Encoded>& batch);
  // Drops from `batch` (from `offset`) the documents the server already has.
  bool skip_stored(mongoc_collection_t* coll, std::vector<Encoded>& batch, std::size_t offset);

  BusContext& context_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  std::deque<wire::Document> queue_;
  std::size_t queued_bytes_ = 0;
  bool closed_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  bool use_uuid_ = true;  // off for servers before 6.0, which reject collectionUUID
};

}  // namespace siobridge::bus::mongodb
