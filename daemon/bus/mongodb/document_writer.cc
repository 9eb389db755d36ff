#include "daemon/bus/mongodb/document_writer.h"

#include "daemon/common/memory.h"
#include "daemon/wire/pack.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

namespace siobridge::bus::mongodb {
namespace {

constexpr std::uint32_t kDuplicateKey = 11000;
constexpr std::uint32_t kCollectionUuidMismatch = 361;
constexpr std::uint32_t kUnknownField = 40415;

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ttl_strategy(const MongoBusConfig& config) {
  return config.expiration.kind == Expiration::Kind::kTtl;
}

wire::EncodeOptions encode_options(const MongoBusConfig& config, std::int64_t now_ms) {
  return {config.data_format, ttl_strategy(config) ? std::optional(now_ms) : std::nullopt};
}

struct WriteError {
  std::size_t index = 0;
  std::uint32_t code = 0;
  std::string message;
};

std::optional<WriteError> first_write_error(const bson_t* reply) {
  bson_iter_t it, errors;
  if (!reply || !bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it))
    return std::nullopt;
  bson_iter_recurse(&it, &errors);
  if (!bson_iter_next(&errors) || !BSON_ITER_HOLDS_DOCUMENT(&errors)) return std::nullopt;
  bson_iter_t fields;
  bson_iter_recurse(&errors, &fields);
  WriteError error;
  while (bson_iter_next(&fields)) {
    const std::string key = bson_iter_key(&fields);
    if (key == "index") error.index = static_cast<std::size_t>(bson_iter_as_int64(&fields));
    if (key == "code") error.code = static_cast<std::uint32_t>(bson_iter_as_int64(&fields));
    if (key == "errmsg" && BSON_ITER_HOLDS_UTF8(&fields))
      error.message = bson_iter_utf8(&fields, nullptr);
  }
  return error;
}

// The largest document the collection can take: MongoDB's limit, or the size
// of a capped collection (a document larger than it can never be inserted).
std::size_t max_document_bytes(const MongoBusConfig& config) {
  if (config.expiration.kind == Expiration::Kind::kCapped) {
    return std::min<std::size_t>(wire::kMaxDocumentBytes,
                                 static_cast<std::size_t>(config.expiration.capped_bytes));
  }
  return wire::kMaxDocumentBytes;
}

// A pack stays a small part of a capped collection: one pack must not
// overwrite most of what the other nodes have yet to read.
std::size_t max_pack_bytes(const MongoBusConfig& config) {
  std::size_t limit = std::min(config.max_pack_bytes, wire::kMaxDocumentBytes / 2);
  if (config.expiration.kind == Expiration::Kind::kCapped) {
    limit = std::min(limit, static_cast<std::size_t>(config.expiration.capped_bytes) / 16);
  }
  return limit;
}

std::chrono::milliseconds queue_age(const MongoBusConfig& config) {
  if (config.queue_age.count() > 0) return config.queue_age;
  if (ttl_strategy(config)) return std::chrono::seconds(config.expiration.ttl_seconds);
  return std::chrono::seconds(60);
}

wire::PackCompressor::SkipRule skip_rule(const MongoBusConfig& config) {
  wire::PackCompressor::SkipRule rule;
  rule.enabled = config.compress_skip;
  return rule;
}

}  // namespace

DocumentWriter::DocumentWriter(BusContext& context)
    : context_(context),
      max_document_bytes_(max_document_bytes(context.config)),
      max_pack_bytes_(max_pack_bytes(context.config)),
      queue_age_(queue_age(context.config)),
      compressor_(context.config.pack_messages && context.config.compress_packs
                      ? std::make_unique<wire::PackCompressor>(skip_rule(context.config))
                      : nullptr),
      window_{context.config.write_window, max_pack_bytes_, context.config.max_batch} {}

