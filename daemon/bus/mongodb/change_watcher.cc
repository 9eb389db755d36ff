#include "daemon/bus/mongodb/change_watcher.h"

#include <spdlog/spdlog.h>

#include "daemon/bus/mongodb/change_stream_filter.h"
#include "daemon/bus/mongodb/collection_setup.h"
#include "daemon/bus/mongodb/privileges.h"
#include "daemon/common/memory.h"
#include "daemon/wire/pack.h"

namespace siobridge::bus::mongodb {
namespace {

constexpr std::uint32_t kInvalidResumeToken = 260;
constexpr std::uint32_t kChangeStreamFatalError = 280;
constexpr std::uint32_t kChangeStreamHistoryLost = 286;
constexpr std::uint32_t kNamespaceNotFound = 26;
constexpr std::int64_t kClockSkewMs = 5000;
// A token is kept for the lagged save at most this often.
constexpr std::chrono::milliseconds kMarkEvery{100};

Millis steady_now() {
  return SteadyClock().now();
}

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A capped collection removes documents only to make room, and stays close to
// its size afterwards: one at least half full may have overwritten some.
bool capped_collection_full(mongoc_client_t* client, const std::string& database,
                            const std::string& collection) {
  wire::OwnedBson command(BCON_NEW("collStats", BCON_UTF8(collection.c_str())));
  Reply reply;
  bson_error_t error;
  if (!mongoc_client_command_simple(client, database.c_str(), command.get(), nullptr, reply.out(),
                                    &error)) {
    return true;  // unknown counts as full: better a false alarm than a silent gap
  }
  bson_iter_t it;
  std::int64_t size = 0, max_size = 0;
  if (bson_iter_init_find(&it, reply.get(), "size")) size = bson_iter_as_int64(&it);
  if (bson_iter_init_find(&it, reply.get(), "maxSize")) max_size = bson_iter_as_int64(&it);
  return max_size <= 0 || size * 2 >= max_size;
}

bool resume_impossible(std::uint32_t code) {
  return code == kInvalidResumeToken || code == kChangeStreamFatalError ||
         code == kChangeStreamHistoryLost;
}

// The place of an insert in the cluster's order: its operation time.
std::optional<ClusterTime> cluster_time_of(const bson_t* event) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, event, "clusterTime") || !BSON_ITER_HOLDS_TIMESTAMP(&it)) {
    return std::nullopt;
  }
  ClusterTime time;
  bson_iter_timestamp(&it, &time.seconds, &time.increment);
  return time;
}

// The stream's own, whatever the URI's readPreference says (that one applies
// to the daemon's other reads).
ReadPrefs stream_read_prefs(MongoBusConfig::ReadPreference preference) {
  switch (preference) {
    case MongoBusConfig::ReadPreference::kPrimary:
      return ReadPrefs(mongoc_read_prefs_new(MONGOC_READ_PRIMARY));
    case MongoBusConfig::ReadPreference::kSecondaryPreferred:
      return ReadPrefs(mongoc_read_prefs_new(MONGOC_READ_SECONDARY_PREFERRED));
    case MongoBusConfig::ReadPreference::kNearest:
      return ReadPrefs(mongoc_read_prefs_new(MONGOC_READ_NEAREST));
  }
  return nullptr;
}

}  // namespace

ChangeWatcher::ChangeWatcher(BusContext& context)
    : context_(context),
      state_file_(context.config.state_dir,
                  context.config.database + "." + context.config.collection +
                      (context.config.instance.empty() ? "" : "." + context.config.instance)),
      recent_(1 << 16) {}

