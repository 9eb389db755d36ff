#include "daemon/bus/mongodb/resume_state.h"

#include <fmt/format.h>

#include <filesystem>

#include "daemon/wire/bson_file.h"

namespace siobridge::bus::mongodb {

namespace fs = std::filesystem;

ResumeStateFile::ResumeStateFile(std::string directory, const std::string& name) {
  if (directory.empty()) return;
  std::string safe;
  for (char c : name)
    safe.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_');
  path_ = (fs::path(directory) / ("resume-" + safe + ".bson")).string();
}

Result<ResumeState> ResumeStateFile::load() const {
  if (path_.empty()) return make_error(ErrorCode::kNotFound, "no state directory");
  auto read = wire::read_bson_file(path_);
  if (!read.ok()) {
    if (read.error().code == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kNotFound, "no resume state at " + path_);
    }
    return make_error(ErrorCode::kDecode, "corrupt resume state in " + path_);
  }
  const bson_t* stored = read->get();
  ResumeState state;
  bson_iter_t it;
  if (bson_iter_init_find(&it, stored, "token") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_document(&it, &len, &data);
    state.token = wire::OwnedBson(bson_new_from_data(data, len));
  }
  if (bson_iter_init_find(&it, stored, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
    state.wall_time_ms = bson_iter_date_time(&it);
  }
  if (!state.token)
    return make_error(ErrorCode::kDecode, "resume state without a token in " + path_);
  return state;
}

Status ResumeStateFile::save(const bson_t* token, std::int64_t wall_time_ms) const {
  if (path_.empty() || !token) return {};
  wire::OwnedBson doc;
  BSON_APPEND_DOCUMENT(doc.get(), "token", token);
  BSON_APPEND_DATE_TIME(doc.get(), "wallTime", wall_time_ms);
  return wire::write_bson_file(path_, doc.get());
}

bool RecentIds::insert(const bson_oid_t& id) {
  std::string key(reinterpret_cast<const char*>(id.bytes), sizeof id.bytes);
  if (!seen_.insert(key).second) return false;
  order_.push_back(std::move(key));
  if (order_.size() > capacity_) {
    seen_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

}  // namespace siobridge::bus::mongodb
