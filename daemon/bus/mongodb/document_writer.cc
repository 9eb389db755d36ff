#include "daemon/bus/mongodb/document_writer.h"

#include <spdlog/spdlog.h>

#include <chrono>
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

std::size_t approximate_size(const wire::Document& doc) {
  return doc.data.size() * 10 + doc.header.ns.size() + 128;
}

struct WriteError {
  std::size_t index = 0;
  std::uint32_t code = 0;
  std::string message;
};

std::optional<WriteError> first_write_error(const bson_t* reply) {
  bson_iter_t it, errors;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it))
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

}  // namespace

Status DocumentWriter::enqueue(wire::Document document) {
  const std::size_t bytes = approximate_size(document);
  const auto& config = context_.config;
  {
    std::lock_guard lock(mutex_);
    const char* why = nullptr;
    if (closed_) {
      why = "the bus is shutting down";
    } else if (context_.state() == BusState::kUnavailable ||
               context_.state() == BusState::kFailed) {
      why = "MongoDB is unavailable";
    } else if (queue_.size() >= config.max_queued_documents ||
               queued_bytes_ + bytes > config.max_queued_bytes) {
      why = "the MongoDB write queue is full";
    }
    if (why) {
      ++context_.stats.refused;
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("{} ({} documents waiting)", why, queue_.size()));
    }
    queue_.push_back(std::move(document));
    queued_bytes_ += bytes;
    context_.stats.queued = queue_.size();
    context_.stats.queued_bytes = queued_bytes_;
  }
  wakeup_.notify_one();
  return {};
}

void DocumentWriter::close(core::Millis drain) {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + drain;
  }
  wakeup_.notify_one();
}

void DocumentWriter::wake() {
  wakeup_.notify_all();
}

std::vector<DocumentWriter::Encoded> DocumentWriter::take_batch() {
  std::vector<wire::Document> docs;
  {
    std::unique_lock lock(mutex_);
    wakeup_.wait(lock, [&] { return !queue_.empty() || closed_; });
    const std::size_t n = std::min(queue_.size(), context_.config.max_batch);
    docs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      queued_bytes_ -= approximate_size(queue_.front());
      docs.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    context_.stats.queued = queue_.size();
    context_.stats.queued_bytes = queued_bytes_;
  }
  // Encoding happens here, off the core thread.
  std::vector<Encoded> batch;
  batch.reserve(docs.size());
  const bool ttl = context_.config.expiration.kind == Expiration::Kind::kTtl;
  const std::int64_t now = wall_clock_ms();
  for (const auto& doc : docs) {
    // Sized up front: an int32-array document takes about 9 bytes per payload
    // byte, and growing to that by doubling would copy it several times.
    Encoded encoded{wire::OwnedBson(bson_sized_new(approximate_size(doc))), {}, 0};
    bson_oid_init(&encoded.id, nullptr);
    BSON_APPEND_OID(encoded.bson.get(), "_id", &encoded.id);
    wire::encode_document(
        doc,
        wire::EncodeOptions{context_.config.data_format,
                            ttl ? std::optional<std::int64_t>(now) : std::nullopt},
        encoded.bson.get());
    encoded.bytes = encoded.bson->len;
    batch.push_back(std::move(encoded));
  }
  return batch;
}

void DocumentWriter::run() {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (closed_ && (queue_.empty() || std::chrono::steady_clock::now() > drain_deadline_)) {
        if (!queue_.empty()) {
          spdlog::warn("{} documents were not written before the shutdown deadline", queue_.size());
        }
        return;
      }
    }
    auto batch = take_batch();
    if (!batch.empty()) write(batch);
  }
}

