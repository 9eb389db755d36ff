// Settings of the MongoDB bus. Plain value type.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/bus/mongodb/expiration.h"
#include "daemon/common/time.h"
#include "daemon/wire/document.h"

namespace siobridge::bus::mongodb {

struct MongoBusConfig {
  std::string uri;  // must name a replica set or a sharded cluster
  // Set on the parsed URI when not empty (mongodb.password_file): the URI
  // then names the user only.
  std::string password;
  std::string database = "siobridge";
  std::string collection = "socket.io-adapter";
  Expiration expiration;
  wire::DataFormat data_format = wire::DataFormat::kInt32Array;
  std::string state_dir;  // where the resume token is kept; empty: not kept
  std::string instance;   // tells daemons apart that share a state directory

  // What MongoDB must acknowledge before a write counts as done.
  enum class WriteConcern : std::uint8_t {
    kMajority,  // a majority of the replica set, journaled: survives a failover
    kPrimary,   // the primary, journaled: faster; a failover may roll it back
  };
  WriteConcern write_concern = WriteConcern::kMajority;

  // Which member the change stream reads from: a fleet's streams may spread
  // over the replica set's members. Writes go to the primary; the other reads
  // follow the URI's readPreference (primary unless it names another).
  enum class ReadPreference : std::uint8_t {
    kPrimary,
    kSecondaryPreferred,  // a secondary while one is up, else the primary
    kNearest,             // the member of lowest latency, primary or not
  };
  ReadPreference stream_read_preference = ReadPreference::kPrimary;

  std::size_t max_batch = 1000;  // documents per insertMany
  // Stored bytes per insertMany. The driver builds the command in a buffer
  // that grows by doubling: 4 MiB keeps the writer's peak near 8 MiB, and a
  // round trip of 4 MiB is as fast per byte as one of 8.
  std::size_t max_batch_bytes = 4u << 20;
  // What only siobridge nodes read travels packed, many messages per document
  // (docs/PROTOCOL.md section 18), up to this many bytes of messages each.
  bool pack_messages = true;
  // Packs go compressed (zstd) when that saves an eighth or more
  // (docs/PROTOCOL.md section 14.10): MongoDB's cost per byte (its insert,
  // oplog entry and change event) is what bounds large messages.
  bool compress_packs = true;
  // A namespace whose packs do not compress (random or compressed payloads)
  // goes plain for a while without trying (wire::PackCompressor::SkipRule);
  // false tries every pack.
  bool compress_skip = true;
  // The writer's group-commit window (WriteWindow): a fresh queue waits up to
  // this long before it is written, so that a paced stream fills packs; it
  // adds at most this much to a document's latency. 0: no window.
  std::chrono::microseconds write_window{1000};
  // 128 KiB: a change stream batch of packs stays small (ChangeWatcher), and
  // packs are read and delivered while the next ones are written; larger
  // packs measured slower as well as bigger (bench/README.md).
  std::size_t max_pack_bytes = 128u << 10;
  // The write queue: what waits for MongoDB, e.g. while it is unreachable.
  // 96 MiB rides out a 60 s outage at 1,000 messages/s of 1 KiB.
  std::size_t queue_bytes = 96u << 20;
  // While MongoDB takes writes, past this much queued (as stored) the daemon
  // stops reading from its servers until half of it is written: a burst waits
  // in the servers, not in the daemon's memory. During an outage the queue
  // fills up to queue_bytes. 0: never.
  std::size_t write_backpressure_bytes = 4u << 20;
  // Older documents are dropped, not written late; 0: the collection's
  // retention (the TTL, or 60 s for a capped collection).
  Millis queue_age{0};
  Millis retry_min{100};  // backoff after errors
  Millis retry_max{5000};
  Millis recreate_step{1000};             // stagger of re-creation by rank
  Millis server_selection_timeout{5000};  // unless the URI sets one
  Millis heartbeat_frequency{1000};       // server monitoring, unless the URI sets one
  // How long a call waits for a member's answer, unless the URI sets one
  // (socketTimeoutMS). libmongoc's default, 5 minutes, held the writer and the
  // change stream that long on a member that stopped answering (a frozen host,
  // a partition). Longer than an election (electionTimeoutMillis, 10 s by
  // default): a majority write to a cut-off primary fails when it steps down,
  // before this, so its look-up never reads a primary about to roll back.
  Millis socket_timeout{20000};
};

}  // namespace siobridge::bus::mongodb
