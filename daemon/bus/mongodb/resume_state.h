// What a watcher needs to continue where it stopped (PROTOCOL.md section 11):
// the last resume token, the wall time of the last event, and the ids of the
// documents it recently delivered so that nothing is delivered twice when a
// stream resumes or the collection is re-read.
//
// ResumeStateFile persists the token and time atomically (write + rename) in
// the state directory. RecentIds is a bounded set. Neither is thread-safe: the
// watcher thread owns both.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>

#include "daemon/common/result.h"
#include "daemon/wire/owned_bson.h"

namespace siobridge::bus::mongodb {

struct ResumeState {
  wire::OwnedBson token{nullptr};  // the change stream's resume token; null when none
  std::int64_t wall_time_ms = 0;   // when the last event was seen (this host's clock)
};

class ResumeStateFile {
 public:
  // `directory` empty: nothing is persisted. `name` distinguishes collections.
  ResumeStateFile(std::string directory, const std::string& name);
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // kNotFound when there is no state yet; kDecode for a corrupt file.
  Result<ResumeState> load() const;
  Status save(const bson_t* token, std::int64_t wall_time_ms) const;

 private:
  std::string path_;
};

class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity) : capacity_(capacity) {}
  // True when `id` (12 bytes of an ObjectId) was not seen; remembers it.
  bool insert(const bson_oid_t& id);
  std::size_t size() const { return order_.size(); }

 private:
  std::size_t capacity_;
  std::deque<std::string> order_;
  std::unordered_set<std::string> seen_;
};

}  // namespace siobridge::bus::mongodb