Status DocumentWriter::enqueue(wire::Document document, Audience audience) {
  const auto& config = context_.config;
  // What goes packed is stored as bin, whatever data_format says, and must fit
  // a pack of its own. The encoded size does not depend on the time written
  // into createdAt.
  // A document its origin reads back keeps its own position: never packed.
  const bool packed =
      audience == Audience::kSiobridgeOnly && config.pack_messages && !document.echo;
  const std::size_t bytes =
      packed ? wire::packed_size(document) + kPackEnvelopeBytes + document.header.ns.size()
             : wire::encoded_size(document, encode_options(config, 0));
  if (bytes > max_document_bytes_) {
    ++context_.stats.oversized;
    return make_error(
        ErrorCode::kResourceExhausted,
        fmt::format("the message would be a document of {} bytes; {} takes at most {} bytes "
                    "(mongodb.data_format {})",
                    bytes,
                    config.expiration.kind == Expiration::Kind::kCapped ? "the capped collection"
                                                                        : "MongoDB",
                    max_document_bytes_,
                    packed                                            ? "binary, packed"
                    : config.data_format == wire::DataFormat::kBinary ? "binary"
                                                                      : "int32-array"));
  }
  {
    MutexLock lock(mutex_);
    const char* why = nullptr;
    if (closed_) {
      why = "the daemon is shutting down";
    } else if (context_.state() == BusState::kFailed) {
      why = "the MongoDB bus failed (see the daemon's log and Status)";
    } else if (queued_bytes_ + bytes > config.queue_bytes) {
      why = context_.state() == BusState::kReady
                ? "the MongoDB write queue is full (MongoDB is slower than the publishers)"
                : "the MongoDB write queue is full (MongoDB is unavailable)";
    }
    if (why) {
      ++context_.stats.refused;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{}: {} documents, {} bytes waiting (mongodb.queue_bytes {})",
                                    why, queue_.size(), queued_bytes_, config.queue_bytes));
    }
    queue_.push_back(
        Queued{std::move(document), audience, bytes, std::chrono::steady_clock::now()});
    queued_bytes_ += bytes;
    context_.stats.queued = queue_.size();
    context_.stats.queued_bytes = queued_bytes_;
    if (queued_bytes_ > context_.stats.queued_bytes_peak) {
      context_.stats.queued_bytes_peak = queued_bytes_;
    }
    peak_since_empty_ = std::max(peak_since_empty_, queued_bytes_);
    report_backlog();
  }
  wakeup_.signal();
  return {};
}

void DocumentWriter::report_backlog() {
  // During an outage the queue is what rides it out (queue_bytes): servers go
  // on until it is full.
  const std::size_t backlog = context_.state() == BusState::kReady ? queued_bytes_ : 0;
  const std::size_t high = context_.config.write_backpressure_bytes;
  if (high == 0) return;
  // The gate's own thresholds; most changes cross neither, so skip its lock.
  if (backlog > high) {
    if (!gate_closing_) ++context_.stats.write_pauses;
    gate_closing_ = true;
    context_.write_gate.report(this, backlog);
  } else if (gate_closing_ && backlog < high / 2) {
    gate_closing_ = false;
    context_.write_gate.report(this, backlog);
  }
}

void DocumentWriter::close(Millis drain) {
  {
    MutexLock lock(mutex_);
    closed_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + drain;
  }
  wakeup_.signal_all();
}

void DocumentWriter::wake() {
  // Under the mutex, so that a writer between its check of stopping() and its
  // wait cannot miss this.
  { MutexLock lock(mutex_); }
  wakeup_.signal_all();
}

void DocumentWriter::expire_old() {
  const auto oldest_allowed = std::chrono::steady_clock::now() - queue_age_;
  std::size_t expired = 0;
  while (!queue_.empty() && queue_.front().queued_at < oldest_allowed) {
    queued_bytes_ -= queue_.front().bytes;
    queue_.pop_front();
    ++expired;
  }
  if (expired) {
    settled_ += expired;
    context_.stats.expired += expired;
    spdlog::error(
        "{} queued documents waited longer than {} s for MongoDB and were dropped: the "
        "collection would not have kept them (mongodb.queue_age)",
        expired, std::chrono::duration_cast<std::chrono::seconds>(queue_age_).count());
  }
}