void ChangeWatcher::run() {
  // A later run (after a reconnect) goes on from the token it holds, newer
  // than the one it saved.
  if (!ran_) {
    ran_ = true;
    if (auto state = state_file_.load(); state.ok()) {
      token_ = std::move(state->token);
      last_seen_ms_ = state->wall_time_ms;
      start_ = Start::kResumeAfter;
      spdlog::info("resuming the change stream from {}", state_file_.path());
    } else if (state.error().code != ErrorCode::kNotFound) {
      spdlog::warn("{}; starting from now", state.error().message);
    }
  }

  PooledClient client(context_.pool);
  Backoff backoff(context_.config);
  bool recreating = false;
  Outcome next = Outcome::kSetup;
  while (!context_.stopping()) {
    if (next == Outcome::kSetup) {
      next = setup(client, recreating);
      if (next == Outcome::kReopen) {
        recreating = false;
        backoff.reset();
      } else if (next == Outcome::kSetup) {
        if (!context_.sleep_for(backoff.next())) break;
        continue;
      }
    }
    if (next == Outcome::kFatal || next == Outcome::kStop) break;
    if (next == Outcome::kRefill) {
      refill_pending_ = true;
      next = Outcome::kReopen;
    }
    const auto opened_at = std::chrono::steady_clock::now();
    next = watch(client);
    if (next == Outcome::kSetup) recreating = true;
    if (next == Outcome::kReopen) {
      // A stream that ran for a while earned a fresh backoff.
      if (std::chrono::steady_clock::now() - opened_at > std::chrono::seconds(10)) backoff.reset();
      if (!context_.sleep_for(backoff.next())) break;
    }
  }
  save();
}

ChangeWatcher::Outcome ChangeWatcher::setup(const PooledClient& client, bool recreating) {
  const auto& config = context_.config;
  if (recreating) {
    // Every node sees the drop at once; the one with rank 0 re-creates first and
    // the others find the collection there.
    const auto delay = config.recreate_step * rank_.load();
    if (delay.count() > 0 && !context_.sleep_for(delay)) return Outcome::kStop;
  }
  clear_setup_error();
  std::optional<Diagnosis> diagnosis;
  auto status = check_change_streams_supported(client.get());
  std::optional<GrantedPrivileges> granted;
  if (status.ok()) {
    // What the user may do, checked before relying on it: a missing privilege
    // is named here, once, rather than as whichever command fails first.
    auto privileges = read_privileges(client.get());
    if (!privileges.ok()) {
      status = privileges.error();
    } else if (*privileges) {
      granted = std::move(**privileges);
      const std::string missing =
          granted->missing(config.database, config.collection, needed_to_run(config.expiration));
      if (!missing.empty()) {
        status = make_error(ErrorCode::kFailedPrecondition,
                            fmt::format("user {} lacks what siobridged needs: {} "
                                        "(docs/running.md, \"MongoDB privileges\")",
                                        granted->users(), missing));
        diagnosis = Diagnosis{Cause::kNotAuthorized, status.error().message};
      }
    }
  }
  if (status.ok()) {
    status = ensure_collection(client.get(), config.database, config.collection, config.expiration,
                               granted ? &*granted : nullptr);
    if (!status.ok() && granted && last_setup_error().domain == 0 &&
        status.error().code == ErrorCode::kFailedPrecondition) {
      diagnosis = Diagnosis{Cause::kNotAuthorized, status.error().message};  // may not create
    }
  }
  if (!status.ok()) {
    const bool fatal = status.error().code != ErrorCode::kUnavailable;
    const auto& driver_error = last_setup_error();
    if (!diagnosis && driver_error.domain != 0) {
      diagnosis = mongodb::diagnose_error(driver_error.domain, driver_error.code,
                                          driver_error.message, context_.uri_facts());
    }
    if (diagnosis) {
      // The cause's line is the one at error level; it names what to change.
      context_.diagnose(std::move(*diagnosis));
    } else if (fatal) {
      spdlog::error("MongoDB bus cannot start: {}", status.error().message);
    }
    context_.report(BusContext::Part::kWatcher, fatal ? BusState::kFailed : BusState::kUnavailable,
                    status.error().message);
    return fatal ? Outcome::kFatal : Outcome::kSetup;
  }
  auto uuid = collection_uuid(client.get(), config.database, config.collection);
  if (!uuid.ok()) {
    context_.report(BusContext::Part::kWatcher, BusState::kUnavailable, uuid.error().message);
    return Outcome::kSetup;
  }
  ++context_.stats.collection_setups;
  context_.collection_ready(std::move(*uuid));
  return Outcome::kReopen;
}

