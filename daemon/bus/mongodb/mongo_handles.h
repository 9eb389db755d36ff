// Owners of libmongoc handles, each released exactly once however the scope
// ends: a URI, a client pool, a client of its own or one taken from the pool
// (given back), a database, a collection, a cursor, a change stream, read
// preferences, a set of monitoring callbacks, and a command reply (a bson_t that libmongoc
// initializes even when the command fails). The only place in the daemon that
// destroys libmongoc handles. Move-only; each lives on the thread that made it
// (a pool: on any thread).
#pragma once

#include <mongoc/mongoc.h>

#include <memory>
#include <string>
#include <utility>

namespace siobridge::bus::mongodb {

namespace detail {
// Releases a handle with libmongoc's `destroy` function for its type.
template <auto destroy>
struct Destroy {
  template <typename Handle>
  void operator()(Handle* handle) const {
    destroy(handle);
  }
};
}  // namespace detail

// A handle of type T that `destroy` releases.
template <typename T, auto destroy>
using Owned = std::unique_ptr<T, detail::Destroy<destroy>>;

using Uri = Owned<mongoc_uri_t, &mongoc_uri_destroy>;
using ClientPool = Owned<mongoc_client_pool_t, &mongoc_client_pool_destroy>;
// A client of its own (not from a pool): single-threaded.
using Client = Owned<mongoc_client_t, &mongoc_client_destroy>;
using Database = Owned<mongoc_database_t, &mongoc_database_destroy>;
using ApmCallbacks = Owned<mongoc_apm_callbacks_t, &mongoc_apm_callbacks_destroy>;
using Collection = Owned<mongoc_collection_t, &mongoc_collection_destroy>;
using Cursor = Owned<mongoc_cursor_t, &mongoc_cursor_destroy>;
using ChangeStream = Owned<mongoc_change_stream_t, &mongoc_change_stream_destroy>;
using ReadPrefs = Owned<mongoc_read_prefs_t, &mongoc_read_prefs_destroy>;

inline Database open_database(mongoc_client_t* client, const std::string& name) {
  return Database(mongoc_client_get_database(client, name.c_str()));
}
inline Collection open_collection(mongoc_client_t* client, const std::string& database,
                                  const std::string& name) {
  return Collection(mongoc_client_get_collection(client, database.c_str(), name.c_str()));
}

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
    return open_collection(client_, database, name);
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