std::vector<DocumentWriter::Encoded> DocumentWriter::take_batch(std::size_t& taken_count) {
  std::vector<Queued> taken;
  {
    MutexLock lock(mutex_);
    while (queue_.empty() && !closed_ && !context_.stopping()) wakeup_.wait();
    // The group-commit window: a fresh queue grows a little before it goes.
    for (bool waited = false; !queue_.empty() && !closed_ && !context_.stopping();) {
      const auto until = window_.wait_until(
          queue_.front().queued_at, std::chrono::steady_clock::now(), queued_bytes_, queue_.size());
      if (!until) break;
      if (!waited) ++context_.stats.window_waits;
      waited = true;
      wakeup_.wait_until(*until);  // or until a publish, which may fill the batch
    }
    expire_old();
    std::size_t bytes = 0;
    while (!queue_.empty() && taken.size() < context_.config.max_batch &&
           (taken.empty() || bytes + queue_.front().bytes <= context_.config.max_batch_bytes)) {
      bytes += queue_.front().bytes;
      queued_bytes_ -= queue_.front().bytes;
      taken.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    context_.stats.queued = queue_.size();
    context_.stats.queued_bytes = queued_bytes_;
    report_backlog();
  }
  taken_count = taken.size();
  // Packing and encoding happen here, off the core thread.
  auto documents = documents_of(std::move(taken));
  std::vector<Encoded> batch;
  batch.reserve(documents.size());
  const auto options = encode_options(context_.config, wall_clock_ms());
  for (const auto& document : documents) {
    Encoded encoded{wire::OwnedBson(bson_sized_new(wire::encoded_size(document, options))), {}};
    bson_oid_init(&encoded.id, nullptr);
    BSON_APPEND_OID(encoded.bson.get(), "_id", &encoded.id);
    wire::encode_document(document, options, encoded.bson.get());
    batch.push_back(std::move(encoded));
  }
  return batch;
}

std::vector<wire::Document> DocumentWriter::documents_of(std::vector<Queued> taken) {
  const auto& config = context_.config;
  std::vector<wire::Document> documents;
  documents.reserve(taken.size());
  std::vector<wire::PackedMessage> pack;
  std::size_t pack_bytes = 0;
  // The highest call of each server instance among the pack's messages.
  std::map<std::string, std::uint64_t> pack_calls;
  auto close_pack = [&] {
    if (pack.empty()) return;
    ++context_.stats.packs;
    if (compressor_) {
      const auto skipped_before = compressor_->counters().skipped;
      auto built = wire::build_pack(context_.uid, std::move(pack), *compressor_);
      context_.stats.packs_compressed += built.compressed ? 1 : 0;
      context_.stats.packs_compress_skipped += compressor_->counters().skipped - skipped_before;
      context_.stats.pack_message_bytes += built.message_bytes;
      context_.stats.pack_stored_bytes += built.document.extension->size();
      documents.push_back(std::move(built.document));
    } else {
      documents.push_back(wire::pack_document(context_.uid, std::move(pack)));
      context_.stats.pack_stored_bytes += documents.back().extension->size();
      context_.stats.pack_message_bytes += documents.back().extension->size();
    }
    for (auto& [instance, seq] : pack_calls) documents.back().calls.push_back({instance, seq});
    pack.clear();
    pack_calls.clear();
    pack_bytes = 0;
  };
  for (auto& queued : taken) {
    if (queued.audience != Audience::kSiobridgeOnly || !config.pack_messages ||
        queued.document.echo) {
      close_pack();  // order is kept: a pack never spans another document
      documents.push_back(std::move(queued.document));
      continue;
    }
    const std::size_t bytes = wire::packed_size(queued.document);
    if (!pack.empty() && pack_bytes + bytes > max_pack_bytes_) close_pack();
    pack_bytes += bytes;
    for (const auto& mark : queued.document.calls) {
      auto& highest = pack_calls[mark.instance];
      highest = std::max(highest, mark.seq);
    }
    pack.push_back(wire::to_packed(std::move(queued.document)));
    ++context_.stats.packed;
  }
  close_pack();
  return documents;
}

void DocumentWriter::run() {
  while (true) {
    {
      MutexLock lock(mutex_);
      const bool drained = queue_.empty() && pending_taken_ == 0;
      if (closed_ &&
          (drained || context_.stopping() || std::chrono::steady_clock::now() > drain_deadline_)) {
        if (!drained) {
          const std::size_t left = queue_.size() + pending_taken_;
          context_.stats.unwritten_at_stop += left;
          spdlog::warn("{} documents were not written before the shutdown deadline", left);
        }
        return;
      }
    }
    // Stopped for a reconnect: the queue and the batch under way stay for
    // the next run().
    if (context_.stopping()) return;
    std::size_t taken = pending_taken_;
    std::vector<Encoded> batch = std::move(pending_);
    pending_.clear();
    pending_taken_ = 0;
    if (batch.empty()) {
      batch = take_batch(taken);
      if (batch.empty()) {
        report_settled();  // what expired
        continue;
      }
    }
    if (!write(batch)) {
      // The bus stopped first: the rest goes first when it runs again.
      pending_ = std::move(batch);
      pending_taken_ = taken;
      continue;
    }
    {
      MutexLock lock(mutex_);
      settled_ += taken;
    }
    report_settled();
    batch.clear();
    bool drained_large_backlog = false;
    {
      MutexLock lock(mutex_);
      if (queue_.empty()) {
        // Past the write gate's mark: what an outage leaves (as stored; an
        // int32-array document weighs ~10x its memory here).
        constexpr std::size_t kLargeBacklog = 16 * kLargeFreeBytes;
        drained_large_backlog = peak_since_empty_ >= kLargeBacklog;
        peak_since_empty_ = 0;
      }
    }
    if (drained_large_backlog) release_free_memory();
  }
}

bool DocumentWriter::skip_stored(const PooledClient& client, std::vector<Encoded>& batch,
                                 std::size_t offset) {
  wire::OwnedBson filter;
  bson_t id_filter, in;
  BSON_APPEND_DOCUMENT_BEGIN(filter.get(), "_id", &id_filter);
  BSON_APPEND_ARRAY_BEGIN(&id_filter, "$in", &in);
  for (std::size_t i = offset; i < batch.size(); ++i) {
    const std::string key = std::to_string(i - offset);
    BSON_APPEND_OID(&in, key.c_str(), &batch[i].id);
  }
  bson_append_array_end(&id_filter, &in);
  bson_append_document_end(filter.get(), &id_filter);
  wire::OwnedBson opts(BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}"));
  auto collection = client.collection(context_.config.database, context_.config.collection);
  Cursor cursor(
      mongoc_collection_find_with_opts(collection.get(), filter.get(), opts.get(), nullptr));
  std::set<std::string> stored;
  const bson_t* doc;
  while (mongoc_cursor_next(cursor.get(), &doc)) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
      stored.emplace(reinterpret_cast<const char*>(bson_iter_oid(&it)->bytes), 12);
    }
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) return false;
  if (!stored.empty()) {
    std::vector<Encoded> rest;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (i >= offset &&
          stored.count(std::string(reinterpret_cast<const char*>(batch[i].id.bytes), 12)))
        continue;
      rest.push_back(std::move(batch[i]));
    }
    batch = std::move(rest);
  }
  return true;
}