ChangeStream ChangeWatcher::open(const PooledClient& client) {
  const auto& config = context_.config;
  auto collection = client.collection(config.database, config.collection);
  mongoc_collection_set_read_prefs(collection.get(),
                                   stream_read_prefs(config.stream_read_preference).get());
  auto pipeline = change_stream_pipeline(context_.uid);
  wire::OwnedBson opts(BCON_NEW("maxAwaitTimeMS", BCON_INT32(100)));
  // A batch is held whole while it is read: by documents, the only bound the
  // server takes. 32 of the largest usual documents (a 128 KiB pack, a 10 KiB
  // payload as an int32 array) are 3-4 MiB, where MongoDB's own bound is 16
  // MiB; small documents still come 32 per round trip.
  BSON_APPEND_INT32(opts.get(), "batchSize", kBatchDocuments);
  if (token_ && start_ == Start::kResumeAfter)
    BSON_APPEND_DOCUMENT(opts.get(), "resumeAfter", token_.get());
  if (token_ && start_ == Start::kStartAfter)
    BSON_APPEND_DOCUMENT(opts.get(), "startAfter", token_.get());
  ++context_.stats.stream_opens;
  return ChangeStream(mongoc_collection_watch(collection.get(), pipeline.get(), opts.get()));
}

ChangeWatcher::Outcome ChangeWatcher::on_stream_error(const bson_error_t& error, bool at_open) {
  ++context_.stats.stream_errors;
  if (!at_open) spdlog::warn("change stream error: {}", error.message);
  if (at_open && error.code == kNamespaceNotFound) return Outcome::kSetup;
  context_.diagnose_error(error);
  if (refused_access(error)) {
    // A password or privilege that changed while running: the token is still
    // good; try again (with backoff) until access is back.
    context_.report(BusContext::Part::kWatcher, BusState::kUnavailable,
                    fmt::format("change stream: {}", error.message));
    return Outcome::kReopen;
  }
  if (token_ && (resume_impossible(error.code) || (at_open && !is_transient(error)))) {
    // The token is unusable (history lost, foreign, corrupt): start afresh and
    // re-read what was missed from the collection.
    ++context_.stats.resume_failures;
    spdlog::warn("cannot resume the change stream ({}): re-reading the collection", error.message);
    token_ = wire::OwnedBson(nullptr);
    marks_.clear();
    start_ = Start::kNow;
    return Outcome::kRefill;
  }
  context_.report(BusContext::Part::kWatcher, BusState::kUnavailable,
                  fmt::format("change stream: {}", error.message));
  return Outcome::kReopen;
}

ChangeWatcher::Outcome ChangeWatcher::watch(const PooledClient& client) {
  auto stream = open(client);
  bson_error_t error;
  const bson_t* reply = nullptr;
  if (mongoc_change_stream_error_document(stream.get(), &error, &reply)) {
    return on_stream_error(error, /*at_open=*/true);
  }
  start_ = Start::kResumeAfter;
  // Where the stream starts: safe to keep even if the daemon stops at once.
  // Kept before the bus says ready, so that a daemon that was ready resumes
  // after a restart from here at the latest.
  remember(mongoc_change_stream_get_resume_token(stream.get()), /*at_open=*/true);
  context_.report(BusContext::Part::kWatcher, BusState::kReady, "");
  if (refill_pending_) {
    // The new stream is open, so nothing falls between the re-read and it;
    // what both return is delivered once.
    refill(client);
    refill_pending_ = false;
  }
  return read(stream.get());
}

ChangeWatcher::Outcome ChangeWatcher::read(mongoc_change_stream_t* stream) {
  const bson_t* event;
  while (!context_.stopping()) {
    if (context_.flow_gate && !context_.flow_gate->is_open()) {
      // The attached servers have too much waiting: leave the rest in MongoDB.
      ++context_.stats.flow_pauses;
      while (!context_.stopping() &&
             !context_.flow_gate->wait_open(std::chrono::milliseconds(200))) {
      }
      continue;
    }
    if (!context_.wait_for_core()) break;
    if (mongoc_change_stream_next(stream, &event)) {
      bson_iter_t it;
      std::string type;
      if (bson_iter_init_find(&it, event, "operationType") && BSON_ITER_HOLDS_UTF8(&it)) {
        type = bson_iter_utf8(&it, nullptr);
      }
      if (type == "insert") {
        const bool large = event->len >= kLargeFreeBytes;
        handle_insert(event);
        remember(mongoc_change_stream_get_resume_token(stream));
        // Give a large event's memory back to the system now (a garbage
        // document of 15 MiB would otherwise stay in the heap).
        if (large) release_free_memory();
      } else if (type == "invalidate") {
        spdlog::warn("the collection was dropped or renamed: setting it up again");
        remember(mongoc_change_stream_get_resume_token(stream));
        start_ = Start::kStartAfter;  // continue right after the invalidate, on the new collection
        context_.collection_invalidated();
        return Outcome::kSetup;
      }
      // drop / rename / dropDatabase: the invalidate that follows ends the stream.
      continue;
    }
    bson_error_t error;
    const bson_t* reply = nullptr;
    if (mongoc_change_stream_error_document(stream, &error, &reply)) {
      return on_stream_error(error, /*at_open=*/false);
    }
    // No event within maxAwaitTimeMS: the post-batch token still moves on.
    remember(mongoc_change_stream_get_resume_token(stream));
  }
  return Outcome::kStop;
}

