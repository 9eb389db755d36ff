#include "daemon/bus/mongodb/resume_state.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

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
  std::ifstream in(path_, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "no resume state at " + path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  bson_t stored;
  if (!bson_init_static(&stored, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                        bytes.size()) ||
      !bson_validate(&stored, BSON_VALIDATE_NONE, nullptr)) {
    return make_error(ErrorCode::kDecode, "corrupt resume state in " + path_);
  }
  ResumeState state;
  bson_iter_t it;
  if (bson_iter_init_find(&it, &stored, "token") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_document(&it, &len, &data);
    state.token = wire::OwnedBson(bson_new_from_data(data, len));
  }
  if (bson_iter_init_find(&it, &stored, "wallTime") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
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
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bson_get_data(doc.get())), doc->len);
    if (!out) return make_error(ErrorCode::kInternal, "cannot write " + tmp);
  }
  std::error_code error;
  fs::rename(tmp, path_, error);
  if (error)
    return make_error(ErrorCode::kInternal,
                      fmt::format("cannot rename {}: {}", tmp, error.message()));
  return {};
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