wire::OwnedBson DocumentWriter::insert_options(const std::string& uuid) const {
  wire::OwnedBson opts;
  BSON_APPEND_BOOL(opts.get(), "ordered", true);
  // Every document was built by the encoder: libmongoc's own check (UTF-8 of
  // every key of the int32 array) costs more than the encoding itself.
  BSON_APPEND_BOOL(opts.get(), "validate", false);
  if (use_uuid_ && uuid.size() == 16) {
    bson_append_binary(opts.get(), "collectionUUID", -1, BSON_SUBTYPE_UUID,
                       reinterpret_cast<const std::uint8_t*>(uuid.data()), 16);
  }
  bson_t concern;
  BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "writeConcern", &concern);
  if (context_.config.write_concern == MongoBusConfig::WriteConcern::kMajority) {
    BSON_APPEND_UTF8(&concern, "w", "majority");
  } else {
    BSON_APPEND_INT32(&concern, "w", 1);
  }
  BSON_APPEND_BOOL(&concern, "j", true);
  bson_append_document_end(opts.get(), &concern);
  return opts;
}

DocumentWriter::Attempt DocumentWriter::insert(const PooledClient& client, const std::string& uuid,
                                               std::vector<Encoded>& batch, std::size_t& offset,
                                               std::size_t end) {
  if (outcome_unknown_) {
    if (!skip_stored(client, batch, offset)) return Attempt::kRetry;
    outcome_unknown_ = false;
    end = std::min(end, batch.size());
    if (offset >= end) return Attempt::kDone;
  }
  auto opts = insert_options(uuid);
  std::vector<const bson_t*> docs;
  docs.reserve(end - offset);
  for (std::size_t i = offset; i < end; ++i) docs.push_back(batch[i].bson.get());
  Reply reply;
  bson_error_t error;
  auto collection = client.collection(context_.config.database, context_.config.collection);
  if (mongoc_collection_insert_many(collection.get(), docs.data(), docs.size(), opts.get(),
                                    reply.out(), &error)) {
    context_.stats.inserted += docs.size();
    ++context_.stats.insert_batches;
    context_.stats.record_batch(docs.size());
    offset = end;
    return Attempt::kDone;
  }
  ++context_.stats.insert_failures;
  if (auto write_error = first_write_error(reply.get())) {
    // The documents before it are stored; this one was refused.
    const std::size_t at = offset + write_error->index;
    context_.stats.inserted += write_error->index;
    offset = at;
    switch (write_error->code) {
      case kDuplicateKey:
        offset = at + 1;  // stored by an earlier attempt
        return Attempt::kContinue;
      case kCollectionUuidMismatch:
        spdlog::warn("the collection was dropped or replaced: waiting for it to be set up again");
        context_.collection_gone(uuid);
        return Attempt::kContinue;
      case kUnknownField:
        if (use_uuid_) {
          spdlog::info(
              "this MongoDB does not know collectionUUID (before 6.0): inserting without it");
          use_uuid_ = false;
          return Attempt::kContinue;
        }
        break;
      default:
        if (is_transient_code(write_error->code)) {
          context_.report(BusContext::Part::kWriter, BusState::kUnavailable,
                          fmt::format("insert failed: {}", write_error->message));
          return Attempt::kRetry;
        }
        break;
    }
    ++context_.stats.dropped;
    spdlog::error("MongoDB refused a document for good (code {}): {}; it is dropped",
                  write_error->code, write_error->message);
    offset = at + 1;
    return Attempt::kContinue;
  }
  // No write error: the request failed as a whole, maybe after storing some
  // documents (a lost connection), or before sending them (a bad document).
  context_.diagnose_error(error);
  if (refused_access(error)) {
    // A login that failed or a privilege that is missing: nothing was stored,
    // and no document is to blame. They wait in the queue until it is fixed
    // (a new password through SIGHUP, a role granted).
    context_.report(BusContext::Part::kWriter, BusState::kUnavailable,
                    fmt::format("insert failed: {}", error.message));
    return Attempt::kRetry;
  }
  if (is_transient(error, reply.get())) {
    outcome_unknown_ = true;
    context_.report(BusContext::Part::kWriter, BusState::kUnavailable,
                    fmt::format("insert failed: {}", error.message));
    return Attempt::kRetry;
  }
  if (end - offset > 1) {
    spdlog::warn("insertMany failed ({}; domain {}, code {}): writing one document at a time",
                 error.message, error.domain, error.code);
    outcome_unknown_ = true;
    return Attempt::kOneByOne;
  }
  ++context_.stats.dropped;
  spdlog::error("MongoDB refused a document for good ({}; domain {}, code {}); it is dropped",
                error.message, error.domain, error.code);
  offset = end;
  return Attempt::kDone;
}