void ChangeWatcher::handle_insert(const bson_t* event) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, event, "fullDocument") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
    ++context_.stats.malformed;
    skipped_documents_.skipped(steady_now(), "an insert event without its document");
    return;
  }
  std::uint32_t length = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_document(&it, &length, &data);
  bson_t full;
  if (!bson_init_static(&full, data, length)) {
    ++context_.stats.malformed;
    skipped_documents_.skipped(steady_now(), "an inserted document that is not BSON");
    return;
  }
  bson_iter_t id;
  if (bson_iter_init_find(&id, &full, "_id") && BSON_ITER_HOLDS_OID(&id) &&
      !recent_.insert(*bson_iter_oid(&id))) {
    ++context_.stats.duplicates;
    return;
  }
  auto doc = wire::decode_document(&full);
  if (!doc.ok()) {
    ++context_.stats.malformed;
    skipped_documents_.skipped(steady_now(), "a malformed document: {}", doc.error().message);
    return;
  }
  deliver(std::move(*doc), cluster_time_of(event));
}

std::size_t ChangeWatcher::deliver(wire::Document document,
                                   const std::optional<ClusterTime>& time) {
  auto position = [&](std::uint32_t index) {
    return time ? wire::format_position(time->seconds, time->increment, index) : std::string();
  };
  auto unpacked = wire::unpack_document(document);
  if (!unpacked.ok()) {
    ++context_.stats.malformed;
    skipped_documents_.skipped(steady_now(), "a malformed packed document: {}",
                               unpacked.error().message);
    return 0;
  }
  if (!*unpacked) {
    ++context_.stats.received;
    context_.deliver(Delivery{std::move(document), position(0)});
    return 1;
  }
  // A pack carries messages for every siobridge node; each keeps its own
  // place in the order (its index within the pack).
  ++context_.stats.packs_read;
  std::uint32_t index = 0;
  std::size_t delivered = 0;
  for (auto& message : **unpacked) {
    const std::uint32_t at = index++;
    const auto& target = message.header.target;
    if (target && *target != context_.uid && *target != wire::kSiobridgeTarget) continue;
    ++context_.stats.received;
    ++delivered;
    context_.deliver(Delivery{std::move(message), position(at)});
  }
  return delivered;
}

void ChangeWatcher::remember(const bson_t* token, bool at_open) {
  if (!token) return;
  const auto now = std::chrono::steady_clock::now();
  token_ = wire::OwnedBson(bson_copy(token));
  last_seen_ms_ = wall_clock_ms();
  if (at_open || marks_.empty() || now - marks_.back().at >= kMarkEvery) {
    marks_.push_back(Mark{now, wire::OwnedBson(bson_copy(token)), last_seen_ms_, at_open});
  }
  if (now - last_saved_ >= std::chrono::seconds(1)) save();
}

void ChangeWatcher::save() {
  last_saved_ = std::chrono::steady_clock::now();
  if (!state_file_.enabled()) return;
  // The newest token at least kReplayMargin old: what came after it may not
  // have reached the servers yet, so a restart reads it again.
  const auto cutoff = last_saved_ - kReplayMargin;
  std::optional<Mark> chosen;
  while (!marks_.empty() && marks_.front().at <= cutoff) {
    chosen = std::move(marks_.front());
    marks_.pop_front();
  }
  if (!chosen && !marks_.empty() && marks_.front().at_open) {
    // Young, but where the stream started: nothing after it was missed.
    chosen = std::move(marks_.front());
    marks_.pop_front();
  }
  if (!chosen) return;  // nothing old enough: the file keeps an older token
  if (auto s = state_file_.save(chosen->token.get(), chosen->wall_time_ms); !s.ok()) {
    spdlog::warn("cannot keep the resume token: {}", s.error().message);
  }
  // The chosen mark stays the oldest candidate for the next save.
  marks_.push_front(std::move(*chosen));
}

