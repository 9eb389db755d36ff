#include "daemon/wire/bson_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace siobridge::wire {

Result<OwnedBson> read_bson_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  bson_t stored;
  if (!bson_init_static(&stored, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                        bytes.size()) ||
      !bson_validate(&stored, BSON_VALIDATE_NONE, nullptr)) {
    return make_error(ErrorCode::kDecode, path + " does not hold a BSON document");
  }
  return OwnedBson(bson_copy(&stored));
}

Status write_bson_file(const std::string& path, const bson_t* document) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bson_get_data(document)), document->len);
    if (!out) return make_error(ErrorCode::kInternal, "cannot write " + tmp);
  }
  std::error_code error;
  std::filesystem::rename(tmp, path, error);
  if (error) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("cannot rename {}: {}", tmp, error.message()));
  }
  return {};
}

}  // namespace siobridge::wire