void DocumentWriter::report_settled() {
  std::uint64_t count;
  {
    MutexLock lock(mutex_);
    if (settled_ == settled_reported_) return;
    settled_reported_ = count = settled_;
  }
  context_.settled(count);
}

bool DocumentWriter::write(std::vector<Encoded>& batch) {
  Backoff backoff(context_.config);
  PooledClient client(context_.pool);
  std::size_t offset = 0;
  bool one_by_one = false;
  while (offset < batch.size()) {
    auto uuid = context_.wait_collection();
    if (!uuid) {  // stopping before the collection came back
      batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(offset));
      return false;
    }
    const std::size_t end = one_by_one ? offset + 1 : batch.size();
    switch (insert(client, *uuid, batch, offset, end)) {
      case Attempt::kDone:
      case Attempt::kContinue:
        backoff.reset();
        break;
      case Attempt::kOneByOne:
        one_by_one = true;
        break;
      case Attempt::kRetry: {
        // MongoDB is away: let the servers go on into the queue meanwhile.
        MutexLock lock(mutex_);
        report_backlog();
      }
        if (!context_.sleep_for(backoff.next())) {
          batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(offset));
          return false;
        }
        break;
    }
  }
  // Every document is settled, and MongoDB said so: by storing it, by showing
  // it was stored before (an answer lost in an election), or by refusing it
  // for good. Any of these ends an outage the writer reported.
  context_.report(BusContext::Part::kWriter, BusState::kReady, "");
  MutexLock lock(mutex_);
  report_backlog();
  return true;
}

}  // namespace siobridge::bus::mongodb
