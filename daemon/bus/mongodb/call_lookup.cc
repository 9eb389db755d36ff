#include "daemon/bus/mongodb/call_lookup.h"

#include <spdlog/spdlog.h>

#include "daemon/bus/mongodb/mongo_handles.h"
#include "daemon/wire/document.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

void CallLookup::ask(std::string instance, Done done) {
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    questions_.push_back(Question{std::move(instance), std::move(done)});
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
      auto answer = query(question.instance);
      if (answer.ok()) {
        context_.post([done = std::move(question.done), answer = std::move(answer)]() mutable {
          done(std::move(answer));
        });
        break;
      }
      if (!warned) {
        spdlog::warn(
            "cannot look up which calls of server instance {} MongoDB holds ({}); its calls wait "
            "until MongoDB answers",
            question.instance, answer.error().message);
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

}  // namespace siobridge::bus::mongodb
