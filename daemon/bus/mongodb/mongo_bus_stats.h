// Counters of the MongoDB bus, updated by its threads, read by metrics and
// tools from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace siobridge::bus::mongodb {

struct MongoBusStats {
  // insertMany sizes: counts per bucket (upper bounds below, then +Inf) and sum.
  static constexpr std::array<std::uint64_t, 7> kBatchBounds{1, 10, 50, 100, 250, 500, 1000};
  std::array<std::atomic<std::uint64_t>, 8> batch_sizes{};
  std::atomic<std::uint64_t> batch_size_sum{0};
  void record_batch(std::uint64_t size) {
    std::size_t bucket = 0;
    while (bucket < kBatchBounds.size() && size > kBatchBounds[bucket]) ++bucket;
    ++batch_sizes[bucket];
    batch_size_sum += size;
  }

  // Periods MongoDB was unavailable (elections, outages), once they ended.
  std::atomic<std::uint64_t> outages{0};
  std::atomic<std::uint64_t> outage_ms_total{0};
  std::atomic<std::uint64_t> last_outage_ms{0};
  void record_outage(std::uint64_t ms) {
    ++outages;
    outage_ms_total += ms;
    last_outage_ms = ms;
  }

  // The cause found for the bus not being ready (a Cause; 0: none, or ready).
  std::atomic<std::uint8_t> cause{0};

  // writer
  std::atomic<std::uint64_t> inserted{0};          // documents
  std::atomic<std::uint64_t> packed{0};            // messages that went in packs
  std::atomic<std::uint64_t> packs{0};             // packed documents made
  std::atomic<std::uint64_t> packs_compressed{0};  // of which compressed
  // Packs left plain untried: their namespace did not compress lately
  // (mongodb.compress_skip).
  std::atomic<std::uint64_t> packs_compress_skipped{0};
  // Batches that waited for the group-commit window (mongodb.write_window_us).
  std::atomic<std::uint64_t> window_waits{0};
  std::atomic<std::uint64_t> pack_message_bytes{0};  // the packed messages, encoded
  std::atomic<std::uint64_t> pack_stored_bytes{0};   // what packs stored them as
  std::atomic<std::uint64_t> insert_batches{0};      // insertMany round trips that succeeded
  std::atomic<std::uint64_t> insert_failures{0};     // insertMany calls that failed
  std::atomic<std::uint64_t> dropped{0};             // documents the server refused for good
  std::atomic<std::uint64_t> refused{0};             // publish() refused: the queue was full
  std::atomic<std::uint64_t> oversized{0};           // publish() refused: too large to store
  std::atomic<std::uint64_t> expired{0};             // dropped from the queue: older than queue_age
  std::atomic<std::uint64_t> unwritten_at_stop{0};   // still queued at the shutdown deadline
  std::atomic<std::uint64_t> queued{0};              // documents waiting now
  std::atomic<std::uint64_t> queued_bytes{0};
  std::atomic<std::uint64_t> queued_bytes_peak{0};  // the most that waited, since the start
  std::atomic<std::uint64_t> write_pauses{0};       // servers paused: the queue was past
                                                    // write_backpressure_bytes
  // watcher
  std::atomic<std::uint64_t> received{0};    // documents delivered to the core (unpacked)
  std::atomic<std::uint64_t> packs_read{0};  // packed documents taken apart
  std::atomic<std::uint64_t> malformed{0};   // documents that did not decode
  std::atomic<std::uint64_t> duplicates{0};  // seen twice (resume or re-read), skipped
  std::atomic<std::uint64_t> stream_opens{0};
  std::atomic<std::uint64_t> stream_errors{0};
  std::atomic<std::uint64_t> resume_failures{0};    // the token could not be resumed from
  std::atomic<std::uint64_t> gap_refills{0};        // messages re-read from the collection
  std::atomic<std::uint64_t> gaps{0};               // periods whose documents may be lost
  std::atomic<std::uint64_t> collection_setups{0};  // initial and after drops
  std::atomic<std::uint64_t> flow_pauses{0};        // reading paused for slow attached servers
  std::atomic<std::uint64_t> core_waits{0};  // reading paused: the core thread had too much to take
  std::atomic<std::uint64_t> core_backlog_peak{
      0};  // the most bytes read that the core had not taken
};

}  // namespace siobridge::bus::mongodb
