// DocumentWriter: the MongoDB bus's writer thread, a group commit. While one
// ordered insertMany is in flight, published documents queue; the next round
// trip takes everything queued (up to max_batch documents and max_batch_bytes),
// so publish order is kept and throughput grows with load. Consecutive
// messages that only siobridge nodes read go packed, many per document
// (docs/PROTOCOL.md section 18): one insert and one change event for many.
// A fresh queue waits up to mongodb.write_window_us (WriteWindow) before it
// is taken, so that a paced stream fills packs too.
//
// While MongoDB takes writes, a queue past write_backpressure_bytes closes the
// context's write_gate: the daemon stops reading from its servers until half
// of it is written, so a burst waits in the servers rather than here.
// The queue rides out MongoDB outages: it is bounded by bytes (queue_bytes)
// and by age (queue_age, never older than the collection keeps documents);
// only past those bounds is a document refused or dropped, and counted. A
// document MongoDB could never store (over 16 MiB, or larger than the capped
// collection) is refused before it is queued. A write error that no retry can
// fix drops that one document (logged, counted) and the queue moves on.
//
// Each document gets its _id when it is first encoded and keeps it across
// retries: after a failure whose outcome is unknown, the documents already
// stored are looked up and skipped, so every document is stored exactly once.
// Documents go in with the collection's UUID, so a dropped collection is never
// re-created by an insert. The core hears how many of the published documents
// are settled (stored, refused for good, expired), in order: what it confirms
// to the servers that number their calls.
//
// enqueue(), close() and wake() are thread-safe; run() is the thread body. When
// the bus stops without closing the writer (MongoBus::reconnect), run()
// returns and a later run() goes on with the same queue and batch.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "daemon/bus/mongodb/bus_context.h"
#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/bus/mongodb/write_window.h"
#include "daemon/common/mutex.h"
#include "daemon/common/result.h"
#include "daemon/wire/owned_bson.h"
#include "daemon/wire/pack.h"

namespace siobridge::bus::mongodb {

class DocumentWriter {
 public:
  explicit DocumentWriter(BusContext& context);

  // kResourceExhausted for a document MongoDB cannot store, kUnavailable when
  // the queue is full or the bus is closing: nothing was queued then.
  Status enqueue(wire::Document document, Audience audience) SIOBRIDGE_EXCLUDES(mutex_);
  void run() SIOBRIDGE_EXCLUDES(mutex_);
  // Stops accepting; run() returns once the queue is written or `drain` passed.
  void close(Millis drain) SIOBRIDGE_EXCLUDES(mutex_);
  void wake();

 private:
  struct Queued {
    wire::Document document;
    Audience audience;
    std::size_t bytes;  // as stored (wire::encoded_size)
    std::chrono::steady_clock::time_point queued_at;
  };
  struct Encoded {
    wire::OwnedBson bson;
    bson_oid_t id;
  };
  // After an insert: all written; go on at once (a document was skipped or
  // dropped, the collection changed); go on after a backoff (MongoDB is
  // unavailable); go on one document at a time (a bad document in the batch).
  enum class Attempt { kDone, kContinue, kRetry, kOneByOne };

  // The next batch to insert; `taken`: how many queued documents it holds.
  std::vector<Encoded> take_batch(std::size_t& taken) SIOBRIDGE_EXCLUDES(mutex_);
  // The documents to insert for `taken`: packs of the siobridge-only runs.
  std::vector<wire::Document> documents_of(std::vector<Queued> taken);
  // Drops queued documents older than queue_age (counted).
  void expire_old() SIOBRIDGE_REQUIRES(mutex_);
  // Tells the write gate how much waits, after the queue changed. Under the
  // mutex, so that reports reach the gate in the order of the changes.
  void report_backlog() SIOBRIDGE_REQUIRES(mutex_);
  // True once every document of `batch` is settled (stored, or refused for
  // good); false when the bus stopped first, with `batch` cut to what is not
  // settled yet.
  bool write(std::vector<Encoded>& batch);
  // Tells the core how many documents are settled, when that changed.
  void report_settled() SIOBRIDGE_EXCLUDES(mutex_);
  // One insertMany of batch[offset..end): advances `offset` past what is stored
  // or dropped for good, and says what to do next.
  Attempt insert(const PooledClient& client, const std::string& uuid, std::vector<Encoded>& batch,
                 std::size_t& offset, std::size_t end);
  // Drops from `batch` (from `offset`) the documents the server already has.
  bool skip_stored(const PooledClient& client, std::vector<Encoded>& batch, std::size_t offset);
  wire::OwnedBson insert_options(const std::string& uuid) const;

  BusContext& context_;
  const std::size_t max_document_bytes_;  // 16 MiB, or less in a small capped collection
  const std::size_t max_pack_bytes_;      // messages per pack; a larger one goes alone
  // What a pack document adds to its messages (fields, ids, the extension's
  // headers), its namespace aside.
  static constexpr std::size_t kPackEnvelopeBytes = 256;
  const std::chrono::milliseconds queue_age_;
  // Used by the writer thread only (take_batch); null when packs go plain.
  const std::unique_ptr<wire::PackCompressor> compressor_;
  const WriteWindow window_;

  Mutex mutex_;
  CondVar wakeup_{mutex_};
  std::deque<Queued> queue_ SIOBRIDGE_GUARDED_BY(mutex_);
  std::size_t queued_bytes_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  bool gate_closing_ SIOBRIDGE_GUARDED_BY(mutex_) = false;  // last report was past high water
  // The most that waited since the queue was last empty: once a large backlog
  // (an outage's) is written, its memory goes back to the system.
  std::size_t peak_since_empty_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  bool closed_ SIOBRIDGE_GUARDED_BY(mutex_) = false;
  std::chrono::steady_clock::time_point drain_deadline_ SIOBRIDGE_GUARDED_BY(mutex_){};
  // Queued documents settled so far, in queue order (BusListener::on_settled),
  // and the count last told to the core.
  std::uint64_t settled_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;
  std::uint64_t settled_reported_ SIOBRIDGE_GUARDED_BY(mutex_) = 0;

  // Writer thread only.
  std::vector<Encoded> pending_;   // a batch cut short by a stop, to be written first
  std::size_t pending_taken_ = 0;  // the queued documents it holds
  bool use_uuid_ = true;           // off for servers before 6.0, which reject collectionUUID
  bool outcome_unknown_ = false;
};

}  // namespace siobridge::bus::mongodb