void ChangeWatcher::refill(const PooledClient& client) {
  const auto& config = context_.config;
  if (last_seen_ms_ <= 0) return;  // never saw anything: nothing to catch up on
  const std::int64_t since_ms = last_seen_ms_ - kClockSkewMs;
  auto collection = client.collection(config.database, config.collection);

  // Documents may have been lost only if the retention ran out while this node
  // was away: longer than the TTL, or a capped collection that filled up, and
  // nothing older than `since` is left to prove otherwise.
  bool gap = false;
  const auto& expiration = config.expiration;
  const std::int64_t away_ms = wall_clock_ms() - last_seen_ms_;
  const bool retention_ran_out =
      expiration.kind == Expiration::Kind::kTtl
          ? away_ms >= expiration.ttl_seconds * 1000
          : capped_collection_full(client.get(), config.database, config.collection);
  if (retention_ran_out) {
    wire::OwnedBson oldest_opts(
        BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1)));
    wire::OwnedBson all;
    Cursor oldest(
        mongoc_collection_find_with_opts(collection.get(), all.get(), oldest_opts.get(), nullptr));
    const bson_t* first;
    gap = true;
    if (mongoc_cursor_next(oldest.get(), &first)) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, first, "_id") && BSON_ITER_HOLDS_OID(&it)) {
        gap = bson_oid_get_time_t(bson_iter_oid(&it)) * 1000 > since_ms;
      }
    }
  }

  bson_oid_t from;
  bson_oid_init_from_data(&from, reinterpret_cast<const std::uint8_t*>("\0\0\0\0\0\0\0\0\0\0\0\0"));
  const auto seconds = static_cast<std::uint32_t>(since_ms / 1000);
  from.bytes[0] = static_cast<std::uint8_t>(seconds >> 24);
  from.bytes[1] = static_cast<std::uint8_t>(seconds >> 16);
  from.bytes[2] = static_cast<std::uint8_t>(seconds >> 8);
  from.bytes[3] = static_cast<std::uint8_t>(seconds);
  const std::string extension_target(wire::kSiobridgeTarget);
  wire::OwnedBson filter(BCON_NEW("_id", "{", "$gte", BCON_OID(&from), "}", "origin", "{", "$ne",
                                  BCON_UTF8(context_.uid.c_str()), "}", "target", "{", "$in", "[",
                                  BCON_NULL, BCON_UTF8(context_.uid.c_str()),
                                  BCON_UTF8(extension_target.c_str()), "]", "}"));
  wire::OwnedBson opts(BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}"));
  Cursor cursor(
      mongoc_collection_find_with_opts(collection.get(), filter.get(), opts.get(), nullptr));
  const bson_t* doc;
  std::uint64_t refilled = 0;
  while (context_.wait_for_core() && mongoc_cursor_next(cursor.get(), &doc)) {
    bson_iter_t id;
    if (bson_iter_init_find(&id, doc, "_id") && BSON_ITER_HOLDS_OID(&id) &&
        !recent_.insert(*bson_iter_oid(&id))) {
      ++context_.stats.duplicates;
      continue;
    }
    auto decoded = wire::decode_document(doc);
    if (!decoded.ok()) {
      ++context_.stats.malformed;
      skipped_documents_.skipped(steady_now(), "a malformed document (re-read): {}",
                                 decoded.error().message);
      continue;
    }
    // Re-read documents have no known place in the order: servers cannot skip
    // them as repeats (docs/running.md, "Delivery guarantees").
    refilled += deliver(std::move(*decoded), std::nullopt);
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    spdlog::warn("re-reading the collection failed: {}", error.message);
  }
  context_.stats.gap_refills += refilled;
  if (gap) {
    ++context_.stats.gaps;
    spdlog::warn(
        "documents published while this node was away may have expired before it could "
        "read them (away {} ms, longer than the retention); re-read {} documents",
        away_ms, refilled);
  } else {
    spdlog::info("re-read {} messages published while the change stream was down", refilled);
  }
}

}  // namespace siobridge::bus::mongodb