bool DocumentWriter::skip_stored(mongoc_collection_t* coll, std::vector<Encoded>& batch,
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
  mongoc_cursor_t* cursor =
      mongoc_collection_find_with_opts(coll, filter.get(), opts.get(), nullptr);
  std::set<std::string> stored;
  const bson_t* doc;
  while (mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
      stored.emplace(reinterpret_cast<const char*>(bson_iter_oid(&it)->bytes), 12);
    }
  }
  bson_error_t error;
  const bool failed = mongoc_cursor_error(cursor, &error);
  mongoc_cursor_destroy(cursor);
  if (failed) return false;
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

void DocumentWriter::write(std::vector<Encoded>& batch) {
  Backoff backoff(context_.config);
  std::size_t offset = 0;
  bool outcome_unknown = false;
  mongoc_client_t* client = mongoc_client_pool_pop(context_.pool);
  while (offset < batch.size()) {
    auto uuid = context_.wait_collection();
    if (!uuid) break;  // stopping before the collection came back
    mongoc_collection_t* coll = mongoc_client_get_collection(
        client, context_.config.database.c_str(), context_.config.collection.c_str());
    if (outcome_unknown) {
      if (!skip_stored(coll, batch, offset)) {
        mongoc_collection_destroy(coll);
        if (!context_.sleep_for(backoff.next())) break;
        continue;
      }
      outcome_unknown = false;
      if (offset >= batch.size()) {
        mongoc_collection_destroy(coll);
        break;
      }
    }
    wire::OwnedBson opts;
    BSON_APPEND_BOOL(opts.get(), "ordered", true);
    if (use_uuid_ && uuid->size() == 16) {
      bson_append_binary(opts.get(), "collectionUUID", -1, BSON_SUBTYPE_UUID,
                         reinterpret_cast<const std::uint8_t*>(uuid->data()), 16);
    }
    std::vector<const bson_t*> docs;
    docs.reserve(batch.size() - offset);
    for (std::size_t i = offset; i < batch.size(); ++i) docs.push_back(batch[i].bson.get());
    bson_t reply;
    bson_error_t error;
    const bool ok =
        mongoc_collection_insert_many(coll, docs.data(), docs.size(), opts.get(), &reply, &error);
    mongoc_collection_destroy(coll);
    if (ok) {
      bson_destroy(&reply);
      context_.stats.inserted += docs.size();
      ++context_.stats.insert_batches;
      context_.stats.record_batch(docs.size());
      context_.report(BusContext::Part::kWriter, BusState::kReady, "");
      offset = batch.size();
      break;
    }
    ++context_.stats.insert_failures;
    auto write_error = first_write_error(&reply);
    bson_destroy(&reply);
    if (write_error) {
      const std::size_t at = offset + write_error->index;
      context_.stats.inserted += write_error->index;
      if (write_error->code == kDuplicateKey) {
        offset = at + 1;  // stored by an earlier attempt
      } else if (write_error->code == kCollectionUuidMismatch) {
        spdlog::warn("the collection was dropped or replaced: waiting for it to be set up again");
        context_.collection_gone(*uuid);
        offset = at;
      } else if (write_error->code == kUnknownField && use_uuid_) {
        spdlog::info(
            "this MongoDB does not know collectionUUID (before 6.0): inserting without it");
        use_uuid_ = false;
        offset = at;
      } else {
        ++context_.stats.dropped;
        spdlog::error("MongoDB refused a document for good (code {}): {}", write_error->code,
                      write_error->message);
        offset = at + 1;
      }
      continue;
    }
    // No write error: the request itself failed, maybe after storing some.
    outcome_unknown = true;
    if (is_transient(error)) {
      context_.report(BusContext::Part::kWriter, BusState::kUnavailable,
                      fmt::format("insert failed: {}", error.message));
    } else {
      spdlog::error("insertMany failed: {} (domain {}, code {}); retrying", error.message,
                    error.domain, error.code);
    }
    if (!context_.sleep_for(backoff.next())) break;
  }
  mongoc_client_pool_push(context_.pool, client);
}

}  // namespace siobridge::bus::mongodb
