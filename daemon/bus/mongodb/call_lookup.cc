#include "daemon/bus/mongodb/call_lookup.h"

#include <spdlog/spdlog.h>

#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/wire/document.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

void CallLookup::ask(std::string instance, Done done) {
  const std::string what = "which calls of server instance " + instance + " MongoDB holds";
  add(Question{[this, instance = std::move(instance), done = std::move(done)]() -> Status {
                 auto answer = query(instance);
                 if (!answer.ok()) return answer.error();
                 context_.post(
                     [done, answer = std::move(answer)]() mutable { done(std::move(answer)); });
                 return {};
               },
               what, true});
}

void CallLookup::ask_socketioxide(std::string ns, Millis lookback,
                                  std::function<void(Result<bool>)> done) {
  add(Question{[this, ns = std::move(ns), lookback, done = std::move(done)]() -> Status {
                 auto answer = query_socketioxide(ns, lookback);
                 context_.post([done, answer]() mutable { done(std::move(answer)); });
                 return {};
               },
               "", false});
}

void CallLookup::add(Question question) {
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    questions_.push_back(std::move(question));
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  asked_.signal();
}

void CallLookup::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  asked_.signal_all();
  if (thread_.joinable()) thread_.join();
}

void CallLookup::run() {
  for (;;) {
    Question question;
    {
      MutexLock lock(mutex_);
      while (questions_.empty() && !stopping_) asked_.wait();
      if (stopping_) return;
      question = std::move(questions_.front());
      questions_.pop_front();
    }
    Backoff backoff(context_.config);
    bool warned = false;
    for (;;) {
      auto status = question.attempt();
      if (status.ok() || !question.retry) break;
      if (!warned) {
        spdlog::warn("cannot look up {} ({}); its calls wait until MongoDB answers", question.what,
                     status.error().message);
        warned = true;
      }
      if (!context_.sleep_for(backoff.next())) return;
    }
  }
}

Result<std::uint64_t> CallLookup::query(const std::string& instance) {
  const auto& config = context_.config;
  PooledClient client(context_.pool);
  auto collection = client.collection(config.database, config.collection);
  wire::OwnedBson filter(BCON_NEW("calls.i", BCON_UTF8(instance.c_str())));
  // The newest first: insertion order, backwards (capped and plain collections alike).
  wire::OwnedBson opts(BCON_NEW("sort", "{", "$natural", BCON_INT32(-1), "}", "limit",
                                BCON_INT64(1), "projection", "{", "calls", BCON_INT32(1), "}",
                                "maxTimeMS", BCON_INT64(30000)));
  Cursor cursor(
      mongoc_collection_find_with_opts(collection.get(), filter.get(), opts.get(), nullptr));
  const bson_t* doc;
  std::uint64_t highest = 0;
  if (mongoc_cursor_next(cursor.get(), &doc)) {
    for (const auto& mark : wire::read_call_marks(doc)) {
      if (mark.instance == instance) highest = std::max(highest, mark.seq);
    }
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    return make_error(ErrorCode::kUnavailable, error.message);
  }
  return highest;
}

Result<bool> CallLookup::query_socketioxide(const std::string& ns, Millis lookback) {
  const auto& config = context_.config;
  // Only `createdAt` dates a document, and only a TTL collection keeps every
  // document of the lookback: a capped one may have overwritten a heartbeat.
  if (config.expiration.kind != Expiration::Kind::kTtl ||
      std::chrono::seconds(config.expiration.ttl_seconds) < lookback) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "the collection does not keep every document of the last heartbeats");
  }
  const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()) -
                     lookback;
  PooledClient client(context_.pool);
  auto collection = client.collection(config.database, config.collection);
  // A request without the `siobridge` field is a socketioxide node's: every
  // request of a siobridge node carries one (docs/PROTOCOL.md section 9). One
  // without `createdAt` (which never expires) counts too. The TTL index on
  // createdAt serves both branches (a missing field is indexed as null).
  wire::OwnedBson filter(
      BCON_NEW("$or", "[", "{", "createdAt", "{", "$gte", BCON_DATE_TIME(since.count()), "}", "}",
               "{", "createdAt", BCON_NULL, "}", "]", "ns", BCON_UTF8(ns.c_str()), "t",
               BCON_UTF8("Req"), "siobridge", "{", "$exists", BCON_BOOL(false), "}"));
  wire::OwnedBson opts(BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1),
                                "}", "maxTimeMS", BCON_INT64(5000)));
  Cursor cursor(
      mongoc_collection_find_with_opts(collection.get(), filter.get(), opts.get(), nullptr));
  const bson_t* doc;
  const bool found = mongoc_cursor_next(cursor.get(), &doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) {
    return make_error(ErrorCode::kUnavailable, error.message);
  }
  return found;
}

}  // namespace siobridge::bus::mongodb
