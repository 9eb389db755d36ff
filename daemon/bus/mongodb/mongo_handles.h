// Owners of libmongoc handles, each released exactly once however the scope
// ends: a client taken from the pool (given back), a collection, a cursor, a
// change stream, read preferences, and a command reply (a bson_t that libmongoc initializes even
// when the command fails). Move-only; each lives on the thread that made it.
#pragma once

#include <mongoc/mongoc.h>

#include <memory>
#include <string>
#include <utility>

namespace siobridge::bus::mongodb {

namespace detail {
struct CollectionDeleter {
  void operator()(mongoc_collection_t* handle) const { mongoc_collection_destroy(handle); }
};
struct CursorDeleter {
  void operator()(mongoc_cursor_t* handle) const { mongoc_cursor_destroy(handle); }
};
struct ChangeStreamDeleter {
  void operator()(mongoc_change_stream_t* handle) const { mongoc_change_stream_destroy(handle); }
};
struct ReadPrefsDeleter {
  void operator()(mongoc_read_prefs_t* handle) const { mongoc_read_prefs_destroy(handle); }
};
}  // namespace detail

using Collection = std::unique_ptr<mongoc_collection_t, detail::CollectionDeleter>;
using Cursor = std::unique_ptr<mongoc_cursor_t, detail::CursorDeleter>;
using ChangeStream = std::unique_ptr<mongoc_change_stream_t, detail::ChangeStreamDeleter>;
using ReadPrefs = std::unique_ptr<mongoc_read_prefs_t, detail::ReadPrefsDeleter>;

// A client popped from a pool (blocking until one is free), pushed back when
// this goes out of scope.
class PooledClient {
 public:
  explicit PooledClient(mongoc_client_pool_t* pool)
      : pool_(pool), client_(mongoc_client_pool_pop(pool)) {}
  ~PooledClient() {
    if (client_) mongoc_client_pool_push(pool_, client_);
  }
  PooledClient(PooledClient&& other) noexcept
      : pool_(other.pool_), client_(std::exchange(other.client_, nullptr)) {}
  PooledClient& operator=(PooledClient&&) = delete;
  PooledClient(const PooledClient&) = delete;
  PooledClient& operator=(const PooledClient&) = delete;

  mongoc_client_t* get() const { return client_; }

  Collection collection(const std::string& database, const std::string& name) const {
    return Collection(mongoc_client_get_collection(client_, database.c_str(), name.c_str()));
  }

 private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

// The reply document of a libmongoc command or write: the call initializes it
// (success or not), this destroys it.
class Reply {
 public:
  Reply() = default;
  ~Reply() {
    if (initialized_) bson_destroy(&bson_);
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  // For the one call that initializes it.
  bson_t* out() {
    if (initialized_) bson_destroy(&bson_);
    initialized_ = true;
    return &bson_;
  }
  // Null before a call initialized it.
  const bson_t* get() const { return initialized_ ? &bson_ : nullptr; }

 private:
  bson_t bson_{};
  bool initialized_ = false;
};

}  // namespace siobridge::bus::mongodb
